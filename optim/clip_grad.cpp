// Gradient clipping and parameter flattening; see clip_grad.h.
#include "ember/optim/clip_grad.h"

#include <cmath>

#include "ember/autograd/grad_mode.h"

namespace ember::nn::utils {

Tensor clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, double norm_type,
                       bool error_if_nonfinite) {
  autograd::NoGradGuard guard;
  std::vector<Tensor> grads;
  for (auto& p : params)
    if (p.grad().defined()) grads.push_back(p.grad());
  if (grads.empty()) return zeros({});
  std::vector<Tensor> norms;
  for (auto& g : grads) norms.push_back(norm(g.to(kFloat64), norm_type).reshape({1}));
  Tensor all = cat(norms);
  Tensor total = std::isinf(norm_type) ? all.max() : norm(all, norm_type);
  const double t = total.item<double>();
  EMBER_CHECK(!error_if_nonfinite || std::isfinite(t), "clip_grad_norm_: the total norm of order ", norm_type,
              " of the gradients is non-finite (", t,
              "), so it cannot be clipped; pass "
              "error_if_nonfinite=false to skip this check");
  const double coef = max_norm / (t + 1e-6);
  if (coef < 1)
    for (Tensor p : params)  // a handle copy: the gradient lives in the shared TensorImpl
      if (p.grad().defined()) p.mutable_grad().mul_(coef);
  return total.to(params.front().dtype());
}

void clip_grad_value_(const std::vector<Tensor>& params, double clip_value) {
  autograd::NoGradGuard guard;
  for (Tensor p : params)
    if (p.grad().defined()) p.mutable_grad().clamp_(-clip_value, clip_value);
}

Tensor parameters_to_vector(const std::vector<Tensor>& params) {
  std::vector<Tensor> flat;
  for (auto& p : params) flat.push_back(p.reshape({-1}));
  return cat(flat);
}

void vector_to_parameters(const Tensor& vec, const std::vector<Tensor>& params) {
  int64_t total = 0;
  for (auto& p : params) total += p.numel();
  EMBER_CHECK(vec.dim() == 1 && vec.numel() == total, "vector_to_parameters: expected a 1-D tensor of ",
              total, " elements, got shape ", vec.sizes());
  autograd::NoGradGuard guard;
  int64_t offset = 0;
  for (auto p : params) {
    p.copy_(vec.narrow(0, offset, p.numel()).view(p.sizes()));
    offset += p.numel();
  }
}

}  // namespace ember::nn::utils
