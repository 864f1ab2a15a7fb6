// Reductions across the threads of a block, shared by the kernel files: a warp folds its 32 values
// with xor-shuffles (every lane ends with the result), lane 0 of each warp leaves it in shared memory,
// and every warp folds those. Every thread of the block must call it (it has barriers).
#pragma once
#include "ember/kernels/cuda/portability.h"

namespace ember::kernels::cuda {

struct Sum {
  template <class A>
  __device__ A operator()(A a, A b) const {
    return a + b;
  }
};
struct Product {
  template <class A>
  __device__ A operator()(A a, A b) const {
    return a * b;
  }
};
struct Maximum {
  template <class A>
  __device__ A operator()(A a, A b) const {
    return b > a ? b : a;
  }
};

template <class A, class F>
__device__ A warp_reduce(A v, F f) {
  for (int offset = ember::cuda::kWarpSize / 2; offset > 0; offset /= 2)
    v = f(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

// The fold of the kThreads values of a block with f (identity: f's neutral value); every thread gets it.
template <int kThreads, class A, class F>
__device__ A block_reduce(A v, F f, A identity) {
  constexpr int kWarps = kThreads / ember::cuda::kWarpSize;
  __shared__ A partial[kWarps];
  const int lane = threadIdx.x % ember::cuda::kWarpSize, warp = threadIdx.x / ember::cuda::kWarpSize;
  v = warp_reduce(v, f);
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  v = warp_reduce(lane < kWarps ? partial[lane] : identity, f);
  __syncthreads();  // partial is reused by the next call
  return v;
}

// A row's maximum and sum of exp(x - maximum), computed by the whole block in float64: the two
// reductions of softmax, log-softmax and cross-entropy.
struct RowExpSum {
  double max, sum;
};
template <int kThreads, class T>
__device__ RowExpSum row_max_and_exp_sum(const T* x, int64_t n) {
  double mx = -INFINITY;
  for (int64_t j = threadIdx.x; j < n; j += kThreads) mx = x[j] > mx ? double(x[j]) : mx;
  mx = block_reduce<kThreads>(mx, Maximum{}, double(-INFINITY));
  double sum = 0;
  for (int64_t j = threadIdx.x; j < n; j += kThreads) sum += exp(double(x[j]) - mx);
  return {mx, block_reduce<kThreads>(sum, Sum{}, 0.0)};
}

}  // namespace ember::kernels::cuda
