// The CUDA backend: ember's own kernels (kernels/cuda/*.cu) behind the backend interface, with cuBLAS
// for GEMM. Which device it drives is fixed when ember is built (CMake's EMBER_CUDA):
//   - ON (or AUTO on a machine with nvcc and a GPU): the kernels are compiled by nvcc and run on the
//     GPU, memory comes from cudaMalloc through the caching allocator, work is ordered on one stream;
//   - OFF (or AUTO without a GPU): the same kernel sources are compiled as C++ and run on the SIMT
//     simulator - a "simulated device" whose memory is host memory - once switched on by
//     EMBER_CUDA_SIM=1 in the environment or cuda::enable_simulated_device(), so CI tests the whole
//     CUDA path without a GPU.
// Without a device, Device::cuda(i) is a clear error and cuda::is_available() is false.
//
// Every primitive has a kernel: fill, cast, strided copy, unary and broadcasting binary ops, where,
// reductions, cumsum, softmax, index ops, nonzero, sort, im2col / col2im, layer norm, fused
// attention (flash-attention-2 style), optimizer updates, Philox random numbers.
#pragma once
#include <string>

#include "ember/kernels/backend.h"

namespace ember::cuda {

// Whether a CUDA device can be used (the simulated one counts once enabled), and if not, why.
bool is_available();
int device_count();
std::string unavailable_reason();
// Whether this ember was built to run its kernels on a GPU (EMBER_CUDA=ON) rather than the simulator.
bool built_for_gpu();
// Waits for all queued device work.
void synchronize();
// Turns the simulated device on for this process (what EMBER_CUDA_SIM=1 does); an error in the GPU
// build.
void enable_simulated_device();
// TF32 tensor cores for float32 matmuls (torch.backends.cuda.matmul.allow_tf32; off by default).
void set_allow_tf32(bool on);
bool allow_tf32();

// Device memory (bytes) through the caching allocator, PyTorch's names: in use by tensors, held
// (in use + cached), the peak in use; empty_cache() gives the cached blocks back.
int64_t memory_allocated();
int64_t memory_reserved();
int64_t max_memory_allocated();
void reset_peak_memory_stats();
void empty_cache();

}  // namespace ember::cuda

namespace ember::kernels {

// The backend of Device::cuda(0), or null when no CUDA device is available.
Backend* cuda_backend_or_null();

}  // namespace ember::kernels
