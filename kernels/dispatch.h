// Turns a runtime DType into a compile-time element type. A kernel is written once as a templated
// lambda and instantiated for the types it supports:
//   dispatch_numeric(dt, "sum", [&]<class T>() { ... T ... });
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "ember/core/dtype.h"
#include "ember/core/error.h"

namespace ember::kernels {

[[noreturn]] inline void unsupported(const char* op, DType dt) {
  fail(op, ": no kernel for dtype ", dtype_name(dt));
}

// float32, float64, int64, int32, bool: every type arithmetic is done in.
template <class F>
void dispatch_numeric(DType dt, const char* op, F&& f) {
  switch (dt) {
    case kFloat32: f.template operator()<float>(); return;
    case kFloat64: f.template operator()<double>(); return;
    case kInt64: f.template operator()<int64_t>(); return;
    case kInt32: f.template operator()<int32_t>(); return;
    case kBool: f.template operator()<bool>(); return;
    default: unsupported(op, dt);
  }
}

template <class F>
void dispatch_floating(DType dt, const char* op, F&& f) {
  switch (dt) {
    case kFloat32: f.template operator()<float>(); return;
    case kFloat64: f.template operator()<double>(); return;
    default: unsupported(op, dt);
  }
}

// Every type including the 16-bit storage formats (for casts).
template <class F>
void dispatch_all(DType dt, const char* op, F&& f) {
  switch (dt) {
    case kBFloat16: f.template operator()<BFloat16>(); return;
    case kFloat16: f.template operator()<Half>(); return;
    default: dispatch_numeric(dt, op, f);
  }
}

// Moving data needs only the element width: one instantiation per size.
template <class F>
void dispatch_by_size(DType dt, F&& f) {
  switch (itemsize(dt)) {
    case 1: f.template operator()<uint8_t>(); return;
    case 2: f.template operator()<uint16_t>(); return;
    case 4: f.template operator()<uint32_t>(); return;
    default: f.template operator()<uint64_t>(); return;
  }
}

// Value conversion between any two element types (16-bit floats go through float).
template <class To, class From>
inline To convert(From v) {
  if constexpr (std::is_same_v<To, bool>) {
    return static_cast<float>(v) != 0.0f;
  } else if constexpr (std::is_same_v<From, BFloat16> || std::is_same_v<From, Half>) {
    return static_cast<To>(static_cast<float>(v));
  } else if constexpr (std::is_same_v<To, BFloat16> || std::is_same_v<To, Half>) {
    return To(static_cast<float>(v));
  } else {
    return static_cast<To>(v);
  }
}

// Row-major strides of a compact buffer of the given sizes.
inline std::vector<int64_t> compact_strides(std::span<const int64_t> sizes) {
  std::vector<int64_t> strides(sizes.size());
  int64_t step = 1;
  for (size_t d = sizes.size(); d-- > 0;) {
    strides[d] = step;
    step *= sizes[d];
  }
  return strides;
}

template <class T>
inline T scalar_as(const Scalar& s) {
  if constexpr (std::is_integral_v<T>) return static_cast<T>(s.to_int());
  else return convert<T>(s.to_double());
}

}  // namespace ember::kernels
