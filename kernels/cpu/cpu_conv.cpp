// The CPU backend's fused convolution (one group), forward and backward. Images go to OpenMP
// threads; each thread unfolds one image at a time into its own column buffer ([C*kh*kw, L]: a few
// hundred KiB in a small CNN, so it stays in L2) and multiplies it there with a GEMM of its own.
// The composed form unfolds the whole batch first, writing and then rereading a column matrix
// kh*kw times the size of the input, and sums the weight gradient from one [O, C*kh*kw] product per
// image. With fewer images than threads the images run one after another and each unfold and GEMM
// is split across the threads instead. A 1x1 kernel with stride 1 and no padding reads the image
// itself as its columns. Compiled once per instruction-set level, like cpu_backend.cpp.
#include <omp.h>

#include <algorithm>
#include <vector>

#include "ember/kernels/cpu/cpu_allocator.h"
#include "ember/kernels/cpu/cpu_isa.h"
#include "ember/kernels/dispatch.h"

EMBER_CPU_ISA_BEGIN
#include "ember/kernels/cpu/cpu_backend.h"

namespace ember::kernels::EMBER_CPU_ISA_NS {
namespace {

// The sizes every convolution kernel needs, from the window geometry and the output channels.
struct ConvShape {
  int64_t O, K, L, image;
  bool direct;  // the image is its own column matrix (1x1 kernel, stride 1, no padding)
  ConvShape(const WindowGeometry& g, int64_t out_channels)
      : O(out_channels),
        K(g.channels * g.kernel_h * g.kernel_w),
        L(g.out_h * g.out_w),
        image(g.channels * g.height * g.width),
        direct(g.kernel_h == 1 && g.kernel_w == 1 && g.stride_h == 1 && g.stride_w == 1 && g.pad_h == 0 &&
               g.pad_w == 0) {}
  int64_t work_per_image() const { return O * K * L; }
};

// A buffer from the caching allocator for one call (column buffers, partial sums).
template <class T>
class Scratch {
 public:
  explicit Scratch(int64_t n) : bytes_(static_cast<size_t>(n) * sizeof(T)) {
    if (n > 0) data_ = static_cast<T*>(cpu_allocate(bytes_));
  }
  ~Scratch() {
    if (data_) cpu_deallocate(data_, bytes_);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  T* get() const { return data_; }

 private:
  size_t bytes_;
  T* data_ = nullptr;
};

// How many threads take images: all of them when there is an image for each and the work pays for
// the fork, else one (the unfolds and GEMMs then split themselves).
int image_threads(int64_t batch, int64_t work_per_image) {
  const int t = omp_get_max_threads();
  return t > 1 && batch >= t && batch * work_per_image >= kParallelGrain && !omp_in_parallel() ? t : 1;
}

// f(thread, n) for every image n: each thread a contiguous run of images.
template <class F>
void for_each_image(int64_t batch, int threads, F&& f) {
  if (threads == 1) {
    for (int64_t n = 0; n < batch; ++n) f(0, n);
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    const int64_t chunk = (batch + nt - 1) / nt, end = std::min(batch, (t + 1) * chunk);
    for (int64_t n = t * chunk; n < end; ++n) f(t, n);
  }
}

template <class T>
void gemm_one(Backend& backend, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const T* a,
              int64_t lda, const T* b, int64_t ldb, double beta, T* c, int64_t ldc) {
  GemmArgs g;
  g.dtype = std::is_same_v<T, float> ? kFloat32 : kFloat64;
  g.trans_a = trans_a, g.trans_b = trans_b;
  g.m = m, g.n = n, g.k = k, g.beta = beta, g.lda = lda, g.ldb = ldb, g.ldc = ldc;
  backend.gemm(g, a, b, c);
}

}  // namespace

void CpuBackend::conv2d_forward(DType dt, const void* x, const void* w, const void* bias,
                                const WindowGeometry& g, int64_t batch, int64_t out_channels, void* out) {
  dispatch_floating(dt, "conv2d", [&]<class T>() {
    const ConvShape s(g, out_channels);
    const int threads = image_threads(batch, s.work_per_image());
    Scratch<T> cols(s.direct ? 0 : threads * s.K * s.L);
    for_each_image(batch, threads, [&](int t, int64_t n) {
      const T* xn = static_cast<const T*>(x) + n * s.image;
      const T* cn = xn;
      if (!s.direct) {
        T* buffer = cols.get() + t * s.K * s.L;
        im2col(dt, xn, buffer, g, 1);
        cn = buffer;
      }
      T* y = static_cast<T*>(out) + n * s.O * s.L;
      if (bias)
        for (int64_t o = 0; o < s.O; ++o) std::fill_n(y + o * s.L, s.L, static_cast<const T*>(bias)[o]);
      gemm_one<T>(*this, false, false, s.O, s.L, s.K, static_cast<const T*>(w), s.K, cn, s.L,
                  bias ? 1.0 : 0.0, y, s.L);
    });
  });
}

void CpuBackend::conv2d_backward_input(DType dt, const void* dy, const void* w, const WindowGeometry& g,
                                       int64_t batch, int64_t out_channels, void* dx) {
  dispatch_floating(dt, "conv2d_backward_input", [&]<class T>() {
    const ConvShape s(g, out_channels);
    const int threads = image_threads(batch, s.work_per_image());
    Scratch<T> cols(s.direct ? 0 : threads * s.K * s.L);
    for_each_image(batch, threads, [&](int t, int64_t n) {
      const T* dyn = static_cast<const T*>(dy) + n * s.O * s.L;
      T* dxn = static_cast<T*>(dx) + n * s.image;
      T* target = s.direct ? dxn : cols.get() + t * s.K * s.L;
      gemm_one<T>(*this, true, false, s.K, s.L, s.O, static_cast<const T*>(w), s.K, dyn, s.L, 0.0, target,
                  s.L);
      if (!s.direct) col2im(dt, target, dxn, g, 1);
    });
  });
}

// Each thread sums its images' products into its own [O, K] (and [O]) partial; the partials are
// added in thread order at the end, so a given thread count always gives the same result.
void CpuBackend::conv2d_backward_weight(DType dt, const void* x, const void* dy, const WindowGeometry& g,
                                        int64_t batch, int64_t out_channels, void* dw, void* db) {
  dispatch_floating(dt, "conv2d_backward_weight", [&]<class T>() {
    const ConvShape s(g, out_channels);
    const int threads = image_threads(batch, s.work_per_image());
    const int64_t per_thread = s.O * s.K + s.O;
    Scratch<T> cols(s.direct ? 0 : threads * s.K * s.L), partial(threads * per_thread);
    std::fill_n(partial.get(), threads * per_thread, T(0));  // the column buffers need no zeros
    for_each_image(batch, threads, [&](int t, int64_t n) {
      const T* xn = static_cast<const T*>(x) + n * s.image;
      const T* dyn = static_cast<const T*>(dy) + n * s.O * s.L;
      const T* cn = xn;
      if (!s.direct) {
        T* buffer = cols.get() + t * s.K * s.L;
        im2col(dt, xn, buffer, g, 1);
        cn = buffer;
      }
      T* pw = partial.get() + t * per_thread;
      gemm_one<T>(*this, false, true, s.O, s.K, s.L, dyn, s.L, cn, s.L, 1.0, pw, s.K);
      if (!db) return;
      T* pb = pw + s.O * s.K;
      for (int64_t o = 0; o < s.O; ++o) {
        T sum = 0;
#pragma omp simd reduction(+ : sum)
        for (int64_t l = 0; l < s.L; ++l) sum += dyn[o * s.L + l];
        pb[o] += sum;
      }
    });
    for (int64_t i = 0; i < per_thread; ++i) {
      if (i >= s.O * s.K && !db) break;
      T sum = 0;
      for (int t = 0; t < threads; ++t) sum += partial.get()[t * per_thread + i];
      if (i < s.O * s.K) static_cast<T*>(dw)[i] = sum;
      else static_cast<T*>(db)[i - s.O * s.K] = sum;
    }
  });
}

}  // namespace ember::kernels::EMBER_CPU_ISA_NS
EMBER_CPU_ISA_END
