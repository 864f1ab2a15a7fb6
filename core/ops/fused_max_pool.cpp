// Max pooling with its indices, fused or composed (see core/fused_ops.h). The fused forward visits
// each window once and keeps the position of its maximum; the backward adds each gradient at that
// position. The composed form pads with -inf, unfolds the windows and takes max over each, turning
// the winner's offset in its window back into a position in the plane.
#include <cmath>

#include "ember/autograd/engine.h"
#include "ember/core/fused_ops.h"
#include "ember/core/ops/internal.h"

namespace ember::fused {
using namespace detail;

namespace {

struct PoolGeometry {
  kernels::WindowGeometry g;
  int64_t extra_h, extra_w;  // ceil_mode: padding past the bottom/right for the last windows
};

PoolGeometry pool_geometry(const Tensor& x, Pair kernel, Pair stride, Pair padding, Pair dilation,
                           bool ceil_mode) {
  const Pair out = window_output_size(x.sizes(), kernel, dilation, padding, stride, "max_pool2d", ceil_mode);
  for (int i = 0; i < 2; ++i)
    EMBER_CHECK(padding[i] <= kernel[i] / 2,
                "max_pool2d: padding should be at most half of the kernel size, ", "got padding ", padding[i],
                " for kernel ", kernel[i]);
  PoolGeometry p{{1, x.size(2), x.size(3), kernel[0], kernel[1], padding[0], padding[1], stride[0], stride[1],
                  dilation[0], dilation[1], out[0], out[1]},
                 0,
                 0};
  const int64_t need_h = (out[0] - 1) * stride[0] + dilation[0] * (kernel[0] - 1) + 1;
  const int64_t need_w = (out[1] - 1) * stride[1] + dilation[1] * (kernel[1] - 1) + 1;
  p.extra_h = std::max<int64_t>(0, need_h - (x.size(2) + 2 * padding[0]));
  p.extra_w = std::max<int64_t>(0, need_w - (x.size(3) + 2 * padding[1]));
  return p;
}

// d values / d x from the indices, from core ops (differentiable in grad): each gradient added at
// its index in a zero plane.
Tensor max_pool_grad_composed(const Tensor& grad, const Tensor& indices, const Shape& in_shape) {
  const int64_t planes = in_shape[0] * in_shape[1], image = in_shape[2] * in_shape[3];
  Tensor flat = zeros({planes, image}, grad.options());
  return scatter_add(flat, 1, indices.reshape({planes, -1}), grad.reshape({planes, -1})).reshape(in_shape);
}

}  // namespace

MaxPoolOutput max_pool2d_composed(const Tensor& x, Pair kernel, Pair stride, Pair padding, Pair dilation,
                                  bool ceil_mode) {
  const PoolGeometry p = pool_geometry(x, kernel, stride, padding, dilation, ceil_mode);
  const auto& g = p.g;
  const int64_t n = x.size(0), c = x.size(1);
  Tensor xp = pad(x, {g.pad_w, g.pad_w + p.extra_w, g.pad_h, g.pad_h + p.extra_h}, -INFINITY);
  Tensor cols = unfold(xp.reshape({n * c, 1, xp.size(2), xp.size(3)}), kernel, dilation, {0, 0}, stride);
  auto [values, offset] = max(cols, 1);  // [n*c, L]; offset: the winner's place in its window
  // Position in the plane = the window's top-left corner + the winner's offset inside it.
  const TensorOptions longs = TensorOptions(kInt64).set_device(x.device());
  Tensor in_window = (arange(g.kernel_h, longs) * (g.dilation_h * g.width)).reshape({-1, 1}) +
                     (arange(g.kernel_w, longs) * g.dilation_w).reshape({1, -1});
  Tensor corner = ((arange(g.out_h, longs) * g.stride_h - g.pad_h) * g.width).reshape({-1, 1}) +
                  (arange(g.out_w, longs) * g.stride_w - g.pad_w).reshape({1, -1});
  Tensor indices = in_window.reshape({-1}).index_select(0, offset.reshape({-1})).reshape(offset.sizes()) +
                   corner.reshape({1, -1});
  return {values.reshape({n, c, g.out_h, g.out_w}), indices.reshape({n, c, g.out_h, g.out_w})};
}

MaxPoolOutput max_pool2d(const Tensor& x, Pair kernel, Pair stride, Pair padding, Pair dilation,
                         bool ceil_mode) {
  EMBER_CHECK(x.dim() == 4, "max_pool2d: expected a 4-D input [N, C, H, W], got shape ", x.sizes());
  auto* fused = fused_of(x, kernels::FusedOp::MaxPool2d, x.dtype());
  if (!fused) return max_pool2d_composed(x, kernel, stride, padding, dilation, ceil_mode);
  const kernels::WindowGeometry g = pool_geometry(x, kernel, stride, padding, dilation, ceil_mode).g;
  const int64_t planes = x.size(0) * x.size(1);
  const Shape out_shape = {x.size(0), x.size(1), g.out_h, g.out_w};
  Tensor values, indices;
  {
    autograd::NoGradGuard guard;
    Tensor xc = x.contiguous();
    values = empty(out_shape, x.options());
    indices = empty(out_shape, TensorOptions(kInt64).set_device(x.device()));
    if (values.numel() > 0)
      fused->max_pool2d_forward(x.dtype(), xc.data_ptr(), g, planes, values.data_ptr(),
                                static_cast<int64_t*>(indices.data_ptr()));
  }
  const Shape in_shape = x.sizes();
  autograd::record("max_pool2d", {x}, {values}, {indices},
                   [g, planes, in_shape](FunctionNode& n, const variable_list& gr) -> variable_list {
                     Tensor idx = n.saved(0);
                     auto* fused = fused_of(idx, kernels::FusedOp::MaxPool2d, gr[0].dtype());
                     if (autograd::GradMode::is_enabled() || !fused)
                       return {max_pool_grad_composed(gr[0], idx, in_shape)};
                     Tensor go = gr[0].contiguous();
                     Tensor dx = empty(in_shape, go.options());
                     if (dx.numel() > 0)
                       fused->max_pool2d_backward(go.dtype(), go.data_ptr(),
                                                  static_cast<const int64_t*>(idx.data_ptr()), g, planes,
                                                  dx.data_ptr());
                     return {dx};
                   });
  return {values, indices};
}

}  // namespace ember::fused
