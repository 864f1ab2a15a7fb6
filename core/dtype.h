// Element types, the 16-bit float storage formats, PyTorch's type-promotion rules, and Scalar (a number
// that remembers whether it was written as a bool, an integer or a floating value, because promotion
// depends on it: int_tensor + 2 stays int64, int_tensor + 2.5 becomes float32).
#pragma once
#include <bit>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>

#include "ember/core/half_bits.h"

namespace ember {

enum class DType : unsigned char { Float32, Float64, Int64, Int32, Bool, BFloat16, Float16 };

inline constexpr DType kFloat32 = DType::Float32;
inline constexpr DType kFloat64 = DType::Float64;
inline constexpr DType kInt64 = DType::Int64;
inline constexpr DType kInt32 = DType::Int32;
inline constexpr DType kBool = DType::Bool;
inline constexpr DType kBFloat16 = DType::BFloat16;
inline constexpr DType kFloat16 = DType::Float16;

size_t itemsize(DType t);
const char* dtype_name(DType t);  // "float32", ...
inline bool is_floating(DType t) { return t == kFloat32 || t == kFloat64 || t == kBFloat16 || t == kFloat16; }
inline bool is_half(DType t) { return t == kBFloat16 || t == kFloat16; }
inline bool is_integral(DType t) { return t == kInt64 || t == kInt32; }

// The type an op computes in: 16-bit floats are storage formats, arithmetic happens in float32.
inline DType compute_dtype(DType t) { return is_half(t) ? kFloat32 : t; }

// PyTorch's promotion lattice restricted to our types: bool < int32 < int64 < 16-bit floats < float32
// < float64; float16 with bfloat16 gives float32.
DType promote_types(DType a, DType b);

// IEEE half and bfloat16, stored as raw bits; conversions (core/half_bits.h) round to nearest even
// and also run in CUDA kernels.
struct Half {
  uint16_t bits = 0;
  Half() = default;
  EMBER_HD Half(float f) : bits(half_bits::half_from_float(f)) {}
  EMBER_HD operator float() const { return half_bits::half_to_float(bits); }
};
struct BFloat16 {
  uint16_t bits = 0;
  BFloat16() = default;
  EMBER_HD BFloat16(float f) : bits(half_bits::bf16_from_float(f)) {}
  EMBER_HD operator float() const { return half_bits::bf16_to_float(bits); }
};

class Scalar {
 public:
  enum class Kind : unsigned char { Bool, Int, Float };
  Scalar() : Scalar(0) {}
  Scalar(bool v) : d_(v), i_(v), kind_(Kind::Bool) {}
  template <class T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>, int> = 0>
  Scalar(T v) : d_(static_cast<double>(v)), i_(static_cast<int64_t>(v)), kind_(Kind::Int) {}
  template <class T, std::enable_if_t<std::is_floating_point_v<T>, int> = 0>
  Scalar(T v) : d_(static_cast<double>(v)), i_(static_cast<int64_t>(v)), kind_(Kind::Float) {}

  double to_double() const { return d_; }
  int64_t to_int() const { return i_; }
  Kind kind() const { return kind_; }
  bool is_floating() const { return kind_ == Kind::Float; }
  // The dtype a tensor made from this scalar alone would have.
  DType default_dtype() const {
    return kind_ == Kind::Float ? kFloat32 : kind_ == Kind::Int ? kInt64 : kBool;
  }

 private:
  double d_;
  int64_t i_;
  Kind kind_;
};

// Result dtype of tensor (op) scalar: the scalar only lifts the category (bool -> int -> float).
DType promote_with_scalar(DType t, const Scalar& s);

// The dtype whose elements are stored as the C++ type T (float: kFloat32, Half: kFloat16, ...).
template <class T>
constexpr DType dtype_of() {
  if constexpr (std::is_same_v<T, float>) return kFloat32;
  else if constexpr (std::is_same_v<T, double>) return kFloat64;
  else if constexpr (std::is_same_v<T, int64_t>) return kInt64;
  else if constexpr (std::is_same_v<T, int32_t>) return kInt32;
  else if constexpr (std::is_same_v<T, bool>) return kBool;
  else if constexpr (std::is_same_v<T, BFloat16>) return kBFloat16;
  else if constexpr (std::is_same_v<T, Half>) return kFloat16;
  else static_assert(sizeof(T) == 0, "dtype_of: no ember dtype stores this C++ type");
}

}  // namespace ember
