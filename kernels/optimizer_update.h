// The per-element update of each optimizer, PyTorch's algorithms written as one function of one
// element so a backend applies it in a single pass (reference: a loop; CPU: a parallel loop).
// Buffers by kind:
//   SGD      s0 = momentum_buffer
//   Adam(W)  s0 = exp_avg, s1 = exp_avg_sq, s2 = max_exp_avg_sq (amsgrad)
//   RMSprop  s0 = square_avg, s1 = momentum_buffer, s2 = grad_avg (centered)
//   Adagrad  s0 = sum
#pragma once
#include <cmath>
#include "ember/kernels/host_device.h"

#include "ember/kernels/fused.h"

namespace ember::kernels {

struct UpdateConstants {
  double bias_correction1 = 1, bias_correction2_sqrt = 1, adagrad_lr = 0;
  explicit UpdateConstants(const UpdateSpec& s) {
    using K = OptimizerKind;
    if (s.kind == K::Adam || s.kind == K::AdamW) {
      bias_correction1 = 1 - std::pow(s.beta1, static_cast<double>(s.step));
      bias_correction2_sqrt = std::sqrt(1 - std::pow(s.beta2, static_cast<double>(s.step)));
    }
    if (s.kind == K::Adagrad) adagrad_lr = s.lr / (1 + static_cast<double>(s.step - 1) * s.lr_decay);
  }
};

template <class T>
EMBER_HD inline void update_element(const UpdateSpec& s, const UpdateConstants& c, T& p, T grad, T* s0, T* s1,
                                    T* s2) {
  using K = OptimizerKind;
  T g = s.maximize ? -grad : grad;
  if (s.kind == K::AdamW) p = static_cast<T>(p * (1 - s.lr * s.weight_decay));
  else if (s.weight_decay != 0) g = static_cast<T>(g + s.weight_decay * p);
  switch (s.kind) {
    case K::SGD: {
      if (s.momentum != 0) {
        T& buf = *s0;
        buf = s.first_step ? g : static_cast<T>(s.momentum * buf + (1 - s.dampening) * g);
        g = s.nesterov ? static_cast<T>(g + s.momentum * buf) : buf;
      }
      p = static_cast<T>(p - s.lr * g);
      return;
    }
    case K::Adam:
    case K::AdamW: {
      T& m = *s0;
      T& v = *s1;
      m = static_cast<T>(s.beta1 * m + (1 - s.beta1) * g);
      v = static_cast<T>(s.beta2 * v + (1 - s.beta2) * g * g);
      T vhat = v;
      if (s.amsgrad) {
        *s2 = *s2 > v ? *s2 : v;
        vhat = *s2;
      }
      const double denom = std::sqrt(static_cast<double>(vhat)) / c.bias_correction2_sqrt + s.eps;
      p = static_cast<T>(p - (s.lr / c.bias_correction1) * m / denom);
      return;
    }
    case K::RMSprop: {
      T& sq = *s0;
      sq = static_cast<T>(s.alpha * sq + (1 - s.alpha) * g * g);
      double avg;
      if (s.centered) {
        T& ga = *s2;
        ga = static_cast<T>(s.alpha * ga + (1 - s.alpha) * g);
        avg = std::sqrt(static_cast<double>(sq - ga * ga)) + s.eps;
      } else {
        avg = std::sqrt(static_cast<double>(sq)) + s.eps;
      }
      if (s.momentum > 0) {
        T& buf = *s1;
        buf = static_cast<T>(s.momentum * buf + g / avg);
        p = static_cast<T>(p - s.lr * buf);
      } else {
        p = static_cast<T>(p - s.lr * g / avg);
      }
      return;
    }
    case K::Adagrad: {
      T& sum = *s0;
      sum = static_cast<T>(sum + g * g);
      p = static_cast<T>(p - c.adagrad_lr * g / (std::sqrt(static_cast<double>(sum)) + s.eps));
      return;
    }
  }
}

// Applies the update to elements [begin, end): the kind is decided once, outside the loop, so each
// loop is one branch-free formula the compiler vectorises (a per-element switch made SGD on the
// 270k parameters of bench mlp_step_b8 cost a third of the step).
template <class T, OptimizerKind K>
EMBER_CPU_INLINE void update_loop(const UpdateSpec& s, const UpdateConstants& c, int64_t begin, int64_t end,
                                  T* __restrict p, const T* __restrict g, T* __restrict a, T* __restrict b,
                                  T* __restrict d) {
  UpdateSpec fixed = s;
  fixed.kind = K;
  for (int64_t i = begin; i < end; ++i)
    update_element<T>(fixed, c, p[i], g[i], a ? a + i : nullptr, b ? b + i : nullptr, d ? d + i : nullptr);
}

// Plain SGD, the most common small-model case, gets its own loop in T arithmetic.
template <class T>
EMBER_CPU_INLINE void sgd_loop(const UpdateSpec& s, int64_t begin, int64_t end, T* __restrict p,
                               const T* __restrict g, T* __restrict buf) {
  const T lr = static_cast<T>(s.lr), wd = static_cast<T>(s.weight_decay), m = static_cast<T>(s.momentum);
  const T keep = static_cast<T>(1 - s.dampening), sign = s.maximize ? T(-1) : T(1);
  if (!buf) {
#pragma omp simd
    for (int64_t i = begin; i < end; ++i) p[i] -= lr * (sign * g[i] + wd * p[i]);
    return;
  }
  if (s.first_step) {
#pragma omp simd
    for (int64_t i = begin; i < end; ++i) {
      const T gi = sign * g[i] + wd * p[i];
      buf[i] = gi;
      p[i] -= lr * (s.nesterov ? gi + m * gi : gi);
    }
    return;
  }
#pragma omp simd
  for (int64_t i = begin; i < end; ++i) {
    const T gi = sign * g[i] + wd * p[i];
    const T bi = m * buf[i] + keep * gi;
    buf[i] = bi;
    p[i] -= lr * (s.nesterov ? gi + m * bi : bi);
  }
}

// Adam and AdamW, the common large-model case, in T arithmetic with the option branches hoisted:
// the per-element double-precision path cost a quarter of bench mlp_step_b128.
template <class T, bool kDecoupled, bool kAmsgrad>
EMBER_CPU_INLINE void adam_loop(const UpdateSpec& s, const UpdateConstants& c, int64_t begin, int64_t end,
                                T* __restrict p, const T* __restrict g, T* __restrict m, T* __restrict v,
                                T* __restrict vmax) {
  const T b1 = static_cast<T>(s.beta1), b2 = static_cast<T>(s.beta2);
  const T one_b1 = static_cast<T>(1 - s.beta1), one_b2 = static_cast<T>(1 - s.beta2);
  const T step_size = static_cast<T>(s.lr / c.bias_correction1);
  const T bc2 = static_cast<T>(c.bias_correction2_sqrt), eps = static_cast<T>(s.eps);
  const T wd = static_cast<T>(s.weight_decay), sign = s.maximize ? T(-1) : T(1);
  const T decay = static_cast<T>(1 - s.lr * s.weight_decay);
#pragma omp simd
  for (int64_t i = begin; i < end; ++i) {
    T gi = sign * g[i];
    T pi = p[i];
    if constexpr (kDecoupled) pi *= decay;
    else gi += wd * pi;
    const T mi = b1 * m[i] + one_b1 * gi;
    const T vi = b2 * v[i] + one_b2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    T vh = vi;
    if constexpr (kAmsgrad) {
      vh = vmax[i] > vi ? vmax[i] : vi;
      vmax[i] = vh;
    }
    p[i] = pi - step_size * mi / (std::sqrt(vh) / bc2 + eps);
  }
}

template <class T>
EMBER_CPU_INLINE void update_range(const UpdateSpec& s, int64_t begin, int64_t end, void* param,
                                   const void* grad, void* state0, void* state1, void* state2) {
  using K = OptimizerKind;
  const UpdateConstants c(s);
  T* p = static_cast<T*>(param);
  const T* g = static_cast<const T*>(grad);
  T* a = static_cast<T*>(state0);
  T* b = static_cast<T*>(state1);
  T* d = static_cast<T*>(state2);
  switch (s.kind) {
    case K::SGD: return sgd_loop<T>(s, begin, end, p, g, a);
    case K::Adam:
      return s.amsgrad ? adam_loop<T, false, true>(s, c, begin, end, p, g, a, b, d)
                       : adam_loop<T, false, false>(s, c, begin, end, p, g, a, b, d);
    case K::AdamW:
      return s.amsgrad ? adam_loop<T, true, true>(s, c, begin, end, p, g, a, b, d)
                       : adam_loop<T, true, false>(s, c, begin, end, p, g, a, b, d);
    case K::RMSprop: return update_loop<T, K::RMSprop>(s, c, begin, end, p, g, a, b, d);
    case K::Adagrad: return update_loop<T, K::Adagrad>(s, c, begin, end, p, g, a, b, d);
  }
}

}  // namespace ember::kernels
