// The math of every unary and binary op, as small lambdas shared by every backend: the reference
// loops, the OpenMP loops and the CUDA kernels (which take the lambda as a template argument; the
// lambdas are EMBER_HD so nvcc compiles them for the device) apply the same formula, so backends
// differ only in order and threading. `visit_unary(op, a, b, body)` calls body(f) with f: T -> T for the op.
#pragma once
#include <cmath>
#include <type_traits>

#include "ember/kernels/backend.h"
#include "ember/kernels/dispatch.h"
#include "ember/kernels/host_device.h"

namespace ember::kernels {

template <class T>
EMBER_HD inline T sigmoid_of(T x) {
  return T(1) / (T(1) + std::exp(-x));
}

// The type GELU is evaluated in: double on the host, the type itself on a GPU (where double
// arithmetic is slow). (The integer and bool instantiations exist only because the dispatch makes
// every op for every type; GELU rejects them before any kernel runs.)
#if defined(__CUDA_ARCH__)
template <class T>
using gelu_acc_t = T;
#else
template <class T>
using gelu_acc_t = double;
#endif

template <class T, class Body>
void visit_unary(UnaryOp op, double a, double b, Body&& body) {
  const T ta = static_cast<T>(a), tb = static_cast<T>(b);
  switch (op) {
    case UnaryOp::Neg: return body([] EMBER_HD(T x) { return static_cast<T>(-x); });
    case UnaryOp::Exp: return body([] EMBER_HD(T x) { return static_cast<T>(std::exp(x)); });
    case UnaryOp::Log: return body([] EMBER_HD(T x) { return static_cast<T>(std::log(x)); });
    case UnaryOp::Log1p: return body([] EMBER_HD(T x) { return static_cast<T>(std::log1p(x)); });
    case UnaryOp::Sqrt: return body([] EMBER_HD(T x) { return static_cast<T>(std::sqrt(x)); });
    case UnaryOp::Rsqrt: return body([] EMBER_HD(T x) { return static_cast<T>(T(1) / std::sqrt(x)); });
    case UnaryOp::Abs: return body([] EMBER_HD(T x) { return static_cast<T>(x < T(0) ? -x : x); });
    case UnaryOp::Sign: return body([] EMBER_HD(T x) { return static_cast<T>((T(0) < x) - (x < T(0))); });
    case UnaryOp::Sin: return body([] EMBER_HD(T x) { return static_cast<T>(std::sin(x)); });
    case UnaryOp::Cos: return body([] EMBER_HD(T x) { return static_cast<T>(std::cos(x)); });
    case UnaryOp::Tanh: return body([] EMBER_HD(T x) { return static_cast<T>(std::tanh(x)); });
    case UnaryOp::Sigmoid: return body([] EMBER_HD(T x) { return sigmoid_of(x); });
    case UnaryOp::Relu: return body([] EMBER_HD(T x) { return x < T(0) ? T(0) : x; });
    case UnaryOp::LeakyRelu:
      return body([ta] EMBER_HD(T x) { return x < T(0) ? static_cast<T>(x * ta) : x; });
    // On the host the GELUs are evaluated in double and rounded once: float32 results as close to
    // the exact value as they can be (tests/test_accuracy.cpp holds them to PyTorch's distance).
    case UnaryOp::Gelu:
      return body([] EMBER_HD(T x) {
        using A = gelu_acc_t<T>;
        const A v = static_cast<A>(x);
        return static_cast<T>(A(0.5) * v * (A(1) + std::erf(v * A(0.70710678118654752440))));
      });
    case UnaryOp::GeluTanh:
      return body([] EMBER_HD(T x) {
        using A = gelu_acc_t<T>;
        const A v = static_cast<A>(x);
        const A inner = A(0.79788456080286535588) * (v + A(0.044715) * v * v * v);
        return static_cast<T>(A(0.5) * v * (A(1) + std::tanh(inner)));
      });
    case UnaryOp::Silu: return body([] EMBER_HD(T x) { return static_cast<T>(x * sigmoid_of(x)); });
    case UnaryOp::Softplus:
      return body([ta, tb] EMBER_HD(T x) {
        return x * ta > tb ? x : static_cast<T>(std::log1p(std::exp(x * ta)) / ta);
      });
    case UnaryOp::Clamp: return body([ta, tb] EMBER_HD(T x) { return x < ta ? ta : (x > tb ? tb : x); });
    case UnaryOp::PowScalar:
      if (a == 2.0) return body([] EMBER_HD(T x) { return static_cast<T>(x * x); });
      return body([a] EMBER_HD(T x) { return static_cast<T>(std::pow(x, static_cast<T>(a))); });
    case UnaryOp::Reciprocal: return body([] EMBER_HD(T x) { return static_cast<T>(T(1) / x); });
    case UnaryOp::Square: return body([] EMBER_HD(T x) { return static_cast<T>(x * x); });
    case UnaryOp::Erf: return body([] EMBER_HD(T x) { return static_cast<T>(std::erf(x)); });
    case UnaryOp::LogicalNot: return body([] EMBER_HD(T x) { return static_cast<T>(x == T(0)); });
    case UnaryOp::AddScalar: return body([ta] EMBER_HD(T x) { return static_cast<T>(x + ta); });
    case UnaryOp::MulScalar: return body([ta] EMBER_HD(T x) { return static_cast<T>(x * ta); });
  }
}

// body(f) with f: (T, T) -> T for arithmetic ops, (T, T) -> bool for comparisons and logic.
template <class T, class Body>
void visit_binary(BinaryOp op, Body&& body) {
  switch (op) {
    case BinaryOp::Add: return body([] EMBER_HD(T x, T y) { return static_cast<T>(x + y); });
    case BinaryOp::Sub: return body([] EMBER_HD(T x, T y) { return static_cast<T>(x - y); });
    case BinaryOp::Mul: return body([] EMBER_HD(T x, T y) { return static_cast<T>(x * y); });
    case BinaryOp::Div:
      if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
        // Integer division (only reached through floor-style callers) rounds toward -inf.
        return body([] EMBER_HD(T x, T y) {
          if (y == 0) return T(0);
          T q = x / y;
          return static_cast<T>((x % y != 0 && ((x < 0) != (y < 0))) ? q - 1 : q);
        });
      } else {
        return body([] EMBER_HD(T x, T y) { return static_cast<T>(x / y); });
      }
    case BinaryOp::Pow: return body([] EMBER_HD(T x, T y) { return static_cast<T>(std::pow(x, y)); });
    case BinaryOp::Maximum: return body([] EMBER_HD(T x, T y) { return (x != x || x > y) ? x : y; });
    case BinaryOp::Minimum: return body([] EMBER_HD(T x, T y) { return (x != x || x < y) ? x : y; });
    case BinaryOp::GeluBackward:
    case BinaryOp::GeluTanhBackward:
      if constexpr (std::is_floating_point_v<T>) {
        if (op == BinaryOp::GeluBackward)
          return body([] EMBER_HD(T g, T x) {  // Phi(x) + x phi(x)
            using A = gelu_acc_t<T>;
            const A v = static_cast<A>(x);
            const A cdf = A(0.5) * (A(1) + std::erf(v * A(0.70710678118654752440)));
            const A pdf = std::exp(A(-0.5) * v * v) * A(0.39894228040143267794);
            return static_cast<T>(static_cast<A>(g) * (cdf + v * pdf));
          });
        return body([] EMBER_HD(T g, T x) {  // (1 + t) / 2 + x (1 - t^2) u' / 2, t = tanh(u)
          using A = gelu_acc_t<T>;
          const A v = static_cast<A>(x), k = A(0.79788456080286535588), c = A(0.044715);
          const A t = std::tanh(k * (v + c * v * v * v));
          const A d = A(0.5) * (A(1) + t) + A(0.5) * v * (A(1) - t * t) * k * (A(1) + A(3) * c * v * v);
          return static_cast<T>(static_cast<A>(g) * d);
        });
      } else {
        return body([] EMBER_HD(T, T) { return T(0); });  // core sends floating dtypes only
      }
    case BinaryOp::ReluBackward:  // PyTorch's threshold_backward: a NaN output passes the gradient
      return body([] EMBER_HD(T g, T y) { return y <= T(0) ? T(0) : g; });
    case BinaryOp::Eq: return body([] EMBER_HD(T x, T y) { return x == y; });
    case BinaryOp::Ne: return body([] EMBER_HD(T x, T y) { return x != y; });
    case BinaryOp::Lt: return body([] EMBER_HD(T x, T y) { return x < y; });
    case BinaryOp::Le: return body([] EMBER_HD(T x, T y) { return x <= y; });
    case BinaryOp::Gt: return body([] EMBER_HD(T x, T y) { return x > y; });
    case BinaryOp::Ge: return body([] EMBER_HD(T x, T y) { return x >= y; });
    case BinaryOp::LogicalAnd: return body([] EMBER_HD(T x, T y) { return x != T(0) && y != T(0); });
    case BinaryOp::LogicalOr: return body([] EMBER_HD(T x, T y) { return x != T(0) || y != T(0); });
    case BinaryOp::LogicalXor: return body([] EMBER_HD(T x, T y) { return (x != T(0)) != (y != T(0)); });
  }
}

// Accumulator type for sums: float sums in double in the reference, ints in int64.
template <class T>
using acc_t = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;

template <class T>
EMBER_HD inline bool is_nan(T v) {
  if constexpr (std::is_floating_point_v<T>) return std::isnan(v);
  else return false;
}

// Sort order with NaN treated as larger than everything (PyTorch puts NaN last ascending).
template <class T>
EMBER_HD inline bool less_nan_last(T x, T y) {
  if constexpr (std::is_floating_point_v<T>) {
    if (std::isnan(y)) return !std::isnan(x);
    if (std::isnan(x)) return false;
  }
  return x < y;
}

}  // namespace ember::kernels
