// Layer normalisation, fused or composed (see core/fused_ops.h). The fused forward makes one pass per
// row and keeps its mean and 1/std; the fused backward reads them back.
#include <algorithm>

#include "ember/autograd/engine.h"
#include "ember/core/fused_ops.h"
#include "ember/core/ops/internal.h"
#include "ember/core/trace.h"

namespace ember::fused {
using namespace detail;

Tensor layer_norm_composed(const Tensor& x, int64_t k, const Tensor& weight, const Tensor& bias, double eps) {
  Shape dims;
  for (int64_t i = x.dim() - k; i < x.dim(); ++i) dims.push_back(i);
  Tensor mu = x.mean(dims, true);
  Tensor centered = x - mu;
  Tensor var = (centered * centered).mean(dims, true);
  Tensor y = centered * rsqrt(var + eps);
  if (weight.defined()) y = y * weight;
  if (bias.defined()) y = y + bias;
  return y;
}

Tensor layer_norm(const Tensor& x, int64_t k, const Tensor& weight, const Tensor& bias, double eps) {
  if (trace::recording())
    return trace::traced("layer_norm", {x, weight, bias},
                         {.ints = {{"normalized_dims", {k}}}, .floats = {{"eps", eps}}},
                         [&] { return layer_norm(x, k, weight, bias, eps); });
  int64_t cols = 1;
  for (int64_t i = x.dim() - k; i < x.dim(); ++i) cols *= x.size(i);
  auto* fused = fused_of(x, kernels::FusedOp::LayerNorm, x.dtype());
  const bool fusable = fused && (!weight.defined() || weight.dtype() == x.dtype()) &&
                       (!bias.defined() || bias.dtype() == x.dtype()) && cols > 0;
  if (!fusable) return layer_norm_composed(x, k, weight, bias, eps);
  const int64_t rows = x.numel() / cols;
  Tensor xc, wc, bc, y, mean, rstd;
  {
    autograd::NoGradGuard guard;
    xc = x.contiguous();
    wc = weight.defined() ? weight.contiguous() : Tensor();
    bc = bias.defined() ? bias.contiguous() : Tensor();
    y = empty(x.sizes(), x.options());
    mean = empty({rows}, x.options());
    rstd = empty({rows}, x.options());
    fused->layer_norm_forward(x.dtype(), xc.data_ptr(), wc.defined() ? wc.data_ptr() : nullptr,
                              bc.defined() ? bc.data_ptr() : nullptr, rows, cols, eps, y.data_ptr(),
                              mean.data_ptr(), rstd.data_ptr());
  }
  autograd::record("layer_norm", {x, weight, bias}, {y}, {xc, wc, mean, rstd, x, weight, bias},
                   [k, eps, rows, cols](FunctionNode& n, const variable_list& g) -> variable_list {
                     auto* fused = fused_of(n.saved(0), kernels::FusedOp::LayerNorm, n.saved(0).dtype());
                     if (autograd::GradMode::is_enabled() || !fused) {
                       // create_graph (or a backend swapped since the forward): differentiate the composed
                       // formula in terms of the original inputs.
                       Tensor x0 = n.saved(4), w0 = n.saved(5), b0 = n.saved(6);
                       Tensor out = layer_norm_composed(x0, k, w0, b0, eps);
                       return autograd::grad_aligned(out, {x0, w0, b0}, g[0], true);
                     }
                     Tensor xc = n.saved(0), wc = n.saved(1), mean = n.saved(2), rstd = n.saved(3);
                     Tensor dy = g[0].contiguous();
                     Tensor dx = empty(xc.sizes(), xc.options());
                     Tensor dw, db;
                     if (n.needs_input_grad(1)) dw = empty(wc.sizes(), xc.options());
                     if (n.needs_input_grad(2)) db = empty({cols}, xc.options());
                     fused->layer_norm_backward(
                         xc.dtype(), xc.data_ptr(), wc.defined() ? wc.data_ptr() : nullptr, mean.data_ptr(),
                         rstd.data_ptr(), dy.data_ptr(), rows, cols, dx.data_ptr(),
                         dw.defined() ? dw.data_ptr() : nullptr, db.defined() ? db.data_ptr() : nullptr);
                     return {dx, dw, db.defined() ? db.view(n.input_shape(2)) : db};
                   });
  return y;
}

}  // namespace ember::fused
