// CudaBackend: see cuda_backend.h. Each primitive checks its arguments' shape of work and hands the
// device pointers to a kernel's host entry point (cuda_kernels.h); memory, copies and GEMM come from
// the device runtime of this build (device_runtime.h: a real GPU or the simulated device).
#include "ember/kernels/cuda/cuda_backend.h"

#include "ember/core/error.h"
#include "ember/kernels/cuda/caching_allocator.h"
#include "ember/kernels/cuda/cuda_kernels.h"
#include "ember/kernels/cuda/device_runtime.h"
#include "ember/kernels/fused.h"

namespace ember::kernels {
namespace {

class CudaBackend : public Backend, public FusedKernels {
 public:
  cuda::CachingAllocator allocator;
  const char* name() const override { return cuda::runtime::name(); }

  bool supports(Op op, DType dtype) const override {
    const bool numeric =
        dtype == kFloat32 || dtype == kFloat64 || dtype == kInt64 || dtype == kInt32 || dtype == kBool;
    switch (op) {
      case Op::Fill:
      case Op::Cast:
      case Op::StridedCopy:
      case Op::Where:
      case Op::IndexSelect:
      case Op::Gather: return numeric || is_half(dtype);
      case Op::Unary:
      case Op::Binary:
      case Op::Reduce:
      case Op::Cumsum:
      case Op::Scatter:
      case Op::Nonzero:
      case Op::Sort: return numeric;
      case Op::IndexAdd: return dtype == kFloat32 || dtype == kFloat64 || dtype == kInt32;
      case Op::Gemm: return is_floating(dtype);
      case Op::RandomUniform:
      case Op::RandomNormal: return dtype == kFloat32 || dtype == kFloat64;
    }
    return false;
  }
  FusedKernels* fused() override { return this; }
  bool supports(FusedOp op, DType dtype) const override {
    // Convolution runs composed here: the batch's columns in one im2col launch, then one batched
    // cuBLAS GEMM (device memory holds the column matrix easily; the CPU's per-image cache blocking
    // buys nothing on a GPU).
    if (op == FusedOp::Conv2d) return false;
    if (op == FusedOp::Im2Col || op == FusedOp::Col2Im)
      return dtype == kFloat32 || dtype == kFloat64 || dtype == kInt64 || dtype == kInt32 || dtype == kBool;
    return dtype == kFloat32 || dtype == kFloat64;
  }

  void* allocate(size_t nbytes) override { return allocator.allocate(nbytes == 0 ? 1 : nbytes); }
  void deallocate(void* ptr, size_t) override { allocator.deallocate(ptr); }
  void empty_cache() override { allocator.empty_cache(); }
  void copy_to_host(void* host_dst, const void* src, size_t nbytes) override {
    cuda::runtime::copy_to_host(host_dst, src, nbytes);
  }
  void copy_from_host(void* dst, const void* host_src, size_t nbytes) override {
    cuda::runtime::copy_to_device(dst, host_src, nbytes);
  }
  void synchronize() override { cuda::runtime::synchronize(); }

  void fill(DType dt, void* out, int64_t n, Scalar value) override { cuda::fill(dt, out, n, value); }
  void cast(DType from, const void* in, DType to, void* out, int64_t n) override {
    cuda::cast(from, in, to, out, n);
  }
  void strided_copy(DType dt, const void* src, Dims src_strides, void* dst, Dims dst_strides,
                    Dims sizes) override {
    cuda::strided_copy(dt, src, dst, cuda::make_strided(sizes, src_strides, dst_strides));
  }
  void unary(UnaryOp op, DType dt, const void* in, void* out, int64_t n, double a, double b) override {
    cuda::unary(op, dt, in, out, n, a, b);
  }
  void binary(BinaryOp op, DType dt, const void* a, Dims a_strides, const void* b, Dims b_strides, void* out,
              Dims sizes) override {
    cuda::binary(op, dt, a, b, out, cuda::make_strided(sizes, a_strides, b_strides));
  }
  void where(DType dt, const void* cond, Dims c_strides, const void* a, Dims a_strides, const void* b,
             Dims b_strides, void* out, Dims sizes) override {
    cuda::where(dt, cond, a, b, out, cuda::make_strided(sizes, c_strides, a_strides, b_strides));
  }
  void reduce(ReduceOp op, DType dt, const void* in, void* out, int64_t outer, int64_t r,
              int64_t inner) override {
    cuda::reduce(op, dt, in, out, outer, r, inner);
  }
  void softmax(DType dt, const void* in, void* out, int64_t rows, int64_t cols, bool log) override {
    cuda::softmax(dt, in, out, rows, cols, log);
  }
  // cuBLAS on a GPU; the CPU's GEMM on the simulated device, whose memory is host memory.
  void gemm(const GemmArgs& g, const void* a, const void* b, void* c) override {
    EMBER_CHECK(is_floating(g.dtype), "cuda gemm: no kernel for dtype ", dtype_name(g.dtype));
    cuda::runtime::gemm(g, a, b, c);
  }

  void cumsum(DType dt, const void* in, void* out, int64_t outer, int64_t r, int64_t inner) override {
    cuda::cumsum(dt, in, out, outer, r, inner);
  }
  void index_select(DType dt, const void* in, int64_t n, const int64_t* idx, int64_t k, void* out,
                    int64_t outer, int64_t inner) override {
    cuda::index_select(dt, in, n, idx, k, out, outer, inner);
  }
  void index_add(DType dt, void* out, int64_t n, const int64_t* idx, int64_t k, const void* src,
                 int64_t outer, int64_t inner, double alpha) override {
    cuda::index_add(dt, out, n, idx, k, src, outer, inner, alpha);
  }
  void gather(DType dt, const void* in, int64_t n, const int64_t* idx, void* out, int64_t outer, int64_t k,
              int64_t inner) override {
    cuda::gather(dt, in, n, idx, out, outer, k, inner);
  }
  void scatter(DType dt, void* out, int64_t n, const int64_t* idx, const void* src, int64_t outer, int64_t k,
               int64_t inner, bool accumulate) override {
    cuda::scatter(dt, out, n, idx, src, outer, k, inner, accumulate);
  }
  int64_t nonzero(const void* mask, int64_t n, int64_t* out) override { return cuda::nonzero(mask, n, out); }
  void sort(DType dt, const void* in, int64_t* out_idx, int64_t rows, int64_t cols,
            bool descending) override {
    cuda::sort(dt, in, out_idx, rows, cols, descending);
  }
  void im2col(DType dt, const void* in, void* out, const WindowGeometry& g, int64_t batch) override {
    cuda::im2col(dt, in, out, g, batch);
  }
  void col2im(DType dt, const void* cols, void* out, const WindowGeometry& g, int64_t batch) override {
    cuda::col2im(dt, cols, out, g, batch);
  }
  void attention_forward(DType dt, const AttentionShape& a, const void* q, const void* k, const void* v,
                         const void* mask, Dims mask_strides, void* out, void* lse) override {
    cuda::attention_forward(dt, a, q, k, v, mask, mask_strides, out, lse);
  }
  void attention_backward(DType dt, const AttentionShape& a, const void* q, const void* k, const void* v,
                          const void* mask, Dims mask_strides, const void* out, const void* grad_out,
                          const void* lse, void* gq, void* gk, void* gv) override {
    cuda::attention_backward(dt, a, q, k, v, mask, mask_strides, out, grad_out, lse, gq, gk, gv);
  }
  void cross_entropy_forward(DType dt, const void* logits, const int64_t* target, const void* row_weight,
                             int64_t rows, int64_t classes, void* loss, void* lse) override {
    cuda::cross_entropy_forward(dt, logits, target, row_weight, rows, classes, loss, lse);
  }
  void cross_entropy_backward(DType dt, const void* logits, const int64_t* target, const void* row_weight,
                              const void* lse, const void* grad_loss, int64_t rows, int64_t classes,
                              void* grad_logits) override {
    cuda::cross_entropy_backward(dt, logits, target, row_weight, lse, grad_loss, rows, classes, grad_logits);
  }
  void layer_norm_forward(DType dt, const void* x, const void* w, const void* b, int64_t rows, int64_t cols,
                          double eps, void* y, void* mean, void* rstd) override {
    cuda::layer_norm_forward(dt, x, w, b, rows, cols, eps, y, mean, rstd);
  }
  void layer_norm_backward(DType dt, const void* x, const void* w, const void* mean, const void* rstd,
                           const void* dy, int64_t rows, int64_t cols, void* dx, void* dw,
                           void* db) override {
    cuda::layer_norm_backward(dt, x, w, mean, rstd, dy, rows, cols, dx, dw, db);
  }
  void batch_norm_forward(DType dt, const void* x, const void* w, const void* b, int64_t n, int64_t c,
                          int64_t s, double eps, void* y, void* mean, void* var, void* rstd) override {
    cuda::batch_norm_forward(dt, x, w, b, n, c, s, eps, y, mean, var, rstd);
  }
  void batch_norm_backward(DType dt, const void* x, const void* w, const void* mean, const void* rstd,
                           const void* dy, int64_t n, int64_t c, int64_t s, void* dx, void* dw,
                           void* db) override {
    cuda::batch_norm_backward(dt, x, w, mean, rstd, dy, n, c, s, dx, dw, db);
  }
  void max_pool2d_forward(DType dt, const void* in, const WindowGeometry& g, int64_t planes, void* out,
                          int64_t* index) override {
    cuda::max_pool2d_forward(dt, in, g, planes, out, index);
  }
  void max_pool2d_backward(DType dt, const void* grad_out, const int64_t* index, const WindowGeometry& g,
                           int64_t planes, void* grad_in) override {
    cuda::max_pool2d_backward(dt, grad_out, index, g, planes, grad_in);
  }
  void optimizer_update(DType dt, const UpdateSpec& spec, int64_t n, void* param, const void* grad, void* s0,
                        void* s1, void* s2) override {
    cuda::optimizer_update(dt, spec, n, param, grad, s0, s1, s2);
  }
  void optimizer_update_multi(DType dt, const UpdateSpec& spec,
                              std::span<const UpdateTensor> tensors) override {
    cuda::optimizer_update_multi(dt, spec, tensors);
  }
  void random_uniform(DType dt, void* out, int64_t n, uint64_t seed, uint64_t offset, double lo,
                      double hi) override {
    cuda::random_uniform(dt, out, n, seed, offset, lo, hi);
  }
  void random_normal(DType dt, void* out, int64_t n, uint64_t seed, uint64_t offset, double mean,
                     double stddev) override {
    cuda::random_normal(dt, out, n, seed, offset, mean, stddev);
  }
};

}  // namespace

CudaBackend* the_backend() {
  if (!cuda::runtime::available()) return nullptr;
  // Never destroyed: tensors in other statics may free their memory during exit, and the blocks
  // it caches stay reachable (not leaks) until the process ends.
  static CudaBackend* backend = new CudaBackend;
  return backend;
}

Backend* cuda_backend_or_null() { return the_backend(); }

}  // namespace ember::kernels

namespace ember::cuda {

bool is_available() { return kernels::cuda::runtime::available(); }
int device_count() { return kernels::cuda::runtime::device_count(); }
std::string unavailable_reason() { return kernels::cuda::runtime::unavailable_reason(); }
bool built_for_gpu() { return kernels::cuda::runtime::built_for_gpu(); }
void synchronize() {
  if (is_available()) kernels::cuda::runtime::synchronize();
}
void enable_simulated_device() { kernels::cuda::runtime::enable_simulated_device(); }
void set_allow_tf32(bool on) { kernels::cuda::runtime::set_allow_tf32(on); }
bool allow_tf32() { return kernels::cuda::runtime::allow_tf32(); }

static kernels::cuda::CachingAllocator& allocator() {
  auto* b = kernels::the_backend();
  EMBER_CHECK(b != nullptr, "cuda: no CUDA device is available: ", unavailable_reason());
  return b->allocator;
}
int64_t memory_allocated() { return allocator().stats().allocated; }
int64_t memory_reserved() { return allocator().stats().reserved; }
int64_t max_memory_allocated() { return allocator().stats().peak_allocated; }
void reset_peak_memory_stats() { allocator().reset_peak(); }
void empty_cache() { allocator().empty_cache(); }

}  // namespace ember::cuda
