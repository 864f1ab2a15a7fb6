// Reductions over the middle dim of an [outer, r, inner] buffer, and row softmax. Sums and products
// of a contiguous run (inner == 1) use a block per output: each thread folds a strided slice, warps
// combine with shuffles, warps meet in shared memory. Max/min (and their arg forms, first extreme
// wins, NaN wins) and strided runs (inner > 1) use a thread per output reading along r, which
// keeps neighbouring threads on neighbouring addresses. Softmax uses a block per row.
#include "ember/kernels/cuda/portability.h"
#include "ember/kernels/cuda/cuda_kernels.h"
#include "ember/kernels/cuda/grid.h"
#include "ember/kernels/elementwise_ops.h"

namespace ember::kernels::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / ember::cuda::kWarpSize;

template <class A>
__device__ A warp_combine(A v, bool product) {
  for (int offset = ember::cuda::kWarpSize / 2; offset > 0; offset /= 2) {
    const A other = __shfl_down_sync(0xffffffffu, v, offset);
    v = product ? v * other : v + other;
  }
  return v;
}

// Sum (or product) of the kThreads values of a block; lane 0 of warp 0 gets the result.
template <class A>
__device__ A block_combine(A v, bool product) {
  __shared__ A partial[kWarps];
  const int lane = threadIdx.x % ember::cuda::kWarpSize, warp = threadIdx.x / ember::cuda::kWarpSize;
  v = warp_combine(v, product);
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  v = lane < kWarps ? partial[lane] : A(product ? 1 : 0);
  if (warp == 0) v = warp_combine(v, product);
  __syncthreads();  // partial is reused by the next call
  return v;
}

template <class T>
__global__ void sum_rows_kernel(const T* in, T* out, int64_t r, bool product) {
  using A = acc_t<T>;
  const T* row = in + blockIdx.x * r;
  A acc = product ? A(1) : A(0);
  for (int64_t j = threadIdx.x; j < r; j += kThreads) acc = product ? acc * A(row[j]) : acc + A(row[j]);
  acc = block_combine(acc, product);
  if (threadIdx.x == 0) out[blockIdx.x] = static_cast<T>(acc);
}

template <class T>
__global__ void reduce_columns_kernel(ReduceOp op, const T* in, void* out, int64_t outer, int64_t r, int64_t inner) {
  EMBER_GRID_STRIDE(dst, outer * inner) {
    const int64_t o = dst / inner, i = dst % inner;
    const T* x = in + o * r * inner + i;
    if (op == ReduceOp::Sum || op == ReduceOp::Prod) {
      acc_t<T> acc = op == ReduceOp::Sum ? 0 : 1;
      for (int64_t j = 0; j < r; ++j) acc = op == ReduceOp::Sum ? acc + x[j * inner] : acc * x[j * inner];
      static_cast<T*>(out)[dst] = static_cast<T>(acc);
    } else {
      const bool want_max = op == ReduceOp::Max || op == ReduceOp::ArgMax;
      int64_t best = 0;
      for (int64_t j = 1; j < r; ++j) {
        if (is_nan(x[best * inner])) break;
        const T v = x[j * inner];
        if (is_nan(v) || (want_max ? v > x[best * inner] : v < x[best * inner])) best = j;
      }
      if (op == ReduceOp::ArgMax || op == ReduceOp::ArgMin) static_cast<int64_t*>(out)[dst] = best;
      else static_cast<T*>(out)[dst] = x[best * inner];
    }
  }
}

template <class T>
__global__ void softmax_kernel(const T* in, T* out, int64_t cols, bool log) {
  __shared__ double row_max;
  const T* x = in + blockIdx.x * cols;
  T* y = out + blockIdx.x * cols;
  // The row maximum, by a block reduction of per-thread maxima.
  double mx = -INFINITY;
  for (int64_t j = threadIdx.x; j < cols; j += kThreads) mx = x[j] > mx ? double(x[j]) : mx;
  __shared__ double partial[kThreads];
  partial[threadIdx.x] = mx;
  __syncthreads();
  for (int stride = kThreads / 2; stride > 0; stride /= 2) {
    if (static_cast<int>(threadIdx.x) < stride && partial[threadIdx.x + stride] > partial[threadIdx.x])
      partial[threadIdx.x] = partial[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0) row_max = partial[0];
  __syncthreads();
  double sum = 0;
  for (int64_t j = threadIdx.x; j < cols; j += kThreads) sum += exp(double(x[j]) - row_max);
  sum = block_combine(sum, false);
  __shared__ double row_sum;
  if (threadIdx.x == 0) row_sum = sum;
  __syncthreads();
  for (int64_t j = threadIdx.x; j < cols; j += kThreads) {
    const double z = double(x[j]) - row_max;
    y[j] = static_cast<T>(log ? z - ::log(row_sum) : exp(z) / row_sum);
  }
}

}  // namespace

void reduce(ReduceOp op, DType dt, const void* in, void* out, int64_t outer, int64_t r, int64_t inner) {
  if (outer * inner == 0) return;
  dispatch_numeric(dt, "cuda reduce", [&]<class T>() {
    if (r == 0) {  // the empty sum / product
      EMBER_CHECK(op == ReduceOp::Sum || op == ReduceOp::Prod, "reduce: max/min of an empty dimension");
      fill(dt, out, outer * inner, Scalar(op == ReduceOp::Sum ? 0 : 1));
      return;
    }
    if (inner == 1 && (op == ReduceOp::Sum || op == ReduceOp::Prod)) {
      EMBER_LAUNCH((sum_rows_kernel<T>), dim3(static_cast<unsigned>(outer)), kThreads, 0, gpu::stream(), static_cast<const T*>(in),
                   static_cast<T*>(out), r, op == ReduceOp::Prod);
      return;
    }
    EMBER_LAUNCH((reduce_columns_kernel<T>), grid_for(outer * inner), kThreads, 0, gpu::stream(), op,
                 static_cast<const T*>(in), out, outer, r, inner);
  });
}

void softmax(DType dt, const void* in, void* out, int64_t rows, int64_t cols, bool log) {
  if (rows * cols == 0) return;
  dispatch_floating(dt, "cuda softmax", [&]<class T>() {
    EMBER_LAUNCH((softmax_kernel<T>), dim3(static_cast<unsigned>(rows)), kThreads, 0, gpu::stream(), static_cast<const T*>(in),
                 static_cast<T*>(out), cols, log);
  });
}

}  // namespace ember::kernels::cuda
