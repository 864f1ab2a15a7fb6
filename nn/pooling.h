// Pooling layers: MaxPool2d, AvgPool2d, AdaptiveAvgPool2d (PyTorch's defaults: stride = kernel,
// no padding, ceil_mode off; AvgPool2d counts padding in the average unless told otherwise).
#pragma once
#include <optional>

#include "ember/nn/functional.h"
#include "ember/nn/module.h"

namespace ember::nn {

class MaxPool2d : public Module {
 public:
  explicit MaxPool2d(Pair kernel_size, std::optional<Pair> stride = std::nullopt, Pair padding = {0, 0},
                     Pair dilation = {1, 1}, bool ceil_mode = false);
  explicit MaxPool2d(int64_t kernel_size) : MaxPool2d(Pair{kernel_size, kernel_size}) {}
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  Pair kernel_size, stride, padding, dilation;
  bool ceil_mode;
};

class AvgPool2d : public Module {
 public:
  explicit AvgPool2d(Pair kernel_size, std::optional<Pair> stride = std::nullopt, Pair padding = {0, 0},
                     bool ceil_mode = false, bool count_include_pad = true);
  explicit AvgPool2d(int64_t kernel_size) : AvgPool2d(Pair{kernel_size, kernel_size}) {}
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  Pair kernel_size, stride, padding;
  bool ceil_mode, count_include_pad;
};

class AdaptiveAvgPool2d : public Module {
 public:
  explicit AdaptiveAvgPool2d(Pair output_size) : Module("AdaptiveAvgPool2d"), output_size(output_size) {}
  explicit AdaptiveAvgPool2d(int64_t size) : AdaptiveAvgPool2d(Pair{size, size}) {}
  Tensor forward(const Tensor& x) override { return functional::adaptive_avg_pool2d(x, output_size); }
  std::string extra_repr() const override;
  Pair output_size;
};

}  // namespace ember::nn
