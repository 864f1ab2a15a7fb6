// Fused cross-entropy: the forward is one block per row - the row maximum and the sum of exponentials
// by block reductions, then loss = w * (lse - x[t]) - so the log-probabilities are never stored; the
// backward is one pass over the logits, grad = g w (exp(x - lse) - [c == t]). The CPU reference is
// ReferenceBackend::cross_entropy_forward/backward.
#include "ember/kernels/cuda/block_reduce.h"
#include "ember/kernels/cuda/cuda_kernels.h"
#include "ember/kernels/cuda/grid.h"
#include "ember/kernels/cuda/portability.h"
#include "ember/kernels/dispatch.h"

namespace ember::kernels::cuda {
namespace {

constexpr int kThreads = 256;

template <class T>
__global__ void cross_entropy_forward_kernel(const T* logits, const int64_t* target, const T* w, int64_t rows,
                                             int64_t classes, T* loss, T* lse) {
  for (int64_t i = blockIdx.x; i < rows; i += gridDim.x) {  // the same trip count for the whole block
    const T* row = logits + i * classes;
    const RowExpSum r = row_max_and_exp_sum<kThreads>(row, classes);
    if (threadIdx.x == 0) {
      const double l = r.max + log(r.sum);
      lse[i] = static_cast<T>(l);
      loss[i] = w[i] == T(0) ? T(0) : static_cast<T>(w[i] * (l - row[target[i]]));
    }
  }
}

template <class T>
__global__ void cross_entropy_backward_kernel(const T* logits, const int64_t* target, const T* w,
                                              const T* lse, const T* g, int64_t rows, int64_t classes,
                                              T* grad) {
  EMBER_GRID_STRIDE(idx, rows * classes) {
    const int64_t i = idx / classes, c = idx % classes;
    const double coef = double(g[i]) * w[i];
    grad[idx] =
        static_cast<T>(coef * (exp(double(logits[idx]) - double(lse[i])) - (c == target[i] ? 1.0 : 0.0)));
  }
}

}  // namespace

void cross_entropy_forward(DType dt, const void* logits, const int64_t* target, const void* row_weight,
                           int64_t rows, int64_t classes, void* loss, void* lse) {
  if (rows == 0) return;
  dispatch_floating(dt, "cuda cross_entropy", [&]<class T>() {
    EMBER_LAUNCH((cross_entropy_forward_kernel<T>), grid_for(rows * kThreads, kThreads), kThreads, 0,
                 gpu::stream(), static_cast<const T*>(logits), target, static_cast<const T*>(row_weight),
                 rows, classes, static_cast<T*>(loss), static_cast<T*>(lse));
  });
}

void cross_entropy_backward(DType dt, const void* logits, const int64_t* target, const void* row_weight,
                            const void* lse, const void* grad_loss, int64_t rows, int64_t classes,
                            void* grad_logits) {
  if (rows * classes == 0) return;
  dispatch_floating(dt, "cuda cross_entropy_backward", [&]<class T>() {
    EMBER_LAUNCH((cross_entropy_backward_kernel<T>), grid_for(rows * classes), kThreads, 0, gpu::stream(),
                 static_cast<const T*>(logits), target, static_cast<const T*>(row_weight),
                 static_cast<const T*>(lse), static_cast<const T*>(grad_loss), rows, classes,
                 static_cast<T*>(grad_logits));
  });
}

}  // namespace ember::kernels::cuda
