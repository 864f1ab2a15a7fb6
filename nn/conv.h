// Convolutions: Conv1d, Conv2d, ConvTranspose2d with PyTorch's options (stride, padding including
// "same"/"valid", dilation, groups, bias; padding_mode "zeros") and initialisation (weight
// kaiming_uniform(a = sqrt(5)); bias U(-1/sqrt(fan_in), 1/sqrt(fan_in))).
#pragma once
#include <string>

#include "ember/nn/functional.h"
#include "ember/nn/module.h"

namespace ember::nn {

struct Conv2dOptions {
  Pair stride = {1, 1};
  Pair padding = {0, 0};
  std::string padding_mode_string{};  // "same" or "valid" instead of explicit padding
  Pair dilation = {1, 1};
  int64_t groups = 1;
  bool bias = true;
};

class Conv2d : public Module {
 public:
  Conv2d(int64_t in_channels, int64_t out_channels, Pair kernel_size, Conv2dOptions options = {});
  Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, Conv2dOptions options = {})
      : Conv2d(in_channels, out_channels, Pair{kernel_size, kernel_size}, options) {}
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  int64_t in_channels, out_channels;
  Pair kernel_size;
  Conv2dOptions options;
  Tensor weight, bias;
};

struct Conv1dOptions {
  int64_t stride = 1, padding = 0;
  std::string padding_mode_string{};  // "same" or "valid"
  int64_t dilation = 1, groups = 1;
  bool bias = true;
};

class Conv1d : public Module {
 public:
  Conv1d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, Conv1dOptions options = {});
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  int64_t in_channels, out_channels, kernel_size;
  Conv1dOptions options;
  Tensor weight, bias;
};

struct ConvTranspose2dOptions {
  Pair stride = {1, 1};
  Pair padding = {0, 0};
  Pair output_padding = {0, 0};
  int64_t groups = 1;
  bool bias = true;
  Pair dilation = {1, 1};
};

class ConvTranspose2d : public Module {
 public:
  ConvTranspose2d(int64_t in_channels, int64_t out_channels, Pair kernel_size,
                  ConvTranspose2dOptions options = {});
  ConvTranspose2d(int64_t in_channels, int64_t out_channels, int64_t kernel_size,
                  ConvTranspose2dOptions options = {})
      : ConvTranspose2d(in_channels, out_channels, Pair{kernel_size, kernel_size}, options) {}
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  int64_t in_channels, out_channels;
  Pair kernel_size;
  ConvTranspose2dOptions options;
  Tensor weight, bias;  // weight [in, out / groups, kh, kw]
};

}  // namespace ember::nn
