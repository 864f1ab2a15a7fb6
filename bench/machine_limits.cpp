// The machine's own limits, so each bench row can say how close it comes to them: peak float32 FMA
// throughput (independent FMA chains on every core, at the instruction-set level the CPU kernels
// use) and streaming read and copy bandwidth (arrays far larger than the caches, on every core).
#include <omp.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <memory>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <vector>

#include <ember/kernels/cpu/cpu_capability.h>

#include "bench.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace ember::bench {
namespace {

// More independent accumulators than FMA latency x FMA ports, and few enough that they and the two
// operands stay in registers (AVX2 has 16: 16 chains there spill and under-measure the peak).
constexpr int kChains = 16;
constexpr int kChainsAvx2 = 12;
constexpr int64_t kIters = 1 << 22;

#if defined(__x86_64__)
__attribute__((target("avx512f"))) float fma_loop_avx512(float seed) {
  __m512 acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = _mm512_set1_ps(seed + c);
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (int64_t i = 0; i < kIters; ++i)
    for (int c = 0; c < kChains; ++c) acc[c] = _mm512_fmadd_ps(acc[c], a, b);
  alignas(64) float out[16];
  __m512 s = acc[0];
  for (int c = 1; c < kChains; ++c) s = _mm512_add_ps(s, acc[c]);
  _mm512_store_ps(out, s);
  return out[0] + out[15];
}

__attribute__((target("avx2,fma"))) float fma_loop_avx2(float seed) {
  __m256 acc[kChainsAvx2];
  for (int c = 0; c < kChainsAvx2; ++c) acc[c] = _mm256_set1_ps(seed + c);
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (int64_t i = 0; i < kIters; ++i)
    for (int c = 0; c < kChainsAvx2; ++c) acc[c] = _mm256_fmadd_ps(acc[c], a, b);
  alignas(32) float out[8];
  __m256 s = acc[0];
  for (int c = 1; c < kChainsAvx2; ++c) s = _mm256_add_ps(s, acc[c]);
  _mm256_store_ps(out, s);
  return out[0] + out[7];
}
#endif

// Portable: 4-wide chains the compiler keeps in SSE registers (mul + add: no FMA at the baseline).
float fma_loop_default(float seed) {
  float acc[kChains][4];
  for (int c = 0; c < kChains; ++c)
    for (int l = 0; l < 4; ++l) acc[c][l] = seed + c + l;
  for (int64_t i = 0; i < kIters; ++i)
    for (int c = 0; c < kChains; ++c)
      for (int l = 0; l < 4; ++l) acc[c][l] = acc[c][l] * 0.999999f + 1e-7f;
  float s = 0;
  for (int c = 0; c < kChains; ++c) s += acc[c][0] + acc[c][3];
  return s;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double peak_gflops() {
  const kernels::CpuCapability level = kernels::cpu_capability();
  int lanes = 4, chains = kChains;
  float (*loop)(float) = fma_loop_default;
#if defined(__x86_64__)
  if (level == kernels::CpuCapability::Avx512) lanes = 16, loop = fma_loop_avx512;
  else if (level == kernels::CpuCapability::Avx2) lanes = 8, chains = kChainsAvx2, loop = fma_loop_avx2;
#endif
  double best = 0;
  for (int attempt = 0; attempt < 3; ++attempt) {
    float sink = 0;
    const auto t0 = std::chrono::steady_clock::now();
    int threads = 1;
#pragma omp parallel
    {
#pragma omp single
      threads = omp_get_num_threads();
      const float r = loop(static_cast<float>(omp_get_thread_num()));
#pragma omp atomic
      sink += r;
    }
    volatile float keep = sink;  // the loops' results are used: they cannot be optimised away
    (void)keep;
    const double flops = 2.0 * lanes * chains * double(kIters) * threads;
    best = std::max(best, flops / seconds_since(t0) / 1e9);
  }
  return best;
}

// A copy with non-temporal stores (no read-for-ownership of the destination), as the bandwidth-bound
// kernels write large outputs.
void stream_copy(const float* src, float* dst, size_t n) {
  size_t i = 0;
#if defined(__x86_64__)
  for (; i < n && (reinterpret_cast<uintptr_t>(dst + i) & 15); ++i) dst[i] = src[i];
  for (; i + 4 <= n; i += 4) _mm_stream_ps(dst + i, _mm_loadu_ps(src + i));
  _mm_sfence();
#endif
  for (; i < n; ++i) dst[i] = src[i];
}

constexpr size_t kArray = size_t{1} << 25;  // 128 MiB of floats: far past every cache

// An array on huge pages, as ember's large tensors are (kernels/cpu/cpu_allocator.cpp).
std::unique_ptr<float, decltype(&std::free)> huge_array() {
  const size_t bytes = kArray * sizeof(float);
  float* p = static_cast<float*>(std::aligned_alloc(size_t{2} << 20, bytes));
  madvise(p, bytes, MADV_HUGEPAGE);
  std::fill(p, p + kArray, 1.0f);
  return {p, &std::free};
}

// Sum with 16 independent partial sums: as many loads in flight as the cores allow.
float read_sum(const float* x, size_t n) {
  float part[16] = {};
  size_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; ++j) part[j] += x[i + j];
  float s = 0;
  for (; i < n; ++i) s += x[i];
  for (float p : part) s += p;
  return s;
}

double read_gbs() {
  auto buf = huge_array();
  const float* src = buf.get();
  const size_t n = kArray;
  double best = 0;
  for (int attempt = 0; attempt < 4; ++attempt) {
    float sink = 0;
    const auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel
    {
      const size_t threads = omp_get_num_threads(), t = omp_get_thread_num();
      const size_t chunk = (n + threads - 1) / threads, lo = std::min(n, t * chunk);
      const float r = read_sum(src + lo, std::min(n, lo + chunk) - lo);
#pragma omp atomic
      sink += r;
    }
    volatile float keep = sink;
    (void)keep;
    best = std::max(best, n * sizeof(float) / seconds_since(t0) / 1e9);
  }
  return best;
}

double copy_gbs() {
  auto src_buf = huge_array(), dst_buf = huge_array();
  float* src = src_buf.get();
  float* dst = dst_buf.get();
  const size_t n = kArray;
  double best = 0;
  for (int attempt = 0; attempt < 4; ++attempt) {
    const auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel
    {
      const size_t threads = omp_get_num_threads(), t = omp_get_thread_num();
      const size_t chunk = (n + threads - 1) / threads, lo = std::min(n, t * chunk);
      const size_t hi = std::min(n, lo + chunk);
      stream_copy(src + lo, dst + lo, hi - lo);
    }
    best = std::max(best, 2.0 * n * sizeof(float) / seconds_since(t0) / 1e9);
  }
  return best;
}

}  // namespace

MachineLimits measure_machine_limits() { return {peak_gflops(), read_gbs(), copy_gbs()}; }

}  // namespace ember::bench
