// Philox4x32-10, the counter-based generator (Salmon et al., SC'11) behind every random op. Each
// element asks for the block at counter (offset + i), so results depend only on (seed, offset, i):
// the same on one thread or many, on the CPU or a GPU.
#pragma once
#include <array>
#include <cmath>
#include <cstdint>
#include "ember/kernels/host_device.h"

namespace ember::kernels {

EMBER_HD inline std::array<uint32_t, 4> philox4x32(uint64_t counter, uint64_t seed) {
  uint32_t c0 = static_cast<uint32_t>(counter), c1 = static_cast<uint32_t>(counter >> 32);
  uint32_t c2 = 0, c3 = 0;
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  for (int round = 0; round < 10; ++round) {
    uint64_t p0 = uint64_t{0xD2511F53u} * c0;
    uint64_t p1 = uint64_t{0xCD9E8D57u} * c2;
    uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1 ^ k0;
    uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3 ^ k1;
    c1 = static_cast<uint32_t>(p1);
    c3 = static_cast<uint32_t>(p0);
    c0 = n0;
    c2 = n2;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return {c0, c1, c2, c3};
}

// Uniform in [0, 1) with 53 random bits.
EMBER_HD inline double philox_uniform(uint64_t seed, uint64_t counter) {
  auto r = philox4x32(counter, seed);
  return static_cast<double>(((static_cast<uint64_t>(r[0]) << 32) | r[1]) >> 11) * 0x1.0p-53;
}

// Standard normal by Box-Muller on the block's two 53-bit uniforms.
EMBER_HD inline double philox_normal(uint64_t seed, uint64_t counter) {
  auto r = philox4x32(counter, seed);
  double u1 = static_cast<double>(((static_cast<uint64_t>(r[0]) << 32) | r[1]) >> 11) * 0x1.0p-53;
  double u2 = static_cast<double>(((static_cast<uint64_t>(r[2]) << 32) | r[3]) >> 11) * 0x1.0p-53;
  u1 = 1.0 - u1;  // (0, 1]: log is finite
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

}  // namespace ember::kernels
