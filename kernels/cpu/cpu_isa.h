// One kernel source, compiled once per instruction-set level. The CPU kernel files
// (cpu_backend.cpp, sgemm.cpp) are built three times on x86-64 with EMBER_CPU_ISA = 0 (portable:
// the x86-64 baseline, or whatever the target's default is), 1 (AVX2 + FMA) or 2 (AVX-512), and
// cpu_capability.cpp picks one of the three at run time from cpuid. That way one build runs on any
// x86-64 CPU and still uses its widest vectors.
//
// How a file is written: it includes every header it needs first, then opens
//   EMBER_CPU_ISA_BEGIN
//   namespace ember::kernels::EMBER_CPU_ISA_NS { ... }
//   EMBER_CPU_ISA_END
// Only the code between the two markers is compiled for the level (GCC's `#pragma GCC target`):
// library and header code above it stays at the baseline, so no out-of-line copy of, say,
// std::vector<float>::resize compiled for AVX-512 can be picked by the linker for a caller on a
// machine without it. Small header helpers called from the region are inlined into it and then
// vectorised for the level. The namespace keeps the three copies of each function apart.
#pragma once

#if !defined(EMBER_CPU_ISA)
#define EMBER_CPU_ISA 0
#endif

#if EMBER_CPU_ISA == 2
#define EMBER_CPU_ISA_NS isa_avx512
#define EMBER_CPU_ISA_BEGIN                                                                              \
  _Pragma("GCC push_options") _Pragma(                                                                   \
      "GCC target(\"avx512f,avx512cd,avx512bw,avx512dq,avx512vl,avx2,fma,f16c,bmi,bmi2,lzcnt,popcnt\")") \
      _Pragma("GCC target(\"prefer-vector-width=512\")")
#define EMBER_CPU_ISA_END _Pragma("GCC pop_options")
#elif EMBER_CPU_ISA == 1
#define EMBER_CPU_ISA_NS isa_avx2
#define EMBER_CPU_ISA_BEGIN \
  _Pragma("GCC push_options") _Pragma("GCC target(\"avx2,fma,f16c,bmi,bmi2,lzcnt,popcnt\")")
#define EMBER_CPU_ISA_END _Pragma("GCC pop_options")
#else
#define EMBER_CPU_ISA_NS isa_default
#define EMBER_CPU_ISA_BEGIN
#define EMBER_CPU_ISA_END
#endif
