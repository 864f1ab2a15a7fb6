// EMBER_HD marks a function or lambda that runs on the host and, under nvcc, on the device too, so
// one formula (kernels/elementwise_ops.h) serves the CPU backends, the simulator and CUDA.
#pragma once
#if defined(__CUDACC__)
#define EMBER_HD __host__ __device__
#else
#define EMBER_HD
#endif

// EMBER_CPU_INLINE marks a host loop in a shared kernel header that the per-level CPU kernels
// (kernels/cpu/cpu_isa.h) must inline: inlined, it is vectorised for their instruction set; called,
// it would run as the baseline copy the header compiled to.
#if defined(__GNUC__)
#define EMBER_CPU_INLINE __attribute__((always_inline)) inline
#else
#define EMBER_CPU_INLINE inline
#endif
