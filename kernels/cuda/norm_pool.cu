// Kernels of convolutional networks: batch normalisation (a block per channel: its sums in double
// through block_reduce, then y; backward the same way) and max pooling with its index (a thread per
// output; the backward gathers, a thread per input pixel visiting the windows that can hold it in a
// fixed order, so no atomics and the same sums on every run).
#include "ember/kernels/cuda/block_reduce.h"
#include "ember/kernels/cuda/cuda_kernels.h"
#include "ember/kernels/cuda/grid.h"
#include "ember/kernels/cuda/portability.h"
#include "ember/kernels/cuda/window_taps.h"
#include "ember/kernels/dispatch.h"

namespace ember::kernels::cuda {
namespace {

constexpr int kThreads = 256;

// Element k of channel ch's n*s values in a compact [n, c, s] buffer.
__device__ inline int64_t channel_offset(int64_t k, int64_t c, int64_t s, int64_t ch) {
  return (k / s * c + ch) * s + k % s;
}

template <class T>
__global__ void batch_norm_forward_kernel(const T* x, const T* w, const T* b, int64_t n, int64_t c, int64_t s,
                                          double eps, T* y, T* mean, T* var, T* rstd) {
  const int64_t count = n * s;
  for (int64_t ch = blockIdx.x; ch < c; ch += gridDim.x) {
    double sum = 0;
    for (int64_t k = threadIdx.x; k < count; k += kThreads) sum += double(x[channel_offset(k, c, s, ch)]);
    const double mu = block_reduce<kThreads>(sum, Sum{}, 0.0) / double(count);
    double sq = 0;
    for (int64_t k = threadIdx.x; k < count; k += kThreads) {
      const double d = double(x[channel_offset(k, c, s, ch)]) - mu;
      sq += d * d;
    }
    const double v = block_reduce<kThreads>(sq, Sum{}, 0.0) / double(count);
    const double r = 1.0 / sqrt(v + eps);
    const double scale = w ? r * double(w[ch]) : r, shift = b ? double(b[ch]) : 0.0;
    for (int64_t k = threadIdx.x; k < count; k += kThreads) {
      const int64_t at = channel_offset(k, c, s, ch);
      y[at] = static_cast<T>((double(x[at]) - mu) * scale + shift);
    }
    if (threadIdx.x == 0) {
      mean[ch] = static_cast<T>(mu);
      var[ch] = static_cast<T>(v);
      rstd[ch] = static_cast<T>(r);
    }
  }
}

template <class T>
__global__ void batch_norm_backward_kernel(const T* x, const T* w, const T* mean, const T* rstd, const T* dy,
                                           int64_t n, int64_t c, int64_t s, T* dx, T* dw, T* db) {
  const int64_t count = n * s;
  for (int64_t ch = blockIdx.x; ch < c; ch += gridDim.x) {
    const double mu = double(mean[ch]), r = double(rstd[ch]);
    double sum_dy = 0, sum_dy_xhat = 0;
    for (int64_t k = threadIdx.x; k < count; k += kThreads) {
      const int64_t at = channel_offset(k, c, s, ch);
      sum_dy += double(dy[at]);
      sum_dy_xhat += double(dy[at]) * (double(x[at]) - mu) * r;
    }
    sum_dy = block_reduce<kThreads>(sum_dy, Sum{}, 0.0);
    sum_dy_xhat = block_reduce<kThreads>(sum_dy_xhat, Sum{}, 0.0);
    if (threadIdx.x == 0) {
      if (dw) dw[ch] = static_cast<T>(sum_dy_xhat);
      if (db) db[ch] = static_cast<T>(sum_dy);
    }
    if (!dx) continue;
    const double wr = (w ? double(w[ch]) : 1.0) * r;
    for (int64_t k = threadIdx.x; k < count; k += kThreads) {
      const int64_t at = channel_offset(k, c, s, ch);
      const double xhat = (double(x[at]) - mu) * r;
      dx[at] =
          static_cast<T>(wr * (double(dy[at]) - sum_dy / double(count) - xhat * sum_dy_xhat / double(count)));
    }
  }
}

template <class T>
__global__ void max_pool_forward_kernel(const T* in, WindowGeometry g, int64_t planes, T* out,
                                        int64_t* index) {
  const int64_t L = g.out_h * g.out_w;
  EMBER_GRID_STRIDE(p, planes * L) {
    const int64_t ox = p % g.out_w, oy = p / g.out_w % g.out_h;
    const T* plane = in + p / L * g.height * g.width;
    T best = static_cast<T>(-INFINITY);
    int64_t at = -1;
    for (int64_t i = 0; i < g.kernel_h; ++i) {
      const int64_t iy = oy * g.stride_h - g.pad_h + i * g.dilation_h;
      if (iy < 0 || iy >= g.height) continue;
      for (int64_t j = 0; j < g.kernel_w; ++j) {
        const int64_t ix = ox * g.stride_w - g.pad_w + j * g.dilation_w;
        if (ix < 0 || ix >= g.width) continue;
        const T v = plane[iy * g.width + ix];
        if (at < 0 || v > best || v != v) {  // v != v: NaN
          best = v;
          at = iy * g.width + ix;
        }
      }
    }
    out[p] = best;
    index[p] = at;
  }
}

template <class T>
__global__ void max_pool_backward_kernel(const T* grad_out, const int64_t* index, WindowGeometry g,
                                         int64_t planes, T* grad_in) {
  const int64_t L = g.out_h * g.out_w, image = g.height * g.width;
  EMBER_GRID_STRIDE(p, planes * image) {
    const int64_t pixel = p % image, iy = pixel / g.width, ix = pixel % g.width, base = p / image * L;
    T acc = T(0);
    for_each_window_reading(g, iy, ix, [&](int64_t, int64_t, int64_t window) {
      if (index[base + window] == pixel) acc = static_cast<T>(acc + grad_out[base + window]);
    });
    grad_in[p] = acc;
  }
}

dim3 grid_for_channels(int64_t c) { return dim3(static_cast<unsigned>(c < 4096 ? c : 4096)); }

}  // namespace

void batch_norm_forward(DType dt, const void* x, const void* w, const void* b, int64_t n, int64_t c,
                        int64_t s, double eps, void* y, void* mean, void* var, void* rstd) {
  if (c == 0) return;
  dispatch_floating(dt, "cuda batch_norm_forward", [&]<class T>() {
    EMBER_LAUNCH((batch_norm_forward_kernel<T>), grid_for_channels(c), kThreads, 0, gpu::stream(),
                 static_cast<const T*>(x), static_cast<const T*>(w), static_cast<const T*>(b), n, c, s, eps,
                 static_cast<T*>(y), static_cast<T*>(mean), static_cast<T*>(var), static_cast<T*>(rstd));
  });
}

void batch_norm_backward(DType dt, const void* x, const void* w, const void* mean, const void* rstd,
                         const void* dy, int64_t n, int64_t c, int64_t s, void* dx, void* dw, void* db) {
  if (c == 0) return;
  dispatch_floating(dt, "cuda batch_norm_backward", [&]<class T>() {
    EMBER_LAUNCH((batch_norm_backward_kernel<T>), grid_for_channels(c), kThreads, 0, gpu::stream(),
                 static_cast<const T*>(x), static_cast<const T*>(w), static_cast<const T*>(mean),
                 static_cast<const T*>(rstd), static_cast<const T*>(dy), n, c, s, static_cast<T*>(dx),
                 static_cast<T*>(dw), static_cast<T*>(db));
  });
}

void max_pool2d_forward(DType dt, const void* in, const WindowGeometry& g, int64_t planes, void* out,
                        int64_t* index) {
  const int64_t total = planes * g.out_h * g.out_w;
  if (total == 0) return;
  dispatch_floating(dt, "cuda max_pool2d_forward", [&]<class T>() {
    EMBER_LAUNCH((max_pool_forward_kernel<T>), grid_for(total), kThreads, 0, gpu::stream(),
                 static_cast<const T*>(in), g, planes, static_cast<T*>(out), index);
  });
}

void max_pool2d_backward(DType dt, const void* grad_out, const int64_t* index, const WindowGeometry& g,
                         int64_t planes, void* grad_in) {
  const int64_t total = planes * g.height * g.width;
  if (total == 0) return;
  dispatch_floating(dt, "cuda max_pool2d_backward", [&]<class T>() {
    EMBER_LAUNCH((max_pool_backward_kernel<T>), grid_for(total), kThreads, 0, gpu::stream(),
                 static_cast<const T*>(grad_out), index, g, planes, static_cast<T*>(grad_in));
  });
}

}  // namespace ember::kernels::cuda
