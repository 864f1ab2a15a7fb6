// nn::functional: the stateless forms of the layers and losses (PyTorch's torch.nn.functional).
// Each is built from differentiable ember ops, so gradients (and double backward) come for free;
// the ones that decide training speed get fused kernels later behind the same signatures.
#pragma once
#include <optional>
#include <string>

#include "ember/core/ops.h"

namespace ember::nn::functional {

using ember::dropout;
using ember::gelu;
using ember::leaky_relu;
using ember::linear;
using ember::log_softmax;
using ember::one_hot;
using ember::relu;
using ember::sigmoid;
using ember::silu;
using ember::softmax;
using ember::softplus;
using ember::tanh;

Tensor bilinear(const Tensor& x1, const Tensor& x2, const Tensor& weight, const Tensor& bias = {});
// padding_idx: rows looked up at that index get no gradient (negative counts from the end).
Tensor embedding(const Tensor& indices, const Tensor& weight,
                 std::optional<int64_t> padding_idx = std::nullopt);
Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight = {},
                  const Tensor& bias = {}, double eps = 1e-5);
Tensor group_norm(const Tensor& x, int64_t num_groups, const Tensor& weight = {}, const Tensor& bias = {},
                  double eps = 1e-5);
// Normalises over every dim but 1 (channels). In training, batch statistics are used and the running
// ones (when given) are updated: running = (1 - momentum) * running + momentum * batch, with the
// unbiased batch variance; momentum nullopt means a cumulative average (factor given by caller).
Tensor batch_norm(const Tensor& x, Tensor running_mean, Tensor running_var, const Tensor& weight,
                  const Tensor& bias, bool training, double momentum = 0.1, double eps = 1e-5);

// ---- losses; reduction is "mean" (default), "sum" or "none" ----------------------------------
Tensor mse_loss(const Tensor& input, const Tensor& target, const std::string& reduction = "mean");
Tensor l1_loss(const Tensor& input, const Tensor& target, const std::string& reduction = "mean");
Tensor smooth_l1_loss(const Tensor& input, const Tensor& target, const std::string& reduction = "mean",
                      double beta = 1.0);
Tensor huber_loss(const Tensor& input, const Tensor& target, const std::string& reduction = "mean",
                  double delta = 1.0);
Tensor binary_cross_entropy(const Tensor& input, const Tensor& target, const Tensor& weight = {},
                            const std::string& reduction = "mean");
Tensor binary_cross_entropy_with_logits(const Tensor& input, const Tensor& target, const Tensor& weight = {},
                                        const std::string& reduction = "mean", const Tensor& pos_weight = {});
Tensor kl_div(const Tensor& input, const Tensor& target, const std::string& reduction = "mean",
              bool log_target = false);
// input: log-probabilities [N, C] or [N, C, d1, ...]; target: int64 class indices [N] / [N, d1, ...].
Tensor nll_loss(const Tensor& input, const Tensor& target, const Tensor& weight = {},
                int64_t ignore_index = -100, const std::string& reduction = "mean");
// input: logits [N, C] or [N, C, d1, ...] (or [C]); target: class indices (int64) or class
// probabilities (floating, same shape as input).
Tensor cross_entropy(const Tensor& input, const Tensor& target, const Tensor& weight = {},
                     int64_t ignore_index = -100, const std::string& reduction = "mean",
                     double label_smoothing = 0.0);

}  // namespace ember::nn::functional

namespace ember::nn::functional {

// ---- convolution and pooling (nn/conv.cpp, nn/pooling.cpp) -------------------------------------
// Built from unfold (im2col) + matmul, so their gradients (and double backward) come from those.
// padding: explicit (h, w) here; the modules also accept "same" and "valid".
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = {}, Pair stride = {1, 1},
              Pair padding = {0, 0}, Pair dilation = {1, 1}, int64_t groups = 1);
Tensor conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias = {}, int64_t stride = 1,
              int64_t padding = 0, int64_t dilation = 1, int64_t groups = 1);
Tensor conv_transpose2d(const Tensor& x, const Tensor& weight, const Tensor& bias = {}, Pair stride = {1, 1},
                        Pair padding = {0, 0}, Pair output_padding = {0, 0}, int64_t groups = 1,
                        Pair dilation = {1, 1});
// Pooling as in PyTorch: stride defaults to the kernel; padding is at most half the kernel and
// never the max; ceil_mode rounds the output size up (the last window may hang past the input, as
// long as it starts inside it or its left/top padding).
Tensor max_pool2d(const Tensor& x, Pair kernel, std::optional<Pair> stride = std::nullopt,
                  Pair padding = {0, 0}, Pair dilation = {1, 1}, bool ceil_mode = false);
// Also the position of each maximum in its [H, W] plane (int64, h * W + w), for max_unpool.
std::pair<Tensor, Tensor> max_pool2d_with_indices(const Tensor& x, Pair kernel,
                                                  std::optional<Pair> stride = std::nullopt,
                                                  Pair padding = {0, 0}, Pair dilation = {1, 1},
                                                  bool ceil_mode = false);
// The average over each window; count_include_pad counts the zero padding in the divisor (never
// the part of a ceil_mode window past the padding).
Tensor avg_pool2d(const Tensor& x, Pair kernel, std::optional<Pair> stride = std::nullopt,
                  Pair padding = {0, 0}, bool ceil_mode = false, bool count_include_pad = true);
Tensor adaptive_avg_pool2d(const Tensor& x, Pair output_size);

}  // namespace ember::nn::functional

namespace ember::nn::functional {

// ---- attention (nn/attention.cpp) ---------------------------------------------------------------
// softmax(q k^T * scale + mask) v over the last two dims, q [..., L, E], k [..., S, E], v [..., S, Ev].
// attn_mask: bool (true = may attend, SDPA's convention) or float (added to the scores), broadcast
// to [..., L, S]; is_causal masks keys after the query position; scale defaults to 1/sqrt(E).
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const Tensor& attn_mask = {}, double dropout_p = 0.0,
                                    bool is_causal = false, std::optional<double> scale = std::nullopt);

}  // namespace ember::nn::functional
