// EMBER_HD marks a function or lambda that runs on the host and, under nvcc, on the device too, so
// one formula (kernels/elementwise_ops.h) serves the CPU backends, the simulator and CUDA.
#pragma once
#if defined(__CUDACC__)
#define EMBER_HD __host__ __device__
#else
#define EMBER_HD
#endif
