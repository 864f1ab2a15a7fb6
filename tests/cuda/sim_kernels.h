// Host entry points of the simulator's own test kernels (sim_kernels.cu). Pointers are device
// memory from ember::gpu::malloc; each function launches and returns when the kernel is done.
#pragma once
#include <cstdint>

namespace ember::simtest {

// C[m, n] = A[m, k] @ B[k, n], row-major, with 16 x 16 shared-memory tiles.
void tiled_sgemm(const float* a, const float* b, float* c, int m, int n, int k);
// out[0] = sum of x[0..n) by warp shuffles and a per-block shared-memory step, blocks combined
// with atomicAdd.
void warp_reduce_sum(const float* x, float* out, int n);
// counts[v] = how many values[i] == v, for v in [0, bins), by atomics on shared then global memory.
void histogram(const int* values, int n, unsigned* counts, int bins);
// Prefix sums of each block of 64 values through dynamic shared memory (a ballot, up-shuffles and a
// barrier); out has n values.
void block_scan(const float* x, float* out, int n);

// Planted bugs the simulator must report or expose.
void bug_missing_barrier(const float* x, float* out, int n);  // reads a neighbour's shared slot unfenced
void bug_divergent_barrier(float* out, int n);                // __syncthreads inside a branch
void bug_early_return(float* out, int n);                     // return before a barrier
void bug_out_of_bounds(float* out, int n);                    // writes out[n]
void bug_shuffle_exited_lane(float* out);                     // shuffles with a lane that returned

}  // namespace ember::simtest
