// The windows that read one pixel, for the kernels that gather instead of scattering with atomics
// (col2im, max pooling's backward): a thread per input pixel visits each window position and tap
// that read it, always in the same order, so the sums are the same on every run.
#pragma once
#include "ember/kernels/cuda/portability.h"
#include "ember/kernels/fused.h"

namespace ember::kernels::cuda {

// f(i, j, window): tap (i, j) of the window at position `window` (y * out_w + x) reads pixel
// (iy, ix) of its plane.
template <class F>
__device__ void for_each_window_reading(const WindowGeometry& g, int64_t iy, int64_t ix, F&& f) {
  for (int64_t i = 0; i < g.kernel_h; ++i) {
    const int64_t ty = iy + g.pad_h - i * g.dilation_h;
    if (ty < 0 || ty % g.stride_h != 0 || ty / g.stride_h >= g.out_h) continue;
    for (int64_t j = 0; j < g.kernel_w; ++j) {
      const int64_t tx = ix + g.pad_w - j * g.dilation_w;
      if (tx < 0 || tx % g.stride_w != 0 || tx / g.stride_w >= g.out_w) continue;
      f(i, j, (ty / g.stride_h) * g.out_w + tx / g.stride_w);
    }
  }
}

}  // namespace ember::kernels::cuda
