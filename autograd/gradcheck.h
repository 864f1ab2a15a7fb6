// gradcheck: compares autograd's gradients with central finite differences, in float64. The test of
// every differentiable op uses it. For each input that requires grad and each output element, the
// analytic Jacobian row (from autograd::grad) must match (f(x+eps) - f(x-eps)) / 2eps within
// atol + rtol * |numerical|.
#pragma once
#include <functional>
#include <string>

#include "ember/autograd/node.h"

namespace ember::autograd {

struct GradcheckOptions {
  double eps = 1e-6;
  double atol = 1e-5;
  double rtol = 1e-3;
  bool check_double_backward = false;  // also gradcheck the gradient function itself
};

struct GradcheckResult {
  bool ok = true;
  std::string message;  // the first mismatch, with indices and both values
  explicit operator bool() const { return ok; }
};

using GradcheckFn = std::function<Tensor(const variable_list&)>;

GradcheckResult gradcheck(const GradcheckFn& fn, const variable_list& inputs, GradcheckOptions opts = {});

}  // namespace ember::autograd
