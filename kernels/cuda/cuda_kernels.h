// Host entry points of ember's CUDA kernels, one file per op family (elementwise.cu, reduce.cu).
// They take device pointers and plain sizes; the CUDA backend (cuda_backend.cpp) calls them. Under
// the simulator the same kernels run on the CPU.
#pragma once
#include <cstdint>

#include "ember/kernels/backend.h"

namespace ember::kernels::cuda {

inline constexpr int kMaxDims = 12;

// Sizes of an output and the element strides of up to three operands addressing it.
struct Strided {
  int ndim = 0;
  int64_t sizes[kMaxDims] = {};
  int64_t strides[3][kMaxDims] = {};
};
// Builds one from the backend's spans (an error past kMaxDims dims).
Strided make_strided(Dims sizes, Dims s0, Dims s1 = {}, Dims s2 = {});

void fill(DType dt, void* out, int64_t n, Scalar value);
void cast(DType from, const void* in, DType to, void* out, int64_t n);
void strided_copy(DType dt, const void* src, void* dst, const Strided& s);  // strides: src, dst
void unary(UnaryOp op, DType dt, const void* in, void* out, int64_t n, double a, double b);
void binary(BinaryOp op, DType dt, const void* a, const void* b, void* out, const Strided& s);  // a, b
void where(DType dt, const void* cond, const void* a, const void* b, void* out, const Strided& s);
void reduce(ReduceOp op, DType dt, const void* in, void* out, int64_t outer, int64_t r, int64_t inner);
void softmax(DType dt, const void* in, void* out, int64_t rows, int64_t cols, bool log);

}  // namespace ember::kernels::cuda
