// Packed float32 GEMM (see sgemm.h), compiled once per instruction-set level (cpu_isa.h).
// Structure, from the outside in:
//   for each block of NC columns of B and KC rows of B:
//     pack B[kc x nc] into NR-wide column panels (contiguous, zero-padded)        -> stays in L2/L3
//     for each block of MC rows of A (split across threads):
//       pack A[mc x kc] into MR-tall row panels (contiguous, zero-padded)          -> stays in L2
//       for each NR-panel of B and MR-panel of A: the micro-kernel computes an MR x NR tile of C in
//       registers, streaming the two panels from cache.
// Packing makes every micro-kernel read contiguous and handles transposed inputs for free. The
// micro-kernel's shape comes from the register file of the level (AVX-512: 14 x 32, 28 of its 32
// zmm registers hold C; AVX2: 6 x 16, 12 of 16 ymm); KC and MC come from the cache sizes this CPU
// reports, so an NR x KC panel of B fills about two thirds of L1 and an MC x KC block of A a
// quarter of L2. The portable level has no packed kernel: the backend uses Eigen there.
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "ember/kernels/cpu/cpu_capability.h"
#include "ember/kernels/cpu/cpu_isa.h"
#if EMBER_CPU_ISA > 0
#include <immintrin.h>
#endif

EMBER_CPU_ISA_BEGIN
#include "ember/kernels/cpu/sgemm.h"

namespace ember::kernels::EMBER_CPU_ISA_NS {

#if EMBER_CPU_ISA > 0

namespace {

#if EMBER_CPU_ISA == 2
constexpr int64_t MR = 14;  // rows of C per micro-kernel call
constexpr int64_t NR = 32;  // columns of C per micro-kernel call (two 16-float vectors)
using Vec = __m512;
constexpr int kLanes = 16;
inline Vec vzero() { return _mm512_setzero_ps(); }
inline Vec vload(const float* p) { return _mm512_load_ps(p); }
inline Vec vbroadcast(const float* p) { return _mm512_set1_ps(*p); }
inline Vec vfma(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); }
inline void vstore(float* p, Vec v) { _mm512_store_ps(p, v); }
#else
constexpr int64_t MR = 6;
constexpr int64_t NR = 16;  // two 8-float vectors
using Vec = __m256;
constexpr int kLanes = 8;
inline Vec vzero() { return _mm256_setzero_ps(); }
inline Vec vload(const float* p) { return _mm256_load_ps(p); }
inline Vec vbroadcast(const float* p) { return _mm256_broadcast_ss(p); }
inline Vec vfma(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); }
inline void vstore(float* p, Vec v) { _mm256_store_ps(p, v); }
#endif
static_assert(NR == 2 * kLanes, "the micro-kernel holds two vectors of C per row");
constexpr int64_t NC = 4096;  // columns of B packed at once

// Cache blocking from this CPU's caches (read once).
struct Blocking {
  int64_t kc, mc;
};
const Blocking& blocking() {
  static const Blocking b = [] {
    const CpuCacheSizes& caches = cpu_cache_sizes();
    int64_t kc = caches.l1d * 2 / 3 / (NR * 4) / 16 * 16;
    kc = std::clamp<int64_t>(kc, 64, 1024);
    int64_t mc = caches.l2 / 4 / (kc * 4) / MR * MR;
    mc = std::clamp<int64_t>(mc, 4 * MR, 96 * MR);
    return Blocking{kc, mc};
  }();
  return b;
}

// Packing buffers live as long as their thread and only grow: allocating them per call costs page
// faults that were measured at several milliseconds per sgemm_512.
float* scratch(std::vector<float>& buf, size_t n) {
  if (buf.size() < n + 16) buf.resize(n + 16);
  auto addr = reinterpret_cast<uintptr_t>(buf.data());
  return reinterpret_cast<float*>((addr + 63) & ~uintptr_t{63});  // 64-byte aligned
}

// B[pc:pc+kc, jc:jc+nc] -> panels of NR columns: panel p holds, for each k, NR consecutive floats.
void pack_b(bool trans, const float* b, int64_t ldb, int64_t pc, int64_t kc, int64_t jc, int64_t nc,
            float* out) {
  for (int64_t j0 = 0; j0 < nc; j0 += NR) {
    const int64_t w = std::min(NR, nc - j0);
    float* dst = out + j0 * kc;
    for (int64_t p = 0; p < kc; ++p) {
      float* row = dst + p * NR;
      if (!trans && w == NR) {
        const float* src = b + (pc + p) * ldb + jc + j0;
        for (int64_t j = 0; j < NR; ++j) row[j] = src[j];
      } else {
        for (int64_t j = 0; j < w; ++j)
          row[j] = trans ? b[(jc + j0 + j) * ldb + pc + p] : b[(pc + p) * ldb + jc + j0 + j];
        for (int64_t j = w; j < NR; ++j) row[j] = 0.0f;
      }
    }
  }
}

// A[ic:ic+mc, pc:pc+kc] -> panels of MR rows: panel q holds, for each k, MR consecutive floats.
void pack_a(bool trans, const float* a, int64_t lda, int64_t ic, int64_t mc, int64_t pc, int64_t kc,
            float* out) {
  for (int64_t i0 = 0; i0 < mc; i0 += MR) {
    const int64_t h = std::min(MR, mc - i0);
    float* dst = out + i0 * kc;
    for (int64_t p = 0; p < kc; ++p) {
      float* col = dst + p * MR;
      for (int64_t i = 0; i < h; ++i)
        col[i] = trans ? a[(pc + p) * lda + ic + i0 + i] : a[(ic + i0 + i) * lda + pc + p];
      for (int64_t i = h; i < MR; ++i) col[i] = 0.0f;
    }
  }
}

// acc[MR x NR] = A_panel (MR x kc) * B_panel (kc x NR).
inline void micro_kernel(int64_t kc, const float* __restrict A, const float* __restrict B,
                         float* __restrict acc) {
  Vec c[MR][2];
  for (int i = 0; i < MR; ++i) c[i][0] = c[i][1] = vzero();
  for (int64_t p = 0; p < kc; ++p) {
    const Vec b0 = vload(B), b1 = vload(B + kLanes);
#pragma GCC unroll 14
    for (int i = 0; i < MR; ++i) {
      const Vec av = vbroadcast(A + i);
      c[i][0] = vfma(av, b0, c[i][0]);
      c[i][1] = vfma(av, b1, c[i][1]);
    }
    A += MR;
    B += NR;
  }
  for (int i = 0; i < MR; ++i) {
    vstore(acc + i * NR, c[i][0]);
    vstore(acc + i * NR + kLanes, c[i][1]);
  }
}

// Adds the tile into C: C = alpha*acc + (first ? beta*C : C), for the h x w valid part.
inline void store_tile(const float* acc, float* c, int64_t ldc, int64_t h, int64_t w, float alpha,
                       float beta, bool first) {
  for (int64_t i = 0; i < h; ++i) {
    float* row = c + i * ldc;
    const float* t = acc + i * NR;
    if (first && beta == 0.0f) {
      for (int64_t j = 0; j < w; ++j) row[j] = alpha * t[j];
    } else {
      const float scale = first ? beta : 1.0f;
      for (int64_t j = 0; j < w; ++j) row[j] = alpha * t[j] + scale * row[j];
    }
  }
}

}  // namespace

bool packed_sgemm_available() { return true; }

void packed_sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                  const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                  int64_t ldc) {
  const int64_t KC = blocking().kc, MC = blocking().mc;
  const int threads = (m * n * k >= (int64_t{1} << 21)) ? omp_get_max_threads() : 1;
  // Each thread takes a contiguous share of the rows, a whole number of MR panels.
  const int64_t panels = (m + MR - 1) / MR;
  const int64_t mc = ((panels + threads - 1) / threads) * MR;
  static thread_local std::vector<float> bbuf;
  float* bpack = scratch(bbuf, static_cast<size_t>(KC) * ((std::min(n, NC) + NR - 1) / NR * NR));
  for (int64_t jc = 0; jc < n; jc += NC) {
    const int64_t nc = std::min(NC, n - jc);
    for (int64_t pc = 0; pc < k; pc += KC) {
      const int64_t kc = std::min(KC, k - pc);
      const bool first = pc == 0;
#pragma omp parallel num_threads(threads) if (threads > 1)
      {
        const int t = omp_get_thread_num(), nt = omp_get_num_threads();
        // Pack B together: each thread packs a share of the NR-panels.
        const int64_t bpanels = (nc + NR - 1) / NR;
        for (int64_t q = t; q < bpanels; q += nt)
          pack_b(trans_b, b, ldb, pc, kc, jc + q * NR, std::min(NR, nc - q * NR),
                 bpack + q * NR * kc);
#pragma omp barrier
        // This thread's rows, in blocks of MC whose packed A stays in L2 while every B panel
        // streams past it.
        const int64_t row_begin = t * mc, row_end = std::min(m, row_begin + mc);
        static thread_local std::vector<float> abuf;
        float* apack = scratch(abuf, static_cast<size_t>(kc) * MC);
        alignas(64) float acc[MR * NR];
        for (int64_t ic = row_begin; ic < row_end; ic += MC) {
          const int64_t my_m = std::min(MC, row_end - ic);
          pack_a(trans_a, a, lda, ic, my_m, pc, kc, apack);
          for (int64_t j0 = 0; j0 < nc; j0 += NR) {
            const int64_t w = std::min(NR, nc - j0);
            for (int64_t i0 = 0; i0 < my_m; i0 += MR) {
              const int64_t h = std::min(MR, my_m - i0);
              micro_kernel(kc, apack + i0 * kc, bpack + j0 * kc, acc);
              store_tile(acc, c + (ic + i0) * ldc + jc + j0, ldc, h, w, alpha, beta, first);
            }
          }
        }
#pragma omp barrier
      }
    }
  }
}

#else  // the portable level: the CPU backend uses Eigen for large GEMMs

bool packed_sgemm_available() { return false; }
void packed_sgemm(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*,
                  int64_t, float, float*, int64_t) {}

#endif

bool small_sgemm_applies(int64_t m, int64_t n, int64_t k) {
  return (m <= 16 || k <= 16) && m * n * k >= 4096;
}

void small_sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                 const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                 int64_t ldc) {
  auto A = [&](int64_t i, int64_t p) { return trans_a ? a[p * lda + i] : a[i * lda + p]; };
  // Start C at beta * C (beta == 0 ignores C's contents, as BLAS does).
  for (int64_t i = 0; i < m; ++i) {
    float* row = c + i * ldc;
    if (beta == 0.0f) std::fill(row, row + n, 0.0f);
    else if (beta != 1.0f)
      for (int64_t j = 0; j < n; ++j) row[j] *= beta;
  }
  if (trans_b) {
    // B is stored [n, k]: every C entry is a dot product of two contiguous rows.
    std::vector<float> at(static_cast<size_t>(m * k));
    for (int64_t i = 0; i < m; ++i)
      for (int64_t p = 0; p < k; ++p) at[i * k + p] = A(i, p);
    for (int64_t j = 0; j < n; ++j) {
      const float* bj = b + j * ldb;
      for (int64_t i = 0; i < m; ++i) {
        const float* ai = at.data() + i * k;
        float dot = 0;
#pragma omp simd reduction(+ : dot)
        for (int64_t p = 0; p < k; ++p) dot += ai[p] * bj[p];
        c[i * ldc + j] += alpha * dot;
      }
    }
    return;
  }
  // B is stored [k, n]: C[i, :] += A[i, p] * B[p, :], each B row read once per block of C rows.
  for (int64_t i = 0; i < m; ++i) {
    float* row = c + i * ldc;
    for (int64_t p = 0; p < k; ++p) {
      const float s = alpha * A(i, p);
      const float* bp = b + p * ldb;
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) row[j] += s * bp[j];
    }
  }
}

}  // namespace ember::kernels::EMBER_CPU_ISA_NS
EMBER_CPU_ISA_END
