// Fused attention, first version: one thread per (batch, query row), no L x S matrix anywhere.
// Forward takes two passes over the keys (the row maximum, then exp-weights and the weighted sum of
// values) and saves the log-sum-exp; backward rebuilds each weight from it, as the CPU rows do
// (kernels/attention_rows.h has the formulas), and adds into dk/dv with atomics. A tiled,
// shared-memory version (flash-attention 2) is the next step; this one is for correctness.
#include "ember/kernels/cuda/portability.h"
#include "ember/kernels/cuda/cuda_kernels.h"
#include "ember/kernels/cuda/grid.h"
#include "ember/kernels/dispatch.h"
#include "ember/kernels/host_device.h"

namespace ember::kernels::cuda {
namespace {

constexpr int kThreads = 128;
constexpr int kMaxValueDim = 256;  // per-thread accumulator

struct MaskView {
  int64_t stride[3] = {0, 0, 0};
};

template <class T>
struct Rows {
  Backend::AttentionShape a;
  const T *q, *k, *v, *mask;
  MaskView ms;

  EMBER_HD double score(int64_t b, int64_t i, int64_t j) const {
    const T* qi = q + (b * a.q_len + i) * a.head_dim;
    const T* kj = k + (b * a.kv_len + j) * a.head_dim;
    double dot = 0;
    for (int64_t e = 0; e < a.head_dim; ++e) dot += static_cast<double>(qi[e]) * kj[e];
    double s = dot * a.scale;
    if (mask) s += mask[b * ms.stride[0] + i * ms.stride[1] + j * ms.stride[2]];
    return static_cast<double>(static_cast<T>(s));  // rounded like the CPU's score
  }
  EMBER_HD int64_t keys_for(int64_t i) const {
    return a.causal ? (a.kv_len < i + 1 ? a.kv_len : i + 1) : a.kv_len;
  }
};

template <class T>
__global__ void attention_forward_kernel(Rows<T> r, T* out, T* lse) {
  const int64_t rows = r.a.batch * r.a.q_len;
  for (int64_t row = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; row < rows; row += int64_t(gridDim.x) * blockDim.x) {
    const int64_t b = row / r.a.q_len, i = row % r.a.q_len, n = r.keys_for(i);
    T* o = out + row * r.a.v_dim;
    double mx = -INFINITY;
    for (int64_t j = 0; j < n; ++j) {
      const double s = r.score(b, i, j);
      mx = s > mx ? s : mx;
    }
    if (n == 0 || mx == -INFINITY) {  // nothing to attend to: NaN, like softmax of all -inf
      for (int64_t e = 0; e < r.a.v_dim; ++e) o[e] = static_cast<T>(NAN);
      lse[row] = static_cast<T>(NAN);
      continue;
    }
    double acc[kMaxValueDim];
    for (int64_t e = 0; e < r.a.v_dim; ++e) acc[e] = 0;
    double sum = 0;
    for (int64_t j = 0; j < n; ++j) {
      const double p = exp(r.score(b, i, j) - mx);
      sum += p;
      const T* vj = r.v + (b * r.a.kv_len + j) * r.a.v_dim;
      for (int64_t e = 0; e < r.a.v_dim; ++e) acc[e] += p * vj[e];
    }
    for (int64_t e = 0; e < r.a.v_dim; ++e) o[e] = static_cast<T>(acc[e] / sum);
    lse[row] = static_cast<T>(mx + log(sum));
  }
}

template <class T>
__global__ void attention_backward_kernel(Rows<T> r, const T* out, const T* go, const T* lse, T* gq, T* gk, T* gv) {
  const int64_t rows = r.a.batch * r.a.q_len;
  for (int64_t row = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; row < rows; row += int64_t(gridDim.x) * blockDim.x) {
    const int64_t b = row / r.a.q_len, i = row % r.a.q_len, n = r.keys_for(i);
    const T* g = go + row * r.a.v_dim;
    const T* o = out + row * r.a.v_dim;
    const T* qi = r.q + row * r.a.head_dim;
    T* gqi = gq + row * r.a.head_dim;
    for (int64_t e = 0; e < r.a.head_dim; ++e) gqi[e] = 0;
    const double l = lse[row];
    if (l != l) continue;  // NaN: the row attended to nothing
    double D = 0;
    for (int64_t e = 0; e < r.a.v_dim; ++e) D += static_cast<double>(g[e]) * o[e];
    for (int64_t j = 0; j < n; ++j) {
      const double p = exp(r.score(b, i, j) - l);
      const T* vj = r.v + (b * r.a.kv_len + j) * r.a.v_dim;
      T* gvj = gv + (b * r.a.kv_len + j) * r.a.v_dim;
      double dp = 0;
      for (int64_t e = 0; e < r.a.v_dim; ++e) {
        dp += static_cast<double>(g[e]) * vj[e];
        atomicAdd(&gvj[e], static_cast<T>(p * g[e]));
      }
      const double ds = p * (dp - D) * r.a.scale;
      const T* kj = r.k + (b * r.a.kv_len + j) * r.a.head_dim;
      T* gkj = gk + (b * r.a.kv_len + j) * r.a.head_dim;
      for (int64_t e = 0; e < r.a.head_dim; ++e) {
        gqi[e] = static_cast<T>(gqi[e] + ds * kj[e]);
        atomicAdd(&gkj[e], static_cast<T>(ds * qi[e]));
      }
    }
  }
}

template <class T>
Rows<T> rows_of(const Backend::AttentionShape& a, const void* q, const void* k, const void* v, const void* mask,
                Dims mask_strides) {
  EMBER_CHECK(a.v_dim <= kMaxValueDim, "cuda attention: value dim ", a.v_dim, " is above this kernel's limit of ",
              kMaxValueDim);
  Rows<T> r{a, static_cast<const T*>(q), static_cast<const T*>(k), static_cast<const T*>(v),
            static_cast<const T*>(mask), {}};
  for (size_t d = 0; d < 3 && d < mask_strides.size(); ++d) r.ms.stride[d] = mask_strides[d];
  return r;
}

}  // namespace

void attention_forward(DType dt, const Backend::AttentionShape& a, const void* q, const void* k, const void* v,
                       const void* mask, Dims mask_strides, void* out, void* lse) {
  if (a.batch * a.q_len == 0) return;
  dispatch_floating(dt, "cuda attention_forward", [&]<class T>() {
    EMBER_LAUNCH((attention_forward_kernel<T>), grid_for(a.batch * a.q_len, kThreads), kThreads, 0, 0,
                 rows_of<T>(a, q, k, v, mask, mask_strides), static_cast<T*>(out), static_cast<T*>(lse));
  });
}

void attention_backward(DType dt, const Backend::AttentionShape& a, const void* q, const void* k, const void* v,
                        const void* mask, Dims mask_strides, const void* out, const void* grad_out, const void* lse,
                        void* gq, void* gk, void* gv) {
  dispatch_floating(dt, "cuda attention_backward", [&]<class T>() {
    fill(dt, gk, a.batch * a.kv_len * a.head_dim, Scalar(0));
    fill(dt, gv, a.batch * a.kv_len * a.v_dim, Scalar(0));
    if (a.batch * a.q_len == 0) return;
    EMBER_LAUNCH((attention_backward_kernel<T>), grid_for(a.batch * a.q_len, kThreads), kThreads, 0, 0,
                 rows_of<T>(a, q, k, v, mask, mask_strides), static_cast<const T*>(out),
                 static_cast<const T*>(grad_out), static_cast<const T*>(lse), static_cast<T*>(gq), static_cast<T*>(gk),
                 static_cast<T*>(gv));
  });
}

}  // namespace ember::kernels::cuda
