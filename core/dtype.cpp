// dtype sizes, names, promotion and the float16 conversion (bfloat16's lives in the header: it is a
// truncation of float32 with rounding).
#include "ember/core/dtype.h"

#include <cmath>

#include "ember/core/error.h"

namespace ember {

size_t itemsize(DType t) {
  switch (t) {
    case kFloat32:
    case kInt32: return 4;
    case kFloat64:
    case kInt64: return 8;
    case kBool: return 1;
    case kBFloat16:
    case kFloat16: return 2;
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
    case kBFloat16:
    case kFloat16: return 3;
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

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

std::string pair_str(const std::array<int64_t, 2>& pair) {
  std::string s = "(";  // appended piece by piece: GCC 12 warns (-Wrestrict) on "(" + std::string&&
  s += std::to_string(pair[0]);
  s += ", ";
  s += std::to_string(pair[1]);
  return s + ")";
}

}  // namespace ember
