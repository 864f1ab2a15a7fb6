// The CUDA backend: ember's own kernels (kernels/cuda/*.cu) behind the backend interface. In this
// version it runs on the SIMT simulator - a "simulated device" whose memory is host memory and
// whose kernels run on the CPU - switched on by EMBER_CUDA_SIM=1 in the environment (or
// cuda::enable_simulated_device()), so CI tests the CUDA path without a GPU. Without it,
// Device::cuda(i) is a clear error and cuda::is_available() is false.
//
// Every primitive has a kernel: fill, cast, strided copy, unary and broadcasting binary ops, where,
// reductions, cumsum, softmax, index ops, nonzero, sort, im2col / col2im, layer norm, fused
// attention (a first, untiled version), optimizer updates, Philox random numbers. GEMM goes through
// the CPU's GEMM on the simulated device (cuBLAS on a GPU).
#pragma once
#include "ember/kernels/backend.h"

namespace ember::cuda {

// Whether a CUDA device can be used (the simulated one counts once enabled).
bool is_available();
int device_count();
void synchronize();
// Turns the simulated device on for this process (what EMBER_CUDA_SIM=1 does).
void enable_simulated_device();

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
void set_simulated_device(bool on);

}  // namespace ember::kernels
