// CudaBackend: see cuda_backend.h. Each primitive checks its arguments' shape of work and hands the
// device pointers to a kernel's host entry point (cuda_kernels.h).
#include "ember/kernels/cuda/cuda_backend.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "ember/core/error.h"
#include "ember/kernels/cuda/cuda_kernels.h"
#include "ember/kernels/cuda/portability.h"

namespace ember::kernels {
namespace {

std::atomic<bool> g_simulated{false};

bool simulated_enabled() {
  static const bool from_env = [] {
    const char* v = std::getenv("EMBER_CUDA_SIM");
    return v && (std::strcmp(v, "1") == 0 || std::strcmp(v, "ON") == 0 || std::strcmp(v, "on") == 0);
  }();
  return from_env || g_simulated.load();
}

[[noreturn]] void no_kernel(const char* op) {
  fail("cuda backend: ", op, " has no CUDA kernel yet (this version has elementwise ops, reductions, "
       "softmax and GEMM); move the tensor to the CPU for it");
}

class CudaBackend : public Backend {
 public:
  const char* name() const override { return "cuda (simulated)"; }

  bool supports(Op op, DType dtype) const override {
    const bool numeric = dtype == kFloat32 || dtype == kFloat64 || dtype == kInt64 || dtype == kInt32 ||
                         dtype == kBool;
    switch (op) {
      case Op::Fill: case Op::Cast: case Op::StridedCopy: case Op::Unary: case Op::Binary: case Op::Where:
      case Op::Reduce:
        return numeric;
      case Op::Gemm: case Op::Softmax:
        return dtype == kFloat32 || dtype == kFloat64;
      default:
        return false;
    }
  }

  void* allocate(size_t nbytes) override { return gpu::malloc(nbytes == 0 ? 1 : nbytes); }
  void deallocate(void* ptr, size_t) override { gpu::free(ptr); }
  void copy_to_host(void* host_dst, const void* src, size_t nbytes) override { gpu::copy_to_host(host_dst, src, nbytes); }
  void copy_from_host(void* dst, const void* host_src, size_t nbytes) override {
    gpu::copy_to_device(dst, host_src, nbytes);
  }
  void synchronize() override { gpu::synchronize(); }

  void fill(DType dt, void* out, int64_t n, Scalar value) override { cuda::fill(dt, out, n, value); }
  void cast(DType from, const void* in, DType to, void* out, int64_t n) override { cuda::cast(from, in, to, out, n); }
  void strided_copy(DType dt, const void* src, Dims src_strides, void* dst, Dims dst_strides, Dims sizes) override {
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
  void reduce(ReduceOp op, DType dt, const void* in, void* out, int64_t outer, int64_t r, int64_t inner) override {
    cuda::reduce(op, dt, in, out, outer, r, inner);
  }
  void softmax(DType dt, const void* in, void* out, int64_t rows, int64_t cols, bool log) override {
    cuda::softmax(dt, in, out, rows, cols, log);
  }
  // The simulated device's memory is host memory, so its GEMM is the CPU's (Eigen / our packed
  // SGEMM); a GPU build calls cuBLAS here.
  void gemm(DType dt, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const void* a,
            int64_t lda, int64_t stride_a, const void* b, int64_t ldb, int64_t stride_b, double beta, void* c,
            int64_t ldc, int64_t stride_c, int64_t batch) override {
    cpu_backend().gemm(dt, trans_a, trans_b, m, n, k, alpha, a, lda, stride_a, b, ldb, stride_b, beta, c, ldc,
                       stride_c, batch);
  }

  void cumsum(DType, const void*, void*, int64_t, int64_t, int64_t) override { no_kernel("cumsum"); }
  void index_select(DType, const void*, int64_t, const int64_t*, int64_t, void*, int64_t, int64_t) override {
    no_kernel("index_select");
  }
  void index_add(DType, void*, int64_t, const int64_t*, int64_t, const void*, int64_t, int64_t, double) override {
    no_kernel("index_add");
  }
  void gather(DType, const void*, int64_t, const int64_t*, void*, int64_t, int64_t, int64_t) override {
    no_kernel("gather");
  }
  void scatter(DType, void*, int64_t, const int64_t*, const void*, int64_t, int64_t, int64_t, bool) override {
    no_kernel("scatter");
  }
  int64_t nonzero(const void*, int64_t, int64_t*) override { no_kernel("nonzero"); }
  void sort(DType, const void*, int64_t*, int64_t, int64_t, bool) override { no_kernel("sort"); }
  void im2col(DType, const void*, void*, const WindowGeometry&, int64_t) override { no_kernel("im2col"); }
  void col2im(DType, const void*, void*, const WindowGeometry&, int64_t) override { no_kernel("col2im"); }
  void attention_forward(DType, const AttentionShape&, const void*, const void*, const void*, const void*, Dims,
                         void*, void*) override {
    no_kernel("attention_forward");
  }
  void attention_backward(DType, const AttentionShape&, const void*, const void*, const void*, const void*, Dims,
                          const void*, const void*, const void*, void*, void*, void*) override {
    no_kernel("attention_backward");
  }
  void layer_norm_forward(DType, const void*, const void*, const void*, int64_t, int64_t, double, void*, void*,
                          void*) override {
    no_kernel("layer_norm_forward");
  }
  void layer_norm_backward(DType, const void*, const void*, const void*, const void*, const void*, int64_t,
                           int64_t, void*, void*, void*) override {
    no_kernel("layer_norm_backward");
  }
  void optimizer_update(DType, const UpdateSpec&, int64_t, void*, const void*, void*, void*, void*) override {
    no_kernel("optimizer_update");
  }
  void random_uniform(DType, void*, int64_t, uint64_t, uint64_t, double, double) override {
    no_kernel("random_uniform");
  }
  void random_normal(DType, void*, int64_t, uint64_t, uint64_t, double, double) override {
    no_kernel("random_normal");
  }
};

}  // namespace

void set_simulated_device(bool on) { g_simulated = on; }

Backend* cuda_backend_or_null() {
  if (!simulated_enabled()) return nullptr;
  static CudaBackend backend;
  return &backend;
}

}  // namespace ember::kernels

namespace ember::cuda {

bool is_available() { return kernels::cuda_backend_or_null() != nullptr; }
int device_count() { return is_available() ? 1 : 0; }
void synchronize() {
  if (auto* b = kernels::cuda_backend_or_null()) b->synchronize();
}
void enable_simulated_device() { kernels::set_simulated_device(true); }

}  // namespace ember::cuda
