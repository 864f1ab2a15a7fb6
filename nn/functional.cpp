// Stateless layers and losses as compositions of differentiable ops; see functional.h.
#include "ember/nn/functional.h"

#include "ember/autograd/engine.h"
#include "ember/autograd/grad_mode.h"
#include "ember/autograd/node.h"
#include "ember/core/autocast.h"
#include "ember/core/fused_ops.h"
#include "ember/core/trace.h"

namespace ember::nn::functional {

namespace {

Tensor reduce(const Tensor& loss, const std::string& reduction, const char* name) {
  if (reduction == "mean") return loss.mean();
  if (reduction == "sum") return loss.sum();
  if (reduction == "none") return loss;
  fail(name, ": reduction must be \"mean\", \"sum\" or \"none\", got \"", reduction, "\"");
}

void check_same_shape(const Tensor& input, const Tensor& target, const char* name) {
  EMBER_CHECK(input.sizes() == target.sizes(), name, ": input of shape ", input.sizes(),
              " and target of shape ", target.sizes(), " must have the same shape");
}

// Per-channel tensors (affine weight and bias, running statistics) must be 1-D with one value per
// channel; checked up front so a mismatch names the op, not the reshape that would fail inside it.
void check_per_channel(const char* op, const Tensor& x,
                       std::initializer_list<std::pair<const char*, Tensor>> tensors) {
  const int64_t c = x.size(1);
  for (const auto& [name, t] : tensors)
    EMBER_CHECK(!t.defined() || (t.dim() == 1 && t.size(0) == c), op, ": ", name, " of shape ",
                t.defined() ? t.sizes() : Shape{}, " does not match the ", c,
                " channels of the input of shape ", x.sizes());
}

}  // namespace

Tensor bilinear(const Tensor& x1, const Tensor& x2, const Tensor& weight, const Tensor& bias) {
  EMBER_CHECK(weight.dim() == 3 && x1.size(-1) == weight.size(1) && x2.size(-1) == weight.size(2),
              "bilinear: inputs of shapes ", x1.sizes(), " and ", x2.sizes(),
              " do not match weight of shape ", weight.sizes(), " [out, in1, in2]");
  // y[..., o] = sum_ij x1[..., i] W[o, i, j] x2[..., j]
  Shape lead(x1.sizes().begin(), x1.sizes().end() - 1);
  Tensor a = x1.reshape({-1, x1.size(-1)});
  Tensor b = x2.reshape({-1, x2.size(-1)});
  const int64_t out = weight.size(0), in1 = weight.size(1), in2 = weight.size(2);
  Tensor t = matmul(a, weight.permute({1, 0, 2}).reshape({in1, out * in2}));  // [B, out*in2]
  Tensor y = (t.view({-1, out, in2}) * b.unsqueeze(1)).sum({2});
  if (bias.defined()) y = y + bias;
  lead.push_back(out);
  return y.reshape(lead);
}

Tensor embedding(const Tensor& indices, const Tensor& weight, std::optional<int64_t> padding_idx) {
  EMBER_CHECK(indices.dtype() == kInt64 || indices.dtype() == kInt32,
              "embedding: indices must be int64 or int32, got ", dtype_name(indices.dtype()));
  Tensor out = ember::embedding(weight, indices);
  if (padding_idx && weight.requires_grad() && autograd::GradMode::is_enabled()) {
    const int64_t pad = *padding_idx < 0 ? *padding_idx + weight.size(0) : *padding_idx;
    // Same values, but rows looked up at padding_idx take their value from a detached copy, so
    // no gradient reaches weight[padding_idx].
    Tensor keep = (indices != pad).unsqueeze(-1);
    out = where(keep, out, out.detach());
  }
  return out;
}

Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight, const Tensor& bias,
                  double eps) {
  if (autocast::should_raise(x)) return layer_norm(autocast::raise(x), normalized_shape, weight, bias, eps);
  const int64_t k = static_cast<int64_t>(normalized_shape.size());
  EMBER_CHECK(k >= 1 && x.dim() >= k, "layer_norm: normalized_shape ", normalized_shape,
              " needs an input with at least ", k, " dims, got ", x.sizes());
  int64_t cols = 1;
  for (int64_t i = 0; i < k; ++i) {
    EMBER_CHECK(x.size(x.dim() - k + i) == normalized_shape[i], "layer_norm: input of shape ", x.sizes(),
                " does not end with normalized_shape ", normalized_shape);
    cols *= normalized_shape[i];
  }
  for (const Tensor* t : {&weight, &bias})
    if (t->defined())
      EMBER_CHECK(t->sizes() == normalized_shape, "layer_norm: weight/bias of shape ", t->sizes(),
                  " must have normalized_shape ", normalized_shape);
  return fused::layer_norm(x, k, weight, bias, eps);
}

Tensor group_norm(const Tensor& x, int64_t num_groups, const Tensor& weight, const Tensor& bias, double eps) {
  if (autocast::should_raise(x)) return group_norm(autocast::raise(x), num_groups, weight, bias, eps);
  EMBER_CHECK(x.dim() >= 2, "group_norm: expected an input [N, C, ...], got ", x.sizes());
  const int64_t n = x.size(0), c = x.size(1);
  EMBER_CHECK(num_groups > 0 && c % num_groups == 0, "group_norm: ", c, " channels are not divisible into ",
              num_groups, " groups");
  check_per_channel("group_norm", x, {{"weight", weight}, {"bias", bias}});
  Tensor g = x.reshape({n, num_groups, -1});
  Tensor mu = g.mean({2}, true);
  Tensor centered = g - mu;
  Tensor var = (centered * centered).mean({2}, true);
  Tensor y = (centered * rsqrt(var + eps)).reshape(x.sizes());
  Shape affine(x.dim(), 1);
  affine[1] = c;
  if (weight.defined()) y = y * weight.reshape(affine);
  if (bias.defined()) y = y + bias.reshape(affine);
  return y;
}

Tensor batch_norm(const Tensor& x, Tensor running_mean, Tensor running_var, const Tensor& weight,
                  const Tensor& bias, bool training, double momentum, double eps) {
  EMBER_CHECK(x.dim() >= 2, "batch_norm: expected an input [N, C, ...], got ", x.sizes());
  check_per_channel(
      "batch_norm", x,
      {{"weight", weight}, {"bias", bias}, {"running_mean", running_mean}, {"running_var", running_var}});
  const int64_t c = x.size(1);
  Shape affine(x.dim(), 1);
  affine[1] = c;
  if (trace::recording()) {
    const char* op = training ? "batch_norm(training=true)" : "batch_norm";
    return trace::traced(op, {x, weight, bias, running_mean, running_var}, {.floats = {{"eps", eps}}}, [&] {
      return batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps);
    });
  }
  if (!training) {
    EMBER_CHECK(running_mean.defined() && running_var.defined(),
                "batch_norm: evaluation without running statistics needs training=true");
    Tensor y = (x - running_mean.reshape(affine)) * rsqrt(running_var.reshape(affine) + eps);
    if (weight.defined()) y = y * weight.reshape(affine);
    if (bias.defined()) y = y + bias.reshape(affine);
    return y;
  }
  const int64_t count = x.numel() / std::max<int64_t>(c, 1);
  EMBER_CHECK(count > 1,
              "batch_norm: expected more than 1 value per channel when training, got "
              "input of shape ",
              x.sizes());
  fused::BatchNormOutput out = fused::batch_norm(x, weight, bias, eps);
  if (running_mean.defined()) {
    autograd::NoGradGuard guard;
    Tensor unbiased = out.var * (static_cast<double>(count) / (count - 1));
    running_mean.mul_(1 - momentum).add_(out.mean * momentum);
    running_var.mul_(1 - momentum).add_(unbiased * momentum);
  }
  return out.y;
}

Tensor mse_loss(const Tensor& input, const Tensor& target, const std::string& reduction) {
  if (autocast::should_raise(input) || autocast::should_raise(target))
    return mse_loss(autocast::raise(input), autocast::raise(target), reduction);
  check_same_shape(input, target, "mse_loss");
  Tensor d = input - target;
  return reduce(d * d, reduction, "mse_loss");
}

Tensor l1_loss(const Tensor& input, const Tensor& target, const std::string& reduction) {
  if (autocast::should_raise(input) || autocast::should_raise(target))
    return l1_loss(autocast::raise(input), autocast::raise(target), reduction);
  check_same_shape(input, target, "l1_loss");
  return reduce(abs(input - target), reduction, "l1_loss");
}

Tensor smooth_l1_loss(const Tensor& input, const Tensor& target, const std::string& reduction, double beta) {
  if (autocast::should_raise(input) || autocast::should_raise(target))
    return smooth_l1_loss(autocast::raise(input), autocast::raise(target), reduction, beta);
  check_same_shape(input, target, "smooth_l1_loss");
  Tensor d = abs(input - target);
  if (beta == 0) return reduce(d, reduction, "smooth_l1_loss");
  return reduce(where(d < beta, d * d * (0.5 / beta), d - 0.5 * beta), reduction, "smooth_l1_loss");
}

Tensor huber_loss(const Tensor& input, const Tensor& target, const std::string& reduction, double delta) {
  if (autocast::should_raise(input) || autocast::should_raise(target))
    return huber_loss(autocast::raise(input), autocast::raise(target), reduction, delta);
  check_same_shape(input, target, "huber_loss");
  Tensor d = abs(input - target);
  return reduce(where(d < delta, d * d * 0.5, (d - 0.5 * delta) * delta), reduction, "huber_loss");
}

Tensor binary_cross_entropy(const Tensor& input, const Tensor& target, const Tensor& weight,
                            const std::string& reduction) {
  if (autocast::should_raise(input) || autocast::should_raise(target))
    return binary_cross_entropy(autocast::raise(input), autocast::raise(target), weight, reduction);
  check_same_shape(input, target, "binary_cross_entropy");
  // log is clamped at -100 as PyTorch does, so p = 0 or 1 gives a finite loss.
  Tensor logp = clamp(log(input), -100.0);
  Tensor log1mp = clamp(log(1.0 - input), -100.0);
  Tensor loss = neg(target * logp + (1.0 - target) * log1mp);
  if (weight.defined()) loss = loss * weight;
  return reduce(loss, reduction, "binary_cross_entropy");
}

Tensor binary_cross_entropy_with_logits(const Tensor& input, const Tensor& target, const Tensor& weight,
                                        const std::string& reduction, const Tensor& pos_weight) {
  if (autocast::should_raise(input) || autocast::should_raise(target))
    return binary_cross_entropy_with_logits(autocast::raise(input), autocast::raise(target), weight,
                                            reduction, pos_weight);
  check_same_shape(input, target, "binary_cross_entropy_with_logits");
  // -[p t log s(x) + (1 - t) log(1 - s(x))] with log s(x) = -softplus(-x), log(1 - s(x)) = -softplus(x)
  Tensor log_sig = neg(softplus(neg(input)));
  Tensor log_one_minus = neg(softplus(input));
  Tensor pos = pos_weight.defined() ? target * pos_weight : target;
  Tensor loss = neg(pos * log_sig + (1.0 - target) * log_one_minus);
  if (weight.defined()) loss = loss * weight;
  return reduce(loss, reduction, "binary_cross_entropy_with_logits");
}

Tensor kl_div(const Tensor& input, const Tensor& target, const std::string& reduction, bool log_target) {
  if (autocast::should_raise(input) || autocast::should_raise(target))
    return kl_div(autocast::raise(input), autocast::raise(target), reduction, log_target);
  check_same_shape(input, target, "kl_div");
  Tensor loss = log_target
                    ? exp(target) * (target - input)
                    : where(target > 0, target * (log(where(target > 0, target, ones_like(target))) - input),
                            zeros_like(input * target));
  if (reduction == "batchmean") return loss.sum() / static_cast<double>(input.dim() ? input.size(0) : 1);
  return reduce(loss, reduction, "kl_div");
}

namespace {

// Moves the class dim (1) last and flattens: [M, C] logits/log-probs and [M] targets.
std::pair<Tensor, Tensor> flatten_classes(const Tensor& input, const Tensor& target, const char* name) {
  if (input.dim() == 1) return {input.unsqueeze(0), target.reshape({1})};
  EMBER_CHECK(input.dim() >= 2, name, ": input must have a class dim, got shape ", input.sizes());
  Shape expect = input.sizes();
  expect.erase(expect.begin() + 1);
  EMBER_CHECK(target.sizes() == expect, name, ": target of shape ", target.sizes(),
              " does not match input of shape ", input.sizes(), " (expected target shape ", expect, ")");
  Tensor x = input;
  if (input.dim() > 2) {
    Shape order = {0};
    for (int64_t d = 2; d < input.dim(); ++d) order.push_back(d);
    order.push_back(1);
    x = input.permute(order);
  }
  return {x.reshape({-1, input.size(1)}), target.reshape({-1})};
}

// Checked class-index targets: `safe` has ignored entries replaced by class 0 (so gather/scatter
// stay in bounds), `w` the per-entry weight, zero where ignored. Class weights are not trained,
// as in PyTorch, so this runs outside autograd.
struct ClassTargets {
  Tensor safe, w;
};

ClassTargets class_targets(const Tensor& target, int64_t c, const Tensor& weight, int64_t ignore_index,
                           DType dtype, const char* name) {
  EMBER_CHECK(target.dtype() == kInt64 || target.dtype() == kInt32, name,
              ": class-index target must be int64, got ", dtype_name(target.dtype()));
  if (weight.defined())
    EMBER_CHECK(weight.dim() == 1 && weight.size(0) == c, name, ": weight of shape ", weight.sizes(),
                " does not match ", c, " classes");
  autograd::NoGradGuard guard;
  Tensor t = target.to(kInt64);
  Tensor keep = t != ignore_index;
  Tensor safe = where(keep, t, zeros_like(t));
  if (safe.numel() > 0) {
    const int64_t lo = safe.min().item<int64_t>(), hi = safe.max().item<int64_t>();
    EMBER_CHECK(lo >= 0 && hi < c, name, ": target ", lo < 0 ? lo : hi, " is out of bounds for ", c,
                " classes");
  }
  Tensor w = weight.defined() ? index_select(weight.to(dtype), 0, safe)
                              : ones({safe.numel()}, TensorOptions(dtype).set_device(target.device()));
  return {safe, w * keep.to(dtype)};
}

// Per-element NLL (already weighted and zeroed where ignored) and the per-element weights.
std::pair<Tensor, Tensor> nll_terms(const Tensor& logp, const Tensor& target, const Tensor& weight,
                                    int64_t ignore_index, const char* name) {
  auto [safe, w] = class_targets(target, logp.size(1), weight, ignore_index, logp.dtype(), name);
  return {neg(gather(logp, 1, safe.unsqueeze(1)).squeeze(1)) * w, w};
}

// Cross-entropy with class indices through core's fused op (one pass per row forward and backward
// where the backend has the kernel). Returns the per-row losses (zero where ignored) and the per-row
// weights.
std::pair<Tensor, Tensor> fused_cross_entropy_rows(const Tensor& logits, const Tensor& target,
                                                   const Tensor& weight, int64_t ignore_index) {
  if (is_half(logits.dtype())) {  // 16-bit logits: computed in float32, returned in their dtype
    auto [loss, w] = fused_cross_entropy_rows(logits.to(kFloat32), target, weight, ignore_index);
    return {loss.to(logits.dtype()), w.to(logits.dtype())};
  }
  auto [safe, w] =
      class_targets(target, logits.size(1), weight, ignore_index, logits.dtype(), "cross_entropy");
  return {fused::cross_entropy(logits, safe, w), w};
}

}  // namespace

Tensor nll_loss(const Tensor& input, const Tensor& target, const Tensor& weight, int64_t ignore_index,
                const std::string& reduction) {
  if (autocast::should_raise(input))
    return nll_loss(autocast::raise(input), target, weight, ignore_index, reduction);
  auto [logp, t] = flatten_classes(input, target, "nll_loss");
  auto [loss, w] = nll_terms(logp, t, weight, ignore_index, "nll_loss");
  if (reduction == "mean") return loss.sum() / w.sum();
  if (reduction == "sum") return loss.sum();
  EMBER_CHECK(reduction == "none", "nll_loss: unknown reduction \"", reduction, "\"");
  return input.dim() == 1 ? loss.squeeze(0) : loss.reshape(target.sizes());
}

Tensor cross_entropy(const Tensor& input, const Tensor& target, const Tensor& weight, int64_t ignore_index,
                     const std::string& reduction, double label_smoothing) {
  if (autocast::should_raise(input))
    return cross_entropy(autocast::raise(input), target, weight, ignore_index, reduction, label_smoothing);
  EMBER_CHECK(label_smoothing >= 0 && label_smoothing <= 1,
              "cross_entropy: label_smoothing must be in [0, 1], got ", label_smoothing);
  EMBER_CHECK(reduction == "mean" || reduction == "sum" || reduction == "none",
              "cross_entropy: unknown reduction \"", reduction, "\"");
  const int64_t class_dim = input.dim() == 1 ? 0 : 1;
  const int64_t c = input.size(class_dim);
  if (is_floating(target.dtype())) {
    Tensor logp_full = log_softmax(input, class_dim);
    // Class probabilities: -sum_c w_c * q_c * log p_c, q smoothed towards uniform.
    check_same_shape(input, target, "cross_entropy");
    Tensor q = label_smoothing > 0 ? target * (1 - label_smoothing) + label_smoothing / c : target;
    Tensor terms = logp_full * q;
    if (weight.defined()) {
      Shape shape(input.dim(), 1);
      shape[class_dim] = c;
      terms = terms * weight.reshape(shape);
    }
    Tensor loss = neg(terms.sum({class_dim}));
    if (reduction == "mean") return loss.sum() / static_cast<double>(input.dim() == 1 ? 1 : loss.numel());
    return reduction == "sum" ? loss.sum() : loss;
  }
  auto finish = [&](const Tensor& per_elem) {
    return input.dim() == 1 ? per_elem.squeeze(0) : per_elem.reshape(target.sizes());
  };
  if (label_smoothing == 0) {
    auto [x2, t2] = flatten_classes(input, target, "cross_entropy");
    auto [nll, w] = fused_cross_entropy_rows(x2, t2, weight, ignore_index);
    if (reduction == "mean") return nll.sum() / w.sum();
    return reduction == "sum" ? nll.sum() : finish(nll);
  }
  auto [logp, t] = flatten_classes(log_softmax(input, class_dim), target, "cross_entropy");
  auto [nll, w] = nll_terms(logp, t, weight, ignore_index, "cross_entropy");
  Tensor nll_red = reduction == "mean" ? nll.sum() / w.sum() : reduction == "sum" ? nll.sum() : finish(nll);
  // Smoothing term: -sum_c w_c log p_c per element, zero where ignored.
  Tensor lp = weight.defined() ? logp * weight.unsqueeze(0) : logp;
  Tensor keep = (t.to(kInt64) != ignore_index).to(lp.dtype());
  Tensor smooth = neg(lp.sum({1})) * keep;
  Tensor smooth_red = reduction == "mean"  ? smooth.sum() / w.sum()
                      : reduction == "sum" ? smooth.sum()
                                           : finish(smooth);
  return nll_red * (1 - label_smoothing) + smooth_red * (label_smoothing / c);
}

}  // namespace ember::nn::functional
