// 2-D convolution, fused or composed (see core/fused_ops.h). The composed form unfolds the whole
// batch into columns (im2col) and multiplies them by the weight in one batched GEMM; autograd
// differentiates it. The fused kernel (one group) does the same image by image without keeping the
// columns, and its backward gives the input gradient (weight^T times the output gradient, folded
// back) and the weight and bias gradients (the output gradient times the columns, summed over
// the batch) from the saved input and weight.
#include "ember/autograd/engine.h"
#include "ember/core/autocast.h"
#include "ember/core/fused_ops.h"
#include "ember/core/ops/internal.h"

namespace ember::fused {
using namespace detail;

namespace {

kernels::WindowGeometry conv_geometry(const Tensor& x, const Tensor& weight, Pair stride, Pair padding,
                                      Pair dilation) {
  const Pair kernel = {weight.size(2), weight.size(3)};
  const Pair out = window_output_size(x.sizes(), kernel, dilation, padding, stride, "conv2d");
  return {x.size(1), x.size(2), x.size(3),   kernel[0],   kernel[1], padding[0], padding[1],
          stride[0], stride[1], dilation[0], dilation[1], out[0],    out[1]};
}

// The gradients of the composed form, from differentiable ops (what create_graph needs). gy is
// [N, O, oh, ow].
variable_list conv2d_grads_composed(FunctionNode& node, const Tensor& x, const Tensor& weight,
                                    const Tensor& gy, Pair stride, Pair padding, Pair dilation) {
  const int64_t n = x.size(0), o = weight.size(0);
  const Pair kernel = {weight.size(2), weight.size(3)};
  Tensor g3 = gy.reshape({n, o, -1});
  Tensor dx, dw, db;
  if (node.needs_input_grad(0))
    dx = fold(matmul(weight.reshape({o, -1}).t(), g3), {x.size(2), x.size(3)}, kernel, dilation, padding,
              stride);
  if (node.needs_input_grad(1))
    dw = matmul(g3, unfold(x, kernel, dilation, padding, stride).transpose(1, 2))
             .sum(0)
             .reshape(weight.sizes());
  if (node.needs_input_grad(2)) db = gy.sum({0, 2, 3});
  return {dx, dw, db};
}

}  // namespace

Tensor conv2d_composed(const Tensor& x, const Tensor& weight, const Tensor& bias, Pair stride, Pair padding,
                       Pair dilation, int64_t groups) {
  const int64_t n = x.size(0), c = x.size(1), o = weight.size(0);
  const Pair kernel = {weight.size(2), weight.size(3)};
  const auto [oh, ow] = window_output_size(x.sizes(), kernel, dilation, padding, stride, "conv2d");
  Tensor cols = unfold(x, kernel, dilation, padding, stride);  // [N, C*kh*kw, L]
  const int64_t L = cols.size(2), k = c / groups * kernel[0] * kernel[1];
  Tensor out = groups == 1 ? matmul(weight.reshape({o, k}), cols)  // [N, O, L]
                           : matmul(weight.reshape({groups, o / groups, k}), cols.view({n, groups, k, L}));
  out = out.reshape({n, o, oh, ow});
  if (bias.defined()) out = out + bias.view({1, o, 1, 1});
  return out;
}

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, Pair stride, Pair padding,
              Pair dilation, int64_t groups) {
  const DType dt = x.dtype();
  const bool fusable = groups == 1 && weight.dtype() == dt && (!bias.defined() || bias.dtype() == dt) &&
                       !autocast::should_lower(x, weight, bias);
  auto* fused = fusable ? fused_of(x, kernels::FusedOp::Conv2d, dt) : nullptr;
  if (!fused) return conv2d_composed(x, weight, bias, stride, padding, dilation, groups);
  check_same_device(x, weight, "conv2d");
  if (bias.defined()) check_same_device(x, bias, "conv2d");
  const kernels::WindowGeometry g = conv_geometry(x, weight, stride, padding, dilation);
  const int64_t n = x.size(0), o = weight.size(0);
  Tensor xc, wc, out;
  {
    autograd::NoGradGuard guard;
    xc = x.contiguous();
    wc = weight.contiguous();
    Tensor bc = bias.defined() ? bias.contiguous() : Tensor();
    out = empty({n, o, g.out_h, g.out_w}, x.options());
    if (out.numel() > 0)
      fused->conv2d_forward(dt, xc.data_ptr(), wc.data_ptr(), bc.defined() ? bc.data_ptr() : nullptr, g, n, o,
                            out.data_ptr());
  }
  autograd::record(
      "conv2d", {x, weight, bias}, {out}, {xc, wc, x, weight},
      [g, n, o, stride, padding, dilation](FunctionNode& node, const variable_list& gr) -> variable_list {
        Tensor xc = node.saved(0), wc = node.saved(1);
        auto* fused = fused_of(xc, kernels::FusedOp::Conv2d, xc.dtype());
        if (autograd::GradMode::is_enabled() || !fused)
          return conv2d_grads_composed(node, node.saved(2), node.saved(3), gr[0], stride, padding, dilation);
        Tensor dy = gr[0].contiguous();
        Tensor dx, dw, db;
        const bool empty_batch = dy.numel() == 0;
        if (node.needs_input_grad(0)) {
          dx = empty_batch ? zeros(xc.sizes(), xc.options()) : empty(xc.sizes(), xc.options());
          if (!empty_batch)
            fused->conv2d_backward_input(dy.dtype(), dy.data_ptr(), wc.data_ptr(), g, n, o, dx.data_ptr());
        }
        if (node.needs_input_grad(1) || node.needs_input_grad(2)) {
          dw = zeros(wc.sizes(), wc.options());
          if (node.needs_input_grad(2)) db = zeros({o}, wc.options());
          if (!empty_batch)
            fused->conv2d_backward_weight(dy.dtype(), xc.data_ptr(), dy.data_ptr(), g, n, o, dw.data_ptr(),
                                          db.defined() ? db.data_ptr() : nullptr);
          if (!node.needs_input_grad(1)) dw = Tensor();
        }
        return {dx, dw, db};
      });
  return out;
}

}  // namespace ember::fused
