// The simulator's own test kernels: a tiled GEMM, a warp-shuffle reduction, an atomic histogram, a
// block scan, and planted bugs. Written by the rules in docs/cuda.md, so the file also
// compiles with nvcc (tests/CMakeLists.txt checks that when nvcc is present).
#include "ember/kernels/cuda/portability.h"
#include "sim_kernels.h"

namespace ember::simtest {

constexpr int kTile = 16;

__global__ void tiled_sgemm_kernel(const float* a, const float* b, float* c, int m, int n, int k) {
  __shared__ float ta[kTile][kTile];
  __shared__ float tb[kTile][kTile];
  const int row = blockIdx.y * kTile + threadIdx.y, col = blockIdx.x * kTile + threadIdx.x;
  float acc = 0.0f;
  for (int t0 = 0; t0 < k; t0 += kTile) {
    const int ka = t0 + threadIdx.x, kb = t0 + threadIdx.y;
    ta[threadIdx.y][threadIdx.x] = row < m && ka < k ? a[row * k + ka] : 0.0f;
    tb[threadIdx.y][threadIdx.x] = kb < k && col < n ? b[kb * n + col] : 0.0f;
    __syncthreads();
    for (int i = 0; i < kTile; ++i) acc += ta[threadIdx.y][i] * tb[i][threadIdx.x];
    __syncthreads();
  }
  if (row < m && col < n) c[row * n + col] = acc;
}

void tiled_sgemm(const float* a, const float* b, float* c, int m, int n, int k) {
  const dim3 block(kTile, kTile), grid((n + kTile - 1) / kTile, (m + kTile - 1) / kTile);
  EMBER_LAUNCH(tiled_sgemm_kernel, grid, block, 0, 0, a, b, c, m, n, k);
  gpu::synchronize();
}

__device__ float warp_sum(float v) {
  for (int offset = cuda::kWarpSize / 2; offset > 0; offset /= 2)
    v += __shfl_down_sync(0xffffffffu, v, offset);
  return v;
}

__global__ void warp_reduce_kernel(const float* x, float* out, int n) {
  __shared__ float partial[32];
  float v = 0.0f;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) v += x[i];
  v = warp_sum(v);
  const int lane = threadIdx.x % cuda::kWarpSize, warp = threadIdx.x / cuda::kWarpSize;
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  if (warp == 0) {
    const int warps = blockDim.x / cuda::kWarpSize;
    v = lane < warps ? partial[lane] : 0.0f;
    v = warp_sum(v);
    if (lane == 0) atomicAdd(out, v);
  }
}

void warp_reduce_sum(const float* x, float* out, int n) {
  EMBER_LAUNCH(warp_reduce_kernel, dim3(4), dim3(256), 0, 0, x, out, n);
  gpu::synchronize();
}

__global__ void histogram_kernel(const int* values, int n, unsigned* counts, int bins) {
  unsigned* local = ember_dynamic_shared<unsigned>();
  for (int b = threadIdx.x; b < bins; b += blockDim.x) local[b] = 0;
  __syncthreads();
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
    atomicAdd(&local[values[i]], 1u);
  __syncthreads();
  for (int b = threadIdx.x; b < bins; b += blockDim.x) atomicAdd(&counts[b], local[b]);
}

void histogram(const int* values, int n, unsigned* counts, int bins) {
  EMBER_LAUNCH(histogram_kernel, dim3(3), dim3(128), bins * sizeof(unsigned), 0, values, n, counts, bins);
  gpu::synchronize();
}

// Inclusive scan of 64 values per block: warps scan with up-shuffles, warp totals meet in shared
// memory. A ballot counts the non-zero inputs as a side check of __ballot_sync.
__global__ void block_scan_kernel(const float* x, float* out, int n) {
  float* warp_totals = ember_dynamic_shared<float>();
  const int i = blockIdx.x * 64 + threadIdx.x;
  const int lane = threadIdx.x % cuda::kWarpSize, warp = threadIdx.x / cuda::kWarpSize;
  float v = i < n ? x[i] : 0.0f;
  const unsigned nonzero = __ballot_sync(0xffffffffu, v != 0.0f);
  for (int d = 1; d < cuda::kWarpSize; d *= 2) {
    const float up = __shfl_up_sync(0xffffffffu, v, d);
    if (lane >= d) v += up;
  }
  if (lane == cuda::kWarpSize - 1) warp_totals[warp] = v;
  __syncthreads();
  if (warp == 1) v += warp_totals[0];
  if (i < n) out[i] = v + 0.0f * static_cast<float>(__popc(nonzero));
}

void block_scan(const float* x, float* out, int n) {
  EMBER_LAUNCH(block_scan_kernel, dim3((n + 63) / 64), dim3(64), 2 * sizeof(float), 0, x, out, n);
  gpu::synchronize();
}

// ---- planted bugs --------------------------------------------------------------------------------

__global__ void missing_barrier_kernel(const float* x, float* out, int n) {
  float* slot = ember_dynamic_shared<float>();
  const int t = threadIdx.x;
  slot[t] = t < n ? x[t] : 0.0f;
  // BUG: no __syncthreads() here; the neighbour may not have written its slot yet.
  if (t < n) out[t] = slot[(t + 1) % blockDim.x];
}

void bug_missing_barrier(const float* x, float* out, int n) {
  EMBER_LAUNCH(missing_barrier_kernel, dim3(1), dim3(64), 64 * sizeof(float), 0, x, out, n);
  gpu::synchronize();
}

__global__ void divergent_barrier_kernel(float* out, int n) {
  if (threadIdx.x % 2 == 0) {
    __syncthreads();  // BUG: odd threads wait at the other barrier
  } else {
    __syncthreads();
  }
  if (static_cast<int>(threadIdx.x) < n) out[threadIdx.x] = 1.0f;
}

void bug_divergent_barrier(float* out, int n) {
  EMBER_LAUNCH(divergent_barrier_kernel, dim3(1), dim3(32), 0, 0, out, n);
  gpu::synchronize();
}

__global__ void early_return_kernel(float* out, int n) {
  if (static_cast<int>(threadIdx.x) >= n) return;  // BUG: these threads never reach the barrier
  __syncthreads();
  out[threadIdx.x] = 2.0f;
}

void bug_early_return(float* out, int n) {
  EMBER_LAUNCH(early_return_kernel, dim3(1), dim3(64), 0, 0, out, n);
  gpu::synchronize();
}

__global__ void out_of_bounds_kernel(float* out, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i <= n) out[i] = 3.0f;  // BUG: <= writes one past the end
}

void bug_out_of_bounds(float* out, int n) {
  EMBER_LAUNCH(out_of_bounds_kernel, dim3((n + 64) / 64), dim3(64), 0, 0, out, n);
  gpu::synchronize();
}

__global__ void shuffle_exited_kernel(float* out) {
  if (threadIdx.x >= 16) return;  // BUG: lanes 16-31 leave, but the mask below still names them
  const float v = __shfl_down_sync(0xffffffffu, 1.0f, 1);
  out[threadIdx.x] = v;
}

void bug_shuffle_exited_lane(float* out) {
  EMBER_LAUNCH(shuffle_exited_kernel, dim3(1), dim3(32), 0, 0, out);
  gpu::synchronize();
}

}  // namespace ember::simtest
