// The reference backend's fused attention, one query row at a time in double precision: the row's S
// scores live in a scratch row, never an L x S matrix. Backward uses the saved log-sum-exp to rebuild
// p without a second softmax:
//   p_j = exp(s_j - lse),  dv_j += p_j g,  dp_j = g·v_j,  D = g·out,  ds_j = p_j (dp_j - D),
//   dq += scale * sum_j ds_j k_j,  dk_j += scale * ds_j q.
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

#include "ember/kernels/fused.h"

namespace ember::kernels {

template <class T>
struct AttentionRows {
  const AttentionShape& a;
  const T *q, *k, *v, *mask;
  Dims ms;  // mask strides [B, L, S]

  T score(int64_t b, int64_t i, int64_t j) const {
    const T* qi = q + (b * a.q_len + i) * a.head_dim;
    const T* kj = k + b * a.k_step() + j * a.head_dim;
    double dot = 0;
    for (int64_t e = 0; e < a.head_dim; ++e) dot += static_cast<double>(qi[e]) * kj[e];
    double s = dot * a.scale;
    if (mask) s += mask[b * ms[0] + i * ms[1] + j * ms[2]];
    return static_cast<T>(s);
  }
  int64_t keys_for(int64_t i) const { return a.causal ? std::min(a.kv_len, i + 1) : a.kv_len; }

  // out[b,i] and lse[b,i]; `s` is scratch of kv_len.
  void forward_row(int64_t b, int64_t i, T* out, T* lse, std::vector<double>& s) const {
    const int64_t n = keys_for(i);
    double mx = -INFINITY;
    for (int64_t j = 0; j < n; ++j) {
      s[j] = score(b, i, j);
      mx = std::max(mx, s[j]);
    }
    T* o = out + (b * a.q_len + i) * a.v_dim;
    for (int64_t e = 0; e < a.v_dim; ++e) o[e] = 0;
    if (n == 0 || mx == -INFINITY) {  // nothing to attend to: NaN, as softmax of all -inf gives
      for (int64_t e = 0; e < a.v_dim; ++e) o[e] = static_cast<T>(NAN);
      lse[b * a.q_len + i] = static_cast<T>(NAN);
      return;
    }
    double sum = 0;
    for (int64_t j = 0; j < n; ++j) {
      s[j] = std::exp(s[j] - mx);
      sum += s[j];
    }
    std::vector<double> acc(a.v_dim, 0.0);
    for (int64_t j = 0; j < n; ++j) {
      const T* vj = v + b * a.v_step() + j * a.v_dim;
      const double p = s[j] / sum;
      for (int64_t e = 0; e < a.v_dim; ++e) acc[e] += p * vj[e];
    }
    for (int64_t e = 0; e < a.v_dim; ++e) o[e] = static_cast<T>(acc[e]);
    lse[b * a.q_len + i] = static_cast<T>(mx + std::log(sum));
  }

  // Adds row i's contributions: gq[b,i] (overwritten), gk[b,:], gv[b,:] (accumulated).
  void backward_row(int64_t b, int64_t i, const T* out, const T* go, const T* lse, T* gq, T* gk,
                    T* gv) const {
    const int64_t n = keys_for(i);
    const T* g = go + (b * a.q_len + i) * a.v_dim;
    const T* o = out + (b * a.q_len + i) * a.v_dim;
    const T* qi = q + (b * a.q_len + i) * a.head_dim;
    T* gqi = gq + (b * a.q_len + i) * a.head_dim;
    for (int64_t e = 0; e < a.head_dim; ++e) gqi[e] = 0;
    const double l = lse[b * a.q_len + i];
    if (std::isnan(l)) return;
    double D = 0;
    for (int64_t e = 0; e < a.v_dim; ++e) D += static_cast<double>(g[e]) * o[e];
    for (int64_t j = 0; j < n; ++j) {
      const double p = std::exp(static_cast<double>(score(b, i, j)) - l);
      const T* vj = v + b * a.v_step() + j * a.v_dim;
      T* gvj = gv + (b * a.kv_len + j) * a.v_dim;
      double dp = 0;
      for (int64_t e = 0; e < a.v_dim; ++e) {
        dp += static_cast<double>(g[e]) * vj[e];
        gvj[e] = static_cast<T>(gvj[e] + p * g[e]);
      }
      const double ds = p * (dp - D) * a.scale;
      const T* kj = k + b * a.k_step() + j * a.head_dim;
      T* gkj = gk + (b * a.kv_len + j) * a.head_dim;
      for (int64_t e = 0; e < a.head_dim; ++e) {
        gqi[e] = static_cast<T>(gqi[e] + ds * kj[e]);
        gkj[e] = static_cast<T>(gkj[e] + ds * qi[e]);
      }
    }
  }
};

}  // namespace ember::kernels
