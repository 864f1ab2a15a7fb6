// Ops that a backend may run as one fused kernel (kernels/fused.h). Each function here asks the
// tensor's backend whether it has the kernel for the dtype; if so it runs it and records the fused
// backward, otherwise it runs the composed form: the same math from core ops, which any backend with
// the 23 primitives can run and autograd differentiates by itself. The composed form also serves
// backward with create_graph (a fused backward is not itself differentiable) and is what the tests
// compare every fused kernel with.
//
// nn/ and optim/ reach the fused kernels only through these functions.
#pragma once
#include <span>

#include "ember/core/ops.h"
#include "ember/core/tensor.h"
#include "ember/kernels/fused.h"

namespace ember::fused {

// softmax(q k^T * scale + mask) v over the last two dims ([..., L, E], [..., S, E], [..., S, Ev]),
// the batch dims broadcast; `mask` (optional, float) is added to the scores and broadcasts to
// [..., L, S]; causal drops the keys after each query. q, k, v: one floating dtype.
Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask, double scale,
                 bool is_causal);
// The same from matmul and softmax, always (what the fused kernel is checked against).
Tensor attention_composed(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask, double scale,
                          bool is_causal);

// Layer normalisation over the last `normalized_dims` dims of x, with optional affine weight and
// bias shaped like those dims.
Tensor layer_norm(const Tensor& x, int64_t normalized_dims, const Tensor& weight, const Tensor& bias,
                  double eps);
Tensor layer_norm_composed(const Tensor& x, int64_t normalized_dims, const Tensor& weight, const Tensor& bias,
                           double eps);

// Per-row cross-entropy of [rows, classes] logits: loss[i] = row_weight[i] * (logsumexp(x[i]) -
// x[i, target[i]]). target is int64 and in range; row_weight has the logits' dtype.
Tensor cross_entropy(const Tensor& logits, const Tensor& target, const Tensor& row_weight);
Tensor cross_entropy_composed(const Tensor& logits, const Tensor& target, const Tensor& row_weight);

// Training-mode batch normalisation of x [N, C, ...] over every dim but 1, with optional affine
// weight and bias [C]: y, and the batch's mean and biased variance ([C], outside the graph) for the
// running statistics. The form without the fused kernel is built from core ops with a closed-form
// backward node (it rounds far less than differentiating the statistics op by op).
struct BatchNormOutput {
  Tensor y, mean, var;
};
BatchNormOutput batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps);
// The same from differentiable ops only: what create_graph differentiates.
BatchNormOutput batch_norm_composed(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps);

// Max pooling of x [N, C, H, W] (PyTorch's max_pool2d_with_indices): the largest value of each
// window and its position h * W + w in its plane (int64). Padding never wins; ceil_mode rounds the
// output size up (window_output_size).
struct MaxPoolOutput {
  Tensor values, indices;
};
MaxPoolOutput max_pool2d(const Tensor& x, Pair kernel, Pair stride, Pair padding, Pair dilation,
                         bool ceil_mode);
MaxPoolOutput max_pool2d_composed(const Tensor& x, Pair kernel, Pair stride, Pair padding, Pair dilation,
                                  bool ceil_mode);

// 2-D convolution of x [N, C, H, W] with weight [O, C/groups, kh, kw] and optional bias [O]
// (PyTorch's conv2d; the arguments already checked by the caller). The fused kernel takes one
// group; grouped convolutions always run composed.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, Pair stride, Pair padding,
              Pair dilation, int64_t groups);
// The same as unfold and a batched matmul.
Tensor conv2d_composed(const Tensor& x, const Tensor& weight, const Tensor& bias, Pair stride, Pair padding,
                       Pair dilation, int64_t groups);

// One optimizer step over parameters that share a device, a dtype and the settings `spec`
// (PyTorch's formulas, kernels/optimizer_update.h). Every tensor is compact and shaped like its
// parameter; the state tensors a kind does not use are undefined. Updates in place, no autograd.
using OptimizerKind = kernels::OptimizerKind;
using OptimizerUpdate = kernels::UpdateSpec;
struct ParamUpdate {
  Tensor param, grad;
  Tensor state[3];
};
void optimizer_update(const OptimizerUpdate& spec, std::span<const ParamUpdate> params);
void optimizer_update_composed(const OptimizerUpdate& spec, const ParamUpdate& p);

}  // namespace ember::fused
