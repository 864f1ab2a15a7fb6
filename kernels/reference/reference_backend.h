// The reference backend: every primitive and fused kernel as the plainest loop that is obviously
// right. It is the oracle the tests compare other backends against and the first thing to read to
// learn what a primitive means. Single-threaded, float math in double. It shares no code with the
// CPU or CUDA backends (its formulas are in reference_math.h), only ember's dtype dispatch and the
// definition of the Philox random stream, which every backend must reproduce exactly.
#pragma once
#include "ember/kernels/fused.h"

namespace ember::kernels {

class ReferenceBackend : public Backend, public FusedKernels {
 public:
  const char* name() const override { return "reference"; }
  bool supports(Op op, DType dtype) const override;
  FusedKernels* fused() override { return this; }
  bool supports(FusedOp op, DType dtype) const override;

  void* allocate(size_t nbytes) override;
  void deallocate(void* ptr, size_t nbytes) override;
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
  void softmax(DType dt, const void* in, void* out, int64_t rows, int64_t cols, bool log) override;
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
  void layer_norm_forward(DType dt, const void* x, const void* w, const void* b, int64_t rows, int64_t cols,
                          double eps, void* y, void* mean, void* rstd) override;
  void layer_norm_backward(DType dt, const void* x, const void* w, const void* mean, const void* rstd,
                           const void* dy, int64_t rows, int64_t cols, void* dx, void* dw, void* db) override;
  void cross_entropy_forward(DType dt, const void* logits, const int64_t* target, const void* row_weight,
                             int64_t rows, int64_t classes, void* loss, void* lse) override;
  void cross_entropy_backward(DType dt, const void* logits, const int64_t* target, const void* row_weight,
                              const void* lse, const void* grad_loss, int64_t rows, int64_t classes,
                              void* grad_logits) override;
  void optimizer_update(DType dt, const UpdateSpec& spec, int64_t n, void* param, const void* grad,
                        void* state0, void* state1, void* state2) override;
  void random_uniform(DType dt, void* out, int64_t n, uint64_t seed, uint64_t offset, double lo,
                      double hi) override;
  void random_normal(DType dt, void* out, int64_t n, uint64_t seed, uint64_t offset, double mean,
                     double stddev) override;
};

}  // namespace ember::kernels
