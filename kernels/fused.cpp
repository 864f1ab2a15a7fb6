// The fused interface's defaults: a backend overrides the kernels it has and answers `supports`
// for them; reaching a default means a caller skipped that question, which is a bug in ember.
#include "ember/kernels/fused.h"

#include "ember/core/error.h"

namespace ember::kernels {

const char* fused_op_name(FusedOp op) {
  switch (op) {
    case FusedOp::Softmax: return "softmax";
    case FusedOp::Im2Col: return "im2col";
    case FusedOp::Col2Im: return "col2im";
    case FusedOp::Attention: return "attention";
    case FusedOp::LayerNorm: return "layer_norm";
    case FusedOp::CrossEntropy: return "cross_entropy";
    case FusedOp::OptimizerUpdate: return "optimizer_update";
    case FusedOp::BatchNorm: return "batch_norm";
    case FusedOp::MaxPool2d: return "max_pool2d";
    case FusedOp::Conv2d: return "conv2d";
  }
  return "?";
}

namespace {
[[noreturn]] void missing(FusedOp op) {
  fail("fused kernels: this backend has no fused ", fused_op_name(op),
       " kernel (callers must ask supports() and run the composed form otherwise)");
}
}  // namespace

void FusedKernels::softmax(DType, const void*, void*, int64_t, int64_t, bool) { missing(FusedOp::Softmax); }
void FusedKernels::im2col(DType, const void*, void*, const WindowGeometry&, int64_t) {
  missing(FusedOp::Im2Col);
}
void FusedKernels::col2im(DType, const void*, void*, const WindowGeometry&, int64_t) {
  missing(FusedOp::Col2Im);
}
void FusedKernels::attention_forward(DType, const AttentionShape&, const void*, const void*, const void*,
                                     const void*, Dims, void*, void*) {
  missing(FusedOp::Attention);
}
void FusedKernels::attention_backward(DType, const AttentionShape&, const void*, const void*, const void*,
                                      const void*, Dims, const void*, const void*, const void*, void*, void*,
                                      void*) {
  missing(FusedOp::Attention);
}
void FusedKernels::layer_norm_forward(DType, const void*, const void*, const void*, int64_t, int64_t, double,
                                      void*, void*, void*) {
  missing(FusedOp::LayerNorm);
}
void FusedKernels::layer_norm_backward(DType, const void*, const void*, const void*, const void*, const void*,
                                       int64_t, int64_t, void*, void*, void*) {
  missing(FusedOp::LayerNorm);
}
void FusedKernels::batch_norm_forward(DType, const void*, const void*, const void*, int64_t, int64_t, int64_t,
                                      double, void*, void*, void*, void*) {
  missing(FusedOp::BatchNorm);
}
void FusedKernels::batch_norm_backward(DType, const void*, const void*, const void*, const void*, const void*,
                                       int64_t, int64_t, int64_t, void*, void*, void*) {
  missing(FusedOp::BatchNorm);
}
void FusedKernels::max_pool2d_forward(DType, const void*, const WindowGeometry&, int64_t, void*, int64_t*) {
  missing(FusedOp::MaxPool2d);
}
void FusedKernels::max_pool2d_backward(DType, const void*, const int64_t*, const WindowGeometry&, int64_t,
                                       void*) {
  missing(FusedOp::MaxPool2d);
}
void FusedKernels::conv2d_forward(DType, const void*, const void*, const void*, const WindowGeometry&,
                                  int64_t, int64_t, void*) {
  missing(FusedOp::Conv2d);
}
void FusedKernels::conv2d_backward_input(DType, const void*, const void*, const WindowGeometry&, int64_t,
                                         int64_t, void*) {
  missing(FusedOp::Conv2d);
}
void FusedKernels::conv2d_backward_weight(DType, const void*, const void*, const WindowGeometry&, int64_t,
                                          int64_t, void*, void*) {
  missing(FusedOp::Conv2d);
}
void FusedKernels::cross_entropy_forward(DType, const void*, const int64_t*, const void*, int64_t, int64_t,
                                         void*, void*) {
  missing(FusedOp::CrossEntropy);
}
void FusedKernels::cross_entropy_backward(DType, const void*, const int64_t*, const void*, const void*,
                                          const void*, int64_t, int64_t, void*) {
  missing(FusedOp::CrossEntropy);
}
void FusedKernels::optimizer_update(DType, const UpdateSpec&, int64_t, void*, const void*, void*, void*,
                                    void*) {
  missing(FusedOp::OptimizerUpdate);
}
void FusedKernels::optimizer_update_multi(DType dt, const UpdateSpec& spec,
                                          std::span<const UpdateTensor> tensors) {
  for (const UpdateTensor& t : tensors)
    optimizer_update(dt, spec, t.n, t.param, t.grad, t.state[0], t.state[1], t.state[2]);
}

}  // namespace ember::kernels
