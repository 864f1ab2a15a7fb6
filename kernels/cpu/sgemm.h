// float32 GEMM for the CPU backend: a packed, cache-blocked GEMM with an AVX-512 micro-kernel (the
// BLIS structure). Eigen reaches about 230 GFLOP/s on sgemm_1024 on this project's 2-core Zen 5
// machines; LibTorch's OpenBLAS about 280-330; this kernel is what closes that gap (bench/).
#pragma once
#include <cstdint>

namespace ember::kernels {

// True when this build has the AVX-512 kernel (EMBER_NATIVE on an AVX-512 machine).
bool packed_sgemm_available();

// Row-major C = alpha * op(A) * op(B) + beta * C for one matrix (beta == 0 ignores C's contents).
void packed_sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                  const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                  int64_t ldc);

// GEMMs with few rows (m <= 16) or a short inner dim (k <= 16), the shapes of small-batch training:
// packing a 784 x 256 weight to multiply 8 rows by it costs as much as the multiply. These loops
// read the big operand once and keep the small one in L1. Same contract as packed_sgemm.
bool small_sgemm_applies(int64_t m, int64_t n, int64_t k);
void small_sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                 const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                 int64_t ldc);

}  // namespace ember::kernels
