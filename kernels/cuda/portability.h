// The one header a kernel file (.cu) includes. Under nvcc it is CUDA itself; under g++ it is the
// SIMT simulator (sim/simt.h), which runs the same source on the CPU so every kernel is tested in CI
// without a GPU. Kernel files follow the rules in docs/cuda.md: launch through EMBER_LAUNCH,
// dynamic shared memory through ember_dynamic_shared<T>(), barriers only where every live thread of
// the block arrives, warp collectives with exact masks, kWarpSize instead of warpSize.
#pragma once
#include <cstddef>
#include <cstring>

#if defined(__CUDACC__)
#include <cuda_runtime.h>

namespace ember::cuda {
inline constexpr int kWarpSize = 32;
}  // namespace ember::cuda

namespace ember::gpu {
// The stream all of ember's device work is ordered on (kernels/cuda/gpu_runtime.cpp).
cudaStream_t stream();
// Throws an ember::Error naming the kernel when its launch failed (bad configuration, too much
// shared memory, no device).
void check_launch(const char* kernel);
}  // namespace ember::gpu

// kernel<<<grid, block, shared_bytes, stream>>>(args...), then the launch's error check.
#define EMBER_LAUNCH(kernel, grid, block, shared_bytes, stream, ...)    \
  do {                                                                  \
    kernel<<<(grid), (block), (shared_bytes), (stream)>>>(__VA_ARGS__); \
    ::ember::gpu::check_launch(#kernel);                                \
  } while (0)

// Lets `kernel` take more than the default 48 KiB of dynamic shared memory (up to the device's
// limit, 227 KiB on sm_90). The simulator has no such default.
#define EMBER_ALLOW_DYNAMIC_SHARED(kernel, bytes)                                                         \
  do {                                                                                                    \
    if ((bytes) > (48u << 10))                                                                            \
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)); \
  } while (0)

template <class T>
__device__ inline T* ember_dynamic_shared() {
  extern __shared__ unsigned char ember_dynamic_smem[];
  return reinterpret_cast<T*>(ember_dynamic_smem);
}

#else
#include "ember/kernels/cuda/sim/simt.h"
#endif

// Device memory for kernel tests and host wrappers: cudaMalloc/cudaMemcpy on ember's stream on a
// GPU, the simulator's heap (with overrun canaries) on the CPU. The same test runs unchanged on both.
namespace ember::gpu {
#if defined(__CUDACC__)
inline void* malloc(size_t bytes) {
  void* p = nullptr;
  cudaMalloc(&p, bytes);
  return p;
}
inline void free(void* p) { cudaFree(p); }
inline void copy_to_device(void* dst, const void* src, size_t bytes) {
  cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream());
  cudaStreamSynchronize(stream());
}
inline void copy_to_host(void* dst, const void* src, size_t bytes) {
  cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream());
  cudaStreamSynchronize(stream());
}
inline void synchronize() { cudaStreamSynchronize(stream()); }
#else
inline void* malloc(size_t bytes) { return ::ember::sim::device_malloc(bytes); }
inline void free(void* p) { ::ember::sim::device_free(p); }
inline void copy_to_device(void* dst, const void* src, size_t bytes) {
  if (bytes) std::memcpy(dst, src, bytes);  // an empty buffer may have no pointer
}
inline void copy_to_host(void* dst, const void* src, size_t bytes) {
  if (bytes) std::memcpy(dst, src, bytes);
}
inline void synchronize() {}
inline cudaStream_t stream() { return nullptr; }  // the simulator runs launches in order
#endif
}  // namespace ember::gpu
