// Training-mode batch normalisation, fused or composed (see core/fused_ops.h). The fused forward
// takes each channel's statistics in two passes and normalises in a third; its backward makes two
// more. Without the kernel, the statistics come from core ops (shifted, see batch_stats) and one
// graph node carries the closed-form backward
//   dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)),  dxhat = dy * w,
// which rounds far less than differentiating the statistics op by op.
#include "ember/autograd/engine.h"
#include "ember/core/fused_ops.h"
#include "ember/core/ops/internal.h"

namespace ember::fused {
using namespace detail;

namespace {

struct Layout {
  Shape dims;    // every dim but 1
  Shape affine;  // [1, C, 1, ...]: a per-channel tensor broadcast against x
  int64_t n, c, s;
};
Layout layout_of(const Tensor& x) {
  Layout l{{0}, Shape(x.dim(), 1), x.size(0), x.size(1), 1};
  for (int64_t d = 2; d < x.dim(); ++d) {
    l.dims.push_back(d);
    l.s *= x.size(d);
  }
  l.affine[1] = l.c;
  return l;
}

// Batch statistics over every dim but 1, shifted two-level: x - mean is exact in float
// (Sterbenz), but the mean itself is rounded to the input's precision, and for a channel far from
// zero that rounding shifts every normalised value alike. The mean of the centred values recovers
// it, so the result is as close to the float64 one as the input allows (tests/test_accuracy.cpp).
struct BatchStats {
  Tensor mean, var, centered;  // mean and biased var keep dims ([1, C, 1, ...])
};
BatchStats batch_stats(const Tensor& x, const Shape& dims) {
  Tensor rough = x.mean(dims, true);
  Tensor shifted = x - rough;
  Tensor residual = shifted.mean(dims, true);
  Tensor centered = shifted - residual;
  return {rough + residual, (centered * centered).mean(dims, true), centered};
}

Tensor affine_of(Tensor y, const Tensor& weight, const Tensor& bias, const Shape& affine) {
  if (weight.defined()) y = y * weight.reshape(affine);
  if (bias.defined()) y = y + bias.reshape(affine);
  return y;
}

// The create_graph backward: differentiate the composed form in terms of the original inputs.
variable_list composed_backward(const Tensor& x0, const Tensor& w0, const Tensor& b0, double eps,
                                const Tensor& grad) {
  Tensor out = batch_norm_composed(x0, w0, b0, eps).y;
  return autograd::grad_aligned(out, {x0, w0, b0}, grad, true);
}

BatchNormOutput batch_norm_closed_form(const Tensor& x, const Tensor& weight, const Tensor& bias,
                                       double eps) {
  const Layout l = layout_of(x);
  Tensor xhat, rstd, y, mean, var;
  {
    autograd::NoGradGuard guard;
    BatchStats st = batch_stats(x, l.dims);
    // 1/sqrt(var + eps) of the few channel values in double: one rounding instead of three.
    rstd = rsqrt(st.var.to(kFloat64) + eps).to(x.dtype());
    xhat = st.centered * rstd;
    y = affine_of(xhat, weight, bias, l.affine);
    mean = st.mean.reshape({l.c});
    var = st.var.reshape({l.c});
  }
  autograd::record("batch_norm", {x, weight, bias}, {y}, {xhat, rstd, x, weight, bias},
                   [l, eps](FunctionNode& n, const variable_list& g) -> variable_list {
                     if (autograd::GradMode::is_enabled())
                       return composed_backward(n.saved(2), n.saved(3), n.saved(4), eps, g[0]);
                     Tensor xhat = n.saved(0), rstd = n.saved(1), w = n.saved(3);
                     const Tensor& dy = g[0];
                     Tensor dxhat = w.defined() ? dy * w.reshape(l.affine) : dy;
                     Tensor dx, dw, db;
                     if (n.needs_input_grad(0))
                       dx = (dxhat - dxhat.mean(l.dims, true) - xhat * (dxhat * xhat).mean(l.dims, true)) *
                            rstd;
                     if (n.needs_input_grad(1)) dw = (dy * xhat).sum(l.dims).reshape(n.input_shape(1));
                     if (n.needs_input_grad(2)) db = dy.sum(l.dims).reshape(n.input_shape(2));
                     return {dx, dw, db};
                   });
  return {y, mean, var};
}

const void* ptr_or_null(const Tensor& t) { return t.defined() ? t.data_ptr() : nullptr; }

}  // namespace

BatchNormOutput batch_norm_composed(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps) {
  const Layout l = layout_of(x);
  BatchStats st = batch_stats(x, l.dims);
  Tensor y = affine_of(st.centered * rsqrt(st.var + eps), weight, bias, l.affine);
  autograd::NoGradGuard guard;
  return {y, st.mean.detach().reshape({l.c}), st.var.detach().reshape({l.c})};
}

BatchNormOutput batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps) {
  auto* fused = fused_of(x, kernels::FusedOp::BatchNorm, x.dtype());
  const bool fusable = fused && (!weight.defined() || weight.dtype() == x.dtype()) &&
                       (!bias.defined() || bias.dtype() == x.dtype());
  if (!fusable) return batch_norm_closed_form(x, weight, bias, eps);
  const Layout l = layout_of(x);
  Tensor xc, wc, bc, y, mean, var, rstd;
  {
    autograd::NoGradGuard guard;
    xc = x.contiguous();
    wc = weight.defined() ? weight.contiguous() : Tensor();
    bc = bias.defined() ? bias.contiguous() : Tensor();
    y = empty(x.sizes(), x.options());
    mean = empty({l.c}, x.options());
    var = empty({l.c}, x.options());
    rstd = empty({l.c}, x.options());
    fused->batch_norm_forward(x.dtype(), xc.data_ptr(), ptr_or_null(wc), ptr_or_null(bc), l.n, l.c, l.s, eps,
                              y.data_ptr(), mean.data_ptr(), var.data_ptr(), rstd.data_ptr());
  }
  autograd::record("batch_norm", {x, weight, bias}, {y}, {xc, wc, mean, rstd, x, weight, bias},
                   [l, eps](FunctionNode& n, const variable_list& g) -> variable_list {
                     Tensor xc = n.saved(0), wc = n.saved(1), mean = n.saved(2), rstd = n.saved(3);
                     auto* fused = fused_of(xc, kernels::FusedOp::BatchNorm, xc.dtype());
                     if (autograd::GradMode::is_enabled() || !fused)
                       return composed_backward(n.saved(4), n.saved(5), n.saved(6), eps, g[0]);
                     Tensor dy = g[0].contiguous();
                     Tensor dx, dw, db;
                     if (n.needs_input_grad(0)) dx = empty(xc.sizes(), xc.options());
                     if (n.needs_input_grad(1)) dw = empty({l.c}, xc.options());
                     if (n.needs_input_grad(2)) db = empty({l.c}, xc.options());
                     fused->batch_norm_backward(
                         xc.dtype(), xc.data_ptr(), ptr_or_null(wc), mean.data_ptr(), rstd.data_ptr(),
                         dy.data_ptr(), l.n, l.c, l.s, dx.defined() ? dx.data_ptr() : nullptr,
                         dw.defined() ? dw.data_ptr() : nullptr, db.defined() ? db.data_ptr() : nullptr);
                     return {dx, dw.defined() ? dw.view(n.input_shape(1)) : dw,
                             db.defined() ? db.view(n.input_shape(2)) : db};
                   });
  return {y, mean, var};
}

}  // namespace ember::fused
