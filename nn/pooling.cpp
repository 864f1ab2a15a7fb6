// Pooling as unfold + a reduction over each window; see pooling.h.
#include "ember/nn/pooling.h"

#include <cmath>

namespace ember::nn {

namespace functional {

namespace {
void check_4d(const Tensor& x, const char* op) {
  EMBER_CHECK(x.dim() == 4, op, ": expected a 4-D input [N, C, H, W], got shape ", x.sizes());
}
}  // namespace

Tensor max_pool2d(const Tensor& x, Pair kernel, std::optional<Pair> stride_, Pair padding,
                  Pair dilation) {
  const Pair stride = stride_.value_or(kernel);
  const auto [oh, ow] = window_output_size(x.sizes(), kernel, dilation, padding, stride, "max_pool2d");
  for (int i = 0; i < 2; ++i)
    EMBER_CHECK(padding[i] <= kernel[i] / 2, "max_pool2d: padding should be at most half of the "
                "kernel size, got padding ", padding[i], " for kernel ", kernel[i]);
  const int64_t n = x.size(0), c = x.size(1);
  // Padding takes -inf so it never wins the max.
  Tensor xp = (padding[0] || padding[1])
                  ? pad(x, {padding[1], padding[1], padding[0], padding[0]}, -INFINITY)
                  : x;
  Tensor cols = unfold(xp.reshape({n * c, 1, xp.size(2), xp.size(3)}), kernel, dilation, {0, 0}, stride);
  return max(cols, 1).first.reshape({n, c, oh, ow});
}

Tensor avg_pool2d(const Tensor& x, Pair kernel, std::optional<Pair> stride_, Pair padding,
                  bool count_include_pad) {
  const Pair stride = stride_.value_or(kernel);
  const auto [oh, ow] = window_output_size(x.sizes(), kernel, {1, 1}, padding, stride, "avg_pool2d");
  for (int i = 0; i < 2; ++i)
    EMBER_CHECK(padding[i] <= kernel[i] / 2, "avg_pool2d: padding should be at most half of the "
                "kernel size, got padding ", padding[i], " for kernel ", kernel[i]);
  const int64_t n = x.size(0), c = x.size(1);
  Tensor cols = unfold(x.reshape({n * c, 1, x.size(2), x.size(3)}), kernel, {1, 1}, padding, stride);
  Tensor sums = cols.sum({1});
  Tensor out;
  if (count_include_pad || (padding[0] == 0 && padding[1] == 0)) {
    out = sums / static_cast<double>(kernel[0] * kernel[1]);
  } else {
    Tensor ones_img = ones({1, 1, x.size(2), x.size(3)}, TensorOptions(x.dtype()).set_device(x.device()));
    Tensor counts = unfold(ones_img, kernel, {1, 1}, padding, stride).sum({1});
    out = sums / counts;
  }
  return out.reshape({n, c, oh, ow});
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

static std::string pair_str(Pair p) {
  return "(" + std::to_string(p[0]) + ", " + std::to_string(p[1]) + ")";
}

MaxPool2d::MaxPool2d(Pair k, std::optional<Pair> s, Pair p, Pair d)
    : Module("MaxPool2d"), kernel_size(k), stride(s.value_or(k)), padding(p), dilation(d) {}

Tensor MaxPool2d::forward(const Tensor& x) {
  return functional::max_pool2d(x, kernel_size, stride, padding, dilation);
}

std::string MaxPool2d::extra_repr() const {
  return "kernel_size=" + pair_str(kernel_size) + ", stride=" + pair_str(stride) + ", padding=" +
         pair_str(padding) + ", dilation=" + pair_str(dilation) + ", ceil_mode=False";
}

AvgPool2d::AvgPool2d(Pair k, std::optional<Pair> s, Pair p, bool include)
    : Module("AvgPool2d"), kernel_size(k), stride(s.value_or(k)), padding(p), count_include_pad(include) {}

Tensor AvgPool2d::forward(const Tensor& x) {
  return functional::avg_pool2d(x, kernel_size, stride, padding, count_include_pad);
}

std::string AvgPool2d::extra_repr() const {
  return "kernel_size=" + pair_str(kernel_size) + ", stride=" + pair_str(stride) + ", padding=" +
         pair_str(padding);
}

std::string AdaptiveAvgPool2d::extra_repr() const { return "output_size=" + pair_str(output_size); }

}  // namespace ember::nn
