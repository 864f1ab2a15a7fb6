// What the CUDA backend needs from a device besides kernels: memory, copies, a stream to order work,
// GEMM and whether a device exists. Two implementations, one per build (CMake's EMBER_CUDA):
//   - gpu_runtime.cpp: the CUDA runtime on a real GPU - cudaMalloc, copies through pinned staging
//     buffers on ember's stream, cuBLAS for GEMM;
//   - sim_runtime.cpp: the simulated device - host memory with overrun canaries, plain memcpy, the
//     CPU backend's GEMM, present only when switched on (EMBER_CUDA_SIM=1 or
//     cuda::enable_simulated_device()), so CI runs the CUDA backend's whole path without a GPU.
// Kernel files never include this; they get their stream through gpu::stream() (portability.h).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "ember/core/dtype.h"
#include "ember/kernels/backend.h"

namespace ember::kernels::cuda::runtime {

// "cuda" or "cuda (simulated)": the backend's name.
const char* name();
// Whether cuda:0 can be used now, and if not, a sentence saying why and what to do.
bool available();
std::string unavailable_reason();
int device_count();
// True in the build for real GPUs (EMBER_CUDA=ON), false in the simulated-device build.
bool built_for_gpu();
void enable_simulated_device();  // an error in the GPU build

void* device_malloc(size_t bytes);  // null when the device is out of memory
void device_free(void* p);
void copy_to_device(void* dst, const void* host_src, size_t bytes);
void copy_to_host(void* host_dst, const void* src, size_t bytes);
void synchronize();
// The cudaStream_t all work is queued on (null on the simulated device), for libraries that take a
// stream (NCCL).
void* stream_handle();

// TF32 tensor cores for float32 GEMM (PyTorch's torch.backends.cuda.matmul.allow_tf32; off by
// default). The simulated device's GEMM is the CPU's and ignores it.
void set_allow_tf32(bool on);
bool allow_tf32();

// Row-major C[b] = alpha op(A[b]) op(B[b]) + beta C[b], as Backend::gemm; float32, float64, and
// bfloat16 / float16 accumulating in float32.
void gemm(const GemmArgs& g, const void* a, const void* b, void* c);

}  // namespace ember::kernels::cuda::runtime
