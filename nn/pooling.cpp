// Pooling: max pooling through core's fused max_pool2d (one kernel, or unfold + max), average
// pooling as unfold + a sum over each window; see pooling.h.
#include "ember/nn/pooling.h"

#include <algorithm>
#include <cmath>

#include "ember/autograd/grad_mode.h"
#include "ember/core/fused_ops.h"
#include "ember/core/trace.h"

namespace ember::nn {

namespace functional {

namespace {
void check_4d(const Tensor& x, const char* op) {
  EMBER_CHECK(x.dim() == 4, op, ": expected a 4-D input [N, C, H, W], got shape ", x.sizes());
}
}  // namespace

std::pair<Tensor, Tensor> max_pool2d_with_indices(const Tensor& x, Pair kernel, std::optional<Pair> stride,
                                                  Pair padding, Pair dilation, bool ceil_mode) {
  check_4d(x, "max_pool2d");
  auto out = fused::max_pool2d(x, kernel, stride.value_or(kernel), padding, dilation, ceil_mode);
  return {out.values, out.indices};
}

Tensor max_pool2d(const Tensor& x, Pair kernel, std::optional<Pair> stride, Pair padding, Pair dilation,
                  bool ceil_mode) {
  if (trace::recording()) {
    const Pair s = stride.value_or(kernel);
    return trace::traced("max_pool2d", {x},
                         {.ints = {{"kernel", {kernel[0], kernel[1]}},
                                   {"stride", {s[0], s[1]}},
                                   {"padding", {padding[0], padding[1]}},
                                   {"dilation", {dilation[0], dilation[1]}},
                                   {"ceil_mode", {ceil_mode}}}},
                         [&] { return max_pool2d(x, kernel, stride, padding, dilation, ceil_mode); });
  }
  return max_pool2d_with_indices(x, kernel, stride, padding, dilation, ceil_mode).first;
}

// Sums over unfolded windows, divided by how many cells of each window count: a mask image (ones
// where a cell counts) unfolded the same way gives the divisors. Zero padding goes on the left/top
// as asked and on the right/bottom as far as the last ceil_mode window reaches.
Tensor avg_pool2d(const Tensor& x, Pair kernel, std::optional<Pair> stride_, Pair padding, bool ceil_mode,
                  bool count_include_pad) {
  if (trace::recording()) {
    const Pair s = stride_.value_or(kernel);
    return trace::traced(
        "avg_pool2d", {x},
        {.ints = {{"kernel", {kernel[0], kernel[1]}},
                  {"stride", {s[0], s[1]}},
                  {"padding", {padding[0], padding[1]}},
                  {"ceil_mode", {ceil_mode}},
                  {"count_include_pad", {count_include_pad}}}},
        [&] { return avg_pool2d(x, kernel, stride_, padding, ceil_mode, count_include_pad); });
  }
  const Pair stride = stride_.value_or(kernel);
  const auto [oh, ow] =
      window_output_size(x.sizes(), kernel, {1, 1}, padding, stride, "avg_pool2d", ceil_mode);
  for (int i = 0; i < 2; ++i)
    EMBER_CHECK(padding[i] <= kernel[i] / 2,
                "avg_pool2d: padding should be at most half of the "
                "kernel size, got padding ",
                padding[i], " for kernel ", kernel[i]);
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  const int64_t extra_h = std::max<int64_t>(0, (oh - 1) * stride[0] + kernel[0] - (h + 2 * padding[0]));
  const int64_t extra_w = std::max<int64_t>(0, (ow - 1) * stride[1] + kernel[1] - (w + 2 * padding[1]));
  const Shape pads = {padding[1], padding[1] + extra_w, padding[0], padding[0] + extra_h};
  Tensor planes = pad(x.reshape({n * c, 1, h, w}), pads);
  Tensor sums = unfold(planes, kernel, {1, 1}, {0, 0}, stride).sum(1);
  if (extra_h == 0 && extra_w == 0 && (count_include_pad || (padding[0] == 0 && padding[1] == 0)))
    return (sums / static_cast<double>(kernel[0] * kernel[1])).reshape({n, c, oh, ow});
  Tensor mask;
  {
    autograd::NoGradGuard guard;
    const TensorOptions opts = x.options();
    mask = count_include_pad
               ? pad(ones({1, 1, h + 2 * padding[0], w + 2 * padding[1]}, opts), {0, extra_w, 0, extra_h})
               : pad(ones({1, 1, h, w}, opts), pads);
    mask = unfold(mask, kernel, {1, 1}, {0, 0}, stride).sum(1);
  }
  return (sums / mask).reshape({n, c, oh, ow});
}

Tensor adaptive_avg_pool2d(const Tensor& x, Pair output_size) {
  check_4d(x, "adaptive_avg_pool2d");
  const int64_t h = x.size(2), w = x.size(3), oh = output_size[0], ow = output_size[1];
  EMBER_CHECK(oh > 0 && ow > 0, "adaptive_avg_pool2d: output size must be positive");
  if (h % oh == 0 && w % ow == 0) return avg_pool2d(x, {h / oh, w / ow});
  // General case: cell (i, j) averages rows [floor(i*h/oh), ceil((i+1)*h/oh)) and likewise columns.
  std::vector<Tensor> rows;
  for (int64_t i = 0; i < oh; ++i) {
    const int64_t y0 = i * h / oh, y1 = ((i + 1) * h + oh - 1) / oh;
    std::vector<Tensor> cells;
    for (int64_t j = 0; j < ow; ++j) {
      const int64_t x0 = j * w / ow, x1 = ((j + 1) * w + ow - 1) / ow;
      cells.push_back(x.narrow(2, y0, y1 - y0).narrow(3, x0, x1 - x0).mean({2, 3}));
    }
    rows.push_back(stack(cells, -1));
  }
  return stack(rows, -2);
}

}  // namespace functional

MaxPool2d::MaxPool2d(Pair k, std::optional<Pair> s, Pair p, Pair d, bool c)
    : Module("MaxPool2d"), kernel_size(k), stride(s.value_or(k)), padding(p), dilation(d), ceil_mode(c) {}

Tensor MaxPool2d::forward(const Tensor& x) {
  return functional::max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode);
}

std::string MaxPool2d::extra_repr() const {
  return "kernel_size=" + pair_str(kernel_size) + ", stride=" + pair_str(stride) +
         ", padding=" + pair_str(padding) + ", dilation=" + pair_str(dilation) +
         ", ceil_mode=" + (ceil_mode ? "True" : "False");
}

AvgPool2d::AvgPool2d(Pair k, std::optional<Pair> s, Pair p, bool ceil, bool include)
    : Module("AvgPool2d"),
      kernel_size(k),
      stride(s.value_or(k)),
      padding(p),
      ceil_mode(ceil),
      count_include_pad(include) {}

Tensor AvgPool2d::forward(const Tensor& x) {
  return functional::avg_pool2d(x, kernel_size, stride, padding, ceil_mode, count_include_pad);
}

std::string AvgPool2d::extra_repr() const {
  return "kernel_size=" + pair_str(kernel_size) + ", stride=" + pair_str(stride) +
         ", padding=" + pair_str(padding) + ", ceil_mode=" + (ceil_mode ? "True" : "False") +
         ", count_include_pad=" + (count_include_pad ? "True" : "False");
}

std::string AdaptiveAvgPool2d::extra_repr() const { return "output_size=" + pair_str(output_size); }

}  // namespace ember::nn
