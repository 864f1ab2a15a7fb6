// The reference backend's formulas, one element at a time: every unary and binary op, NaN-aware
// comparison, and PyTorch's optimizer updates. Written for this backend alone (the CPU and CUDA
// backends have their own), so that a mistake in theirs cannot hide behind a shared helper.
// Floating-point values are computed in double and rounded once; integers stay integers.
#pragma once
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "ember/kernels/fused.h"

namespace ember::kernels::reference {

template <class T>
constexpr bool kIsFloat = std::is_floating_point_v<T>;

template <class T>
bool is_nan(T v) {
  if constexpr (kIsFloat<T>) return std::isnan(v);
  else return false;
}

// Ascending order with NaN after everything (PyTorch's sort).
template <class T>
bool less_nan_last(T x, T y) {
  if (is_nan(y)) return !is_nan(x);
  if (is_nan(x)) return false;
  return x < y;
}

// Sums of floats accumulate in double, of integers in int64.
template <class T>
using Accumulator = std::conditional_t<kIsFloat<T>, double, int64_t>;

inline double gelu(double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); }
inline double gelu_tanh(double x) {
  return 0.5 * x * (1 + std::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
}
inline double sigmoid(double x) { return 1 / (1 + std::exp(-x)); }
// The GELUs' derivatives: Phi(x) + x phi(x), and the tanh form's by the product and chain rules
// with sech^2 = 1 / cosh^2.
inline double gelu_grad(double x) {
  return 0.5 * (1 + std::erf(x / std::sqrt(2.0))) + x * std::exp(-0.5 * x * x) / std::sqrt(2 * M_PI);
}
inline double gelu_tanh_grad(double x) {
  const double k = std::sqrt(2.0 / M_PI), u = k * (x + 0.044715 * x * x * x);
  const double sech = 1 / std::cosh(u);
  return 0.5 * (1 + std::tanh(u)) + 0.5 * x * sech * sech * k * (1 + 3 * 0.044715 * x * x);
}

template <class T>
T unary_value(UnaryOp op, T x, double a, double b) {
  if constexpr (!kIsFloat<T>) {
    // Integers (and bool): the ops that keep them integers, computed in the type itself.
    const T ta = static_cast<T>(a), tb = static_cast<T>(b);
    switch (op) {
      case UnaryOp::Neg: return static_cast<T>(-x);
      case UnaryOp::Abs: return x < T(0) ? static_cast<T>(-x) : x;
      case UnaryOp::Sign: return static_cast<T>(x > T(0) ? 1 : (x < T(0) ? -1 : 0));
      case UnaryOp::Relu: return x < T(0) ? T(0) : x;
      case UnaryOp::Clamp: return x < ta ? ta : (x > tb ? tb : x);
      case UnaryOp::Square: return static_cast<T>(x * x);
      case UnaryOp::LogicalNot: return static_cast<T>(x == T(0));
      case UnaryOp::AddScalar: return static_cast<T>(x + ta);
      case UnaryOp::MulScalar: return static_cast<T>(x * ta);
      case UnaryOp::LeakyRelu: return x < T(0) ? static_cast<T>(x * ta) : x;
      default: return static_cast<T>(unary_value<double>(op, static_cast<double>(x), a, b));
    }
  } else {
    const double v = x;
    switch (op) {
      case UnaryOp::Neg: return static_cast<T>(-v);
      case UnaryOp::Exp: return static_cast<T>(std::exp(v));
      case UnaryOp::Log: return static_cast<T>(std::log(v));
      case UnaryOp::Log1p: return static_cast<T>(std::log1p(v));
      case UnaryOp::Sqrt: return static_cast<T>(std::sqrt(v));
      case UnaryOp::Rsqrt: return static_cast<T>(1 / std::sqrt(v));
      case UnaryOp::Abs: return static_cast<T>(std::fabs(v));
      case UnaryOp::Sign: return static_cast<T>(v > 0 ? 1 : (v < 0 ? -1 : 0));
      case UnaryOp::Sin: return static_cast<T>(std::sin(v));
      case UnaryOp::Cos: return static_cast<T>(std::cos(v));
      case UnaryOp::Tanh: return static_cast<T>(std::tanh(v));
      case UnaryOp::Sigmoid: return static_cast<T>(sigmoid(v));
      case UnaryOp::Relu: return v < 0 ? T(0) : x;
      case UnaryOp::LeakyRelu: return v < 0 ? static_cast<T>(v * static_cast<T>(a)) : x;
      case UnaryOp::Gelu: return static_cast<T>(gelu(v));
      case UnaryOp::GeluTanh: return static_cast<T>(gelu_tanh(v));
      case UnaryOp::Silu: return static_cast<T>(v * sigmoid(v));
      case UnaryOp::Softplus: {  // a = beta, b = threshold: linear above it
        const double beta = static_cast<T>(a);
        return v * beta > static_cast<T>(b) ? x : static_cast<T>(std::log1p(std::exp(v * beta)) / beta);
      }
      case UnaryOp::Clamp: {
        const T lo = static_cast<T>(a), hi = static_cast<T>(b);
        return x < lo ? lo : (x > hi ? hi : x);
      }
      case UnaryOp::PowScalar: return static_cast<T>(std::pow(v, static_cast<double>(static_cast<T>(a))));
      case UnaryOp::Reciprocal: return static_cast<T>(1 / v);
      case UnaryOp::Square: return static_cast<T>(v * v);
      case UnaryOp::Erf: return static_cast<T>(std::erf(v));
      case UnaryOp::LogicalNot: return static_cast<T>(v == 0);
      case UnaryOp::AddScalar: return static_cast<T>(v + static_cast<T>(a));
      case UnaryOp::MulScalar: return static_cast<T>(v * static_cast<T>(a));
    }
    return x;
  }
}

// Arithmetic: the value in T. Integer division rounds toward -inf (floor_divide), x / 0 gives 0.
template <class T>
T arithmetic_value(BinaryOp op, T x, T y) {
  if constexpr (!kIsFloat<T>) {
    switch (op) {
      case BinaryOp::Add: return static_cast<T>(x + y);
      case BinaryOp::Sub: return static_cast<T>(x - y);
      case BinaryOp::Mul: return static_cast<T>(x * y);
      case BinaryOp::Div: {
        if (y == 0) return T(0);
        if constexpr (std::is_same_v<T, bool>) return x;  // y is true
        else {
          const T q = static_cast<T>(x / y);
          return static_cast<T>(q * y != x && ((x < 0) != (y < 0)) ? q - 1 : q);
        }
      }
      case BinaryOp::Pow: return static_cast<T>(std::pow(static_cast<double>(x), static_cast<double>(y)));
      case BinaryOp::Maximum: return x > y ? x : y;
      case BinaryOp::Minimum: return x < y ? x : y;
      default: return T(0);
    }
  } else {
    const double u = x, v = y;
    switch (op) {
      case BinaryOp::Add: return static_cast<T>(u + v);
      case BinaryOp::Sub: return static_cast<T>(u - v);
      case BinaryOp::Mul: return static_cast<T>(u * v);
      case BinaryOp::Div: return static_cast<T>(u / v);
      case BinaryOp::Pow: return static_cast<T>(std::pow(u, v));
      case BinaryOp::Maximum: return std::isnan(u) || std::isnan(v) ? static_cast<T>(NAN) : (u > v ? x : y);
      case BinaryOp::Minimum: return std::isnan(u) || std::isnan(v) ? static_cast<T>(NAN) : (u < v ? x : y);
      case BinaryOp::GeluBackward: return static_cast<T>(u * gelu_grad(v));
      case BinaryOp::GeluTanhBackward: return static_cast<T>(u * gelu_tanh_grad(v));
      case BinaryOp::ReluBackward: return v <= 0 ? T(0) : x;
      default: return T(0);
    }
  }
}

// Comparisons and logic: a bool.
template <class T>
bool predicate_value(BinaryOp op, T x, T y) {
  switch (op) {
    case BinaryOp::Eq: return x == y;
    case BinaryOp::Ne: return x != y;
    case BinaryOp::Lt: return x < y;
    case BinaryOp::Le: return x <= y;
    case BinaryOp::Gt: return x > y;
    case BinaryOp::Ge: return x >= y;
    case BinaryOp::LogicalAnd: return x != T(0) && y != T(0);
    case BinaryOp::LogicalOr: return x != T(0) || y != T(0);
    case BinaryOp::LogicalXor: return (x != T(0)) != (y != T(0));
    default: return false;
  }
}

// One element of one optimizer step, PyTorch's algorithm as its documentation writes it, in double.
// The state buffers by kind: SGD s0 = momentum_buffer; Adam(W) s0 = exp_avg, s1 = exp_avg_sq,
// s2 = max_exp_avg_sq; RMSprop s0 = square_avg, s1 = momentum_buffer, s2 = grad_avg; Adagrad s0 = sum.
template <class T>
void optimizer_step(const UpdateSpec& s, T& param, T grad, T* s0, T* s1, T* s2) {
  double p = param, g = s.maximize ? -static_cast<double>(grad) : static_cast<double>(grad);
  const double t = static_cast<double>(s.step);
  if (s.kind == OptimizerKind::AdamW) p *= 1 - s.lr * s.weight_decay;
  else if (s.weight_decay != 0) g += s.weight_decay * p;
  switch (s.kind) {
    case OptimizerKind::SGD:
      if (s.momentum != 0) {
        const double b = s.first_step ? g : s.momentum * *s0 + (1 - s.dampening) * g;
        *s0 = static_cast<T>(b);
        g = s.nesterov ? g + s.momentum * b : b;
      }
      p -= s.lr * g;
      break;
    case OptimizerKind::Adam:
    case OptimizerKind::AdamW: {
      const double m = s.beta1 * *s0 + (1 - s.beta1) * g, v = s.beta2 * *s1 + (1 - s.beta2) * g * g;
      *s0 = static_cast<T>(m);
      *s1 = static_cast<T>(v);
      double v_used = v;
      if (s.amsgrad) {
        v_used = std::max<double>(*s2, v);
        *s2 = static_cast<T>(v_used);
      }
      const double m_hat = m / (1 - std::pow(s.beta1, t)), v_hat = v_used / (1 - std::pow(s.beta2, t));
      p -= s.lr * m_hat / (std::sqrt(v_hat) + s.eps);
      break;
    }
    case OptimizerKind::RMSprop: {
      const double sq = s.alpha * *s0 + (1 - s.alpha) * g * g;
      *s0 = static_cast<T>(sq);
      double mean_sq = sq;
      if (s.centered) {
        const double ga = s.alpha * *s2 + (1 - s.alpha) * g;
        *s2 = static_cast<T>(ga);
        mean_sq -= ga * ga;
      }
      const double step = g / (std::sqrt(mean_sq) + s.eps);
      if (s.momentum > 0) {
        const double b = s.momentum * *s1 + step;
        *s1 = static_cast<T>(b);
        p -= s.lr * b;
      } else {
        p -= s.lr * step;
      }
      break;
    }
    case OptimizerKind::Adagrad: {
      const double sum = *s0 + g * g;
      *s0 = static_cast<T>(sum);
      p -= s.lr / (1 + (t - 1) * s.lr_decay) * g / (std::sqrt(sum) + s.eps);
      break;
    }
  }
  param = static_cast<T>(p);
}

}  // namespace ember::kernels::reference
