// Conversions between float and the two 16-bit float formats (bfloat16, IEEE half) on raw bits,
// rounding to nearest even; NaN stays NaN, half overflows to infinity. EMBER_HD: CUDA kernels convert
// on the device with exactly the host's rounding, so a cast gives the same bits on every backend.
#pragma once
#include <cstdint>
#include <cstring>

#include "ember/kernels/host_device.h"

namespace ember::half_bits {

EMBER_HD inline uint32_t bits_of(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}
EMBER_HD inline float float_of(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

// bfloat16 is the top half of a float32.
EMBER_HD inline uint16_t bf16_from_float(float f) {
  uint32_t u = bits_of(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fc0;  // NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
EMBER_HD inline float bf16_to_float(uint16_t b) { return float_of(static_cast<uint32_t>(b) << 16); }

// IEEE half: 1 sign, 5 exponent (bias 15), 10 mantissa bits.
EMBER_HD inline uint16_t half_from_float(float f) {
  const uint32_t x = bits_of(f);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t mag = x & 0x7fffffffu;
  if (mag > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);   // NaN
  if (mag >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds past 65504: inf
  if (mag < 0x38800000u) {  // below 2^-14: a subnormal half (or zero), in units of 2^-24
    if (mag < 0x33000000u) return static_cast<uint16_t>(sign);  // at most 2^-25: rounds to zero
    const uint32_t shift = 126u - (mag >> 23);                  // 14 to 24
    const uint32_t m = (mag & 0x7fffffu) | 0x800000u;
    uint32_t q = m >> shift;
    const uint32_t rest = m & ((1u << shift) - 1u), halfway = 1u << (shift - 1u);
    if (rest > halfway || (rest == halfway && (q & 1u))) ++q;
    return static_cast<uint16_t>(sign | q);
  }
  uint32_t h = (((mag >> 23) - 112u) << 10) | ((mag & 0x7fffffu) >> 13);  // re-bias 127 -> 15
  const uint32_t rest = mag & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;  // a carry into the exponent is right
  return static_cast<uint16_t>(sign | h);
}
EMBER_HD inline float half_to_float(uint16_t h) {
  const uint32_t sign = (static_cast<uint32_t>(h) & 0x8000u) << 16;
  const uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
  if (e == 0) {  // subnormal: m * 2^-24, exact in float
    const float v = static_cast<float>(m) * 5.9604644775390625e-8f;
    return sign ? -v : v;
  }
  if (e == 31) return float_of(sign | 0x7f800000u | (m << 13));  // inf, NaN
  return float_of(sign | ((e + 112u) << 23) | (m << 13));
}

}  // namespace ember::half_bits
