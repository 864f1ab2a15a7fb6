// Normalisation layers; see normalization.h.
#include "ember/nn/normalization.h"

#include <sstream>

#include "ember/autograd/grad_mode.h"
#include "ember/nn/functional.h"

namespace ember::nn {

static std::string number(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

LayerNorm::LayerNorm(Shape shape, double eps_, bool affine, bool with_bias)
    : Module("LayerNorm"), normalized_shape(std::move(shape)), eps(eps_), elementwise_affine(affine) {
  if (affine) {
    weight = register_parameter("weight", ones(normalized_shape));
    if (with_bias) bias = register_parameter("bias", zeros(normalized_shape));
  }
}

Tensor LayerNorm::forward(const Tensor& x) {
  return functional::layer_norm(x, normalized_shape, weight, bias, eps);
}

std::string LayerNorm::extra_repr() const {
  std::string s = "(";
  for (size_t i = 0; i < normalized_shape.size(); ++i)
    s += (i ? ", " : "") + std::to_string(normalized_shape[i]);
  if (normalized_shape.size() == 1) s += ",";
  return s + "), eps=" + number(eps) + ", elementwise_affine=" + (elementwise_affine ? "True" : "False");
}

GroupNorm::GroupNorm(int64_t groups, int64_t channels, double eps_, bool affine_)
    : Module("GroupNorm"), num_groups(groups), num_channels(channels), eps(eps_), affine(affine_) {
  EMBER_CHECK(groups > 0 && channels % groups == 0, "GroupNorm: num_channels (", channels,
              ") must be divisible by num_groups (", groups, ")");
  if (affine) {
    weight = register_parameter("weight", ones({channels}));
    bias = register_parameter("bias", zeros({channels}));
  }
}

Tensor GroupNorm::forward(const Tensor& x) {
  EMBER_CHECK(x.dim() >= 2 && x.size(1) == num_channels, "GroupNorm(num_channels=", num_channels,
              "): input of shape ", x.sizes(), " has the wrong number of channels");
  return functional::group_norm(x, num_groups, weight, bias, eps);
}

std::string GroupNorm::extra_repr() const {
  return std::to_string(num_groups) + ", " + std::to_string(num_channels) + ", eps=" + number(eps) +
         ", affine=" + (affine ? "True" : "False");
}

BatchNorm::BatchNorm(const char* type_name, int64_t features, double eps_, std::optional<double> momentum_,
                     bool affine_, bool track)
    : Module(type_name),
      num_features(features),
      eps(eps_),
      momentum(momentum_),
      affine(affine_),
      track_running_stats(track) {
  if (affine) {
    weight = register_parameter("weight", ones({features}));
    bias = register_parameter("bias", zeros({features}));
  }
  if (track) {
    running_mean = register_buffer("running_mean", zeros({features}));
    running_var = register_buffer("running_var", ones({features}));
    num_batches_tracked = register_buffer("num_batches_tracked", zeros({}, kInt64));
  }
}

void BatchNorm::reset_running_stats() {
  if (!track_running_stats) return;
  autograd::NoGradGuard guard;
  running_mean.zero_();
  running_var.fill_(1);
  num_batches_tracked.zero_();
}

Tensor BatchNorm::forward(const Tensor& x) {
  check_input(x);
  EMBER_CHECK(x.size(1) == num_features, type_name(), "(num_features=", num_features, "): input of shape ",
              x.sizes(), " has ", x.size(1), " channels in dim 1");
  if (reduce_stats && is_training()) return forward_synced(x);
  const bool use_batch_stats = is_training() || !track_running_stats;
  double factor = momentum.value_or(0.0);
  if (is_training() && track_running_stats) {
    autograd::NoGradGuard guard;
    num_batches_tracked.add_(1);
    if (!momentum) factor = 1.0 / static_cast<double>(num_batches_tracked.item<int64_t>());
  }
  const bool update = is_training() && track_running_stats;
  return functional::batch_norm(x, update || !use_batch_stats ? running_mean : Tensor(),
                                update || !use_batch_stats ? running_var : Tensor(), weight, bias,
                                use_batch_stats, factor, eps);
}

// Batch statistics over every process: per-channel sums, sums of squares and the count go through
// reduce_stats in one piece, then mean and biased variance normalise as usual.
Tensor BatchNorm::forward_synced(const Tensor& x) {
  Shape dims, view(x.dim(), 1);
  for (int64_t d = 0; d < x.dim(); ++d)
    if (d != 1) dims.push_back(d);
  view[1] = num_features;
  const int64_t c = num_features;
  const double local_count = static_cast<double>(x.numel() / c);
  Tensor stats = reduce_stats(cat({x.sum(dims), (x * x).sum(dims), full({1}, local_count, x.dtype())}));
  Tensor count = stats.slice(0, 2 * c, 2 * c + 1);
  Tensor mean = stats.slice(0, 0, c) / count;
  Tensor var = stats.slice(0, c, 2 * c) / count - mean * mean;
  if (track_running_stats) {
    autograd::NoGradGuard no_grad;
    num_batches_tracked.add_(1);
    const double m = momentum ? *momentum : 1.0 / static_cast<double>(num_batches_tracked.item<int64_t>());
    const double n = count.item<double>();
    running_mean.mul_(1 - m).add_(mean.detach() * m);
    running_var.mul_(1 - m).add_(var.detach() * (m * n / std::max(n - 1, 1.0)));  // unbiased, as PyTorch
  }
  Tensor y = (x - mean.reshape(view)) * (var.reshape(view) + eps).rsqrt();
  if (affine) y = y * weight.reshape(view) + bias.reshape(view);
  return y;
}

std::string BatchNorm::extra_repr() const {
  return std::to_string(num_features) + ", eps=" + number(eps) +
         ", momentum=" + (momentum ? number(*momentum) : "None") + ", affine=" + (affine ? "True" : "False") +
         ", track_running_stats=" + (track_running_stats ? "True" : "False");
}

void BatchNorm1d::check_input(const Tensor& x) const {
  EMBER_CHECK(x.dim() == 2 || x.dim() == 3, "BatchNorm1d: expected 2D or 3D input, got shape ", x.sizes());
}

void BatchNorm2d::check_input(const Tensor& x) const {
  EMBER_CHECK(x.dim() == 4, "BatchNorm2d: expected 4D input [N, C, H, W], got shape ", x.sizes());
}

}  // namespace ember::nn
