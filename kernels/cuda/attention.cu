// Fused attention, flash-attention-2 style: the L x S score matrix never exists. A block takes a tile
// of 16 query rows, keeps them in shared memory and streams the keys and values past them 16 rows at a
// time. For each key tile it computes the 16x16 scores, updates every row's running maximum m and
// running sum l (the "online softmax": earlier partial results are rescaled by exp(m_old - m_new)) and
// adds P·V into the row's output accumulators, which live in registers. At the end out = acc / l and
// lse = m + log l is saved for the backward.
//
// Backward recomputes P from the saved lse (p = exp(s - lse)) instead of storing it, in two kernels so
// that every output element has exactly one writer (deterministic, no atomics):
//   - over key tiles:   dv_j = sum_i p_ij dO_i,  dk_j = scale * sum_i ds_ij q_i
//   - over query tiles: dq_i = scale * sum_j ds_ij k_j
// with ds_ij = p_ij (dO_i·v_j - D_i) and D_i = dO_i·out_i (the softmax backward's row term).
//
// Thread layout (all three kernels): 128 threads = 16 tile rows x 8 lanes. The 8 lanes of a row sit in
// one warp; a lane owns the columns lane, lane+8, lane+16, ... of its row's vectors, and a row's
// maximum and sums are combined with xor-shuffles inside the 8-lane group. The CPU reference is
// kernels/reference/attention_rows.h (one query row at a time).
#include "ember/kernels/cuda/cuda_kernels.h"
#include "ember/kernels/cuda/grid.h"
#include "ember/kernels/cuda/portability.h"
#include "ember/kernels/dispatch.h"
#include "ember/kernels/host_device.h"

namespace ember::kernels::cuda {
namespace {

constexpr int kTile = 16;                       // query rows and key rows per tile
constexpr int kLanes = 8;                       // threads per tile row
constexpr int kThreads = kTile * kLanes;        // 128
constexpr int kMaxDim = 256;                    // head and value dims this kernel takes
constexpr int kPerLane = kMaxDim / kLanes;      // accumulators per thread
constexpr int kScoresPerLane = kTile / kLanes;  // score columns per thread

struct MaskView {
  int64_t stride[3] = {0, 0, 0};
};

// The problem one launch works on, as plain values (kernel arguments).
template <class T>
struct Problem {
  AttentionShape a;
  const T *q, *k, *v, *mask;
  MaskView ms;

  EMBER_HD int64_t q_tiles() const { return (a.q_len + kTile - 1) / kTile; }
  EMBER_HD int64_t k_tiles() const { return (a.kv_len + kTile - 1) / kTile; }
  // Whether query i sees key j (inside both lengths and, when causal, j <= i).
  EMBER_HD bool visible(int64_t i, int64_t j) const {
    return i < a.q_len && j < a.kv_len && (!a.causal || j <= i);
  }
  // scale * q_i·k_j + mask, from the rows staged in shared memory.
  EMBER_HD T score(const T* q_row, const T* k_row, int64_t b, int64_t i, int64_t j) const {
    T dot = 0;
    for (int64_t e = 0; e < a.head_dim; ++e) dot += q_row[e] * k_row[e];
    T s = dot * static_cast<T>(a.scale);
    if (mask) s += mask[b * ms.stride[0] + i * ms.stride[1] + j * ms.stride[2]];
    return s;
  }
};

// Copies rows [first, first + kTile) of a [rows, width] matrix into a [kTile, width] shared tile,
// zeros past the last row. All threads of the block take part.
template <class T>
__device__ void load_tile(T* tile, const T* src, int64_t first, int64_t rows, int64_t width) {
  for (int64_t idx = threadIdx.x; idx < kTile * width; idx += kThreads) {
    const int64_t row = first + idx / width;
    tile[idx] = row < rows ? src[row * width + idx % width] : T(0);
  }
}

// Sum and maximum over the 8 lanes of a tile row (every lane gets the result).
template <class T>
__device__ T row_sum(T v) {
  for (int offset = kLanes / 2; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}
template <class T>
__device__ T row_max(T v) {
  for (int offset = kLanes / 2; offset > 0; offset /= 2) {
    const T other = __shfl_xor_sync(0xffffffffu, v, offset);
    v = other > v ? other : v;
  }
  return v;
}

// The softmax backward's row term D_i = dO_i·out_i of query row `row` (0 past the last row), summed
// by the 8 lanes of a tile row; every lane gets it.
template <class T>
__device__ T row_output_dot(const T* go, const T* out, int64_t row, bool valid, int64_t Dv, int lane) {
  T part = 0;
  for (int64_t e = lane; e < Dv && valid; e += kLanes) part += go[row * Dv + e] * out[row * Dv + e];
  return row_sum(part);
}

template <class T>
__global__ void flash_forward_kernel(Problem<T> p, T* out, T* lse) {
  const int64_t D = p.a.head_dim, Dv = p.a.v_dim, L = p.a.q_len, S = p.a.kv_len;
  T* Qs = ember_dynamic_shared<T>();  // [kTile, D]
  T* Ks = Qs + kTile * D;             // [kTile, D]
  T* Vs = Ks + kTile * D;             // [kTile, Dv]
  T* Ps = Vs + kTile * Dv;            // [kTile, kTile] this tile's probabilities
  const int r = threadIdx.x / kLanes, lane = threadIdx.x % kLanes;
  for (int64_t tile = blockIdx.x; tile < p.a.batch * p.q_tiles(); tile += gridDim.x) {
    const int64_t b = tile / p.q_tiles(), i0 = tile % p.q_tiles() * kTile, i = i0 + r;
    __syncthreads();  // the previous tile's readers are done with shared memory
    load_tile(Qs, p.q + b * L * D, i0, L, D);
    T m = -INFINITY, l = 0, acc[kPerLane];
    for (int t = 0; t < kPerLane; ++t) acc[t] = 0;
    const int64_t key_end = p.a.causal ? (S < i0 + kTile ? S : i0 + kTile) : S;
    for (int64_t j0 = 0; j0 < key_end; j0 += kTile) {
      __syncthreads();  // last key tile's readers are done
      load_tile(Ks, p.k + b * p.a.k_step(), j0, S, D);
      load_tile(Vs, p.v + b * p.a.v_step(), j0, S, Dv);
      __syncthreads();
      T s[kScoresPerLane], tile_max = -INFINITY;
      for (int t = 0; t < kScoresPerLane; ++t) {
        const int c = lane + t * kLanes;
        s[t] = p.visible(i, j0 + c) ? p.score(Qs + r * D, Ks + c * D, b, i, j0 + c) : T(-INFINITY);
        tile_max = s[t] > tile_max ? s[t] : tile_max;
      }
      const T m_new = row_max(tile_max > m ? tile_max : m);
      // Rows that have seen only masked keys so far keep m = -inf and contribute nothing.
      const T rescale = m == T(-INFINITY) ? T(0) : T(exp(m - m_new));
      T tile_sum = 0;
      for (int t = 0; t < kScoresPerLane; ++t) {
        const T pr = m_new == T(-INFINITY) ? T(0) : T(exp(s[t] - m_new));
        Ps[r * kTile + lane + t * kLanes] = pr;
        tile_sum += pr;
      }
      l = l * rescale + row_sum(tile_sum);
      m = m_new;
      __syncwarp();  // a row's probabilities were written by its own 8 lanes, all in this warp
      for (int t = 0; lane + t * kLanes < Dv; ++t) {
        const int64_t e = lane + t * kLanes;
        T pv = 0;
        for (int c = 0; c < kTile; ++c) pv += Ps[r * kTile + c] * Vs[c * Dv + e];
        acc[t] = acc[t] * rescale + pv;
      }
    }
    if (i < L) {
      const int64_t row = b * L + i;
      const bool attended = m != T(-INFINITY);  // otherwise NaN, like a softmax over only -inf
      for (int t = 0; lane + t * kLanes < Dv; ++t)
        out[row * Dv + lane + t * kLanes] = attended ? acc[t] / l : T(NAN);
      if (lane == 0) lse[row] = attended ? T(m + log(l)) : T(NAN);
    }
  }
}

// dK and dV for one tile of keys, streaming every query tile that can see it.
template <class T>
__global__ void flash_backward_dkdv_kernel(Problem<T> p, const T* out, const T* go, const T* lse, T* gk,
                                           T* gv) {
  const int64_t D = p.a.head_dim, Dv = p.a.v_dim, L = p.a.q_len, S = p.a.kv_len;
  T* Ks = ember_dynamic_shared<T>();                                // [kTile, D]
  T* Vs = Ks + kTile * D;                                           // [kTile, Dv]
  T* Qs = Vs + kTile * Dv;                                          // [kTile, D]
  T* dOs = Qs + kTile * D;                                          // [kTile, Dv]
  T* Ps = dOs + kTile * Dv;                                         // [query row, key row]
  T* dSs = Ps + kTile * kTile;                                      // [query row, key row]
  T* row_lse = dSs + kTile * kTile;                                 // [kTile]
  T* row_D = row_lse + kTile;                                       // [kTile]
  const int c = threadIdx.x / kLanes, lane = threadIdx.x % kLanes;  // this thread's key row
  for (int64_t tile = blockIdx.x; tile < p.a.batch * p.k_tiles(); tile += gridDim.x) {
    const int64_t b = tile / p.k_tiles(), j0 = tile % p.k_tiles() * kTile, j = j0 + c;
    __syncthreads();
    load_tile(Ks, p.k + b * p.a.k_step(), j0, S, D);
    load_tile(Vs, p.v + b * p.a.v_step(), j0, S, Dv);
    T dk[kPerLane], dv[kPerLane];
    for (int t = 0; t < kPerLane; ++t) dk[t] = dv[t] = 0;
    // Causal: queries before j0 see none of these keys.
    for (int64_t i0 = p.a.causal ? j0 : 0; i0 < L; i0 += kTile) {
      __syncthreads();
      load_tile(Qs, p.q + b * L * D, i0, L, D);
      load_tile(dOs, go + b * L * Dv, i0, L, Dv);
      {  // D_i = dO_i·out_i for the tile's query rows (row c of the tile here)
        const int64_t i = i0 + c;
        const T total = row_output_dot(go, out, b * L + i, i < L, Dv, lane);
        if (lane == 0) {
          row_D[c] = total;
          row_lse[c] = i < L ? lse[b * L + i] : T(NAN);
        }
      }
      __syncthreads();
      for (int t = 0; t < kScoresPerLane; ++t) {
        const int r = lane + t * kLanes;
        const int64_t i = i0 + r;
        T pr = 0, ds = 0;
        // A NaN lse marks a query row that attended to nothing: it has no gradient.
        if (p.visible(i, j) && row_lse[r] == row_lse[r]) {
          pr = exp(p.score(Qs + r * D, Ks + c * D, b, i, j) - row_lse[r]);
          T dp = 0;
          for (int64_t e = 0; e < Dv; ++e) dp += dOs[r * Dv + e] * Vs[c * Dv + e];
          ds = pr * (dp - row_D[r]);
        }
        Ps[r * kTile + c] = pr;
        dSs[r * kTile + c] = ds;
      }
      __syncwarp();  // column c of Ps / dSs was written by this key row's own lanes
      for (int t = 0; lane + t * kLanes < Dv; ++t)
        for (int r = 0; r < kTile; ++r) dv[t] += Ps[r * kTile + c] * dOs[r * Dv + lane + t * kLanes];
      for (int t = 0; lane + t * kLanes < D; ++t)
        for (int r = 0; r < kTile; ++r) dk[t] += dSs[r * kTile + c] * Qs[r * D + lane + t * kLanes];
    }
    if (j < S) {
      for (int t = 0; lane + t * kLanes < Dv; ++t) gv[(b * S + j) * Dv + lane + t * kLanes] = dv[t];
      for (int t = 0; lane + t * kLanes < D; ++t)
        gk[(b * S + j) * D + lane + t * kLanes] = dk[t] * static_cast<T>(p.a.scale);
    }
  }
}

// dQ for one tile of queries, streaming the keys it can see.
template <class T>
__global__ void flash_backward_dq_kernel(Problem<T> p, const T* out, const T* go, const T* lse, T* gq) {
  const int64_t D = p.a.head_dim, Dv = p.a.v_dim, L = p.a.q_len, S = p.a.kv_len;
  T* Qs = ember_dynamic_shared<T>();  // [kTile, D]
  T* dOs = Qs + kTile * D;            // [kTile, Dv]
  T* Ks = dOs + kTile * Dv;           // [kTile, D]
  T* Vs = Ks + kTile * D;             // [kTile, Dv]
  T* dSs = Vs + kTile * Dv;           // [query row, key row]
  const int r = threadIdx.x / kLanes, lane = threadIdx.x % kLanes;
  for (int64_t tile = blockIdx.x; tile < p.a.batch * p.q_tiles(); tile += gridDim.x) {
    const int64_t b = tile / p.q_tiles(), i0 = tile % p.q_tiles() * kTile, i = i0 + r;
    __syncthreads();
    load_tile(Qs, p.q + b * L * D, i0, L, D);
    load_tile(dOs, go + b * L * Dv, i0, L, Dv);
    const T row_D = row_output_dot(go, out, b * L + i, i < L, Dv, lane);
    const T row_lse = i < L ? lse[b * L + i] : T(NAN);
    T dq[kPerLane];
    for (int t = 0; t < kPerLane; ++t) dq[t] = 0;
    const int64_t key_end = p.a.causal ? (S < i0 + kTile ? S : i0 + kTile) : S;
    for (int64_t j0 = 0; j0 < key_end; j0 += kTile) {
      __syncthreads();
      load_tile(Ks, p.k + b * p.a.k_step(), j0, S, D);
      load_tile(Vs, p.v + b * p.a.v_step(), j0, S, Dv);
      __syncthreads();
      for (int t = 0; t < kScoresPerLane; ++t) {
        const int c = lane + t * kLanes;
        T ds = 0;
        if (p.visible(i, j0 + c) && row_lse == row_lse) {
          const T pr = exp(p.score(Qs + r * D, Ks + c * D, b, i, j0 + c) - row_lse);
          T dp = 0;
          for (int64_t e = 0; e < Dv; ++e) dp += dOs[r * Dv + e] * Vs[c * Dv + e];
          ds = pr * (dp - row_D);
        }
        dSs[r * kTile + c] = ds;
      }
      __syncwarp();  // row r of dSs was written by this query row's own lanes
      for (int t = 0; lane + t * kLanes < D; ++t)
        for (int c = 0; c < kTile; ++c) dq[t] += dSs[r * kTile + c] * Ks[c * D + lane + t * kLanes];
    }
    if (i < L)
      for (int t = 0; lane + t * kLanes < D; ++t)
        gq[(b * L + i) * D + lane + t * kLanes] = dq[t] * static_cast<T>(p.a.scale);
  }
}

template <class T>
Problem<T> problem_of(const AttentionShape& a, const void* q, const void* k, const void* v, const void* mask,
                      Dims mask_strides) {
  EMBER_CHECK(a.head_dim <= kMaxDim && a.v_dim <= kMaxDim, "cuda attention: head dim ", a.head_dim,
              " and value dim ", a.v_dim, " must be at most ", kMaxDim);
  Problem<T> p{a,
               static_cast<const T*>(q),
               static_cast<const T*>(k),
               static_cast<const T*>(v),
               static_cast<const T*>(mask),
               {}};
  for (size_t d = 0; d < 3 && d < mask_strides.size(); ++d) p.ms.stride[d] = mask_strides[d];
  return p;
}

dim3 tiles_grid(int64_t tiles) { return grid_for(tiles * kThreads, kThreads); }

}  // namespace

void attention_forward(DType dt, const AttentionShape& a, const void* q, const void* k, const void* v,
                       const void* mask, Dims mask_strides, void* out, void* lse) {
  if (a.batch * a.q_len == 0) return;
  dispatch_floating(dt, "cuda attention_forward", [&]<class T>() {
    const auto p = problem_of<T>(a, q, k, v, mask, mask_strides);
    if (a.kv_len == 0 || a.v_dim == 0) {  // no keys: every row attended to nothing
      fill(dt, out, a.batch * a.q_len * a.v_dim, Scalar(NAN));
      fill(dt, lse, a.batch * a.q_len, Scalar(NAN));
      return;
    }
    const size_t smem = sizeof(T) * (kTile * (2 * a.head_dim + a.v_dim) + kTile * kTile);
    EMBER_ALLOW_DYNAMIC_SHARED((flash_forward_kernel<T>), smem);
    EMBER_LAUNCH((flash_forward_kernel<T>), tiles_grid(a.batch * p.q_tiles()), kThreads, smem, gpu::stream(),
                 p, static_cast<T*>(out), static_cast<T*>(lse));
  });
}

void attention_backward(DType dt, const AttentionShape& a, const void* q, const void* k, const void* v,
                        const void* mask, Dims mask_strides, const void* out, const void* grad_out,
                        const void* lse, void* gq, void* gk, void* gv) {
  dispatch_floating(dt, "cuda attention_backward", [&]<class T>() {
    const auto p = problem_of<T>(a, q, k, v, mask, mask_strides);
    const auto* o = static_cast<const T*>(out);
    const auto* g = static_cast<const T*>(grad_out);
    const auto* l = static_cast<const T*>(lse);
    if (a.batch * a.kv_len > 0) {
      const size_t smem = sizeof(T) * (2 * kTile * (a.head_dim + a.v_dim) + 2 * kTile * kTile + 2 * kTile);
      EMBER_ALLOW_DYNAMIC_SHARED((flash_backward_dkdv_kernel<T>), smem);
      EMBER_LAUNCH((flash_backward_dkdv_kernel<T>), tiles_grid(a.batch * p.k_tiles()), kThreads, smem,
                   gpu::stream(), p, o, g, l, static_cast<T*>(gk), static_cast<T*>(gv));
    }
    if (a.batch * a.q_len > 0) {
      const size_t smem = sizeof(T) * (2 * kTile * (a.head_dim + a.v_dim) + kTile * kTile);
      EMBER_ALLOW_DYNAMIC_SHARED((flash_backward_dq_kernel<T>), smem);
      EMBER_LAUNCH((flash_backward_dq_kernel<T>), tiles_grid(a.batch * p.q_tiles()), kThreads, smem,
                   gpu::stream(), p, o, g, l, static_cast<T*>(gq));
    }
  });
}

}  // namespace ember::kernels::cuda
