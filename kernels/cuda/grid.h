// Grid sizing shared by the kernel files: grid-stride loops over n elements with a capped number of
// blocks (enough to fill a GPU, few enough that the simulator does not pay for idle blocks).
#pragma once
#include <cstdint>

#include "ember/kernels/cuda/portability.h"

namespace ember::kernels::cuda {

inline dim3 grid_for(int64_t n, int threads = 256) {
  const int64_t blocks = (n + threads - 1) / threads;
  return dim3(static_cast<unsigned>(blocks < 1 ? 1 : (blocks > 4096 ? 4096 : blocks)));
}

}  // namespace ember::kernels::cuda

// for (int64_t i = <this thread's first element>; i < n; i += <threads in the grid>)
#define EMBER_GRID_STRIDE(i, n)                                             \
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < (n); \
       i += int64_t(gridDim.x) * blockDim.x)
