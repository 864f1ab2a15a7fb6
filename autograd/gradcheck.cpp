// Finite-difference checking of gradients; see gradcheck.h.
#include "ember/autograd/gradcheck.h"

#include <cmath>
#include <sstream>

#include "ember/autograd/engine.h"
#include "ember/autograd/grad_mode.h"
#include "ember/core/ops.h"

namespace ember::autograd {

namespace {

// Perturbs element `flat` of a compact float64 tensor in place (no autograd).
void nudge(Tensor& t, int64_t flat, double delta) {
  double* p = t.data_ptr<double>();
  p[flat] += delta;
}

GradcheckResult check_once(const GradcheckFn& fn, const variable_list& inputs, const GradcheckOptions& opts) {
  for (size_t i = 0; i < inputs.size(); ++i)
    if (inputs[i].requires_grad())
      EMBER_CHECK(inputs[i].dtype() == kFloat64 && inputs[i].is_contiguous(), "gradcheck: input ", i,
                  " must be a compact float64 tensor, got ", dtype_name(inputs[i].dtype()), " ",
                  inputs[i].sizes());
  Tensor out0 = fn(inputs);
  EMBER_CHECK(out0.dtype() == kFloat64, "gradcheck: the function must return float64, got ",
              dtype_name(out0.dtype()));
  const int64_t n_out = out0.numel();
  Tensor out_flat = out0.reshape({-1});

  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].requires_grad()) continue;
    Tensor x = inputs[i];
    const int64_t n_in = x.numel();
    // Analytic Jacobian, one output element at a time: rows[o] = d out[o] / d x.
    std::vector<std::vector<double>> analytic(n_out);
    for (int64_t o = 0; o < n_out; ++o) {
      if (!out_flat.requires_grad()) {  // the output does not depend on any input: zero Jacobian
        analytic[o].assign(n_in, 0.0);
        continue;
      }
      Tensor seed = zeros({n_out}, kFloat64);
      seed.data_ptr<double>()[o] = 1.0;
      variable_list g = grad({out_flat}, {x}, {seed}, true, false, true);
      analytic[o] = g[0].defined() ? g[0].to_vector<double>() : std::vector<double>(n_in, 0.0);
    }
    // Numerical Jacobian by central differences, one input element at a time.
    for (int64_t j = 0; j < n_in; ++j) {
      // Grad mode stays on: when checking double backward, fn itself runs a backward.
      Tensor xd = x.detach();
      nudge(xd, j, opts.eps);
      std::vector<double> plus = fn(inputs).to_vector<double>();
      nudge(xd, j, -2 * opts.eps);
      std::vector<double> minus = fn(inputs).to_vector<double>();
      nudge(xd, j, opts.eps);
      for (int64_t o = 0; o < n_out; ++o) {
        const double numerical = (plus[o] - minus[o]) / (2 * opts.eps);
        const double a = analytic[o][j];
        if (!(std::abs(a - numerical) <= opts.atol + opts.rtol * std::abs(numerical))) {
          std::ostringstream os;
          os << "gradcheck: Jacobian mismatch for input " << i << " (shape " << shape_str(x.sizes())
             << "), output element " << o << ", input element " << j << ": analytic " << a << " vs numerical "
             << numerical;
          return {false, os.str()};
        }
      }
    }
  }
  return {};
}

}  // namespace

GradcheckResult gradcheck(const GradcheckFn& fn, const variable_list& inputs, GradcheckOptions opts) {
  GradcheckResult first = check_once(fn, inputs, opts);
  if (!first || !opts.check_double_backward) return first;
  // Double backward: check the map x -> d(sum(fn(x) * w))/dx, with w a fixed random weighting so the
  // second derivatives of all outputs are involved.
  Tensor probe = fn(inputs);
  Tensor w = randn(probe.sizes(), kFloat64);
  GradcheckFn grad_fn = [&](const variable_list& xs) {
    variable_list with_grad;
    for (const auto& x : xs)
      if (x.requires_grad()) with_grad.push_back(x);
    Tensor y = (fn(xs) * w).sum();
    variable_list gs = grad({y}, with_grad, {}, true, true, true);
    std::vector<Tensor> flat;
    for (auto& g : gs)
      if (g.defined()) flat.push_back(g.reshape({-1}));
    return cat(flat, 0);
  };
  GradcheckResult second = check_once(grad_fn, inputs, opts);
  if (!second) second.message = "double backward: " + second.message;
  return second;
}

}  // namespace ember::autograd
