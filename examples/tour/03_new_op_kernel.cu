// Tour 03, the CUDA half: softplus as a kernel. Like every kernel file of ember it includes only
// kernels/cuda/portability.h and launches through EMBER_LAUNCH, so nvcc builds it for a GPU and g++
// builds the same source for ember's SIMT simulator (docs/cuda.md has the rules such a file follows).
#include <algorithm>
#include <cstdint>
#include <vector>

#include "ember/kernels/cuda/portability.h"

namespace tour {

// A grid-stride loop, so any grid covers any n.
__global__ void softplus_kernel(const float* x, float* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    y[i] = x[i] > 20.0f ? x[i] : log1pf(expf(x[i]));
}

// Copies x to the device, runs the kernel, copies the result back.
std::vector<float> softplus_cuda(const std::vector<float>& x) {
  const int64_t n = static_cast<int64_t>(x.size());
  const size_t bytes = x.size() * sizeof(float);
  auto* dx = static_cast<float*>(ember::gpu::malloc(bytes));
  auto* dy = static_cast<float*>(ember::gpu::malloc(bytes));
  ember::gpu::copy_to_device(dx, x.data(), bytes);
  const unsigned blocks = static_cast<unsigned>(std::min<int64_t>((n + 127) / 128, 64));
  EMBER_LAUNCH(softplus_kernel, dim3(blocks), dim3(128), 0, ember::gpu::stream(), dx, dy, n);
  std::vector<float> y(x.size());
  ember::gpu::copy_to_host(y.data(), dy, bytes);
  ember::gpu::free(dx);
  ember::gpu::free(dy);
  return y;
}

}  // namespace tour
