// The CPU backend's fused kernels of convolutional networks: batch normalisation (statistics in one
// pass over each channel, normalisation in a second; backward in two) and max pooling with its
// index (one pass forward; backward adds each gradient at its index). Channels and planes go to
// OpenMP threads. Compiled once per instruction-set level, like cpu_backend.cpp.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "ember/kernels/cpu/cpu_isa.h"
#include "ember/kernels/dispatch.h"
#if EMBER_CPU_ISA == 2
#include <immintrin.h>
#endif

// GCC 12 reports its own intrinsics' deliberately undefined values (_mm512_undefined_epi32 in the
// widening conversion, _mm256_undefined_* in the 512->256 extracts) as uninitialised once inlined.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

EMBER_CPU_ISA_BEGIN
#include "ember/kernels/cpu/cpu_backend.h"

namespace ember::kernels::EMBER_CPU_ISA_NS {
namespace {

// f(i) for i in [0, n), the items split over the threads when the total work pays for the fork.
template <class F>
void parallel_items(int64_t n, int64_t work_per_item, F&& f) {
  if (n > 1 && n * work_per_item >= kParallelGrain && omp_get_max_threads() > 1) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) f(i);
  } else {
    for (int64_t i = 0; i < n; ++i) f(i);
  }
}

// A double split into a float-sized high part and the rest: (x - hi) - lo keeps x - mean as exact
// as the input allows (x - hi is exact for x near hi), where x - T(mean) would shift every value
// of a channel far from zero by the rounding of its mean.
template <class T>
struct SplitMean {
  T hi, lo;
  explicit SplitMean(double m) : hi(static_cast<T>(m)), lo(static_cast<T>(m - static_cast<double>(hi))) {}
};

// The n rows of channel ch in [n, c, s]: row i starts at (i * c + ch) * s.
template <class T>
struct ChannelRows {
  const T* base;
  int64_t c, s, ch;
  const T* row(int64_t i) const { return base + (i * c + ch) * s; }
};

// Mean and biased variance of one channel in one pass over it: sums of d = x - shift and of d * d
// in double, where the shift (the mean of the channel's first row) lies so close to the mean that
// sum(d^2) / N - (sum(d) / N)^2 loses nothing to cancellation. d is formed in T: exact for x within
// a factor of two of the shift, else rounded once.
struct Moments {
  double mean, var;
};
template <class T>
Moments channel_moments(const ChannelRows<T>& x, int64_t n) {
  double first = 0;
  for (int64_t j = 0; j < x.s; ++j) first += static_cast<double>(x.row(0)[j]);
  const T shift = static_cast<T>(x.s > 0 ? first / static_cast<double>(x.s) : 0.0);
  double s1 = 0, s2 = 0;
  for (int64_t i = 0; i < n; ++i) {
    const T* r = x.row(i);
#pragma omp simd reduction(+ : s1, s2)
    for (int64_t j = 0; j < x.s; ++j) {
      const double d = static_cast<double>(r[j] - shift);
      s1 += d;
      s2 += d * d;
    }
  }
  const double count = static_cast<double>(n * x.s), m1 = s1 / count;
  return {static_cast<double>(shift) + m1, std::max(0.0, s2 / count - m1 * m1)};
}

// Sums of dy and dy * (x - mean) over one channel.
template <class T>
void channel_grad_sums(const ChannelRows<T>& x, const ChannelRows<T>& dy, int64_t n, SplitMean<T> m,
                       double& sum_dy, double& sum_dy_xc) {
  double a = 0, b = 0;
  for (int64_t i = 0; i < n; ++i) {
    const T* xr = x.row(i);
    const T* gr = dy.row(i);
#pragma omp simd reduction(+ : a, b)
    for (int64_t j = 0; j < x.s; ++j) {
      a += static_cast<double>(gr[j]);
      b += static_cast<double>(gr[j]) * static_cast<double>((xr[j] - m.hi) - m.lo);
    }
  }
  sum_dy = a;
  sum_dy_xc = b;
}

template <class T>
void batch_norm_channel_forward(const T* x, const T* w, const T* b, int64_t n, int64_t c, int64_t s,
                                double eps, int64_t ch, T* y, T* mean, T* var, T* rstd) {
  const ChannelRows<T> rows{x, c, s, ch};
  const Moments moments = channel_moments(rows, n);
  const double mu = moments.mean, v = moments.var;
  const SplitMean<T> m(mu);
  const double r = 1.0 / std::sqrt(v + eps);
  mean[ch] = static_cast<T>(mu);
  var[ch] = static_cast<T>(v);
  rstd[ch] = static_cast<T>(r);
  const T scale = static_cast<T>(w ? r * static_cast<double>(w[ch]) : r);
  const T shift = b ? b[ch] : T(0);
  for (int64_t i = 0; i < n; ++i) {
    const T* xr = rows.row(i);
    T* yr = y + (i * c + ch) * s;
#pragma omp simd
    for (int64_t j = 0; j < s; ++j) yr[j] = ((xr[j] - m.hi) - m.lo) * scale + shift;
  }
}

// dx = k_dy * dy + k_xc * (x - mean) + k_0 (the closed form of fused.h, its per-channel factors
// folded together).
template <class T>
void batch_norm_channel_backward(const T* x, const T* w, const T* mean, const T* rstd, const T* dy, int64_t n,
                                 int64_t c, int64_t s, int64_t ch, T* dx, T* dw, T* db) {
  const ChannelRows<T> xs{x, c, s, ch}, gs{dy, c, s, ch};
  const SplitMean<T> m(static_cast<double>(mean[ch]));
  const double r = static_cast<double>(rstd[ch]), count = static_cast<double>(n * s);
  double sum_dy, sum_dy_xc;
  channel_grad_sums(xs, gs, n, m, sum_dy, sum_dy_xc);
  if (dw) dw[ch] = static_cast<T>(sum_dy_xc * r);
  if (db) db[ch] = static_cast<T>(sum_dy);
  if (!dx) return;
  const double wr = (w ? static_cast<double>(w[ch]) : 1.0) * r;
  const T k_dy = static_cast<T>(wr), k_xc = static_cast<T>(-wr * r * r * sum_dy_xc / count),
          k_0 = static_cast<T>(-wr * sum_dy / count);
  for (int64_t i = 0; i < n; ++i) {
    const T* xr = xs.row(i);
    const T* gr = gs.row(i);
    T* out = dx + (i * c + ch) * s;
#pragma omp simd
    for (int64_t j = 0; j < s; ++j) out[j] = k_dy * gr[j] + k_xc * ((xr[j] - m.hi) - m.lo) + k_0;
  }
}

}  // namespace

void CpuBackend::batch_norm_forward(DType dt, const void* x, const void* w, const void* b, int64_t n,
                                    int64_t c, int64_t s, double eps, void* y, void* mean, void* var,
                                    void* rstd) {
  dispatch_floating(dt, "batch_norm", [&]<class T>() {
    parallel_items(c, n * s * 3, [&](int64_t ch) {
      batch_norm_channel_forward<T>(static_cast<const T*>(x), static_cast<const T*>(w),
                                    static_cast<const T*>(b), n, c, s, eps, ch, static_cast<T*>(y),
                                    static_cast<T*>(mean), static_cast<T*>(var), static_cast<T*>(rstd));
    });
  });
}

void CpuBackend::batch_norm_backward(DType dt, const void* x, const void* w, const void* mean,
                                     const void* rstd, const void* dy, int64_t n, int64_t c, int64_t s,
                                     void* dx, void* dw, void* db) {
  dispatch_floating(dt, "batch_norm_backward", [&]<class T>() {
    parallel_items(c, n * s * 3, [&](int64_t ch) {
      batch_norm_channel_backward<T>(static_cast<const T*>(x), static_cast<const T*>(w),
                                     static_cast<const T*>(mean), static_cast<const T*>(rstd),
                                     static_cast<const T*>(dy), n, c, s, ch, static_cast<T*>(dx),
                                     static_cast<T*>(dw), static_cast<T*>(db));
    });
  });
}

namespace {

// The window taps [first, last) along one axis that land inside [0, size), for a window starting
// at `start` with taps `dilation` apart: computed once per window, so the inner loops need no
// bounds checks.
struct TapRange {
  int64_t first, last;
};
inline TapRange taps_inside(int64_t start, int64_t taps, int64_t dilation, int64_t size) {
  const int64_t first = start < 0 ? (-start + dilation - 1) / dilation : 0;
  const int64_t last = std::min(taps, start >= size ? 0 : (size - start + dilation - 1) / dilation);
  return {first, std::max(first, last)};
}

// The window at column ox of a row whose taps along y are `rows`, computed tap by tap with bounds.
// A window starts from its first tap inside the image (so a window of -inf still reports a
// position) and takes any later tap that is larger or NaN.
template <class T>
void max_pool_window(const T* plane, const WindowGeometry& g, int64_t y0, TapRange rows, int64_t ox, T* out,
                     int64_t* index) {
  const int64_t x0 = ox * g.stride_w - g.pad_w;
  const TapRange cols = taps_inside(x0, g.kernel_w, g.dilation_w, g.width);
  if (rows.first == rows.last || cols.first == cols.last) {
    *out = static_cast<T>(-INFINITY);
    *index = -1;
    return;
  }
  int64_t at = (y0 + rows.first * g.dilation_h) * g.width + x0 + cols.first * g.dilation_w;
  T best = plane[at];
  for (int64_t i = rows.first; i < rows.last; ++i)
    for (int64_t j = cols.first; j < cols.last; ++j) {
      const int64_t p = (y0 + i * g.dilation_h) * g.width + x0 + j * g.dilation_w;
      if (plane[p] > best || plane[p] != plane[p]) {  // p != p: NaN
        best = plane[p];
        at = p;
      }
    }
  *out = best;
  *index = at;
}

// One output row of one plane. The columns whose windows lie wholly inside the image are done tap
// by tap across the row (a vector loop over ox with blends: random data makes a per-window branch
// mispredict half the time); the few windows at the edges one by one.
template <class T>
void max_pool_row(const T* plane, const WindowGeometry& g, int64_t oy, T* out, int64_t* index) {
  const int64_t y0 = oy * g.stride_h - g.pad_h;
  const TapRange rows = taps_inside(y0, g.kernel_h, g.dilation_h, g.height);
  const int64_t span = (g.kernel_w - 1) * g.dilation_w;
  const int64_t lo = std::min(g.out_w, (g.pad_w + g.stride_w - 1) / g.stride_w);
  const int64_t last_fit = g.width - 1 - span + g.pad_w;  // x0 + pad_w of the last window inside
  const int64_t hi =
      rows.first == rows.last || last_fit < 0 ? lo : std::clamp(last_fit / g.stride_w + 1, lo, g.out_w);
  for (int64_t ox = 0; ox < lo; ++ox) max_pool_window(plane, g, y0, rows, ox, out + ox, index + ox);
  for (int64_t ox = hi; ox < g.out_w; ++ox) max_pool_window(plane, g, y0, rows, ox, out + ox, index + ox);
  if (lo == hi) return;
  const int64_t sw = g.stride_w, base = (y0 + rows.first * g.dilation_h) * g.width - g.pad_w;
#pragma omp simd
  for (int64_t ox = lo; ox < hi; ++ox) {
    out[ox] = plane[base + ox * sw];
    index[ox] = base + ox * sw;
  }
  for (int64_t i = rows.first; i < rows.last; ++i)
    for (int64_t j = 0; j < g.kernel_w; ++j) {
      const int64_t tap = (y0 + i * g.dilation_h) * g.width - g.pad_w + j * g.dilation_w;
#pragma omp simd
      for (int64_t ox = lo; ox < hi; ++ox) {
        const int64_t p = tap + ox * sw;
        const T v = plane[p];
        const bool take = v > out[ox] || v != v;
        out[ox] = take ? v : out[ox];
        index[ox] = take ? p : index[ox];
      }
    }
}

}  // namespace

namespace {

// True when every window lies wholly inside the image (no padding is ever read): then a plane is
// one flat loop over its outputs.
bool windows_inside(const WindowGeometry& g) {
  const int64_t span_h = (g.kernel_h - 1) * g.dilation_h, span_w = (g.kernel_w - 1) * g.dilation_w;
  return g.pad_h == 0 && g.pad_w == 0 && (g.out_h - 1) * g.stride_h + span_h < g.height &&
         (g.out_w - 1) * g.stride_w + span_w < g.width;
}

// The flat form: corner[k] is the offset of output k's window in its plane; each tap is then one
// vector loop over all outputs of the plane (a gather and two blends per 16 of them), long enough
// to fill the vectors where a single output row (14 or 7 wide in a small CNN) would not.
template <class T>
void max_pool_plane_inside(const T* plane, const WindowGeometry& g, const std::vector<int32_t>& corner,
                           T* out, int64_t* index) {
  const int64_t L = g.out_h * g.out_w;
#pragma omp simd
  for (int64_t k = 0; k < L; ++k) {
    out[k] = plane[corner[k]];
    index[k] = corner[k];
  }
  for (int64_t i = 0; i < g.kernel_h; ++i)
    for (int64_t j = 0; j < g.kernel_w; ++j) {
      const int32_t tap = static_cast<int32_t>(i * g.dilation_h * g.width + j * g.dilation_w);
#pragma omp simd
      for (int64_t k = 0; k < L; ++k) {
        const int32_t p = corner[k] + tap;
        const T v = plane[p];
        const bool take = v > out[k] || v != v;  // v != v: NaN
        out[k] = take ? v : out[k];
        index[k] = take ? p : index[k];
      }
    }
}

}  // namespace

#if EMBER_CPU_ISA == 2
namespace {

// 2x2 windows at stride 2 without padding (the pooling of most CNNs), float32, AVX-512: 16 windows
// of an output row from two (masked) 32-float loads of each of its two input rows, split into even
// and odd columns by a permute; the four taps are compared in window order, as in the other forms.
// Compilers turn the gathers of the general loops into scalar loads (GCC's generic tuning avoids
// gather instructions), which made this common case several times slower than it needs to be.
bool is_2x2_stride_2(const WindowGeometry& g) {
  return g.kernel_h == 2 && g.kernel_w == 2 && g.stride_h == 2 && g.stride_w == 2 && g.pad_h == 0 &&
         g.pad_w == 0 && g.dilation_h == 1 && g.dilation_w == 1 && 2 * g.out_h <= g.height &&
         2 * g.out_w <= g.width;
}

// best, at <- v, at + offset in the lanes where v is larger than best or NaN.
inline void take_larger(__m512 v, int offset, __m512& best, __m512i& at, __m512i base) {
  const __mmask16 k = _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
  best = _mm512_mask_mov_ps(best, k, v);
  at = _mm512_mask_add_epi32(at, k, base, _mm512_set1_epi32(offset));
}

void max_pool_2x2_plane(const float* plane, const WindowGeometry& g, float* out, int64_t* index) {
  const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  const int w = static_cast<int>(g.width);
  for (int64_t oy = 0; oy < g.out_h; ++oy) {
    const float* r0 = plane + 2 * oy * g.width;
    const float* r1 = r0 + g.width;
    for (int64_t ox = 0; ox < g.out_w; ox += 16) {
      const int64_t count = std::min<int64_t>(16, g.out_w - ox), taps = 2 * count;
      const __mmask16 m_out = static_cast<__mmask16>((1u << count) - 1);
      const __mmask16 m_lo = static_cast<__mmask16>(taps >= 16 ? 0xFFFFu : (1u << taps) - 1);
      const __mmask16 m_hi = static_cast<__mmask16>(taps > 16 ? (1u << (taps - 16)) - 1 : 0u);
      const float* p0 = r0 + 2 * ox;
      const float* p1 = r1 + 2 * ox;
      const __m512 lo0 = _mm512_maskz_loadu_ps(m_lo, p0), hi0 = _mm512_maskz_loadu_ps(m_hi, p0 + 16);
      const __m512 lo1 = _mm512_maskz_loadu_ps(m_lo, p1), hi1 = _mm512_maskz_loadu_ps(m_hi, p1 + 16);
      const __m512i base =
          _mm512_add_epi32(_mm512_set1_epi32(static_cast<int>(2 * oy * g.width + 2 * ox)), even);
      __m512 best = _mm512_permutex2var_ps(lo0, even, hi0);
      __m512i at = base;
      take_larger(_mm512_permutex2var_ps(lo0, odd, hi0), 1, best, at, base);
      take_larger(_mm512_permutex2var_ps(lo1, even, hi1), w, best, at, base);
      take_larger(_mm512_permutex2var_ps(lo1, odd, hi1), w + 1, best, at, base);
      const int64_t k = oy * g.out_w + ox;
      _mm512_mask_storeu_ps(out + k, m_out, best);
      _mm512_mask_storeu_epi64(index + k, static_cast<__mmask8>(m_out),
                               _mm512_cvtepi32_epi64(_mm512_castsi512_si256(at)));
      _mm512_mask_storeu_epi64(index + k + 8, static_cast<__mmask8>(m_out >> 8),
                               _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(at, 1)));
    }
  }
}

}  // namespace
#endif

void CpuBackend::max_pool2d_forward(DType dt, const void* in, const WindowGeometry& g, int64_t planes,
                                    void* out, int64_t* index) {
  dispatch_floating(dt, "max_pool2d", [&]<class T>() {
    const int64_t image = g.height * g.width, L = g.out_h * g.out_w;
    std::vector<int32_t> corner;
    if (windows_inside(g) && image < (int64_t{1} << 31)) {
      corner.resize(L);
      for (int64_t k = 0; k < L; ++k)
        corner[k] = static_cast<int32_t>(k / g.out_w * g.stride_h * g.width + k % g.out_w * g.stride_w);
    }
#if EMBER_CPU_ISA == 2
    if (std::is_same_v<T, float> && is_2x2_stride_2(g) && image < (int64_t{1} << 31)) {
      parallel_items(planes, L * 4, [&](int64_t p) {
        max_pool_2x2_plane(static_cast<const float*>(in) + p * image, g, static_cast<float*>(out) + p * L,
                           index + p * L);
      });
      return;
    }
#endif
    parallel_items(planes, L * g.kernel_h * g.kernel_w, [&](int64_t p) {
      const T* plane = static_cast<const T*>(in) + p * image;
      T* o = static_cast<T*>(out) + p * L;
      if (!corner.empty()) return max_pool_plane_inside<T>(plane, g, corner, o, index + p * L);
      for (int64_t oy = 0; oy < g.out_h; ++oy)
        max_pool_row<T>(plane, g, oy, o + oy * g.out_w, index + p * L + oy * g.out_w);
    });
  });
}

void CpuBackend::max_pool2d_backward(DType dt, const void* grad_out, const int64_t* index,
                                     const WindowGeometry& g, int64_t planes, void* grad_in) {
  dispatch_floating(dt, "max_pool2d_backward", [&]<class T>() {
    const int64_t image = g.height * g.width, L = g.out_h * g.out_w;
    parallel_items(planes, image + L, [&](int64_t p) {
      T* dst = static_cast<T*>(grad_in) + p * image;
      const T* src = static_cast<const T*>(grad_out) + p * L;
      const int64_t* at = index + p * L;
      std::fill(dst, dst + image, T(0));
      for (int64_t k = 0; k < L; ++k)
        if (at[k] >= 0) dst[at[k]] += src[k];
    });
  });
}

}  // namespace ember::kernels::EMBER_CPU_ISA_NS
EMBER_CPU_ISA_END
