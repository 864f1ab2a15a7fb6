// Layer normalisation of one row, forward and backward, in plain loops: the CUDA backend's row code.
// With xhat = (x - mean) * rstd and g = dy * w:
//   dx = rstd * (g - mean(g) - xhat * mean(g * xhat)),  dw += dy * xhat,  db += dy.
#pragma once
#include <cmath>
#include <cstdint>
#include "ember/kernels/host_device.h"

namespace ember::kernels {

template <class T>
EMBER_HD inline void layer_norm_row_forward(const T* x, const T* w, const T* b, int64_t n, double eps, T* y,
                                            T* mean_out, T* rstd_out) {
  double sum = 0;
  for (int64_t j = 0; j < n; ++j) sum += x[j];
  const double mean = sum / static_cast<double>(n);
  double sq = 0;
  for (int64_t j = 0; j < n; ++j) {
    const double d = x[j] - mean;
    sq += d * d;
  }
  const double rstd = 1.0 / std::sqrt(sq / static_cast<double>(n) + eps);
  const T m = static_cast<T>(mean), r = static_cast<T>(rstd);
  for (int64_t j = 0; j < n; ++j) {
    T v = (x[j] - m) * r;
    if (w) v = v * w[j];
    if (b) v = v + b[j];
    y[j] = v;
  }
  *mean_out = m;
  *rstd_out = r;
}

// Writes dx for the row; adds the row's share into dw/db (when given).
template <class T>
EMBER_HD inline void layer_norm_row_backward(const T* x, const T* w, T mean, T rstd, const T* dy, int64_t n,
                                             T* dx, T* dw, T* db) {
  double mg = 0, mgx = 0;
  for (int64_t j = 0; j < n; ++j) {
    const double xhat = (x[j] - mean) * rstd;
    const double g = w ? dy[j] * w[j] : dy[j];
    mg += g;
    mgx += g * xhat;
    if (dw) dw[j] = static_cast<T>(dw[j] + dy[j] * xhat);
    if (db) db[j] = static_cast<T>(db[j] + dy[j]);
  }
  mg /= static_cast<double>(n);
  mgx /= static_cast<double>(n);
  for (int64_t j = 0; j < n; ++j) {
    const double xhat = (x[j] - mean) * rstd;
    const double g = w ? dy[j] * w[j] : dy[j];
    dx[j] = static_cast<T>(rstd * (g - mg - xhat * mgx));
  }
}

}  // namespace ember::kernels
