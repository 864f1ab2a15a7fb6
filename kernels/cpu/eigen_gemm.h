// GEMM through Eigen, for the dtypes and levels that have no packed kernel of ember's own (float64;
// float32 at the portable level). Compiled once, at the baseline instruction set: Eigen chooses its
// vector width when it is compiled, so it cannot follow the run-time level the way cpu_isa.h does.
#pragma once
#include <cstdint>

namespace ember::kernels {

// Row-major C = alpha * op(A) * op(B) + beta * C for one matrix (beta == 0 ignores C's contents);
// instantiated for float and double in eigen_gemm.cpp.
template <class T>
void eigen_gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda,
                const T* b, int64_t ldb, T beta, T* c, int64_t ldc);

}  // namespace ember::kernels
