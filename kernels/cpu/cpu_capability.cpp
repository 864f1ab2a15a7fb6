// CPU feature detection, the EMBER_CPU_CAPABILITY cap and cache sizes (see cpu_capability.h).
#include "ember/kernels/cpu/cpu_capability.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "ember/core/error.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define EMBER_X86 1
#endif

// EMBER_CPU_ISA_LEVELS is set by the build: the highest level it compiled kernels for (0 where the
// per-level builds do not apply, e.g. on aarch64).
#if !defined(EMBER_CPU_ISA_LEVELS)
#define EMBER_CPU_ISA_LEVELS 0
#endif

namespace ember::kernels {
namespace {

CpuCapability detect() {
#if defined(EMBER_X86)
  __builtin_cpu_init();
  // __builtin_cpu_supports also checks that the OS saves the wide registers (XCR0).
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512cd"))
    return CpuCapability::Avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi2"))
    return CpuCapability::Avx2;
#endif
  return CpuCapability::Default;
}

CpuCapability parse_cap(const char* text) {
  for (CpuCapability c : {CpuCapability::Default, CpuCapability::Avx2, CpuCapability::Avx512})
    if (std::strcmp(text, cpu_capability_name(c)) == 0) return c;
  fail("EMBER_CPU_CAPABILITY=", text, ": expected one of avx512, avx2, default");
}

int64_t cache_from_sysfs(int level, const char* type) {
  for (int index = 0; index < 8; ++index) {
    const std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(index) + "/";
    std::ifstream lv(dir + "level"), ty(dir + "type"), sz(dir + "size");
    int l = 0;
    std::string t, s;
    if (!(lv >> l) || !(ty >> t) || !(sz >> s)) continue;
    if (l != level || (t != type && t != "Unified")) continue;
    int64_t value = std::atoll(s.c_str());
    if (s.back() == 'K') value <<= 10;
    if (s.back() == 'M') value <<= 20;
    return value;
  }
  return 0;
}

// The L1 data or L2 cache in bytes: glibc's sysconf (which reads cpuid), then sysfs, then `fallback`.
int64_t cache_size(int level, int64_t fallback) {
  int64_t bytes = 0;
#if defined(_SC_LEVEL1_DCACHE_SIZE)
  bytes = sysconf(level == 1 ? _SC_LEVEL1_DCACHE_SIZE : _SC_LEVEL2_CACHE_SIZE);
#endif
  if (bytes <= 0) bytes = cache_from_sysfs(level, "Data");
  return bytes > 0 ? bytes : fallback;
}

}  // namespace

const char* cpu_capability_name(CpuCapability capability) {
  switch (capability) {
    case CpuCapability::Avx512: return "avx512";
    case CpuCapability::Avx2: return "avx2";
    default: return "default";
  }
}

CpuCapability cpu_supported_capability() {
  static const CpuCapability supported =
      static_cast<CpuCapability>(std::min(static_cast<int>(detect()), EMBER_CPU_ISA_LEVELS));
  return supported;
}

bool cpu_capability_available(CpuCapability capability) {
  return static_cast<int>(capability) <= static_cast<int>(cpu_supported_capability());
}

CpuCapability cpu_capability() {
  static const CpuCapability chosen = [] {
    const char* cap = std::getenv("EMBER_CPU_CAPABILITY");
    const CpuCapability supported = cpu_supported_capability();
    if (!cap || !*cap) return supported;
    return std::min(parse_cap(cap), supported);
  }();
  return chosen;
}

std::string cpu_model() {
#if defined(EMBER_X86)
  unsigned regs[12] = {};
  if (__get_cpuid_max(0x80000000u, nullptr) >= 0x80000004u) {
    for (unsigned i = 0; i < 3; ++i)
      __get_cpuid(0x80000002u + i, &regs[4 * i], &regs[4 * i + 1], &regs[4 * i + 2], &regs[4 * i + 3]);
    std::string name(reinterpret_cast<const char*>(regs), sizeof regs);
    name = name.c_str();  // up to the first NUL
    const auto first = name.find_first_not_of(' '), last = name.find_last_not_of(' ');
    if (first != std::string::npos) return name.substr(first, last - first + 1);
  }
#endif
  std::ifstream info("/proc/cpuinfo");
  for (std::string line; std::getline(info, line);) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    const std::string key = line.substr(0, line.find_last_not_of(" \t", colon - 1) + 1);
    if (key == "model name" || key == "Model" || key == "CPU part") return line.substr(colon + 2);
  }
  return "unknown";
}

const CpuCacheSizes& cpu_cache_sizes() {
  static const CpuCacheSizes sizes{cache_size(1, 48 << 10), cache_size(2, 1 << 20)};
  return sizes;
}

}  // namespace ember::kernels
