// Gradient clipping and flattening, under PyTorch's names (nn::utils::...).
#pragma once
#include <vector>

#include "ember/core/ops.h"

namespace ember::nn::utils {

// Scales all gradients so their combined norm is at most max_norm; returns the norm before
// clipping. norm_type may be INFINITY. error_if_nonfinite: throw when the norm is nan or inf.
Tensor clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, double norm_type = 2.0,
                       bool error_if_nonfinite = false);
// Clamps every gradient element to [-clip_value, clip_value].
void clip_grad_value_(const std::vector<Tensor>& params, double clip_value);
// All parameters flattened and concatenated, and the reverse (copies values back in order).
Tensor parameters_to_vector(const std::vector<Tensor>& params);
void vector_to_parameters(const Tensor& vec, const std::vector<Tensor>& params);

}  // namespace ember::nn::utils
