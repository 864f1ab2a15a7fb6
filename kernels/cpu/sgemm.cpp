// Packed float32 GEMM (see sgemm.h), compiled once per instruction-set level (cpu_isa.h).
// Structure, from the outside in:
//   for each block of NC columns of B and KC rows of B (depth blocks of equal size):
//     pack B[kc x nc] into NR-wide column panels (contiguous, zero-padded)        -> stays in L2/L3
//     for each block of MC rows of A (split across threads):
//       pack A[mc x kc] into MR-tall row panels (contiguous, zero-padded)          -> stays in L2
//       for each NR-panel of B and MR-panel of A: the micro-kernel computes an MR x NR tile of C in
//       registers, streaming the two panels from cache, and adds it into C.
// A row-major A is not packed where its rows allow (reads_a_in_place): the micro-kernel broadcasts
// its values from the rows where they lie, and only a last, partial panel is packed.
// Threads split the rows and share the packed B, or, for a product with few rows whose column
// panels divide evenly among the threads, the columns (each thread packs its own B panels and takes
// all of A: no barrier); split_columns weighs the two.
// Packing makes every micro-kernel read contiguous and handles transposed inputs for free. The
// micro-kernel's shape comes from the register file of the level (AVX-512: 14 x 32, 28 of its 32
// zmm registers hold C; AVX2: 6 x 16, 12 of 16 ymm); KC and MC come from the cache sizes this CPU
// reports (see blocking()). The portable level has no packed kernel: the backend uses Eigen there.
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>
#include <vector>

#include "ember/kernels/cpu/cpu_capability.h"
#include "ember/kernels/cpu/cpu_isa.h"
#if EMBER_CPU_ISA > 0
#include <immintrin.h>
#endif

// GCC 12 reports its own intrinsics' deliberately undefined values (_mm256_undefined_ps in the
// 512->256 casts, _mm512_undefined_pd in the shuffles) as uninitialised once they are inlined here.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

EMBER_CPU_ISA_BEGIN
#include "ember/kernels/cpu/sgemm.h"

namespace ember::kernels::EMBER_CPU_ISA_NS {

#if EMBER_CPU_ISA > 0

namespace {

// Sum of the 8 lanes of a 256-bit vector: both levels end their horizontal sums here.
inline float sum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

#if EMBER_CPU_ISA == 2
constexpr int64_t MR = 14;  // rows of C per micro-kernel call
constexpr int64_t NR = 32;  // columns of C per micro-kernel call (two 16-float vectors)
using Vec = __m512;
constexpr int kLanes = 16;
inline Vec vzero() { return _mm512_setzero_ps(); }
inline Vec vload(const float* p) { return _mm512_load_ps(p); }
inline Vec vfma(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); }
inline void vstore(float* p, Vec v) { _mm512_store_ps(p, v); }
inline Vec vloadu(const float* p) { return _mm512_loadu_ps(p); }
inline void vstoreu(float* p, Vec v) { _mm512_storeu_ps(p, v); }
inline Vec vset1(float x) { return _mm512_set1_ps(x); }
inline Vec vmul(Vec a, Vec b) { return _mm512_mul_ps(a, b); }
inline float vsum(Vec v) {
  // The upper half by a shuffle (GCC 12 warns inside the 512-bit extract intrinsics' expansion).
  const __m512 upper = _mm512_shuffle_f32x4(v, v, _MM_SHUFFLE(3, 2, 3, 2));
  return sum8(_mm256_add_ps(_mm512_castps512_ps256(v), _mm512_castps512_ps256(upper)));
}
constexpr int kSkinnyRows = 12;  // 24 accumulators + 2 B vectors + 1 broadcast of 32 registers
#else
constexpr int64_t MR = 6;
constexpr int64_t NR = 16;  // two 8-float vectors
using Vec = __m256;
constexpr int kLanes = 8;
inline Vec vzero() { return _mm256_setzero_ps(); }
inline Vec vload(const float* p) { return _mm256_load_ps(p); }
inline Vec vfma(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); }
inline void vstore(float* p, Vec v) { _mm256_store_ps(p, v); }
inline Vec vloadu(const float* p) { return _mm256_loadu_ps(p); }
inline void vstoreu(float* p, Vec v) { _mm256_storeu_ps(p, v); }
inline Vec vset1(float x) { return _mm256_set1_ps(x); }
inline Vec vmul(Vec a, Vec b) { return _mm256_mul_ps(a, b); }
inline float vsum(Vec v) { return sum8(v); }
constexpr int kSkinnyRows = 6;  // 12 accumulators + 2 B vectors + 1 broadcast of 16 registers
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
    // Depth: the NR x KC panel of B a little over L1 (4/3 of it). Deeper panels mean fewer passes
    // over C and fewer packing barriers; measured on Zen 5 (48 KiB L1), KC = 512 beat 256 by 7%
    // on sgemm_1024/2048 and 768-1024 gained nothing more.
    int64_t kc = caches.l1d * 4 / 3 / (NR * 4) / 64 * 64;
    kc = std::clamp<int64_t>(kc, 128, 1024);
    // Rows: the MC x KC block of A in a third of L2.
    int64_t mc = caches.l2 / 3 / (kc * 4) / MR * MR;
    mc = std::clamp<int64_t>(mc, 4 * MR, 96 * MR);
    return Blocking{kc, mc};
  }();
  return b;
}

// Rows per block when `rows` are cut into blocks of at most `limit` (a multiple of MR): equal blocks
// of whole MR panels, so no block is a sliver that streams all of B for a panel or two.
int64_t balanced_block(int64_t rows, int64_t limit) {
  const int64_t blocks = std::max<int64_t>(1, (rows + limit - 1) / limit);
  const int64_t panels = (rows + MR - 1) / MR;
  return (panels + blocks - 1) / blocks * MR;
}

// Packing buffers live as long as their thread and only grow: allocating them per call costs page
// faults that were measured at several milliseconds per sgemm_512.
float* scratch(std::vector<float>& buf, size_t n) {
  if (buf.size() < n + 16) buf.resize(n + 16);
  auto addr = reinterpret_cast<uintptr_t>(buf.data());
  return reinterpret_cast<float*>((addr + 63) & ~uintptr_t{63});  // 64-byte aligned
}

// Both packers transpose: rows of the stored matrix become the interleaved columns of a panel.
// transpose_block writes, for p < len (<= 16), dst[p * dst_stride + r] = src[r * ld + p] for
// r < rows (<= 16) and 0 for rows <= r < width. The AVX-512 level does it in registers (a 16 x 16
// transpose in four rounds of shuffles: 32-bit pairs, 64-bit pairs, 128-bit lanes twice); the
// AVX2 level with plain loops, which read along the rows and write within a few cache lines.
constexpr int64_t kTransposeBlock = 16;  // k values per transpose_block call in both packers

#if EMBER_CPU_ISA == 2
void transpose_block(const float* src, int64_t ld, int rows, int len, float* dst, int64_t dst_stride,
                     int width) {
  const __mmask16 load_mask = static_cast<__mmask16>((1u << len) - 1);
  const __mmask16 store_mask = static_cast<__mmask16>((1u << width) - 1);
  __m512 r[16], t[16];
  for (int i = 0; i < 16; ++i) r[i] = i < rows ? _mm512_maskz_loadu_ps(load_mask, src + i * ld) : vzero();
  for (int i = 0; i < 16; i += 2) {  // t[i] = (a0 b0 a1 b1), t[i+1] = (a2 b2 a3 b3) per 128-bit lane
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int g = 0; g < 4; ++g) {  // r[4g + j]: column 4L + j of rows 4g..4g+3 in lane L
    const __m512* q = t + 4 * g;
    r[4 * g + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(q[0]), _mm512_castps_pd(q[2])));
    r[4 * g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(q[0]), _mm512_castps_pd(q[2])));
    r[4 * g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(q[1]), _mm512_castps_pd(q[3])));
    r[4 * g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(q[1]), _mm512_castps_pd(q[3])));
  }
  for (int j = 0; j < 4; ++j) {
    // Rows 0-7 and 8-15 of columns j, j+8 (even lanes) and j+4, j+12 (odd lanes), then whole columns.
    const __m512 lo_even = _mm512_shuffle_f32x4(r[j], r[4 + j], _MM_SHUFFLE(2, 0, 2, 0));
    const __m512 lo_odd = _mm512_shuffle_f32x4(r[j], r[4 + j], _MM_SHUFFLE(3, 1, 3, 1));
    const __m512 hi_even = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], _MM_SHUFFLE(2, 0, 2, 0));
    const __m512 hi_odd = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], _MM_SHUFFLE(3, 1, 3, 1));
    t[j] = _mm512_shuffle_f32x4(lo_even, hi_even, _MM_SHUFFLE(2, 0, 2, 0));
    t[j + 8] = _mm512_shuffle_f32x4(lo_even, hi_even, _MM_SHUFFLE(3, 1, 3, 1));
    t[j + 4] = _mm512_shuffle_f32x4(lo_odd, hi_odd, _MM_SHUFFLE(2, 0, 2, 0));
    t[j + 12] = _mm512_shuffle_f32x4(lo_odd, hi_odd, _MM_SHUFFLE(3, 1, 3, 1));
  }
  for (int p = 0; p < len; ++p) _mm512_mask_storeu_ps(dst + p * dst_stride, store_mask, t[p]);
}
#else
void transpose_block(const float* src, int64_t ld, int rows, int len, float* dst, int64_t dst_stride,
                     int width) {
  for (int i = 0; i < rows; ++i)
    for (int p = 0; p < len; ++p) dst[p * dst_stride + i] = src[i * ld + p];
  for (int i = rows; i < width; ++i)
    for (int p = 0; p < len; ++p) dst[p * dst_stride + i] = 0.0f;
}
#endif

// B[pc:pc+kc, jc:jc+nc] -> panels of NR columns: panel p holds, for each k, NR consecutive floats.
// A transposed B (stored [n, k]) is transposed 16 k at a time (transpose_block).
void pack_b(bool trans, const float* b, int64_t ldb, int64_t pc, int64_t kc, int64_t jc, int64_t nc,
            float* out) {
  for (int64_t j0 = 0; j0 < nc; j0 += NR) {
    const int64_t w = std::min(NR, nc - j0);
    float* dst = out + j0 * kc;
    if (trans) {  // 16 columns of the panel at a time
      for (int64_t p0 = 0; p0 < kc; p0 += kTransposeBlock) {
        const int len = static_cast<int>(std::min(kTransposeBlock, kc - p0));
        for (int64_t j = 0; j < NR; j += 16)
          transpose_block(b + (jc + j0 + j) * ldb + pc + p0, ldb,
                          static_cast<int>(std::clamp<int64_t>(w - j, 0, 16)), len, dst + p0 * NR + j, NR,
                          16);
      }
      continue;
    }
    for (int64_t p = 0; p < kc; ++p) {
      float* row = dst + p * NR;
      const float* src = b + (pc + p) * ldb + jc + j0;
      if (w == NR) {
        for (int64_t j = 0; j < NR; ++j) row[j] = src[j];
        continue;
      }
      for (int64_t j = 0; j < w; ++j) row[j] = src[j];
      for (int64_t j = w; j < NR; ++j) row[j] = 0.0f;
    }
  }
}

// A[ic:ic+mc, pc:pc+kc] -> panels of MR rows: panel q holds, for each k, MR consecutive floats.
// A row-major A is transposed 16 columns at a time (transpose_block).
void pack_a(bool trans, const float* a, int64_t lda, int64_t ic, int64_t mc, int64_t pc, int64_t kc,
            float* out) {
  for (int64_t i0 = 0; i0 < mc; i0 += MR) {
    const int64_t h = std::min(MR, mc - i0);
    float* dst = out + i0 * kc;
    if (trans) {
      for (int64_t p = 0; p < kc; ++p) {
        const float* src = a + (pc + p) * lda + ic + i0;
        float* col = dst + p * MR;
        if (h == MR) {  // a fixed-size copy the compiler turns into a few vector moves
          std::memcpy(col, src, sizeof(float) * MR);
          continue;
        }
        for (int64_t i = 0; i < h; ++i) col[i] = src[i];
        for (int64_t i = h; i < MR; ++i) col[i] = 0.0f;
      }
      continue;
    }
    for (int64_t p0 = 0; p0 < kc; p0 += kTransposeBlock)
      transpose_block(a + (ic + i0) * lda + pc + p0, lda, static_cast<int>(h),
                      static_cast<int>(std::min(kTransposeBlock, kc - p0)), dst + p0 * MR, MR, MR);
  }
}

// Where the micro-kernel reads A(i, p), row i of its panel at depth p: from a packed panel (MR
// floats per depth, contiguous), or from a row-major A where it lies, which saves packing it: for a
// row-major A packing is a transpose, about a fifth of the time of a [640, 128] x [128, 128]
// product. The rows are addressed from a base every four rows plus 0, 1, 2 or 3 times lda, so the
// fourteen rows' broadcasts need a few registers, not one pointer each.
struct PackedPanel {
  const float* a;
  float at(int i, int64_t p) const { return a[p * MR + i]; }
};
struct RowMajorPanel {
  const float* base[(MR + 3) / 4];
  int64_t lda;
  RowMajorPanel(const float* a, int64_t ld) : lda(ld) {
    for (int g = 0; g < (MR + 3) / 4; ++g) base[g] = a + 4 * g * ld;
  }
  float at(int i, int64_t p) const { return base[i / 4][(i % 4) * lda + p]; }
};

// The R x NR tile of A's panel (its first R rows) * B_panel (kc x NR), finished into C in
// registers: C = alpha * tile + beta * C (beta 0: C is not read). A tile that overhangs C's edge
// (h < R or w < NR) goes through a buffer, of which only the h x w valid part is written.
template <int R, class Panel>
void micro_kernel_rows(int64_t kc, const Panel A, const float* __restrict B, float* c, int64_t ldc, int64_t h,
                       int64_t w, float alpha, float beta) {
  // C's rows lie a whole row apart, often in the same cache sets: fetch them while the k loop runs.
  for (int64_t i = 0; i < h; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + w - 1), _MM_HINT_T0);
  }
  Vec acc[R][2];
  for (int i = 0; i < R; ++i) acc[i][0] = acc[i][1] = vzero();
#pragma GCC unroll 4
  for (int64_t p = 0; p < kc; ++p) {
    // Both packed panels come from L2 (B's is a little over L1): fetch them 12 depths ahead
    // (sgemm_1024 about 5% faster; 6 and 24 ahead did no better).
    if constexpr (std::is_same_v<Panel, PackedPanel>) {
      _mm_prefetch(reinterpret_cast<const char*>(&A.a[(p + 12) * MR]), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(B + 12 * NR), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(B + 12 * NR + kLanes), _MM_HINT_T0);
    }
    const Vec b0 = vload(B), b1 = vload(B + kLanes);
#pragma GCC unroll 14
    for (int i = 0; i < R; ++i) {
      const Vec av = vset1(A.at(i, p));
      acc[i][0] = vfma(av, b0, acc[i][0]);
      acc[i][1] = vfma(av, b1, acc[i][1]);
    }
    B += NR;
  }
  const Vec va = vset1(alpha), vb = vset1(beta);
  if (h == R && w == NR) {
    for (int i = 0; i < R; ++i) {
      float* row = c + i * ldc;
      for (int half = 0; half < 2; ++half) {
        Vec out = vmul(va, acc[i][half]);
        if (beta != 0.0f) out = vfma(vb, vloadu(row + half * kLanes), out);
        vstoreu(row + half * kLanes, out);
      }
    }
    return;
  }
  alignas(64) float tile[R * NR];
  for (int i = 0; i < R; ++i) {
    vstore(tile + i * NR, acc[i][0]);
    vstore(tile + i * NR + kLanes, acc[i][1]);
  }
  for (int64_t i = 0; i < h; ++i) {
    float* row = c + i * ldc;
    const float* t = tile + i * NR;
    for (int64_t j = 0; j < w; ++j) row[j] = beta == 0.0f ? alpha * t[j] : alpha * t[j] + beta * row[j];
  }
}

// The tile of the first h rows of a packed panel: the last panel of a C whose rows are not a
// multiple of MR (128 = 9 x 14 + 2) runs a kernel of a half or a quarter of the rows instead of 14.
inline void micro_kernel(int64_t kc, const float* A, const float* B, float* c, int64_t ldc, int64_t h,
                         int64_t w, float alpha, float beta) {
  constexpr int kHalf = MR / 2, kQuarter = MR / 4 > 0 ? MR / 4 : 1;
  if (h <= kQuarter) micro_kernel_rows<kQuarter>(kc, PackedPanel{A}, B, c, ldc, h, w, alpha, beta);
  else if (h <= kHalf) micro_kernel_rows<kHalf>(kc, PackedPanel{A}, B, c, ldc, h, w, alpha, beta);
  else micro_kernel_rows<MR>(kc, PackedPanel{A}, B, c, ldc, h, w, alpha, beta);
}

}  // namespace

// How the threads share a depth block of C = A B: by columns (each multiplies all of A by its own
// panels of B, no barrier) or by rows (each takes its share of A, B packed together behind a
// barrier; a thread's rows are whole MR panels, so an odd count leaves one thread a panel more).
// Columns need columns that divide evenly and an A that fits the L2 of each thread (at most two MC
// blocks: reading a larger A twice would stream it from memory twice). Then each way's slowest
// thread is costed in cycles: per float of A packed (`pack_a`: a row-major A is transposed in
// registers, ~0.3 a float, unless it is read where it lies), per multiply-add (two FMAs of kLanes a
// cycle) and per barrier; B's packing is the same both ways. So a [620, 512] A times a 512 x 64 B
// splits by rows, since packing A is a transpose; read in place, a [640, 128] A splits by columns
// (and, when it was still packed, seq2seq_step ran about 4% faster split by rows).
bool split_columns(double pack_a, int64_t m, int64_t n, int64_t k, int64_t bpanels, int64_t row_panels,
                   int64_t mc, int nt) {
  if (bpanels % nt != 0 || row_panels * MR > 2 * mc) return false;
  const double madd = 1.0 / (2 * kLanes), barrier = 3000;
  const double rows_each = static_cast<double>(std::min(m, (row_panels + nt - 1) / nt * MR));
  const double by_rows =
      rows_each * static_cast<double>(k) * (pack_a + static_cast<double>(n) * madd) + barrier;
  const double by_columns =
      static_cast<double>(m * k) * (pack_a + static_cast<double>(n) / static_cast<double>(nt) * madd);
  return by_columns <= by_rows;
}

// Whether the whole MR-row panels of a row-major A are read where they lie (RowMajorPanel) instead
// of packed. Not when rows lie a multiple of 2 KiB apart (lda a multiple of 512 floats): then the
// fourteen rows of a panel fall into one or two L1 sets, more than its ways hold, and sgemm_1024
// and sgemm_2048 ran 3-8% slower read in place; sgemm_256 and mha_fwd_bwd ran 4-7% faster.
bool reads_a_in_place(bool trans_a, int64_t lda) { return !trans_a && lda % 512 != 0; }

bool packed_sgemm_available() { return true; }

void packed_sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                  int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  const int64_t MC = blocking().mc;
  // Depth blocks of equal size (k = 640 as 320 + 320, not 512 + 128): a shallow last block pays the
  // per-tile cost of reading and writing C for little arithmetic.
  const int64_t depth_blocks = (k + blocking().kc - 1) / blocking().kc;
  const int64_t KC = ((k + depth_blocks - 1) / depth_blocks + 15) / 16 * 16;
  // Inside the caller's parallel region (a fused kernel giving each thread its own products) a
  // nested team would have one thread anyway.
  const int threads = m * n * k >= (int64_t{1} << 21) && !omp_in_parallel() ? omp_get_max_threads() : 1;
  const bool direct_a = reads_a_in_place(trans_a, lda);
  // Packing cost of A per float, for split_columns: a transposing pack, a copy, or none.
  const double pack_a_cost = direct_a ? 0.02 : trans_a ? 0.1 : 0.3;
  static thread_local std::vector<float> bbuf;
  float* bpack = scratch(bbuf, static_cast<size_t>(KC) * ((std::min(n, NC) + NR - 1) / NR * NR));
  for (int64_t jc = 0; jc < n; jc += NC) {
    const int64_t nc = std::min(NC, n - jc);
    const int64_t bpanels = (nc + NR - 1) / NR;
    for (int64_t pc = 0; pc < k; pc += KC) {
      const int64_t kc = std::min(KC, k - pc);
      const float beta_here = pc == 0 ? beta : 1.0f;  // later depth blocks add to C
      // C[r0:r1, jc + q0*NR : jc + q1*NR] from this thread's packed A and B panels q0..q1, in
      // blocks of rows whose packed A stays in L2 while the B panels stream past it.
      auto multiply = [&](int64_t r0, int64_t r1, int64_t q0, int64_t q1) {
        static thread_local std::vector<float> abuf;
        float* apack = scratch(abuf, static_cast<size_t>(kc) * MC);
        const int64_t block_rows = balanced_block(r1 - r0, MC);
        for (int64_t ic = r0; ic < r1; ic += block_rows) {
          const int64_t rows = std::min(block_rows, r1 - ic);
          // A row-major A's whole panels are read where they lie; the rest is packed.
          const int64_t direct_rows = direct_a ? rows / MR * MR : 0;
          if (direct_rows < rows)
            pack_a(trans_a, a, lda, ic + direct_rows, rows - direct_rows, pc, kc, apack + direct_rows * kc);
          for (int64_t q = q0; q < q1; ++q) {
            const int64_t j0 = q * NR, w = std::min(NR, nc - j0);
            for (int64_t i0 = 0; i0 < rows; i0 += MR) {
              float* ct = c + (ic + i0) * ldc + jc + j0;
              if (i0 < direct_rows)
                micro_kernel_rows<MR>(kc, RowMajorPanel(a + (ic + i0) * lda + pc, lda), bpack + j0 * kc, ct,
                                      ldc, MR, w, alpha, beta_here);
              else
                micro_kernel(kc, apack + i0 * kc, bpack + j0 * kc, ct, ldc, std::min(MR, rows - i0), w, alpha,
                             beta_here);
            }
          }
        }
      };
      auto pack_b_panels = [&](int64_t q0, int64_t q1, int64_t step) {
        for (int64_t q = q0; q < q1; q += step)
          pack_b(trans_b, b, ldb, pc, kc, jc + q * NR, std::min(NR, nc - q * NR), bpack + q * NR * kc);
      };
      // Thread t of nt's part of the block. With one thread it runs here, outside any parallel
      // region of its own (a one-thread team costs about a microsecond per block): then it may be
      // inside the caller's region (a batched product gives each thread whole matrices), so it
      // neither asks OpenMP who it is nor meets a barrier.
      auto block = [&](int64_t t, int64_t nt) {
        if (nt == 1) {
          pack_b_panels(0, bpanels, 1);
          multiply(0, m, 0, bpanels);
          return;
        }
        const int64_t row_panels = (m + MR - 1) / MR;
        if (split_columns(pack_a_cost, m, n, kc, bpanels, row_panels, MC, nt)) {
          // Each thread multiplies all of A by its own panels of B, which it packs.
          const int64_t share = bpanels / nt;
          pack_b_panels(t * share, (t + 1) * share, 1);
          multiply(0, m, t * share, (t + 1) * share);
          return;
        }
        // Otherwise the threads pack B together and split the rows, a whole number of MR panels
        // each; the barrier after keeps the next depth block from repacking B under a slow thread.
        pack_b_panels(t, bpanels, nt);
#pragma omp barrier
        const int64_t share = (row_panels + nt - 1) / nt * MR;
        multiply(std::min(m, t * share), std::min(m, (t + 1) * share), 0, bpanels);
#pragma omp barrier
      };
      if (threads > 1) {
#pragma omp parallel num_threads(threads)
        block(omp_get_thread_num(), omp_get_num_threads());
      } else {
        block(0, 1);
      }
    }
  }
}

#else  // the portable level: the CPU backend uses Eigen for large GEMMs

bool packed_sgemm_available() { return false; }
void packed_sgemm(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*, int64_t,
                  float, float*, int64_t) {}

#endif

bool small_sgemm_applies(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k) {
  return (m <= 16 || k <= 16 || (trans_b && !trans_a && n <= 16)) && m * n * k >= 4096;
}

namespace {

// The skinny GEMMs read both operands where they lie (no packing: for these shapes packing costs as
// much as the multiply) and keep a block of C in registers for the whole k loop, so each FMA costs
// at most one load. a_rs/a_cs step A(i, p) along i and p, whichever way A is stored.
struct SkinnyArgs {
  int64_t k;
  const float* a;
  int64_t a_rs, a_cs;
  const float* b;
  int64_t ldb;
  float alpha, beta;
  float* c;
  int64_t ldc;
};

// The finished value of one C entry from its dot product: alpha * dot + beta * C (beta 0 ignores C).
inline float finish(float dot, const SkinnyArgs& s, const float* cij) {
  return s.beta == 0.0f ? s.alpha * dot : s.alpha * dot + s.beta * *cij;
}

#if EMBER_CPU_ISA > 0
// C[i0 : i0+R, j0 : j0+NR] for B stored [k, n]: each B row segment (two vectors) meets R broadcast
// entries of A.
template <int R>
void skinny_nn_tile(const SkinnyArgs& s, int64_t i0, int64_t j0) {
  Vec acc[R][2];
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = vzero();
  const float* a = s.a + i0 * s.a_rs;
  for (int64_t p = 0; p < s.k; ++p) {
    const float* bp = s.b + p * s.ldb + j0;
    const Vec b0 = vloadu(bp), b1 = vloadu(bp + kLanes);
    for (int r = 0; r < R; ++r) {
      const Vec av = vset1(a[r * s.a_rs + p * s.a_cs]);
      acc[r][0] = vfma(av, b0, acc[r][0]);
      acc[r][1] = vfma(av, b1, acc[r][1]);
    }
  }
  const Vec alpha = vset1(s.alpha), beta = vset1(s.beta);
  for (int r = 0; r < R; ++r) {
    float* cr = s.c + (i0 + r) * s.ldc + j0;
    for (int h = 0; h < 2; ++h) {
      Vec out = vmul(alpha, acc[r][h]);
      if (s.beta != 0.0f) out = vfma(beta, vloadu(cr + h * kLanes), out);
      vstoreu(cr + h * kLanes, out);
    }
  }
}

template <int R>
void skinny_nn_rows(const SkinnyArgs& s, int64_t i0, int64_t n) {
  for (int64_t j0 = 0; j0 + NR <= n; j0 += NR) skinny_nn_tile<R>(s, i0, j0);
}

template <int... Rs>
void skinny_nn_rows_dispatch(const SkinnyArgs& s, int64_t i0, int rows, int64_t n,
                             std::integer_sequence<int, Rs...>) {
  ((rows == Rs + 1 ? skinny_nn_rows<Rs + 1>(s, i0, n) : void()), ...);
}

// C[i0 : i0+R, j0 : j0+4] for B stored [n, k] and A rows contiguous in p: 4R dot products, each
// a vector accumulator over k, summed across lanes at the end. R < 4 serves the last rows (and the
// one-row products of generation, where a scalar dot per entry would wait on every FMA's latency).
template <int R>
void skinny_nt_tile(const SkinnyArgs& s, int64_t i0, int64_t j0) {
  Vec acc[R][4];
  for (auto& row : acc)
    for (auto& v : row) v = vzero();
  const int64_t kv = s.k / kLanes * kLanes;
  const float* a = s.a + i0 * s.a_rs;
  const float* b = s.b + j0 * s.ldb;
  for (int64_t p = 0; p < kv; p += kLanes) {
    Vec bv[4];
    for (int j = 0; j < 4; ++j) bv[j] = vloadu(b + j * s.ldb + p);
    for (int i = 0; i < R; ++i) {
      const Vec av = vloadu(a + i * s.a_rs + p);
      for (int j = 0; j < 4; ++j) acc[i][j] = vfma(av, bv[j], acc[i][j]);
    }
  }
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < 4; ++j) {
      float dot = vsum(acc[i][j]);
      for (int64_t p = kv; p < s.k; ++p) dot += a[i * s.a_rs + p] * b[j * s.ldb + p];
      float* cij = s.c + (i0 + i) * s.ldc + j0 + j;
      *cij = finish(dot, s, cij);
    }
}

#endif

// One C entry by a plain dot product (edges of the tiles, and the portable level).
inline void skinny_entry(const SkinnyArgs& s, bool b_rows_are_n, int64_t i, int64_t j) {
  float dot = 0;
  const float* a = s.a + i * s.a_rs;
  if (b_rows_are_n) {  // A's rows are contiguous here (small_sgemm makes them so)
    const float* b = s.b + j * s.ldb;
#pragma omp simd reduction(+ : dot)
    for (int64_t p = 0; p < s.k; ++p) dot += a[p] * b[p];
  } else {
    for (int64_t p = 0; p < s.k; ++p) dot += a[p * s.a_cs] * s.b[p * s.ldb + j];
  }
  float* cij = s.c + i * s.ldc + j;
  *cij = finish(dot, s, cij);
}

// C[i0 : i1, j0 : j1] for B stored [n, k]: tiles of 4 x 4 dot products (narrower tiles for the
// last rows), then the columns past the last multiple of 4 one entry at a time.
void skinny_nt_block(const SkinnyArgs& s, int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
  int64_t j4 = j0;
#if EMBER_CPU_ISA > 0
  j4 = j0 + (j1 - j0) / 4 * 4;
  const int64_t i4 = i0 + (i1 - i0) / 4 * 4;
  for (int64_t j = j0; j < j4; j += 4) {
    for (int64_t i = i0; i < i4; i += 4) skinny_nt_tile<4>(s, i, j);
    switch (i1 - i4) {
      case 1: skinny_nt_tile<1>(s, i4, j); break;
      case 2: skinny_nt_tile<2>(s, i4, j); break;
      case 3: skinny_nt_tile<3>(s, i4, j); break;
      default: break;
    }
  }
#endif
  for (int64_t i = i0; i < i1; ++i)
    for (int64_t j = j4; j < j1; ++j) skinny_entry(s, true, i, j);
}

// The B-stored-[n, k] form over the threads: a few rows against a large B (one token at a time
// through a layer's weight) split B's rows, which is also where the memory bandwidth of more cores
// helps; many rows against a few (a classifier's last layer, the weight gradient of a convolution
// with few taps) split A's rows. Small products stay on this thread: even a one-thread team costs a
// microsecond.
void skinny_nt(const SkinnyArgs& s, int64_t m, int64_t n) {
  const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  const int64_t n4 = n / 4 * 4;
  const int64_t column_split_from = m == 1 ? int64_t{1} << 16 : int64_t{1} << 17;
  const bool split_columns = EMBER_CPU_ISA > 0 && n * s.k >= column_split_from && n4 >= 64;
  const bool split_rows =
      EMBER_CPU_ISA > 0 && !split_columns && m * n * s.k >= (int64_t{1} << 21) && m >= 16 * threads;
  if (threads == 1 || !(split_columns || split_rows)) return skinny_nt_block(s, 0, m, 0, n);
#pragma omp parallel num_threads(threads)
  {
    const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    if (split_columns) {
      const int64_t share = (n4 / 4 + nt - 1) / nt * 4;
      skinny_nt_block(s, 0, m, std::min(n4, t * share), t == nt - 1 ? n : std::min(n4, (t + 1) * share));
    } else {
      const int64_t share = (m + nt - 1) / nt;
      skinny_nt_block(s, std::min(m, t * share), std::min(m, (t + 1) * share), 0, n);
    }
  }
}

// C[r0 : r1, :] for B stored [k, n]: row segments of B against broadcast entries of A, then the
// columns past the last full tile (all of them at the portable level) as C rows updated by whole B
// rows, which the compiler vectorises.
void skinny_nn_block(const SkinnyArgs& s, int64_t r0, int64_t r1, int64_t n) {
  int64_t nv = 0;
#if EMBER_CPU_ISA > 0
  nv = n / NR * NR;
  for (int64_t i0 = r0; i0 < r1; i0 += kSkinnyRows) {
    const int rows = static_cast<int>(std::min<int64_t>(kSkinnyRows, r1 - i0));
    skinny_nn_rows_dispatch(s, i0, rows, n, std::make_integer_sequence<int, kSkinnyRows>{});
  }
#endif
  if (nv == n) return;
  for (int64_t i = r0; i < r1; ++i) {
    float* row = s.c + i * s.ldc;
    if (s.beta == 0.0f) std::fill(row + nv, row + n, 0.0f);
    else if (s.beta != 1.0f)
      for (int64_t j = nv; j < n; ++j) row[j] *= s.beta;
    for (int64_t p = 0; p < s.k; ++p) {
      const float sc = s.alpha * s.a[i * s.a_rs + p * s.a_cs];
      const float* bp = s.b + p * s.ldb;
#pragma omp simd
      for (int64_t j = nv; j < n; ++j) row[j] += sc * bp[j];
    }
  }
}

// The B-stored-[k, n] form over the threads: a large C (a weight gradient from a small batch: a
// few k against many rows and columns) is mostly the cost of writing it, so the threads take bands
// of its rows, in the order the optimizer's update later splits the same matrix.
void skinny_nn(const SkinnyArgs& s, int64_t m, int64_t n) {
#if EMBER_CPU_ISA > 0
  constexpr int64_t band = kSkinnyRows;  // bands of whole register blocks
#else
  constexpr int64_t band = 8;
#endif
  const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  if (threads == 1 || m * n < (int64_t{1} << 16) || m < 2 * band * threads)
    return skinny_nn_block(s, 0, m, n);
#pragma omp parallel num_threads(threads)
  {
    const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    const int64_t share = (m / band + nt - 1) / nt * band;
    skinny_nn_block(s, std::min(m, t * share), t == nt - 1 ? m : std::min(m, (t + 1) * share), n);
  }
}

}  // namespace

void small_sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                 int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  SkinnyArgs s{k, a, trans_a ? 1 : lda, trans_a ? lda : 1, b, ldb, alpha, beta, c, ldc};
  if (trans_b) {
    // B is stored [n, k]: every C entry is a dot product of a row of A and a row of B; A's rows are
    // made contiguous first when A is stored transposed.
    std::vector<float> at;
    if (trans_a) {
      at.resize(static_cast<size_t>(m * k));
      for (int64_t i = 0; i < m; ++i)
        for (int64_t p = 0; p < k; ++p) at[i * k + p] = a[p * lda + i];
      s.a = at.data(), s.a_rs = k, s.a_cs = 1;
    }
    skinny_nt(s, m, n);
    return;
  }
  skinny_nn(s, m, n);
}

}  // namespace ember::kernels::EMBER_CPU_ISA_NS
EMBER_CPU_ISA_END
