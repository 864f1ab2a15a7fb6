// What the CPU this process runs on can do, and which of the CPU kernels' instruction-set levels
// (see cpu_isa.h) ember uses on it. The level is the highest one that both the CPU supports and this
// build compiled, capped by the environment variable EMBER_CPU_CAPABILITY=avx512|avx2|default (like
// PyTorch's ATEN_CPU_CAPABILITY): one machine can run, test and time every path. The variable is
// read once, when the CPU backend is first used.
#pragma once
#include <cstdint>
#include <string>

namespace ember::kernels {

enum class CpuCapability { Default = 0, Avx2 = 1, Avx512 = 2 };

const char* cpu_capability_name(CpuCapability capability);  // "default", "avx2", "avx512"

// The level the CPU backend runs at in this process.
CpuCapability cpu_capability();
// The highest level this CPU supports and this build has kernels for (ignores the variable).
CpuCapability cpu_supported_capability();
// Whether the kernels of `capability` can run here (built, and supported by the CPU).
bool cpu_capability_available(CpuCapability capability);

// The CPU's name as cpuid reports it ("AMD EPYC 9R45 ..."), or "unknown".
std::string cpu_model();

// Data-cache sizes in bytes, read at run time (sysconf, then sysfs), with common defaults (48 KiB,
// 1 MiB) where the system does not say. The GEMM sizes its blocks from these.
struct CpuCacheSizes {
  int64_t l1d;
  int64_t l2;
};
const CpuCacheSizes& cpu_cache_sizes();

}  // namespace ember::kernels
