// The CPU backend: ember's packed SGEMM (Eigen for the rest of GEMM), OpenMP and vectorisable loops
// for maps, reductions and softmax, and its fused kernels (float32 row kernels for softmax,
// attention and cross-entropy; layer norm, batch norm, max pooling, im2col/col2im and optimizer
// updates; batch norm and max pooling live in cpu_norm_pool.cpp, convolution in cpu_conv.cpp). It shares no
// code with the reference backend, which tests check it against. Work below `kParallelGrain` elements stays
// on the calling thread: forking a team costs microseconds, more than a small op itself.
//
// The class is compiled once per instruction-set level (cpu_isa.h), each copy in its own namespace;
// `cpu_backend_for` returns the copy for a level and `cpu_backend()` (backend.h) the one for the
// level this process runs at (cpu_capability.h).
#pragma once
#include "ember/kernels/cpu/cpu_capability.h"
#include "ember/kernels/fused.h"

namespace ember::kernels {

// 64K units: a residual add or a transposing copy of a [640, 128] activation (82K floats, tens of
// microseconds) splits over two threads for a fork that costs one or two while the team is warm;
// seq2seq_step ran about 5% faster than with a 256K grain, which kept them on one thread.
inline constexpr int64_t kParallelGrain = 65536;

// The CPU backend compiled for `capability`; an ember::Error when this CPU or build lacks it.
Backend& cpu_backend_for(CpuCapability capability);

namespace isa_default {
Backend& cpu_backend_instance();
}
namespace isa_avx2 {
Backend& cpu_backend_instance();
}
namespace isa_avx512 {
Backend& cpu_backend_instance();
}

#if defined(EMBER_CPU_ISA_NS)
namespace EMBER_CPU_ISA_NS {

class CpuBackend : public Backend, public FusedKernels {
 public:
  const char* name() const override;
  bool supports(Op op, DType dtype) const override;
  bool supports(FusedOp op, DType dtype) const override;
  FusedKernels* fused() override { return this; }

  // ---- the primitives (backend.h) ----
  void* allocate(size_t nbytes) override;
  void deallocate(void* ptr, size_t nbytes) override;
  void empty_cache() override;
  void copy_to_host(void* host_dst, const void* src, size_t nbytes) override;
  void copy_from_host(void* dst, const void* host_src, size_t nbytes) override;
  void fill(DType dt, void* out, int64_t n, Scalar value) override;
  void cast(DType from, const void* in, DType to, void* out, int64_t n) override;
  void strided_copy(DType dt, const void* src, Dims src_strides, void* dst, Dims dst_strides,
                    Dims sizes) override;
  void unary(UnaryOp op, DType dt, const void* in, void* out, int64_t n, double a, double b) override;
  void binary(BinaryOp op, DType dt, const void* a, Dims a_strides, const void* b, Dims b_strides, void* out,
              Dims sizes) override;
  void where(DType dt, const void* cond, Dims c_strides, const void* a, Dims a_strides, const void* b,
             Dims b_strides, void* out, Dims sizes) override;
  void reduce(ReduceOp op, DType dt, const void* in, void* out, int64_t outer, int64_t r,
              int64_t inner) override;
  void cumsum(DType dt, const void* in, void* out, int64_t outer, int64_t r, int64_t inner) override;
  void gemm(const GemmArgs& args, const void* a, const void* b, void* c) override;
  void index_select(DType dt, const void* in, int64_t n, const int64_t* idx, int64_t k, void* out,
                    int64_t outer, int64_t inner) override;
  void index_add(DType dt, void* out, int64_t n, const int64_t* idx, int64_t k, const void* src,
                 int64_t outer, int64_t inner, double alpha) override;
  void gather(DType dt, const void* in, int64_t n, const int64_t* idx, void* out, int64_t outer, int64_t k,
              int64_t inner) override;
  void scatter(DType dt, void* out, int64_t n, const int64_t* idx, const void* src, int64_t outer, int64_t k,
               int64_t inner, bool accumulate) override;
  int64_t nonzero(const void* mask, int64_t n, int64_t* out) override;
  void sort(DType dt, const void* in, int64_t* out_idx, int64_t rows, int64_t cols, bool descending) override;
  void random_uniform(DType dt, void* out, int64_t n, uint64_t seed, uint64_t offset, double lo,
                      double hi) override;
  void random_normal(DType dt, void* out, int64_t n, uint64_t seed, uint64_t offset, double mean,
                     double stddev) override;

  // ---- fused kernels (fused.h) ----
  void softmax(DType dt, const void* in, void* out, int64_t rows, int64_t cols, bool log) override;
  void cross_entropy_forward(DType dt, const void* logits, const int64_t* target, const void* row_weight,
                             int64_t rows, int64_t classes, void* loss, void* lse) override;
  void cross_entropy_backward(DType dt, const void* logits, const int64_t* target, const void* row_weight,
                              const void* lse, const void* grad_loss, int64_t rows, int64_t classes,
                              void* grad_logits) override;
  void layer_norm_forward(DType dt, const void* x, const void* w, const void* b, int64_t rows, int64_t cols,
                          double eps, void* y, void* mean, void* rstd) override;
  void layer_norm_backward(DType dt, const void* x, const void* w, const void* mean, const void* rstd,
                           const void* dy, int64_t rows, int64_t cols, void* dx, void* dw, void* db) override;
  void optimizer_update(DType dt, const UpdateSpec& spec, int64_t n, void* param, const void* grad,
                        void* state0, void* state1, void* state2) override;
  void batch_norm_forward(DType dt, const void* x, const void* w, const void* b, int64_t n, int64_t c,
                          int64_t s, double eps, void* y, void* mean, void* var, void* rstd) override;
  void batch_norm_backward(DType dt, const void* x, const void* w, const void* mean, const void* rstd,
                           const void* dy, int64_t n, int64_t c, int64_t s, void* dx, void* dw,
                           void* db) override;
  void max_pool2d_forward(DType dt, const void* in, const WindowGeometry& g, int64_t planes, void* out,
                          int64_t* index) override;
  void max_pool2d_backward(DType dt, const void* grad_out, const int64_t* index, const WindowGeometry& g,
                           int64_t planes, void* grad_in) override;
  void im2col(DType dt, const void* in, void* out, const WindowGeometry& g, int64_t batch) override;
  void conv2d_forward(DType dt, const void* x, const void* w, const void* bias, const WindowGeometry& g,
                      int64_t batch, int64_t out_channels, void* out) override;
  void conv2d_backward_input(DType dt, const void* dy, const void* w, const WindowGeometry& g, int64_t batch,
                             int64_t out_channels, void* dx) override;
  void conv2d_backward_weight(DType dt, const void* x, const void* dy, const WindowGeometry& g, int64_t batch,
                              int64_t out_channels, void* dw, void* db) override;
  void col2im(DType dt, const void* cols, void* out, const WindowGeometry& g, int64_t batch) override;
  void attention_forward(DType dt, const AttentionShape& a, const void* q, const void* k, const void* v,
                         const void* mask, Dims mask_strides, void* out, void* lse) override;
  void attention_backward(DType dt, const AttentionShape& a, const void* q, const void* k, const void* v,
                          const void* mask, Dims mask_strides, const void* out, const void* grad_out,
                          const void* lse, void* gq, void* gk, void* gv) override;

 private:
  // Max, min, their indices, products and integer sums (cpu_general.cpp).
  void general_reduce(ReduceOp op, DType dt, const void* in, void* out, int64_t outer, int64_t r,
                      int64_t inner);
};

}  // namespace EMBER_CPU_ISA_NS
#endif

}  // namespace ember::kernels
