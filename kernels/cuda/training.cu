// Kernels of training: fused optimizer updates (every parameter element in one pass, the formulas
// of kernels/optimizer_update.h), Philox random numbers (the same (seed, offset + i) mapping as the
// CPU, so a seeded run draws the same values on either device), layer norm forward and backward
// (a thread per row, then a thread per column for dw/db, both in the reference's order), and the
// im2col/col2im pair behind convolution (col2im gathers each pixel's contributions in a fixed
// order instead of scattering with atomics, so it is deterministic).
#include "ember/kernels/cuda/cuda_kernels.h"
#include "ember/kernels/cuda/grid.h"
#include "ember/kernels/cuda/portability.h"
#include "ember/kernels/cuda/window_taps.h"
#include "ember/kernels/dispatch.h"
#include "ember/kernels/layer_norm_rows.h"
#include "ember/kernels/optimizer_update.h"
#include "ember/kernels/philox.h"

namespace ember::kernels::cuda {
namespace {

constexpr int kThreads = 256;

template <class T>
__global__ void optimizer_kernel(UpdateSpec spec, UpdateConstants c, int64_t n, T* p, const T* g, T* s0,
                                 T* s1, T* s2) {
  EMBER_GRID_STRIDE(i, n)
  update_element<T>(spec, c, p[i], g[i], s0 ? s0 + i : nullptr, s1 ? s1 + i : nullptr, s2 ? s2 + i : nullptr);
}

// Up to kMultiMax parameters in one launch, passed by value (the argument block stays under 4 KiB).
// Each parameter is cut into chunks of kChunk elements; block_start is the running count of chunks,
// so a block finds its parameter by a short scan.
constexpr int kMultiMax = 32;
constexpr int64_t kChunk = 4 * kThreads;

struct MultiUpdate {
  int count = 0;
  int64_t n[kMultiMax];
  int64_t block_start[kMultiMax + 1];
  void* param[kMultiMax];
  const void* grad[kMultiMax];
  void* state[3][kMultiMax];
};

template <class T>
__global__ void optimizer_multi_kernel(UpdateSpec spec, UpdateConstants c, MultiUpdate u) {
  for (int64_t blk = blockIdx.x; blk < u.block_start[u.count]; blk += gridDim.x) {
    int t = 0;
    while (blk >= u.block_start[t + 1]) ++t;
    T* p = static_cast<T*>(u.param[t]);
    const T* g = static_cast<const T*>(u.grad[t]);
    T* s0 = static_cast<T*>(u.state[0][t]);
    T* s1 = static_cast<T*>(u.state[1][t]);
    T* s2 = static_cast<T*>(u.state[2][t]);
    const int64_t first = (blk - u.block_start[t]) * kChunk;
    const int64_t end = first + kChunk < u.n[t] ? first + kChunk : u.n[t];
    for (int64_t i = first + threadIdx.x; i < end; i += blockDim.x)
      update_element<T>(spec, c, p[i], g[i], s0 ? s0 + i : nullptr, s1 ? s1 + i : nullptr,
                        s2 ? s2 + i : nullptr);
  }
}

template <class T>
__global__ void uniform_kernel(T* y, int64_t n, uint64_t seed, uint64_t offset, double lo, double hi) {
  EMBER_GRID_STRIDE(i, n) y[i] = static_cast<T>(lo + (hi - lo) * philox_uniform(seed, offset + i));
}

template <class T>
__global__ void normal_kernel(T* y, int64_t n, uint64_t seed, uint64_t offset, double mean, double stddev) {
  EMBER_GRID_STRIDE(i, n) y[i] = static_cast<T>(mean + stddev * philox_normal(seed, offset + i));
}

template <class T>
__global__ void layer_norm_forward_kernel(const T* x, const T* w, const T* b, int64_t rows, int64_t cols,
                                          double eps, T* y, T* mean, T* rstd) {
  EMBER_GRID_STRIDE(r, rows)
  layer_norm_row_forward<T>(x + r * cols, w, b, cols, eps, y + r * cols, mean + r, rstd + r);
}

template <class T>
__global__ void layer_norm_dx_kernel(const T* x, const T* w, const T* mean, const T* rstd, const T* dy,
                                     int64_t rows, int64_t cols, T* dx) {
  EMBER_GRID_STRIDE(r, rows)
  layer_norm_row_backward<T>(x + r * cols, w, mean[r], rstd[r], dy + r * cols, cols, dx + r * cols, nullptr,
                             nullptr);
}

template <class T>
__global__ void layer_norm_dwdb_kernel(const T* x, const T* mean, const T* rstd, const T* dy, int64_t rows,
                                       int64_t cols, T* dw, T* db) {
  EMBER_GRID_STRIDE(j, cols) {
    T w_acc = T(0), b_acc = T(0);
    for (int64_t r = 0; r < rows; ++r) {
      const double xhat = (x[r * cols + j] - mean[r]) * rstd[r];
      w_acc = static_cast<T>(w_acc + dy[r * cols + j] * xhat);
      b_acc = static_cast<T>(b_acc + dy[r * cols + j]);
    }
    if (dw) dw[j] = w_acc;
    if (db) db[j] = b_acc;
  }
}

template <class T>
__global__ void im2col_kernel(const T* in, T* out, WindowGeometry g, int64_t batch) {
  const int64_t L = g.out_h * g.out_w, rows = g.channels * g.kernel_h * g.kernel_w;
  EMBER_GRID_STRIDE(p, batch * rows * L) {
    const int64_t pos = p % L, row = p / L % rows, n = p / (L * rows);
    const int64_t j = row % g.kernel_w, i = row / g.kernel_w % g.kernel_h,
                  c = row / (g.kernel_w * g.kernel_h);
    const int64_t y = pos / g.out_w, x = pos % g.out_w;
    const int64_t iy = y * g.stride_h - g.pad_h + i * g.dilation_h,
                  ix = x * g.stride_w - g.pad_w + j * g.dilation_w;
    const bool inside = iy >= 0 && iy < g.height && ix >= 0 && ix < g.width;
    out[p] = inside ? in[((n * g.channels + c) * g.height + iy) * g.width + ix] : T(0);
  }
}

template <class T>
__global__ void col2im_kernel(const T* cols, T* out, WindowGeometry g, int64_t batch) {
  const int64_t L = g.out_h * g.out_w, image = g.channels * g.height * g.width;
  const int64_t per_image = g.channels * g.kernel_h * g.kernel_w * L;
  EMBER_GRID_STRIDE(p, batch * image) {
    const int64_t ix = p % g.width, iy = p / g.width % g.height, c = p / (g.width * g.height) % g.channels;
    const int64_t n = p / image;
    T acc = T(0);
    for_each_window_reading(g, iy, ix, [&](int64_t i, int64_t j, int64_t window) {
      const int64_t row = (c * g.kernel_h + i) * g.kernel_w + j;
      acc = static_cast<T>(acc + cols[n * per_image + row * L + window]);
    });
    out[p] = acc;
  }
}

}  // namespace

void optimizer_update(DType dt, const UpdateSpec& spec, int64_t n, void* param, const void* grad, void* s0,
                      void* s1, void* s2) {
  if (n == 0) return;
  const UpdateConstants constants(spec);
  dispatch_floating(dt, "cuda optimizer_update", [&]<class T>() {
    EMBER_LAUNCH((optimizer_kernel<T>), grid_for(n), kThreads, 0, gpu::stream(), spec, constants, n,
                 static_cast<T*>(param), static_cast<const T*>(grad), static_cast<T*>(s0),
                 static_cast<T*>(s1), static_cast<T*>(s2));
  });
}

void optimizer_update_multi(DType dt, const UpdateSpec& spec, std::span<const UpdateTensor> tensors) {
  const UpdateConstants constants(spec);
  dispatch_floating(dt, "cuda optimizer_update_multi", [&]<class T>() {
    for (size_t first = 0; first < tensors.size(); first += kMultiMax) {
      MultiUpdate u;
      u.block_start[0] = 0;
      for (size_t i = first; i < tensors.size() && u.count < kMultiMax; ++i, ++u.count) {
        const auto& t = tensors[i];
        u.n[u.count] = t.n;
        u.param[u.count] = t.param;
        u.grad[u.count] = t.grad;
        for (int s = 0; s < 3; ++s) u.state[s][u.count] = t.state[s];
        u.block_start[u.count + 1] = u.block_start[u.count] + (t.n + kChunk - 1) / kChunk;
      }
      const int64_t blocks = u.block_start[u.count];
      if (blocks == 0) continue;
      EMBER_LAUNCH((optimizer_multi_kernel<T>), dim3(static_cast<unsigned>(blocks < 4096 ? blocks : 4096)),
                   kThreads, 0, gpu::stream(), spec, constants, u);
    }
  });
}

void random_uniform(DType dt, void* out, int64_t n, uint64_t seed, uint64_t offset, double lo, double hi) {
  if (n == 0) return;
  dispatch_floating(dt, "cuda random_uniform", [&]<class T>() {
    EMBER_LAUNCH((uniform_kernel<T>), grid_for(n), kThreads, 0, gpu::stream(), static_cast<T*>(out), n, seed,
                 offset, lo, hi);
  });
}

void random_normal(DType dt, void* out, int64_t n, uint64_t seed, uint64_t offset, double mean,
                   double stddev) {
  if (n == 0) return;
  dispatch_floating(dt, "cuda random_normal", [&]<class T>() {
    EMBER_LAUNCH((normal_kernel<T>), grid_for(n), kThreads, 0, gpu::stream(), static_cast<T*>(out), n, seed,
                 offset, mean, stddev);
  });
}

void layer_norm_forward(DType dt, const void* x, const void* w, const void* b, int64_t rows, int64_t cols,
                        double eps, void* y, void* mean, void* rstd) {
  if (rows == 0) return;
  dispatch_floating(dt, "cuda layer_norm_forward", [&]<class T>() {
    EMBER_LAUNCH((layer_norm_forward_kernel<T>), grid_for(rows), kThreads, 0, gpu::stream(),
                 static_cast<const T*>(x), static_cast<const T*>(w), static_cast<const T*>(b), rows, cols,
                 eps, static_cast<T*>(y), static_cast<T*>(mean), static_cast<T*>(rstd));
  });
}

void layer_norm_backward(DType dt, const void* x, const void* w, const void* mean, const void* rstd,
                         const void* dy, int64_t rows, int64_t cols, void* dx, void* dw, void* db) {
  dispatch_floating(dt, "cuda layer_norm_backward", [&]<class T>() {
    if (rows > 0)
      EMBER_LAUNCH((layer_norm_dx_kernel<T>), grid_for(rows), kThreads, 0, gpu::stream(),
                   static_cast<const T*>(x), static_cast<const T*>(w), static_cast<const T*>(mean),
                   static_cast<const T*>(rstd), static_cast<const T*>(dy), rows, cols, static_cast<T*>(dx));
    if (dw || db)
      EMBER_LAUNCH((layer_norm_dwdb_kernel<T>), grid_for(cols), kThreads, 0, gpu::stream(),
                   static_cast<const T*>(x), static_cast<const T*>(mean), static_cast<const T*>(rstd),
                   static_cast<const T*>(dy), rows, cols, static_cast<T*>(dw), static_cast<T*>(db));
  });
}

void im2col(DType dt, const void* in, void* out, const WindowGeometry& g, int64_t batch) {
  const int64_t total = batch * g.channels * g.kernel_h * g.kernel_w * g.out_h * g.out_w;
  if (total == 0) return;
  dispatch_numeric(dt, "cuda im2col", [&]<class T>() {
    EMBER_LAUNCH((im2col_kernel<T>), grid_for(total), kThreads, 0, gpu::stream(), static_cast<const T*>(in),
                 static_cast<T*>(out), g, batch);
  });
}

void col2im(DType dt, const void* cols, void* out, const WindowGeometry& g, int64_t batch) {
  const int64_t total = batch * g.channels * g.height * g.width;
  if (total == 0) return;
  dispatch_numeric(dt, "cuda col2im", [&]<class T>() {
    EMBER_LAUNCH((col2im_kernel<T>), grid_for(total), kThreads, 0, gpu::stream(), static_cast<const T*>(cols),
                 static_cast<T*>(out), g, batch);
  });
}

}  // namespace ember::kernels::cuda
