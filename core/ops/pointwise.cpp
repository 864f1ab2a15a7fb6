// Elementwise ops. The forward of each goes through one of three helpers (unary_forward,
// binary_forward, where) that handle promotion, broadcasting and 16-bit storage; the gradient is
// written right after, with differentiable ops so it can itself be differentiated.
#include <cmath>

#include "ember/core/ops/internal.h"
#include "ember/core/trace.h"

namespace ember {
using namespace detail;
using kernels::BinaryOp;
using kernels::UnaryOp;

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  const size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    const int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    const int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    if (da != db && da != 1 && db != 1)
      fail(op, ": shapes ", a, " and ", b, " cannot be broadcast together (", da, " vs ", db, " at dim ", i,
           ")");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

namespace {

// Strides that read `t` as if it had shape `out` (0 where it is broadcast).
Shape broadcast_strides(const Tensor& t, const Shape& out) {
  Shape st(out.size(), 0);
  const size_t lead = out.size() - t.sizes().size();
  for (size_t i = 0; i < t.sizes().size(); ++i)
    if (t.sizes()[i] != 1) st[lead + i] = t.strides()[i];
  return st;
}

// Moves a tensor to the dtype an op computes in, outside autograd.
Tensor as_compute(const Tensor& t, DType dt) {
  autograd::NoGradGuard guard;
  return cast_if_needed(t, dt);
}

DType result_type(const Tensor& a, const Tensor& b) {
  // A 0-d tensor beside a higher-dim one only lifts the category, as a Python scalar would.
  const bool a0 = a.dim() == 0, b0 = b.dim() == 0;
  if (a0 != b0) {
    const Tensor& dimmed = a0 ? b : a;
    const Tensor& zero_d = a0 ? a : b;
    const DType t = dimmed.dtype(), s = zero_d.dtype();
    if (is_floating(s) && !is_floating(t)) return promote_types(t, s) == kFloat64 ? kFloat32 : s;
    if (is_integral(s) && t == kBool) return s;
    return t;
  }
  return promote_types(a.dtype(), b.dtype());
}

Tensor unary_forward(UnaryOp op, const Tensor& x, const char* name, double p0 = 0, double p1 = 0,
                     bool float_only = true) {
  DType out_dtype = x.dtype();
  if (float_only && !is_floating(out_dtype)) out_dtype = kFloat32;  // exp(int) is float, as in torch
  const DType work = compute_dtype(out_dtype);
  Tensor in = as_compute(x, work).contiguous();
  Tensor out = make_empty(x.sizes(), work, x.device());
  if (!kernels::backend_for(x.device()).supports(kernels::Op::Unary, work))
    fail(name, ": not supported for dtype ", dtype_name(work));
  backend_of(x).unary(op, work, in.data_ptr(), out.data_ptr(), out.numel(), p0, p1);
  return as_compute(out, out_dtype);
}

Tensor binary_forward(BinaryOp op, const Tensor& a, const Tensor& b, DType dtype, const char* name) {
  check_same_device(a, b, name);
  const Shape shape = broadcast_shapes(a.sizes(), b.sizes(), name);
  const DType work = compute_dtype(dtype);
  Tensor ac = as_compute(a, work), bc = as_compute(b, work);
  const bool boolean_out = kernels::is_comparison(op);
  Tensor out = make_empty(shape, boolean_out ? kBool : work, a.device());
  if (out.numel() == 0) return boolean_out ? out : as_compute(out, dtype);
  backend_of(a).binary(op, work, ac.data_ptr(), broadcast_strides(ac, shape), bc.data_ptr(),
                       broadcast_strides(bc, shape), out.data_ptr(), shape);
  return boolean_out ? out : as_compute(out, dtype);
}

// Writes a op b into `out` directly, when out is compact, already has the broadcast shape and the
// result dtype, and no graph needs recording. Returns false when those conditions do not hold.
bool binary_into(BinaryOp op, Tensor& out, const Tensor& a, const Tensor& b) {
  if (autograd::GradMode::is_enabled() && (a.requires_grad() || b.requires_grad())) return false;
  if (!out.is_contiguous() || is_half(out.dtype()) || a.dtype() != out.dtype() || b.dtype() != out.dtype() ||
      a.device() != out.device() || b.device() != out.device())
    return false;
  if (broadcast_shapes(a.sizes(), b.sizes(), "binary") != out.sizes()) return false;
  if (out.numel() > 0)
    backend_of(out).binary(op, out.dtype(), a.data_ptr(), broadcast_strides(a, out.sizes()), b.data_ptr(),
                           broadcast_strides(b, out.sizes()), out.data_ptr(), out.sizes());
  out.impl()->storage->bump_version();
  return true;
}

Tensor& binary_out(BinaryOp op, Tensor& out, const Tensor& a, const Tensor& b, const char* name) {
  if (binary_into(op, out, a, b)) return out;
  EMBER_CHECK(!(autograd::GradMode::is_enabled() && (a.requires_grad() || b.requires_grad())), name,
              ": out= variants do not record gradients; call it under NoGradGuard or use the "
              "functional form");
  const Shape shape = broadcast_shapes(a.sizes(), b.sizes(), name);
  EMBER_CHECK(out.sizes() == shape, name, ": out has shape ", out.sizes(), " but the result has shape ",
              shape);
  EMBER_CHECK(out.is_contiguous(), name, ": out must be contiguous");
  Tensor r = binary_forward(op, a, b, out.dtype(), name);
  return detail::commit_inplace(out, r, name);
}

Tensor scalar_like(const Tensor& t, Scalar s) {
  return scalar_tensor(s, TensorOptions(promote_with_scalar(t.dtype(), s)).set_device(t.device()));
}

// Scalar add/mul on a floating tensor: one pass, no broadcast machinery.
Tensor scalar_map(UnaryOp op, const Tensor& x, double v, const char* name) {
  return unary_forward(op, x, name, v, 0, true);
}

}  // namespace

// ---- binary arithmetic ------------------------------------------------------------------------

Tensor add(const Tensor& a, const Tensor& b, Scalar alpha) {
  if (alpha.to_double() != 1.0) return add(a, mul(b, alpha));
  Tensor out = binary_forward(BinaryOp::Add, a, b, result_type(a, b), "add");
  autograd::record("add", {a, b}, {out}, {}, [](FunctionNode&, const variable_list& g) -> variable_list {
    return {g[0], g[0]};
  });
  return out;
}

Tensor sub(const Tensor& a, const Tensor& b, Scalar alpha) {
  if (alpha.to_double() != 1.0) return sub(a, mul(b, alpha));
  EMBER_CHECK(a.dtype() != kBool || b.dtype() != kBool,
              "sub: subtracting two bool tensors is not supported; use logical_xor");
  Tensor out = binary_forward(BinaryOp::Sub, a, b, result_type(a, b), "sub");
  autograd::record("sub", {a, b}, {out}, {}, [](FunctionNode& n, const variable_list& g) -> variable_list {
    return {g[0], n.needs_input_grad(1) ? neg(g[0]) : Tensor()};
  });
  return out;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(BinaryOp::Mul, a, b, result_type(a, b), "mul");
  autograd::record("mul", {a, b}, {out}, {a, b},
                   [](FunctionNode& n, const variable_list& g) -> variable_list {
                     Tensor ga, gb;
                     if (n.needs_input_grad(0)) ga = g[0] * n.saved(1);
                     if (n.needs_input_grad(1)) gb = g[0] * n.saved(0);
                     return {ga, gb};
                   });
  return out;
}

Tensor div(const Tensor& a, const Tensor& b) {
  DType dt = result_type(a, b);
  if (!is_floating(dt)) dt = kFloat32;  // true division, as in PyTorch
  Tensor out = binary_forward(BinaryOp::Div, a, b, dt, "div");
  autograd::record("div", {a, b}, {out}, {b, out},
                   [](FunctionNode& n, const variable_list& g) -> variable_list {
                     Tensor b = n.saved(0);
                     Tensor ga, gb;
                     if (n.needs_input_grad(0)) ga = g[0] / b;
                     if (n.needs_input_grad(1)) gb = neg(g[0] * n.saved(1) / b);
                     return {ga, gb};
                   });
  return out;
}

Tensor pow(const Tensor& a, const Tensor& e) {
  const DType dt = result_type(a, e);
  if (!is_floating(dt) && e.numel() > 0) {  // x^-n has no integer value (PyTorch's rule and words)
    autograd::NoGradGuard guard;
    EMBER_CHECK(min(e).to(kInt64).item<int64_t>() >= 0,
                "pow: Integers to negative integer powers are not allowed (base ", a.sizes(), " ",
                dtype_name(a.dtype()), ", exponent ", e.sizes(), " ", dtype_name(e.dtype()), ")");
  }
  Tensor out = binary_forward(BinaryOp::Pow, a, e, dt, "pow");
  autograd::record(
      "pow", {a, e}, {out}, {a, e, out}, [](FunctionNode& n, const variable_list& g) -> variable_list {
        Tensor a = n.saved(0), e = n.saved(1);
        Tensor ga, ge;
        if (n.needs_input_grad(0)) ga = where(e == 0.0, zeros_like(g[0]), g[0] * e * pow(a, e - 1.0));
        if (n.needs_input_grad(1)) {
          // d/de a^e = a^e log a; taken as 0 where a == 0 and e >= 0 (PyTorch's rule).
          Tensor safe = where(logical_and(a == 0.0, e >= 0.0), zeros_like(g[0]), g[0] * n.saved(2) * log(a));
          ge = safe;
        }
        return {ga, ge};
      });
  return out;
}

Tensor maximum(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(BinaryOp::Maximum, a, b, result_type(a, b), "maximum");
  autograd::record("maximum", {a, b}, {out}, {a, b},
                   [](FunctionNode& n, const variable_list& g) -> variable_list {
                     Tensor a = n.saved(0), b = n.saved(1);
                     // Ties share the gradient equally.
                     Tensor half = where(a == b, g[0] / 2.0, g[0]);
                     return {masked_fill(half, a < b, 0), masked_fill(half, b < a, 0)};
                   });
  return out;
}

Tensor minimum(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(BinaryOp::Minimum, a, b, result_type(a, b), "minimum");
  autograd::record("minimum", {a, b}, {out}, {a, b},
                   [](FunctionNode& n, const variable_list& g) -> variable_list {
                     Tensor a = n.saved(0), b = n.saved(1);
                     Tensor half = where(a == b, g[0] / 2.0, g[0]);
                     return {masked_fill(half, a > b, 0), masked_fill(half, b > a, 0)};
                   });
  return out;
}

Tensor& add_out(Tensor& out, const Tensor& a, const Tensor& b) {
  return binary_out(BinaryOp::Add, out, a, b, "add_out");
}
Tensor& sub_out(Tensor& out, const Tensor& a, const Tensor& b) {
  return binary_out(BinaryOp::Sub, out, a, b, "sub_out");
}
Tensor& mul_out(Tensor& out, const Tensor& a, const Tensor& b) {
  return binary_out(BinaryOp::Mul, out, a, b, "mul_out");
}
Tensor& div_out(Tensor& out, const Tensor& a, const Tensor& b) {
  EMBER_CHECK(is_floating(out.dtype()), "div_out: out must be floating point for true division");
  return binary_out(BinaryOp::Div, out, a, b, "div_out");
}

bool detail::try_binary_inplace(kernels::BinaryOp op, Tensor& self, const Tensor& other) {
  // `other` reading memory that self is writing (other than elementwise) would be a race in the loop.
  if (other.impl()->storage == self.impl()->storage && !other.is_same(self)) return false;
  if (op == BinaryOp::Div && !is_floating(self.dtype())) return false;  // true division
  if (trace::recording()) return false;  // the out-of-place op and commit_inplace report themselves
  return binary_into(op, self, self, other);
}

// ---- with a scalar ------------------------------------------------------------------------------

Tensor add(const Tensor& a, Scalar b) {
  if (is_floating(a.dtype())) {
    trace::OpScope scope;
    Tensor out = scalar_map(UnaryOp::AddScalar, a, b.to_double(), "add");
    autograd::record("add", {a}, {out}, {},
                     [](FunctionNode&, const variable_list& g) -> variable_list { return {g[0]}; });
    if (scope.recording()) scope.record("add", {a, scalar_like(a, b)}, {out});
    return out;
  }
  return add(a, scalar_like(a, b));
}
Tensor sub(const Tensor& a, Scalar b) {
  if (b.is_floating()) return add(a, -b.to_double());
  return add(a, Scalar(-b.to_int()));
}
Tensor mul(const Tensor& a, Scalar b) {
  if (is_floating(a.dtype())) {
    const double v = b.to_double();
    trace::OpScope scope;
    Tensor out = scalar_map(UnaryOp::MulScalar, a, v, "mul");
    autograd::record("mul", {a}, {out}, {},
                     [v](FunctionNode&, const variable_list& g) -> variable_list { return {g[0] * v}; });
    if (scope.recording()) scope.record("mul", {a, scalar_like(a, b)}, {out});
    return out;
  }
  return mul(a, scalar_like(a, b));
}
Tensor div(const Tensor& a, Scalar b) {
  if (is_floating(a.dtype())) return mul(a, 1.0 / b.to_double());
  return div(a, scalar_like(a, b));
}
Tensor operator+(Scalar a, const Tensor& b) { return add(b, a); }
Tensor operator-(Scalar a, const Tensor& b) { return add(neg(b), a); }
Tensor operator*(Scalar a, const Tensor& b) { return mul(b, a); }
Tensor operator/(Scalar a, const Tensor& b) { return div(scalar_like(b, a), b); }

Tensor pow(const Tensor& x, Scalar exponent) {
  const double p = exponent.to_double();
  if (!is_floating(x.dtype()) && !exponent.is_floating()) {
    EMBER_CHECK(p >= 0, "pow: Integers to negative integer powers are not allowed (", dtype_name(x.dtype()),
                " tensor of shape ", x.sizes(), " to the power ", p, ")");
    return binary_forward(BinaryOp::Pow, x, scalar_like(x, exponent), x.dtype(), "pow");
  }
  trace::OpScope scope;
  Tensor out = unary_forward(UnaryOp::PowScalar, x, "pow", p);
  autograd::record("pow", {x}, {out}, {x}, [p](FunctionNode& n, const variable_list& g) -> variable_list {
    if (p == 0) return {zeros_like(g[0])};
    if (p == 1) return {g[0]};
    return {g[0] * (pow(n.saved(0), p - 1) * p)};
  });
  if (scope.recording()) scope.record("pow", {x, scalar_like(out, exponent)}, {out});
  return out;
}

Tensor pow(Scalar base, const Tensor& exponent) {
  Tensor b =
      full_like(exponent, base,
                TensorOptions(promote_with_scalar(exponent.dtype(), base)).set_device(exponent.device()));
  return pow(b, exponent);
}

// ---- unary ------------------------------------------------------------------------------------

#define EMBER_UNARY(fn, OP, SAVE, ...)                                                           \
  Tensor fn(const Tensor& x) {                                                                   \
    Tensor out = unary_forward(UnaryOp::OP, x, #fn);                                             \
    autograd::record(#fn, {x}, {out}, SAVE,                                                      \
                     [](FunctionNode & n, const variable_list& g) -> variable_list __VA_ARGS__); \
    return out;                                                                                  \
  }

// The saved list is {x} or {out}; n.saved(0) is that tensor.
EMBER_UNARY(exp, Exp, {out}, { return {g[0] * n.saved(0)}; })
EMBER_UNARY(log, Log, {x}, { return {g[0] / n.saved(0)}; })
EMBER_UNARY(log1p, Log1p, {x}, { return {g[0] / (n.saved(0) + 1.0)}; })
EMBER_UNARY(sqrt, Sqrt, {out}, { return {g[0] / (n.saved(0) * 2.0)}; })
EMBER_UNARY(rsqrt, Rsqrt, {out}, { return {g[0] * pow(n.saved(0), 3) * -0.5}; })
EMBER_UNARY(sin, Sin, {x}, { return {g[0] * cos(n.saved(0))}; })
EMBER_UNARY(cos, Cos, {x}, { return {neg(g[0] * sin(n.saved(0)))}; })
EMBER_UNARY(tanh, Tanh, {out}, {
  Tensor y = n.saved(0);
  return {g[0] * (1.0 - y * y)};
})
EMBER_UNARY(sigmoid, Sigmoid, {out}, {
  Tensor y = n.saved(0);
  return {g[0] * (y * (1.0 - y))};
})
EMBER_UNARY(reciprocal, Reciprocal, {out}, {
  Tensor y = n.saved(0);
  return {neg(g[0] * y * y)};
})
EMBER_UNARY(square, Square, {x}, { return {g[0] * (n.saved(0) * 2.0)}; })
EMBER_UNARY(erf, Erf, {x}, {
  Tensor x = n.saved(0);
  return {g[0] * (exp(neg(x * x)) * 1.1283791670955126)};  // 2/sqrt(pi)
})
EMBER_UNARY(silu, Silu, {x}, {
  Tensor x = n.saved(0);
  Tensor s = sigmoid(x);
  return {g[0] * (s * (1.0 + x * (1.0 - s)))};
})
#undef EMBER_UNARY

Tensor neg(const Tensor& x) {
  EMBER_CHECK(x.dtype() != kBool, "neg: negation of a bool tensor is not supported; use logical_not");
  Tensor out = unary_forward(UnaryOp::Neg, x, "neg", 0, 0, false);
  autograd::record("neg", {x}, {out}, {},
                   [](FunctionNode&, const variable_list& g) -> variable_list { return {neg(g[0])}; });
  return out;
}

Tensor abs(const Tensor& x) {
  Tensor out = unary_forward(UnaryOp::Abs, x, "abs", 0, 0, false);
  autograd::record("abs", {x}, {out}, {x}, [](FunctionNode& n, const variable_list& g) -> variable_list {
    return {g[0] * sign(n.saved(0))};
  });
  return out;
}

Tensor sign(const Tensor& x) {
  Tensor out = unary_forward(UnaryOp::Sign, x, "sign", 0, 0, false);
  autograd::record("sign", {x}, {out}, {},
                   [](FunctionNode&, const variable_list& g) -> variable_list { return {zeros_like(g[0])}; });
  return out;
}

Tensor relu(const Tensor& x) {
  Tensor out = unary_forward(UnaryOp::Relu, x, "relu", 0, 0, false);
  autograd::record("relu", {x}, {out}, {out}, [](FunctionNode& n, const variable_list& g) -> variable_list {
    if (!autograd::GradMode::is_enabled())  // one pass; create_graph needs the formula
      return {binary_forward(BinaryOp::ReluBackward, g[0], n.saved(0), result_type(g[0], n.saved(0)),
                             "relu_backward")};
    return {where(n.saved(0) <= 0, Scalar(0.0), g[0])};  // the same values, differentiable in g
  });
  return out;
}

Tensor leaky_relu(const Tensor& x, double slope) {
  trace::OpScope scope;
  Tensor out = unary_forward(UnaryOp::LeakyRelu, x, "leaky_relu", slope);
  autograd::record("leaky_relu", {x}, {out}, {x},
                   [slope](FunctionNode& n, const variable_list& g) -> variable_list {
                     return {where(n.saved(0) > 0, g[0], g[0] * slope)};
                   });
  if (scope.recording()) scope.record("leaky_relu", {x}, {out}, {.floats = {{"negative_slope", slope}}});
  return out;
}

Tensor gelu(const Tensor& x, const std::string& approximate) {
  EMBER_CHECK(approximate == "none" || approximate == "tanh",
              "gelu: approximate must be \"none\" or \"tanh\", got \"", approximate, "\"");
  const bool tanh_form = approximate == "tanh";
  trace::OpScope scope;
  Tensor out = unary_forward(tanh_form ? UnaryOp::GeluTanh : UnaryOp::Gelu, x, "gelu");
  autograd::record("gelu", {x}, {out}, {x},
                   [tanh_form](FunctionNode& n, const variable_list& g) -> variable_list {
                     Tensor x = n.saved(0);
                     if (!autograd::GradMode::is_enabled())  // one pass; create_graph needs the formula
                       return {binary_forward(tanh_form ? BinaryOp::GeluTanhBackward : BinaryOp::GeluBackward,
                                              g[0], x, result_type(g[0], x), "gelu_backward")};
                     if (!tanh_form) {
                       // d/dx x*Phi(x) = Phi(x) + x*phi(x)
                       Tensor cdf = (erf(x * 0.7071067811865476) + 1.0) * 0.5;
                       Tensor pdf = exp(x * x * -0.5) * 0.3989422804014327;
                       return {g[0] * (cdf + x * pdf)};
                     }
                     const double k = 0.7978845608028654, c = 0.044715;
                     Tensor t = tanh((x + x * x * x * c) * k);
                     Tensor dinner = (x * x * (3 * c) + 1.0) * k;
                     return {g[0] * ((t + 1.0) * 0.5 + x * 0.5 * (1.0 - t * t) * dinner)};
                   });
  if (scope.recording()) scope.record("gelu", {x}, {out}, {.strings = {{"approximate", approximate}}});
  return out;
}

Tensor softplus(const Tensor& x, double beta, double threshold) {
  trace::OpScope scope;
  Tensor out = unary_forward(UnaryOp::Softplus, x, "softplus", beta, threshold);
  autograd::record("softplus", {x}, {out}, {x},
                   [beta, threshold](FunctionNode& n, const variable_list& g) -> variable_list {
                     Tensor bx = n.saved(0) * beta;
                     return {where(bx > threshold, g[0], g[0] * sigmoid(bx))};
                   });
  if (scope.recording())
    scope.record("softplus", {x}, {out}, {.floats = {{"beta", beta}, {"threshold", threshold}}});
  return out;
}

Tensor clamp(const Tensor& x, std::optional<Scalar> min, std::optional<Scalar> max) {
  EMBER_CHECK(min || max, "clamp: at least one of min and max must be given");
  const double lo = min ? min->to_double() : -INFINITY, hi = max ? max->to_double() : INFINITY;
  DType dt = x.dtype();
  if ((min && min->is_floating()) || (max && max->is_floating())) dt = promote_with_scalar(dt, 0.5);
  trace::OpScope scope;
  Tensor in = is_floating(dt) && !is_floating(x.dtype()) ? x.to(dt) : x;
  Tensor out = unary_forward(UnaryOp::Clamp, in, "clamp", lo, hi, false);
  autograd::record("clamp", {x}, {out}, {x},
                   [lo, hi](FunctionNode& n, const variable_list& g) -> variable_list {
                     Tensor x = n.saved(0);
                     return {g[0] * logical_and(x >= lo, x <= hi)};
                   });
  if (scope.recording()) {
    Tensor bounds[2];
    if (min) bounds[0] = scalar_like(out, *min).to(out.dtype());
    if (max) bounds[1] = scalar_like(out, *max).to(out.dtype());
    scope.record("clamp", {in, bounds[0], bounds[1]}, {out});
  }
  return out;
}

// ---- comparisons and logic (bool results, no gradient) ------------------------------------------

#define EMBER_COMPARE(fn, OP)                                                \
  Tensor fn(const Tensor& a, const Tensor& b) {                              \
    trace::OpScope scope;                                                    \
    Tensor out = binary_forward(BinaryOp::OP, a, b, result_type(a, b), #fn); \
    if (scope.recording()) scope.record(#fn, {a, b}, {out});                 \
    return out;                                                              \
  }
EMBER_COMPARE(eq, Eq)
EMBER_COMPARE(ne, Ne)
EMBER_COMPARE(lt, Lt)
EMBER_COMPARE(le, Le)
EMBER_COMPARE(gt, Gt)
EMBER_COMPARE(ge, Ge)
EMBER_COMPARE(logical_and, LogicalAnd)
EMBER_COMPARE(logical_or, LogicalOr)
EMBER_COMPARE(logical_xor, LogicalXor)
#undef EMBER_COMPARE

Tensor operator==(const Tensor& a, Scalar b) { return eq(a, scalar_like(a, b)); }
Tensor operator!=(const Tensor& a, Scalar b) { return ne(a, scalar_like(a, b)); }
Tensor operator<(const Tensor& a, Scalar b) { return lt(a, scalar_like(a, b)); }
Tensor operator<=(const Tensor& a, Scalar b) { return le(a, scalar_like(a, b)); }
Tensor operator>(const Tensor& a, Scalar b) { return gt(a, scalar_like(a, b)); }
Tensor operator>=(const Tensor& a, Scalar b) { return ge(a, scalar_like(a, b)); }

Tensor logical_not(const Tensor& x) {
  trace::OpScope scope;
  Tensor out = unary_forward(UnaryOp::LogicalNot, x, "logical_not", 0, 0, false);
  autograd::NoGradGuard guard;
  out = out.to(kBool);
  if (scope.recording()) scope.record("logical_not", {x}, {out});
  return out;
}

// ---- selection ---------------------------------------------------------------------------------

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  EMBER_CHECK(cond.dtype() == kBool, "where: condition must be a bool tensor, got ",
              dtype_name(cond.dtype()));
  check_same_device(a, b, "where");
  check_same_device(cond, a, "where");
  trace::OpScope scope;
  const Shape shape =
      broadcast_shapes(cond.sizes(), broadcast_shapes(a.sizes(), b.sizes(), "where"), "where");
  const DType dt = result_type(a, b);
  Tensor ac = as_compute(a, dt), bc = as_compute(b, dt);
  Tensor out = make_empty(shape, dt, a.device());
  if (out.numel() > 0)
    backend_of(a).where(dt, cond.data_ptr(), broadcast_strides(cond, shape), ac.data_ptr(),
                        broadcast_strides(ac, shape), bc.data_ptr(), broadcast_strides(bc, shape),
                        out.data_ptr(), shape);
  autograd::record("where", {a, b}, {out}, {cond},
                   [](FunctionNode& n, const variable_list& g) -> variable_list {
                     Tensor c = n.saved(0);
                     Tensor z = zeros_like(g[0]);
                     return {n.needs_input_grad(0) ? where(c, g[0], z) : Tensor(),
                             n.needs_input_grad(1) ? where(c, z, g[0]) : Tensor()};
                   });
  if (scope.recording()) scope.record("where", {cond, a, b}, {out});
  return out;
}

Tensor where(const Tensor& cond, const Tensor& a, Scalar b) { return where(cond, a, scalar_like(a, b)); }
Tensor where(const Tensor& cond, Scalar a, const Tensor& b) { return where(cond, scalar_like(b, a), b); }

Tensor masked_fill(const Tensor& x, const Tensor& mask, Scalar value) {
  EMBER_CHECK(mask.dtype() == kBool, "masked_fill: mask must be a bool tensor, got ",
              dtype_name(mask.dtype()));
  Tensor v = scalar_tensor(value, TensorOptions(x.dtype()).set_device(x.device()));
  return masked_fill(x, mask, v);
}

Tensor masked_fill(const Tensor& x, const Tensor& mask, const Tensor& value) {
  EMBER_CHECK(value.dim() == 0, "masked_fill: value must be a 0-d tensor, got shape ", value.sizes());
  broadcast_shapes(x.sizes(), mask.sizes(), "masked_fill");
  EMBER_CHECK(broadcast_shapes(x.sizes(), mask.sizes(), "masked_fill") == x.sizes(),
              "masked_fill: mask of shape ", mask.sizes(), " does not broadcast to the tensor's shape ",
              x.sizes());
  return where(mask, value.to(x.dtype()), x);
}

Tensor floor_divide(const Tensor& a, Scalar b) {
  EMBER_CHECK(!is_floating(a.dtype()) && !b.is_floating(),
              "floor_divide: only integer tensors and divisors are supported, got ", dtype_name(a.dtype()));
  EMBER_CHECK(b.to_int() != 0, "floor_divide: division by zero");
  return binary_forward(BinaryOp::Div, a, scalar_like(a, b), a.dtype(), "floor_divide");
}

// ---- comparison helpers ------------------------------------------------------------------------

bool allclose(const Tensor& a, const Tensor& b, double rtol, double atol, bool equal_nan) {
  autograd::NoGradGuard guard;
  broadcast_shapes(a.sizes(), b.sizes(), "allclose");
  Tensor x = a.to(kFloat64), y = b.to(kFloat64);
  Tensor close = abs(x - y) <= (abs(y) * rtol + atol);
  close = logical_or(close, x == y);  // equal infinities
  if (equal_nan) close = logical_or(close, logical_and(x != x, y != y));
  return logical_not(close).to(kInt64).sum().item<int64_t>() == 0;
}

bool equal(const Tensor& a, const Tensor& b) {
  if (a.sizes() != b.sizes()) return false;
  autograd::NoGradGuard guard;
  return logical_not(eq(a, b)).to(kInt64).sum().item<int64_t>() == 0;
}

}  // namespace ember
