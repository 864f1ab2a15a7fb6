// float32 GEMM for the CPU backend: a packed, cache-blocked GEMM with a register-tiled micro-kernel
// per instruction-set level (the BLIS structure), and loops for the skinny shapes of small-batch
// training. Included only by the per-level kernel files, inside their EMBER_CPU_ISA region: each
// level has its own copy of these functions (see cpu_isa.h).
#pragma once
#include <cstdint>

#include "ember/kernels/cpu/cpu_isa.h"

namespace ember::kernels::EMBER_CPU_ISA_NS {

// True when this level has a packed kernel (AVX2 and AVX-512; the portable level uses Eigen).
bool packed_sgemm_available();

// Row-major C = alpha * op(A) * op(B) + beta * C for one matrix (beta == 0 ignores C's contents).
void packed_sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                  int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

// GEMMs with few rows (m <= 16), a short inner dim (k <= 16) or, with B stored transposed (and A
// not), few columns (n <= 16): the shapes of small-batch training, where packing a 784 x 256 weight to
// multiply 8 rows by it costs as much as the multiply, and of a classifier's last layer or a
// small convolution's weight gradient, where a packed panel of 32 columns would hold 9 or 10.
// These loops read the big operand where it lies and keep the small one in L1. Same contract as
// packed_sgemm.
bool small_sgemm_applies(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k);
void small_sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                 int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

}  // namespace ember::kernels::EMBER_CPU_ISA_NS
