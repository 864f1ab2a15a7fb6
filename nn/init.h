// nn::init: in-place initialisers with PyTorch's names and formulas (fan computation, gains), all
// run without recording gradients and all drawing from ember's seeded generator.
#pragma once
#include <string>

#include "ember/core/ops.h"

namespace ember::nn::init {

// Gain for a nonlinearity: "linear"/"conv"/"sigmoid" 1, "tanh" 5/3, "relu" sqrt(2),
// "leaky_relu" sqrt(2 / (1 + param^2)), "selu" 3/4.
double calculate_gain(const std::string& nonlinearity, double param = 0.01);
// (fan_in, fan_out) of a weight: dims 1 and 0, times the receptive field (dims 2+).
std::pair<int64_t, int64_t> calculate_fan_in_and_fan_out(const Tensor& t);

Tensor& uniform_(Tensor& t, double a = 0, double b = 1);
Tensor& normal_(Tensor& t, double mean = 0, double std = 1);
Tensor& constant_(Tensor& t, double value);
Tensor& zeros_(Tensor& t);
Tensor& ones_(Tensor& t);
Tensor& xavier_uniform_(Tensor& t, double gain = 1);
Tensor& xavier_normal_(Tensor& t, double gain = 1);
// mode: "fan_in" or "fan_out"; nonlinearity as in calculate_gain (a = its negative slope).
Tensor& kaiming_uniform_(Tensor& t, double a = 0, const std::string& mode = "fan_in",
                         const std::string& nonlinearity = "leaky_relu");
Tensor& kaiming_normal_(Tensor& t, double a = 0, const std::string& mode = "fan_in",
                        const std::string& nonlinearity = "leaky_relu");
// Normal(mean, std) restricted to [a, b], by inverting the normal CDF (as PyTorch does).
Tensor& trunc_normal_(Tensor& t, double mean = 0, double std = 1, double a = -2, double b = 2);
// A (semi-)orthogonal matrix from the QR decomposition of a normal matrix, scaled by gain.
Tensor& orthogonal_(Tensor& t, double gain = 1);

}  // namespace ember::nn::init
