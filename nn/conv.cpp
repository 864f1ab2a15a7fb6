// Convolutions: the argument checks, then core's conv2d (fused per image, or unfold + matmul);
// conv1d is a conv2d of height 1 and conv_transpose2d a matmul + fold. See conv.h and functional.h.
#include "ember/nn/conv.h"

#include <cmath>

#include "ember/core/fused_ops.h"
#include "ember/core/trace.h"
#include "ember/nn/init.h"

namespace ember::nn {

namespace functional {

namespace {

// The checks conv1d and conv2d share, made on the tensors the user passed so the message shows them.
void check_conv_args(const char* op, const Tensor& x, const Tensor& weight, const Tensor& bias,
                     int64_t groups) {
  const int64_t c = x.size(1), o = weight.size(0);
  EMBER_CHECK(groups > 0 && c % groups == 0 && o % groups == 0, op, ": ", c, " input and ", o,
              " output channels are not divisible into ", groups, " groups");
  EMBER_CHECK(weight.size(1) * groups == c, op, ": weight of shape ", weight.sizes(), " expects ",
              weight.size(1) * groups, " input channels, but the input of shape ", x.sizes(), " has ", c);
  EMBER_CHECK(!bias.defined() || (bias.dim() == 1 && bias.size(0) == o), op, ": bias of shape ",
              bias.defined() ? bias.sizes() : Shape{}, " does not match ", o, " output channels (weight ",
              weight.sizes(), ")");
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, Pair stride, Pair padding,
              Pair dilation, int64_t groups) {
  if (trace::recording())
    return trace::traced("conv2d", {x, weight, bias},
                         {.ints = {{"stride", {stride[0], stride[1]}},
                                   {"padding", {padding[0], padding[1]}},
                                   {"dilation", {dilation[0], dilation[1]}},
                                   {"groups", {groups}}}},
                         [&] { return conv2d(x, weight, bias, stride, padding, dilation, groups); });
  EMBER_CHECK(x.dim() == 4, "conv2d: expected a 4-D input [N, C, H, W], got shape ", x.sizes());
  EMBER_CHECK(weight.dim() == 4, "conv2d: expected a 4-D weight [out, in/groups, kh, kw], got ",
              weight.sizes());
  check_conv_args("conv2d", x, weight, bias, groups);
  return fused::conv2d(x, weight, bias, stride, padding, dilation, groups);
}

Tensor conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride, int64_t padding,
              int64_t dilation, int64_t groups) {
  EMBER_CHECK(x.dim() == 3, "conv1d: expected a 3-D input [N, C, L], got shape ", x.sizes());
  EMBER_CHECK(weight.dim() == 3, "conv1d: expected a 3-D weight [out, in/groups, k], got ", weight.sizes());
  check_conv_args("conv1d", x, weight, bias, groups);
  EMBER_CHECK(stride > 0 && dilation > 0 && padding >= 0,
              "conv1d: stride and dilation must be positive and "
              "padding non-negative, got stride ",
              stride, ", dilation ", dilation, ", padding ", padding);
  const int64_t span = dilation * (weight.size(2) - 1) + 1;
  EMBER_CHECK(x.size(2) + 2 * padding >= span, "conv1d: input of shape ", x.sizes(),
              " is too small for weight ", weight.sizes(), " with dilation ", dilation, " and padding ",
              padding, ": the window spans ", span);
  Tensor y =
      conv2d(x.unsqueeze(2), weight.unsqueeze(2), bias, {1, stride}, {0, padding}, {1, dilation}, groups);
  return y.squeeze(2);
}

Tensor conv_transpose2d(const Tensor& x, const Tensor& weight, const Tensor& bias, Pair stride, Pair padding,
                        Pair output_padding, int64_t groups, Pair dilation) {
  EMBER_CHECK(x.dim() == 4, "conv_transpose2d: expected a 4-D input [N, C, H, W], got shape ", x.sizes());
  EMBER_CHECK(weight.dim() == 4 && weight.size(0) == x.size(1), "conv_transpose2d: weight of shape ",
              weight.sizes(), " does not match an input with ", x.size(1), " channels");
  for (int i = 0; i < 2; ++i)
    EMBER_CHECK(output_padding[i] < std::max(stride[i], dilation[i]),
                "conv_transpose2d: output_padding must be smaller than stride or dilation");
  const int64_t n = x.size(0), cin = x.size(1), h = x.size(2), w = x.size(3);
  EMBER_CHECK(groups > 0 && cin % groups == 0, "conv_transpose2d: ", cin,
              " input channels are not divisible into ", groups, " groups");
  const int64_t cout_g = weight.size(1), kh = weight.size(2), kw = weight.size(3);
  const int64_t cin_g = cin / groups;
  EMBER_CHECK(!bias.defined() || (bias.dim() == 1 && bias.size(0) == cout_g * groups),
              "conv_transpose2d: bias of shape ", bias.defined() ? bias.sizes() : Shape{}, " does not match ",
              cout_g * groups, " output channels (weight ", weight.sizes(), ", groups ", groups, ")");
  // cols[n, g, cout_g*kh*kw, HW] = W_g^T [cout_g*kk, cin_g] @ x_g [cin_g, HW]
  Tensor wg = weight.reshape({groups, cin_g, cout_g * kh * kw}).transpose(1, 2);
  Tensor cols = matmul(wg, x.reshape({n, groups, cin_g, h * w}));
  cols = cols.reshape({n, groups * cout_g * kh * kw, h * w});
  const int64_t oh = (h - 1) * stride[0] - 2 * padding[0] + dilation[0] * (kh - 1) + output_padding[0] + 1;
  const int64_t ow = (w - 1) * stride[1] - 2 * padding[1] + dilation[1] * (kw - 1) + output_padding[1] + 1;
  Tensor out = fold(cols, {oh, ow}, {kh, kw}, dilation, padding, stride);
  if (bias.defined()) out = out + bias.view({1, -1, 1, 1});
  return out;
}

}  // namespace functional

namespace {

// "same" pads so the output keeps the input size (stride 1 only); odd totals put the extra row or
// column at the end, as PyTorch does.
Tensor same_pad(const Tensor& x, Pair kernel, Pair dilation) {
  Shape pads;
  for (int i = 1; i >= 0; --i) {
    const int64_t total = dilation[i] * (kernel[i] - 1);
    pads.push_back(total / 2);
    pads.push_back(total - total / 2);
  }
  return pad(x, pads);
}

void init_conv(Tensor& weight, Tensor& bias) {
  init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (bias.defined()) {
    auto [fan_in, fan_out] = init::calculate_fan_in_and_fan_out(weight);
    const double bound = fan_in > 0 ? 1.0 / std::sqrt(static_cast<double>(fan_in)) : 0.0;
    init::uniform_(bias, -bound, bound);
  }
}

}  // namespace

Conv2d::Conv2d(int64_t in, int64_t out, Pair kernel, Conv2dOptions opts)
    : Module("Conv2d"), in_channels(in), out_channels(out), kernel_size(kernel), options(opts) {
  EMBER_CHECK(opts.groups > 0 && in % opts.groups == 0 && out % opts.groups == 0, "Conv2d: in_channels (", in,
              ") and out_channels (", out, ") must be divisible by groups (", opts.groups, ")");
  const auto& mode = opts.padding_mode_string;
  EMBER_CHECK(mode.empty() || mode == "same" || mode == "valid",
              "Conv2d: padding must be \"same\", \"valid\" or explicit, got \"", mode, "\"");
  EMBER_CHECK(mode != "same" || (opts.stride[0] == 1 && opts.stride[1] == 1),
              "Conv2d: padding=\"same\" is not supported for strided convolutions");
  weight = register_parameter("weight", empty({out, in / opts.groups, kernel[0], kernel[1]}));
  if (opts.bias) bias = register_parameter("bias", empty({out}));
  init_conv(weight, bias);
}

Tensor Conv2d::forward(const Tensor& x) {
  EMBER_CHECK(x.dim() == 4 && x.size(1) == in_channels, "Conv2d(in_channels=", in_channels,
              "): expected input [N, ", in_channels, ", H, W], got shape ", x.sizes());
  if (options.padding_mode_string == "same")
    return functional::conv2d(same_pad(x, kernel_size, options.dilation), weight, bias, options.stride,
                              {0, 0}, options.dilation, options.groups);
  const Pair padding = options.padding_mode_string == "valid" ? Pair{0, 0} : options.padding;
  return functional::conv2d(x, weight, bias, options.stride, padding, options.dilation, options.groups);
}

std::string Conv2d::extra_repr() const {
  std::string s = std::to_string(in_channels) + ", " + std::to_string(out_channels) +
                  ", kernel_size=" + pair_str(kernel_size) + ", stride=" + pair_str(options.stride);
  if (!options.padding_mode_string.empty()) s += ", padding=" + options.padding_mode_string;
  else if (options.padding != Pair{0, 0}) s += ", padding=" + pair_str(options.padding);
  if (options.dilation != Pair{1, 1}) s += ", dilation=" + pair_str(options.dilation);
  if (options.groups != 1) s += ", groups=" + std::to_string(options.groups);
  if (!options.bias) s += ", bias=False";
  return s;
}

Conv1d::Conv1d(int64_t in, int64_t out, int64_t kernel, Conv1dOptions opts)
    : Module("Conv1d"), in_channels(in), out_channels(out), kernel_size(kernel), options(opts) {
  EMBER_CHECK(opts.groups > 0 && in % opts.groups == 0 && out % opts.groups == 0, "Conv1d: in_channels (", in,
              ") and out_channels (", out, ") must be divisible by groups (", opts.groups, ")");
  EMBER_CHECK(opts.padding_mode_string != "same" || opts.stride == 1,
              "Conv1d: padding=\"same\" is not supported for strided convolutions");
  weight = register_parameter("weight", empty({out, in / opts.groups, kernel}));
  if (opts.bias) bias = register_parameter("bias", empty({out}));
  init_conv(weight, bias);
}

Tensor Conv1d::forward(const Tensor& x) {
  EMBER_CHECK(x.dim() == 3 && x.size(1) == in_channels, "Conv1d(in_channels=", in_channels,
              "): expected input [N, ", in_channels, ", L], got shape ", x.sizes());
  if (options.padding_mode_string == "same") {
    const int64_t total = options.dilation * (kernel_size - 1);
    return functional::conv1d(pad(x, {total / 2, total - total / 2}), weight, bias, 1, 0, options.dilation,
                              options.groups);
  }
  const int64_t padding = options.padding_mode_string == "valid" ? 0 : options.padding;
  return functional::conv1d(x, weight, bias, options.stride, padding, options.dilation, options.groups);
}

std::string Conv1d::extra_repr() const {
  return std::to_string(in_channels) + ", " + std::to_string(out_channels) + ", kernel_size=(" +
         std::to_string(kernel_size) + ",), stride=(" + std::to_string(options.stride) + ",)";
}

ConvTranspose2d::ConvTranspose2d(int64_t in, int64_t out, Pair kernel, ConvTranspose2dOptions opts)
    : Module("ConvTranspose2d"), in_channels(in), out_channels(out), kernel_size(kernel), options(opts) {
  EMBER_CHECK(opts.groups > 0 && in % opts.groups == 0 && out % opts.groups == 0,
              "ConvTranspose2d: in_channels (", in, ") and out_channels (", out,
              ") must be divisible by groups (", opts.groups, ")");
  weight = register_parameter("weight", empty({in, out / opts.groups, kernel[0], kernel[1]}));
  if (opts.bias) bias = register_parameter("bias", empty({out}));
  init_conv(weight, bias);
}

Tensor ConvTranspose2d::forward(const Tensor& x) {
  EMBER_CHECK(x.dim() == 4 && x.size(1) == in_channels, "ConvTranspose2d(in_channels=", in_channels,
              "): expected input [N, ", in_channels, ", H, W], got shape ", x.sizes());
  return functional::conv_transpose2d(x, weight, bias, options.stride, options.padding,
                                      options.output_padding, options.groups, options.dilation);
}

std::string ConvTranspose2d::extra_repr() const {
  return std::to_string(in_channels) + ", " + std::to_string(out_channels) +
         ", kernel_size=" + pair_str(kernel_size) + ", stride=" + pair_str(options.stride);
}

}  // namespace ember::nn
