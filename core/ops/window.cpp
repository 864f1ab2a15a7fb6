// Sliding windows: unfold (im2col) and fold (col2im), each the other's gradient, and constant
// padding. unfold and fold run the backend's fused kernels or, without them, a composed form. Convolution and
// pooling in nn are built from these plus matmul and reductions.
#include "ember/core/ops/internal.h"
#include "ember/core/trace.h"

namespace ember {
using namespace detail;

Pair window_output_size(const Shape& shape, Pair kernel, Pair dilation, Pair padding, Pair stride,
                        const char* op, bool ceil_mode) {
  EMBER_CHECK(shape.size() == 4, op, ": expected a 4-D input [N, C, H, W], got shape ", shape);
  Pair out{};
  for (int i = 0; i < 2; ++i) {
    EMBER_CHECK(kernel[i] > 0 && dilation[i] > 0 && stride[i] > 0 && padding[i] >= 0, op,
                ": kernel, dilation and stride must be positive and padding non-negative, got kernel [",
                kernel[0], ", ", kernel[1], "], dilation [", dilation[0], ", ", dilation[1], "], stride [",
                stride[0], ", ", stride[1], "], padding [", padding[0], ", ", padding[1], "]");
    // Compared before dividing: C++ division truncates toward zero, so a window one element too
    // large would otherwise still yield an output of size 1.
    const int64_t span = dilation[i] * (kernel[i] - 1) + 1, padded = shape[2 + i] + 2 * padding[i];
    EMBER_CHECK(padded >= span, op, ": input of shape ", shape, " is too small for kernel [", kernel[0], ", ",
                kernel[1], "] with dilation [", dilation[0], ", ", dilation[1], "] and padding [", padding[0],
                ", ", padding[1], "]: the window spans ", span, " but the padded input has ", padded);
    out[i] = (padded - span + (ceil_mode ? stride[i] - 1 : 0)) / stride[i] + 1;
    if (ceil_mode && (out[i] - 1) * stride[i] >= shape[2 + i] + padding[i]) --out[i];
  }
  return out;
}

namespace {

kernels::WindowGeometry geometry(const Shape& x, Pair kernel, Pair dilation, Pair padding, Pair stride,
                                 const char* op) {
  const Pair out = window_output_size(x, kernel, dilation, padding, stride, op);
  return {x[1],      x[2],      x[3],        kernel[0],   kernel[1], padding[0], padding[1],
          stride[0], stride[1], dilation[0], dilation[1], out[0],    out[1]};
}

// im2col from the primitives: pad, view the padded images as [N, C, kh, kw, oh, ow] through strides
// (each window element of each window position is one address), copy that compact.
Tensor im2col_composed(const Tensor& in, const kernels::WindowGeometry& g) {
  Tensor padded = pad(in, {g.pad_w, g.pad_w, g.pad_h, g.pad_h}).contiguous();
  const int64_t hp = padded.size(2), wp = padded.size(3);
  Tensor windows = padded.as_strided(
      {in.size(0), g.channels, g.kernel_h, g.kernel_w, g.out_h, g.out_w},
      {g.channels * hp * wp, hp * wp, g.dilation_h * wp, g.dilation_w, g.stride_h * wp, g.stride_w});
  return windows.contiguous().reshape({in.size(0), g.channels * g.kernel_h * g.kernel_w, g.out_h * g.out_w});
}

// col2im from the primitives: for each kernel offset (i, j) the window positions address distinct
// pixels, so the columns of that offset are added into a strided view of the padded image; the
// padding is cropped at the end.
Tensor col2im_composed(const Tensor& cols, const kernels::WindowGeometry& g) {
  const int64_t n = cols.size(0), hp = g.height + 2 * g.pad_h, wp = g.width + 2 * g.pad_w;
  Tensor padded = zeros({n, g.channels, hp, wp}, TensorOptions(cols.dtype()).set_device(cols.device()));
  Tensor per_offset = cols.reshape({n, g.channels, g.kernel_h, g.kernel_w, g.out_h, g.out_w});
  for (int64_t i = 0; i < g.kernel_h; ++i)
    for (int64_t j = 0; j < g.kernel_w; ++j) {
      Tensor pixels = padded.as_strided({n, g.channels, g.out_h, g.out_w},
                                        {g.channels * hp * wp, hp * wp, g.stride_h * wp, g.stride_w},
                                        i * g.dilation_h * wp + j * g.dilation_w);
      pixels.add_(per_offset.select(2, i).select(2, j));
    }
  return padded.narrow(2, g.pad_h, g.height).narrow(3, g.pad_w, g.width).contiguous();
}

}  // namespace

Tensor unfold(const Tensor& x, Pair kernel, Pair dilation, Pair padding, Pair stride) {
  const auto g = geometry(x.sizes(), kernel, dilation, padding, stride, "unfold");
  const DType work = compute_dtype(x.dtype());
  Tensor out;
  {
    autograd::NoGradGuard guard;
    Tensor in = cast_if_needed(x, work).contiguous();
    if (auto* fused = fused_of(x, kernels::FusedOp::Im2Col, work)) {
      out =
          make_empty({x.size(0), g.channels * g.kernel_h * g.kernel_w, g.out_h * g.out_w}, work, x.device());
      if (out.numel() > 0) fused->im2col(work, in.data_ptr(), out.data_ptr(), g, x.size(0));
    } else {
      out = im2col_composed(in, g);
    }
    out = cast_if_needed(out, x.dtype());
  }
  const Pair size = {x.size(2), x.size(3)};
  autograd::record("unfold", {x}, {out}, {}, [=](FunctionNode&, const variable_list& gr) -> variable_list {
    return {fold(gr[0], size, kernel, dilation, padding, stride)};
  });
  return out;
}

Tensor fold(const Tensor& cols, Pair output_size, Pair kernel, Pair dilation, Pair padding, Pair stride) {
  EMBER_CHECK(cols.dim() == 3, "fold: expected a 3-D input [N, C*kh*kw, L], got shape ", cols.sizes());
  const int64_t k = kernel[0] * kernel[1];
  EMBER_CHECK(k > 0 && cols.size(1) % k == 0, "fold: dim 1 of the input (", cols.size(1),
              ") is not a multiple of the kernel size ", k);
  const auto g = geometry({cols.size(0), cols.size(1) / k, output_size[0], output_size[1]}, kernel, dilation,
                          padding, stride, "fold");
  EMBER_CHECK(cols.size(2) == g.out_h * g.out_w, "fold: the input has ", cols.size(2),
              " windows but output size [", output_size[0], ", ", output_size[1], "] gives ",
              g.out_h * g.out_w);
  const DType work = compute_dtype(cols.dtype());
  Tensor out;
  {
    autograd::NoGradGuard guard;
    Tensor in = cast_if_needed(cols, work).contiguous();
    if (auto* fused = fused_of(cols, kernels::FusedOp::Col2Im, work)) {
      out = make_empty({cols.size(0), g.channels, g.height, g.width}, work, cols.device());
      if (out.numel() > 0) fused->col2im(work, in.data_ptr(), out.data_ptr(), g, cols.size(0));
    } else {
      out = col2im_composed(in, g);
    }
    out = cast_if_needed(out, cols.dtype());
  }
  autograd::record("fold", {cols}, {out}, {}, [=](FunctionNode&, const variable_list& gr) -> variable_list {
    return {unfold(gr[0], kernel, dilation, padding, stride)};
  });
  return out;
}

Tensor pad(const Tensor& x, const Shape& pads, Scalar value) {
  if (trace::recording())
    return trace::traced("pad", {x}, {.ints = {{"pads", pads}}, .floats = {{"value", value.to_double()}}},
                         [&] { return pad(x, pads, value); });
  EMBER_CHECK(pads.size() % 2 == 0 && static_cast<int64_t>(pads.size()) <= 2 * x.dim(),
              "pad: expected an even number of pads, at most two per dim, got ", pads.size(), " for shape ",
              x.sizes());
  Shape shape = x.sizes();
  Shape starts(x.dim(), 0);
  for (size_t i = 0; i < pads.size() / 2; ++i) {
    const int64_t d = x.dim() - 1 - static_cast<int64_t>(i);
    EMBER_CHECK(pads[2 * i] >= 0 && pads[2 * i + 1] >= 0,
                "pad: negative padding (cropping) is not supported, got ", pads);
    shape[d] += pads[2 * i] + pads[2 * i + 1];
    starts[d] = pads[2 * i];
  }
  Tensor out = full(shape, value, TensorOptions(x.dtype()).set_device(x.device()));
  {
    autograd::NoGradGuard guard;
    Tensor region = out;
    for (int64_t d = 0; d < x.dim(); ++d) region = region.narrow(d, starts[d], x.size(d));
    if (x.numel() > 0)
      backend_of(x).strided_copy(x.dtype(), x.data_ptr(), x.strides(), region.data_ptr(), region.strides(),
                                 region.sizes());
  }
  const Shape in_shape = x.sizes();
  autograd::record("pad", {x}, {out}, {},
                   [starts, in_shape](FunctionNode&, const variable_list& gr) -> variable_list {
                     Tensor g = gr[0];
                     for (size_t d = 0; d < in_shape.size(); ++d) g = g.narrow(d, starts[d], in_shape[d]);
                     return {g};
                   });
  return out;
}

}  // namespace ember
