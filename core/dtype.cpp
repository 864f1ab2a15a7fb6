// dtype sizes, names, promotion and the float16 conversion (bfloat16's lives in the header: it is a
// truncation of float32 with rounding).
#include "ember/core/dtype.h"

#include <cmath>

#include "ember/core/error.h"

namespace ember {

size_t itemsize(DType t) {
  switch (t) {
    case kFloat32: case kInt32: return 4;
    case kFloat64: case kInt64: return 8;
    case kBool: return 1;
    case kBFloat16: case kFloat16: return 2;
  }
  return 0;
}

const char* dtype_name(DType t) {
  switch (t) {
    case kFloat32: return "float32";
    case kFloat64: return "float64";
    case kInt64: return "int64";
    case kInt32: return "int32";
    case kBool: return "bool";
    case kBFloat16: return "bfloat16";
    case kFloat16: return "float16";
  }
  return "?";
}

static int rank_of(DType t) {
  switch (t) {
    case kBool: return 0;
    case kInt32: return 1;
    case kInt64: return 2;
    case kBFloat16: case kFloat16: return 3;
    case kFloat32: return 4;
    case kFloat64: return 5;
  }
  return 0;
}

DType promote_types(DType a, DType b) {
  if (a == b) return a;
  if (is_half(a) && is_half(b)) return kFloat32;
  return rank_of(a) >= rank_of(b) ? a : b;
}

DType promote_with_scalar(DType t, const Scalar& s) {
  if (s.kind() == Scalar::Kind::Float && !is_floating(t)) return kFloat32;
  if (s.kind() == Scalar::Kind::Int && t == kBool) return kInt64;
  return t;
}

Half::Half(float f) {
  uint32_t x = std::bit_cast<uint32_t>(f);
  uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t mag = x & 0x7fffffffu;
  if (mag > 0x7f800000u) { bits = static_cast<uint16_t>(sign | 0x7e00u); return; }  // NaN
  if (mag >= 0x477ff000u) { bits = static_cast<uint16_t>(sign | 0x7c00u); return; }  // overflow -> inf
  if (mag < 0x38800000u) {  // result is subnormal (or zero): scale into the 10-bit mantissa
    float a = std::bit_cast<float>(mag);
    float scaled = a * 16777216.0f;  // 2^24: one unit is the smallest half subnormal
    bits = static_cast<uint16_t>(sign | static_cast<uint32_t>(std::nearbyint(scaled)));
    return;
  }
  uint32_t e = ((mag >> 23) - 112) << 10;  // re-bias exponent 127 -> 15
  uint32_t m = mag & 0x7fffffu;
  uint32_t h = e | (m >> 13);
  uint32_t rest = m & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;  // round to nearest even
  bits = static_cast<uint16_t>(sign | h);
}

Half::operator float() const {
  uint32_t sign = (static_cast<uint32_t>(bits) & 0x8000u) << 16;
  uint32_t e = (bits >> 10) & 0x1fu;
  uint32_t m = bits & 0x3ffu;
  if (e == 0) {
    float v = std::ldexp(static_cast<float>(m), -24);
    return sign ? -v : v;
  }
  if (e == 31) return std::bit_cast<float>(sign | 0x7f800000u | (m << 13));
  return std::bit_cast<float>(sign | ((e + 112) << 23) | (m << 13));
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

}  // namespace ember
