// Optimizer updates, fused or composed (see core/fused_ops.h). The fused kernel updates a parameter
// and its state in one pass; the composed form runs PyTorch's formulas (the ones
// kernels/optimizer_update.h writes per element) as in-place tensor ops.
#include <cmath>

#include "ember/core/fused_ops.h"
#include "ember/core/ops/internal.h"

namespace ember::fused {
using namespace detail;
using Kind = OptimizerKind;

namespace {

void sgd_composed(const OptimizerUpdate& s, Tensor& p, Tensor g, Tensor& momentum_buffer) {
  if (s.momentum != 0) {
    if (s.first_step) momentum_buffer.copy_(g);
    else momentum_buffer.mul_(s.momentum).add_(g, 1 - s.dampening);
    g = s.nesterov ? g + momentum_buffer * s.momentum : momentum_buffer;
  }
  p.add_(g, -s.lr);
}

void adam_composed(const OptimizerUpdate& s, Tensor& p, const Tensor& g, Tensor& exp_avg, Tensor& exp_avg_sq,
                   Tensor& max_exp_avg_sq) {
  const double step = static_cast<double>(s.step);
  const double bias_correction1 = 1 - std::pow(s.beta1, step);
  const double bias_correction2_sqrt = std::sqrt(1 - std::pow(s.beta2, step));
  exp_avg.mul_(s.beta1).add_(g, 1 - s.beta1);
  exp_avg_sq.mul_(s.beta2).add_(g * g, 1 - s.beta2);
  Tensor second = exp_avg_sq;
  if (s.amsgrad) {
    max_exp_avg_sq.copy_(maximum(max_exp_avg_sq, exp_avg_sq));
    second = max_exp_avg_sq;
  }
  Tensor denom = sqrt(second) / bias_correction2_sqrt + s.eps;
  p.sub_(exp_avg / denom, s.lr / bias_correction1);
}

void rmsprop_composed(const OptimizerUpdate& s, Tensor& p, const Tensor& g, Tensor& square_avg,
                      Tensor& momentum_buffer, Tensor& grad_avg) {
  square_avg.mul_(s.alpha).add_(g * g, 1 - s.alpha);
  Tensor avg;
  if (s.centered) {
    grad_avg.mul_(s.alpha).add_(g, 1 - s.alpha);
    avg = sqrt(square_avg - grad_avg * grad_avg) + s.eps;
  } else {
    avg = sqrt(square_avg) + s.eps;
  }
  if (s.momentum > 0) {
    momentum_buffer.mul_(s.momentum).add_(g / avg);
    p.add_(momentum_buffer, -s.lr);
  } else {
    p.add_(g / avg, -s.lr);
  }
}

void adagrad_composed(const OptimizerUpdate& s, Tensor& p, const Tensor& g, Tensor& sum) {
  const double lr = s.lr / (1 + static_cast<double>(s.step - 1) * s.lr_decay);
  sum.add_(g * g);
  p.sub_(g / (sqrt(sum) + s.eps), lr);
}

}  // namespace

void optimizer_update_composed(const OptimizerUpdate& s, const ParamUpdate& u) {
  autograd::NoGradGuard guard;
  Tensor p = u.param, s0 = u.state[0], s1 = u.state[1], s2 = u.state[2];
  Tensor g = s.maximize ? neg(u.grad) : u.grad;
  if (s.kind == Kind::AdamW) p.mul_(1 - s.lr * s.weight_decay);
  else if (s.weight_decay != 0) g = g + p * s.weight_decay;
  switch (s.kind) {
    case Kind::SGD: return sgd_composed(s, p, g, s0);
    case Kind::Adam:
    case Kind::AdamW: return adam_composed(s, p, g, s0, s1, s2);
    case Kind::RMSprop: return rmsprop_composed(s, p, g, s0, s1, s2);
    case Kind::Adagrad: return adagrad_composed(s, p, g, s0);
  }
}

void optimizer_update(const OptimizerUpdate& spec, std::span<const ParamUpdate> params) {
  if (params.empty()) return;
  const Tensor& first = params.front().param;
  auto* fused = fused_of(first, kernels::FusedOp::OptimizerUpdate, first.dtype());
  if (!fused) {
    for (const ParamUpdate& u : params) optimizer_update_composed(spec, u);
    return;
  }
  auto data = [](const Tensor& t) { return t.defined() ? t.data_ptr() : nullptr; };
  std::vector<kernels::UpdateTensor> run;
  run.reserve(params.size());
  for (const ParamUpdate& u : params) {
    EMBER_CHECK(u.param.is_contiguous() && u.grad.is_contiguous() && u.param.dtype() == first.dtype() &&
                    u.param.device() == first.device(),
                "optimizer_update: parameters must be compact and share one dtype and device");
    run.push_back({u.param.numel(),
                   u.param.data_ptr(),
                   u.grad.data_ptr(),
                   {data(u.state[0]), data(u.state[1]), data(u.state[2])}});
  }
  fused->optimizer_update_multi(first.dtype(), spec, run);
}

}  // namespace ember::fused
