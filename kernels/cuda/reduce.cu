// Reductions over the middle dim of an [outer, r, inner] buffer, and row softmax. A contiguous run
// (inner == 1) gets a block per output row: each thread folds a strided slice, warps combine with
// shuffles, warp results meet in shared memory (block_reduce). That holds for sums and products and
// for max/min and their arg forms, whose (value, index) pairs combine under a total order - NaN above
// everything, then the extreme, then the lower index - so the first extreme wins, as on the CPU.
// Strided runs (inner > 1) use a thread per output reading along r, which keeps neighbouring threads
// on neighbouring addresses. Softmax uses a block per row: block maximum, block sum, then the map.
#include "ember/kernels/cuda/block_reduce.h"
#include "ember/kernels/cuda/cuda_kernels.h"
#include "ember/kernels/cuda/grid.h"
#include "ember/kernels/cuda/portability.h"
#include "ember/kernels/elementwise_ops.h"

namespace ember::kernels::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / ember::cuda::kWarpSize;

template <class T>
__global__ void sum_rows_kernel(const T* in, T* out, int64_t outer, int64_t r, bool product) {
  using A = acc_t<T>;
  for (int64_t o = blockIdx.x; o < outer; o += gridDim.x) {  // the same trip count for the whole block
    const T* row = in + o * r;
    A acc = product ? A(1) : A(0);
    for (int64_t j = threadIdx.x; j < r; j += kThreads) acc = product ? acc * A(row[j]) : acc + A(row[j]);
    acc = product ? block_reduce<kThreads>(acc, Product{}, A(1)) : block_reduce<kThreads>(acc, Sum{}, A(0));
    if (threadIdx.x == 0) out[o] = static_cast<T>(acc);
  }
}

// Whether candidate (a, ia) beats (b, ib) for a max (or min): index -1 is "none yet"; NaN beats
// every number; between equals the lower index wins. A total order, so any reduction tree agrees.
template <class T>
__device__ bool beats(T a, int64_t ia, T b, int64_t ib, bool want_max) {
  if (ia < 0) return false;
  if (ib < 0) return true;
  const bool na = is_nan(a), nb = is_nan(b);
  if (na || nb) return na && (!nb || ia < ib);
  if (a == b) return ia < ib;
  return want_max ? a > b : a < b;
}

template <class T>
__global__ void extreme_rows_kernel(ReduceOp op, const T* in, void* out, int64_t outer, int64_t r) {
  __shared__ T best_value[kWarps];
  __shared__ int64_t best_index[kWarps];
  using Wire = std::conditional_t<std::is_same_v<T, bool>, int, T>;  // bool has no shuffle overload
  const bool want_max = op == ReduceOp::Max || op == ReduceOp::ArgMax;
  const int lane = threadIdx.x % ember::cuda::kWarpSize, warp = threadIdx.x / ember::cuda::kWarpSize;
  for (int64_t o = blockIdx.x; o < outer; o += gridDim.x) {
    const T* row = in + o * r;
    T value = T(0);
    int64_t index = -1;
    for (int64_t j = threadIdx.x; j < r; j += kThreads)
      if (beats(row[j], j, value, index, want_max)) value = row[j], index = j;
    // Within the warp, then across warps (warp 0 folds the warps' winners).
    for (int round = 0; round < 2; ++round) {
      for (int offset = ember::cuda::kWarpSize / 2; offset > 0; offset /= 2) {
        const T v = static_cast<T>(__shfl_xor_sync(0xffffffffu, static_cast<Wire>(value), offset));
        const int64_t i = __shfl_xor_sync(0xffffffffu, index, offset);
        if (beats(v, i, value, index, want_max)) value = v, index = i;
      }
      if (round == 1) break;
      if (lane == 0) best_value[warp] = value, best_index[warp] = index;
      __syncthreads();
      value = lane < kWarps ? best_value[lane] : T(0);
      index = lane < kWarps ? best_index[lane] : -1;
      __syncthreads();  // read before the next row overwrites them
    }
    if (threadIdx.x == 0) {
      if (op == ReduceOp::ArgMax || op == ReduceOp::ArgMin) static_cast<int64_t*>(out)[o] = index;
      else static_cast<T*>(out)[o] = value;
    }
  }
}

template <class T>
__global__ void reduce_columns_kernel(ReduceOp op, const T* in, void* out, int64_t outer, int64_t r,
                                      int64_t inner) {
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
__global__ void softmax_kernel(const T* in, T* out, int64_t rows, int64_t cols, bool log) {
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* x = in + row * cols;
    T* y = out + row * cols;
    const RowExpSum r = row_max_and_exp_sum<kThreads>(x, cols);
    const double log_sum = ::log(r.sum);
    for (int64_t j = threadIdx.x; j < cols; j += kThreads) {
      const double z = double(x[j]) - r.max;
      y[j] = static_cast<T>(log ? z - log_sum : exp(z) / r.sum);
    }
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
    const dim3 row_blocks = grid_for(outer * kThreads, kThreads);  // a block per row, capped
    if (inner == 1 && (op == ReduceOp::Sum || op == ReduceOp::Prod)) {
      EMBER_LAUNCH((sum_rows_kernel<T>), row_blocks, kThreads, 0, gpu::stream(), static_cast<const T*>(in),
                   static_cast<T*>(out), outer, r, op == ReduceOp::Prod);
      return;
    }
    if (inner == 1 && r > 1) {
      EMBER_LAUNCH((extreme_rows_kernel<T>), row_blocks, kThreads, 0, gpu::stream(), op,
                   static_cast<const T*>(in), out, outer, r);
      return;
    }
    EMBER_LAUNCH((reduce_columns_kernel<T>), grid_for(outer * inner), kThreads, 0, gpu::stream(), op,
                 static_cast<const T*>(in), out, outer, r, inner);
  });
}

void softmax(DType dt, const void* in, void* out, int64_t rows, int64_t cols, bool log) {
  if (rows * cols == 0) return;
  dispatch_floating(dt, "cuda softmax", [&]<class T>() {
    EMBER_LAUNCH((softmax_kernel<T>), grid_for(rows * kThreads, kThreads), kThreads, 0, gpu::stream(),
                 static_cast<const T*>(in), static_cast<T*>(out), rows, cols, log);
  });
}

}  // namespace ember::kernels::cuda
