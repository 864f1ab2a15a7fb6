// OpenMP implementations of the hot primitives, compiled once per instruction-set level (see
// cpu_backend.h and cpu_isa.h): everything from EMBER_CPU_ISA_BEGIN on is built for that level.
#include <omp.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ember/kernels/cpu/cpu_isa.h"
#if EMBER_CPU_ISA > 0
#include <immintrin.h>
#endif
#include "ember/kernels/cpu/cpu_allocator.h"
#include "ember/kernels/cpu/eigen_gemm.h"
#include "ember/kernels/cpu/fast_math.h"
#include "ember/kernels/dispatch.h"
#include "ember/kernels/elementwise_ops.h"
#include "ember/kernels/optimizer_update.h"

EMBER_CPU_ISA_BEGIN
#include "ember/kernels/cpu/cpu_backend.h"
#include "ember/kernels/cpu/sgemm.h"

namespace ember::kernels::EMBER_CPU_ISA_NS {
namespace {

// Inside another parallel region (a fused kernel giving each thread its own images) a nested team
// would have one thread: run inline instead of paying for it.
bool worth_parallel(int64_t work) {
  return work >= kParallelGrain && omp_get_max_threads() > 1 && !omp_in_parallel();
}

// Runs f(begin, end) over [0, n) split into one contiguous chunk per thread, or on this thread alone
// when the work is small.
template <class F>
void parallel_for(int64_t n, int64_t work_per_item, F&& f) {
  if (n <= 1 || !worth_parallel(n * work_per_item)) {
    f(int64_t{0}, n);
    return;
  }
#pragma omp parallel
  {
    const int64_t threads = omp_get_num_threads(), t = omp_get_thread_num();
    const int64_t chunk = (n + threads - 1) / threads;
    const int64_t begin = std::min(n, t * chunk), end = std::min(n, begin + chunk);
    if (begin < end) f(begin, end);
  }
}

constexpr int64_t kStreamBytes = int64_t{16} << 20;

// out[i] = value(i) for i in [c0, c1), with non-temporal 64-byte stores where the destination is
// aligned (AVX-512 level); plain stores otherwise and for the unaligned head and tail.
template <class V>
void stream_map(float* out, int64_t c0, int64_t c1, V&& value) {
  int64_t i = c0;
#if EMBER_CPU_ISA == 2
  for (; i < c1 && (reinterpret_cast<uintptr_t>(out + i) & 63); ++i) out[i] = value(i);
  for (; i + 16 <= c1; i += 16) {
    alignas(64) float block[16];
#pragma omp simd
    for (int j = 0; j < 16; ++j) block[j] = value(i + j);
    _mm512_stream_ps(out + i, _mm512_load_ps(block));
  }
  _mm_sfence();
#endif
  for (; i < c1; ++i) out[i] = value(i);
}

// Drops size-1 dims and merges dims that are contiguous in every operand, so the innermost loop is
// as long as possible. Returns the collapsed sizes and per-operand strides.
template <size_t N>
void collapse_dims(Dims sizes, const std::array<Dims, N>& strides, std::vector<int64_t>& out_sizes,
                   std::array<std::vector<int64_t>, N>& out_strides) {
  out_sizes.clear();
  for (auto& s : out_strides) s.clear();
  for (size_t d = 0; d < sizes.size(); ++d) {
    if (sizes[d] == 1) continue;
    if (!out_sizes.empty()) {
      bool mergeable = true;
      for (size_t j = 0; j < N; ++j)
        if (out_strides[j].back() != strides[j][d] * sizes[d]) mergeable = false;
      if (mergeable) {
        out_sizes.back() *= sizes[d];
        for (size_t j = 0; j < N; ++j) out_strides[j].back() = strides[j][d];
        continue;
      }
    }
    out_sizes.push_back(sizes[d]);
    for (size_t j = 0; j < N; ++j) out_strides[j].push_back(strides[j][d]);
  }
  if (out_sizes.empty()) {
    out_sizes.push_back(1);
    for (auto& s : out_strides) s.push_back(0);
  }
}

// Walks all dims but the last (the "rows"), calling f(row_offsets, c0, c1) so the caller runs a
// tight loop over columns [c0, c1) of that row. Work is split across threads by rows, and when there
// are too few rows (a long 1-D tensor is one row), by column blocks too.
template <size_t N, class F>
void for_each_row(const std::vector<int64_t>& sizes, const std::array<std::vector<int64_t>, N>& st, F&& f) {
  const size_t nd = sizes.size();
  const int64_t cols = sizes[nd - 1];
  int64_t rows = 1;
  for (size_t d = 0; d + 1 < nd; ++d) rows *= sizes[d];
  const int64_t threads = omp_get_max_threads();
  int64_t blocks = 1;  // column blocks per row
  if (rows < 4 * threads && worth_parallel(rows * cols)) blocks = std::max<int64_t>(1, 4 * threads / rows);
  const int64_t block = (cols + blocks - 1) / blocks;
  parallel_for(rows * blocks, block, [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      const int64_t row = item / blocks, b = item % blocks;
      std::array<int64_t, N> off{};
      int64_t rem = row;
      for (size_t d = nd - 1; d-- > 0;) {
        const int64_t i = rem % sizes[d];
        rem /= sizes[d];
        for (size_t j = 0; j < N; ++j) off[j] += i * st[j][d];
      }
      const int64_t c0 = b * block, c1 = std::min(cols, c0 + block);
      if (c0 < c1) f(off, c0, c1);
    }
  });
}

}  // namespace

Backend& cpu_backend_instance() {
  static CpuBackend backend;
  return backend;
}

const char* CpuBackend::name() const { return "cpu"; }

void* CpuBackend::allocate(size_t nbytes) { return cpu_allocate(nbytes); }
void CpuBackend::deallocate(void* ptr, size_t nbytes) { cpu_deallocate(ptr, nbytes); }
void CpuBackend::empty_cache() { cpu_empty_cache(); }

void CpuBackend::fill(DType dt, void* out, int64_t n, Scalar value) {
  dispatch_all(dt, "fill", [&]<class T>() {
    const T v = scalar_as<T>(value);
    T* o = static_cast<T*>(out);
    parallel_for(n, 1, [&](int64_t b, int64_t e) { std::fill(o + b, o + e, v); });
  });
}

void CpuBackend::cast(DType from, const void* in, DType to, void* out, int64_t n) {
  dispatch_all(from, "cast", [&]<class S>() {
    dispatch_all(to, "cast", [&]<class D>() {
      const S* src = static_cast<const S*>(in);
      D* dst = static_cast<D*>(out);
      parallel_for(n, 1, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) dst[i] = convert<D>(src[i]);
      });
    });
  });
}

void CpuBackend::strided_copy(DType dt, const void* src, Dims src_strides, void* dst, Dims dst_strides,
                              Dims sizes) {
  std::vector<int64_t> cs;
  std::array<std::vector<int64_t>, 2> st;
  collapse_dims<2>(sizes, {src_strides, dst_strides}, cs, st);
  dispatch_by_size(dt, [&]<class T>() {
    const T* s = static_cast<const T*>(src);
    T* d = static_cast<T*>(dst);
    const int64_t ss = st[0].back(), ds = st[1].back();
    for_each_row<2>(cs, st, [&](const std::array<int64_t, 2>& off, int64_t c0, int64_t c1) {
      const T* sp = s + off[0];
      T* dp = d + off[1];
      if (ss == 1 && ds == 1) std::memcpy(dp + c0, sp + c0, sizeof(T) * (c1 - c0));
      else
        for (int64_t i = c0; i < c1; ++i) dp[i * ds] = sp[i * ss];
    });
  });
}

void CpuBackend::unary(UnaryOp op, DType dt, const void* in, void* out, int64_t n, double a, double b) {
  dispatch_numeric(dt, "unary", [&]<class T>() {
    const T* x = static_cast<const T*>(in);
    T* y = static_cast<T*>(out);
    if constexpr (std::is_same_v<T, float>) {
      if (op == UnaryOp::Exp) {
        parallel_for(n, 8, [&](int64_t lo, int64_t hi) {
#pragma omp simd
          for (int64_t i = lo; i < hi; ++i) y[i] = fast_expf(x[i]);
        });
        return;
      }
      if (op == UnaryOp::Sigmoid) {
        parallel_for(n, 8, [&](int64_t lo, int64_t hi) {
#pragma omp simd
          for (int64_t i = lo; i < hi; ++i) y[i] = 1.0f / (1.0f + fast_expf(-x[i]));
        });
        return;
      }
      if (op == UnaryOp::GeluTanh) {  // the GPT's activation: libm's tanh in double cost 5x more
        parallel_for(n, 8, [&](int64_t lo, int64_t hi) {
#pragma omp simd
          for (int64_t i = lo; i < hi; ++i) y[i] = gelu_tanh_f(x[i]);
        });
        return;
      }
    }
    visit_unary<T>(op, a, b, [&](auto f) {
      parallel_for(n, 4, [&](int64_t lo, int64_t hi) {
        for (int64_t i = lo; i < hi; ++i) y[i] = f(x[i]);
      });
    });
  });
}

void CpuBackend::binary(BinaryOp op, DType dt, const void* a, Dims a_strides, const void* b, Dims b_strides,
                        void* out, Dims sizes) {
  const std::vector<int64_t> out_strides = compact_strides(sizes);
  int64_t step = 1;
  for (auto s : sizes) step *= s;
  if (step == 0) return;
  std::vector<int64_t> cs;
  std::array<std::vector<int64_t>, 3> st;
  collapse_dims<3>(sizes, {a_strides, b_strides, Dims(out_strides)}, cs, st);
  dispatch_numeric(dt, "binary", [&]<class T>() {
    const T* x = static_cast<const T*>(a);
    const T* y = static_cast<const T*>(b);
    if constexpr (std::is_same_v<T, float>) {
      if (op == BinaryOp::GeluTanhBackward) {  // vectorised, as the forward (gelu_tanh_f)
        float* o = static_cast<float*>(out);
        const int64_t sa = st[0].back(), sb = st[1].back();
        for_each_row<3>(cs, st, [&](const std::array<int64_t, 3>& off, int64_t c0, int64_t c1) {
          const float *gp = x + off[0], *xp = y + off[1];
          float* op_ = o + off[2];
          if (sa == 1 && sb == 1) {
#pragma omp simd
            for (int64_t i = c0; i < c1; ++i) op_[i] = gp[i] * gelu_tanh_grad_f(xp[i]);
          } else {
            for (int64_t i = c0; i < c1; ++i) op_[i] = gp[i * sa] * gelu_tanh_grad_f(xp[i * sb]);
          }
        });
        return;
      }
    }
    visit_binary<T>(op, [&](auto f) {
      using R = decltype(f(T{}, T{}));
      R* o = static_cast<R*>(out);
      const int64_t sa = st[0].back(), sb = st[1].back();
      // Outputs far larger than the caches are written with streaming stores (no read-for-
      // ownership of the destination: a third less memory traffic for c = a + b; bench add_16M).
      const bool stream_output = step * static_cast<int64_t>(sizeof(R)) >= kStreamBytes;
      for_each_row<3>(cs, st, [&](const std::array<int64_t, 3>& off, int64_t c0, int64_t c1) {
        const T* xp = x + off[0];
        const T* yp = y + off[1];
        R* op_ = o + off[2];
        // The three shapes that cover nearly all traffic get loops the compiler vectorises.
        if (sa == 1 && sb == 1) {
          if constexpr (std::is_same_v<R, float>) {
            if (stream_output) {
              stream_map(op_, c0, c1, [&](int64_t i) { return f(xp[i], yp[i]); });
              return;
            }
          }
          for (int64_t i = c0; i < c1; ++i) op_[i] = f(xp[i], yp[i]);
        } else if (sa == 1 && sb == 0) {
          const T yv = *yp;
          for (int64_t i = c0; i < c1; ++i) op_[i] = f(xp[i], yv);
        } else if (sa == 0 && sb == 1) {
          const T xv = *xp;
          for (int64_t i = c0; i < c1; ++i) op_[i] = f(xv, yp[i]);
        } else {
          for (int64_t i = c0; i < c1; ++i) op_[i] = f(xp[i * sa], yp[i * sb]);
        }
      });
    });
  });
}

namespace {

// Sum of a contiguous run with 64 independent partial sums: four vector accumulators, so the adds
// do not wait on each other (one accumulator capped sum_16M at ~75 GB/s per core), and rounding
// error grows like n/64 instead of n.
template <class T>
T sum_run(const T* x, int64_t n) {
  constexpr int kLanes = 64;
  T part[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
#pragma omp simd
    for (int j = 0; j < kLanes; ++j) part[j] += x[i + j];
  T total = 0;
  for (; i < n; ++i) total += x[i];
  for (int j = 0; j < kLanes; ++j) total += part[j];
  return total;
}

// Max of a contiguous float run with 16 lanes of partial maxima. Written out because the compiler
// does not vectorise std::max reductions (their NaN rules); measured: 60% of softmax time before.
float max_run(const float* x, int64_t n) {
  constexpr int kLanes = 16;
  float part[kLanes];
  for (int j = 0; j < kLanes; ++j) part[j] = -INFINITY;
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
#pragma omp simd
    for (int j = 0; j < kLanes; ++j) part[j] = x[i + j] > part[j] ? x[i + j] : part[j];
  float m = -INFINITY;
  for (; i < n; ++i) m = x[i] > m ? x[i] : m;
  for (int j = 0; j < kLanes; ++j) m = part[j] > m ? part[j] : m;
  return m;
}

}  // namespace

void CpuBackend::reduce(ReduceOp op, DType dt, const void* in, void* out, int64_t outer, int64_t r,
                        int64_t inner) {
  if (op != ReduceOp::Sum || (dt != kFloat32 && dt != kFloat64) || r == 0) {
    general_reduce(op, dt, in, out, outer, r, inner);
    return;
  }
  dispatch_floating(dt, "sum", [&]<class T>() {
    const T* x = static_cast<const T*>(in);
    T* y = static_cast<T*>(out);
    if (inner == 1 && outer == 1) {
      // One long row: split it across threads, then add the partial sums in a fixed order so the
      // result does not depend on scheduling.
      const int threads = worth_parallel(r) ? omp_get_max_threads() : 1;
      std::vector<T> partial(threads, T(0));
      parallel_for(threads, r / threads, [&](int64_t b, int64_t e) {
        for (int64_t t = b; t < e; ++t) {
          const int64_t chunk = (r + threads - 1) / threads;
          const int64_t lo = std::min(r, t * chunk), hi = std::min(r, lo + chunk);
          partial[t] = sum_run(x + lo, hi - lo);
        }
      });
      T total = 0;
      for (T p : partial) total += p;
      y[0] = total;
    } else if (inner == 1) {
      parallel_for(outer, r, [&](int64_t b, int64_t e) {
        for (int64_t o = b; o < e; ++o) y[o] = sum_run(x + o * r, r);
      });
    } else {
      // Reducing a middle dim: add whole rows of `inner` elements, a vectorised axpy per step.
      const bool par_outer = outer > 1 && worth_parallel(outer * r * inner);
      auto one_block = [&](int64_t o, int64_t i0, int64_t i1) {
        T* dst = y + o * inner;
        for (int64_t i = i0; i < i1; ++i) dst[i] = 0;
        for (int64_t j = 0; j < r; ++j) {
          const T* src = x + (o * r + j) * inner;
#pragma omp simd
          for (int64_t i = i0; i < i1; ++i) dst[i] += src[i];
        }
      };
      if (par_outer) {
        parallel_for(outer, r * inner, [&](int64_t b, int64_t e) {
          for (int64_t o = b; o < e; ++o) one_block(o, 0, inner);
        });
      } else {
        for (int64_t o = 0; o < outer; ++o)
          parallel_for(inner, r, [&](int64_t b, int64_t e) { one_block(o, b, e); });
      }
    }
  });
}

void CpuBackend::gemm(const GemmArgs& g, const void* a, const void* b, void* c) {
  const bool trans_a = g.trans_a, trans_b = g.trans_b;
  const int64_t m = g.m, n = g.n, k = g.k, lda = g.lda, ldb = g.ldb, ldc = g.ldc, batch = g.batch;
  const int64_t stride_a = g.stride_a, stride_b = g.stride_b, stride_c = g.stride_c;
  const double alpha = g.alpha, beta = g.beta;
  dispatch_floating(g.dtype, "gemm", [&]<class T>() {
    auto one = [&](int64_t p) {
      const T* A = static_cast<const T*>(a) + p * stride_a;
      const T* B = static_cast<const T*>(b) + p * stride_b;
      T* C = static_cast<T*>(c) + p * stride_c;
      if constexpr (std::is_same_v<T, float>) {
        // Our own kernels beat Eigen from small sizes up (bench: sgemm_*); k == 0 (C = beta * C)
        // is Eigen's.
        if (small_sgemm_applies(trans_a, trans_b, m, n, k)) {
          small_sgemm(trans_a, trans_b, m, n, k, static_cast<float>(alpha), A, lda, B, ldb,
                      static_cast<float>(beta), C, ldc);
          return;
        }
        if (packed_sgemm_available() && m * n * k >= 4096) {
          packed_sgemm(trans_a, trans_b, m, n, k, static_cast<float>(alpha), A, lda, B, ldb,
                       static_cast<float>(beta), C, ldc);
          return;
        }
      }
      eigen_gemm<T>(trans_a, trans_b, m, n, k, static_cast<T>(alpha), A, lda, B, ldb, static_cast<T>(beta), C,
                    ldc);
    };
    // Many small matrices: one per thread. One big matrix: the kernel splits it across threads.
    if (batch > 1 && worth_parallel(batch * m * n * k / 8)) {
#pragma omp parallel for schedule(static)
      for (int64_t p = 0; p < batch; ++p) one(p);
    } else {
      for (int64_t p = 0; p < batch; ++p) one(p);
    }
  });
}

// Cross-entropy rows, float32: the softmax row loop's vectorised max and exp, rows over threads.
void CpuBackend::cross_entropy_forward(DType dt, const void* logits, const int64_t* target,
                                       const void* row_weight, int64_t rows, int64_t classes, void* loss,
                                       void* lse) {
  EMBER_CHECK(dt == kFloat32, "cpu cross_entropy_forward: float32 only (supports() says so)");
  const float* x = static_cast<const float*>(logits);
  const float* w = static_cast<const float*>(row_weight);
  parallel_for(rows, classes * 4, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const float* xr = x + i * classes;
      const float mx = max_run(xr, classes);
      float sum = 0;
#pragma omp simd reduction(+ : sum)
      for (int64_t c = 0; c < classes; ++c) sum += fast_expf_nonpositive(xr[c] - mx);
      const float l = mx + std::log(sum);
      static_cast<float*>(lse)[i] = l;
      static_cast<float*>(loss)[i] = w[i] == 0.0f ? 0.0f : w[i] * (l - xr[target[i]]);
    }
  });
}

void CpuBackend::cross_entropy_backward(DType dt, const void* logits, const int64_t* target,
                                        const void* row_weight, const void* lse, const void* grad_loss,
                                        int64_t rows, int64_t classes, void* grad_logits) {
  EMBER_CHECK(dt == kFloat32, "cpu cross_entropy_backward: float32 only (supports() says so)");
  const float* x = static_cast<const float*>(logits);
  const float* w = static_cast<const float*>(row_weight);
  const float* g = static_cast<const float*>(grad_loss);
  const float* l = static_cast<const float*>(lse);
  float* out = static_cast<float*>(grad_logits);
  parallel_for(rows, classes * 4, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const float coef = g[i] * w[i], shift = l[i];
      const float* xr = x + i * classes;
      float* yr = out + i * classes;
#pragma omp simd
      for (int64_t c = 0; c < classes; ++c)
        yr[c] = coef * fast_expf_nonpositive(std::min(xr[c] - shift, 0.0f));
      yr[target[i]] -= coef;
    }
  });
}

void CpuBackend::softmax(DType dt, const void* in, void* out, int64_t rows, int64_t cols, bool log) {
  EMBER_CHECK(dt == kFloat32, "cpu softmax: float32 only (supports() says so)");
  const float* x = static_cast<const float*>(in);
  float* y = static_cast<float*>(out);
  parallel_for(rows, cols * 4, [&](int64_t b, int64_t e) {
    for (int64_t row = b; row < e; ++row) {
      const float* xr = x + row * cols;
      float* yr = y + row * cols;
#if EMBER_CPU_ISA > 0
      // The next row (when a few fit in L1) is fetched while this one's exp passes run from L1:
      // measured 14% off softmax_4096x1024, whose first pass otherwise waits on memory.
      if (row + 1 < e && cols <= 4096)
        for (int64_t j = 0; j < cols; j += 16)
          _mm_prefetch(reinterpret_cast<const char*>(xr + cols + j), _MM_HINT_T0);
#endif
      const float mx = max_run(xr, cols);
      // NaN inputs (and all -inf rows, where x - max is NaN) make the sum NaN and so the whole row,
      // as in the reference formula; no separate check is needed.
      float sum = 0;
      if (log) {
#pragma omp simd reduction(+ : sum)
        for (int64_t j = 0; j < cols; ++j) sum += fast_expf_nonpositive(xr[j] - mx);
        const float shift = mx + std::log(sum);
#pragma omp simd
        for (int64_t j = 0; j < cols; ++j) yr[j] = xr[j] - shift;
      } else {
        // Write exp(x - max) once, then scale in place: the second pass hits L1.
#pragma omp simd reduction(+ : sum)
        for (int64_t j = 0; j < cols; ++j) {
          const float v = fast_expf_nonpositive(xr[j] - mx);
          yr[j] = v;
          sum += v;
        }
        const float inv = 1.0f / sum;
#pragma omp simd
        for (int64_t j = 0; j < cols; ++j) yr[j] *= inv;
      }
    }
  });
}

void CpuBackend::index_select(DType dt, const void* in, int64_t n, const int64_t* idx, int64_t k, void* out,
                              int64_t outer, int64_t inner) {
  dispatch_by_size(dt, [&]<class T>() {
    const T* x = static_cast<const T*>(in);
    T* y = static_cast<T*>(out);
    parallel_for(outer * k, inner, [&](int64_t b, int64_t e) {
      for (int64_t p = b; p < e; ++p) {
        const int64_t o = p / k, j = p % k;
        std::memcpy(y + p * inner, x + (o * n + idx[j]) * inner, sizeof(T) * inner);
      }
    });
  });
}

namespace {

// One row of layer normalisation: the reference backend's formulas (mean and variance in double, two
// passes), with each sum split into SIMD lanes (`omp simd` reductions) instead of one serial chain of
// double adds, which held a 128-wide row to about four cycles per element (seq2seq_step spent 7% of
// its time here).
template <class T>
void layer_norm_row_forward(const T* x, const T* w, const T* b, int64_t n, double eps, T* y, T* mean_out,
                            T* rstd_out) {
  double sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t j = 0; j < n; ++j) sum += static_cast<double>(x[j]);
  const double mean = sum / static_cast<double>(n);
  double sq = 0;
#pragma omp simd reduction(+ : sq)
  for (int64_t j = 0; j < n; ++j) {
    const double d = static_cast<double>(x[j]) - mean;
    sq += d * d;
  }
  const T m = static_cast<T>(mean), r = static_cast<T>(1.0 / std::sqrt(sq / static_cast<double>(n) + eps));
  for (int64_t j = 0; j < n; ++j) y[j] = (x[j] - m) * r;
  if (w)
    for (int64_t j = 0; j < n; ++j) y[j] *= w[j];
  if (b)
    for (int64_t j = 0; j < n; ++j) y[j] += b[j];
  *mean_out = m;
  *rstd_out = r;
}

// With xhat = (x - mean) * rstd and g = dy * w: dx = rstd * (g - mean(g) - xhat * mean(g * xhat));
// the row's dy * xhat and dy are added into dw and db (when given). kAffine: w is given.
template <bool kAffine, class T>
void layer_norm_row_backward(const T* x, const T* w, T mean, T rstd, const T* dy, int64_t n, T* dx, T* dw,
                             T* db) {
  auto g = [&](int64_t j) { return kAffine ? dy[j] * w[j] : dy[j]; };
  double mg = 0, mgx = 0;
#pragma omp simd reduction(+ : mg, mgx)
  for (int64_t j = 0; j < n; ++j) {
    const double gj = g(j);
    mg += gj;
    mgx += gj * static_cast<double>((x[j] - mean) * rstd);
  }
  mg /= static_cast<double>(n);
  mgx /= static_cast<double>(n);
  for (int64_t j = 0; j < n; ++j) {
    const double xhat = (x[j] - mean) * rstd;
    dx[j] = static_cast<T>(rstd * (g(j) - mg - xhat * mgx));
  }
  if (dw)
    for (int64_t j = 0; j < n; ++j) dw[j] += dy[j] * ((x[j] - mean) * rstd);
  if (db)
    for (int64_t j = 0; j < n; ++j) db[j] += dy[j];
}

}  // namespace

// Rows go to threads; in backward each thread sums its rows' dw/db privately, then the partial sums
// are added in thread order (deterministic).
void CpuBackend::layer_norm_forward(DType dt, const void* x, const void* w, const void* b, int64_t rows,
                                    int64_t cols, double eps, void* y, void* mean, void* rstd) {
  dispatch_floating(dt, "layer_norm", [&]<class T>() {
    parallel_for(rows, cols * 4, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r)
        layer_norm_row_forward<T>(static_cast<const T*>(x) + r * cols, static_cast<const T*>(w),
                                  static_cast<const T*>(b), cols, eps, static_cast<T*>(y) + r * cols,
                                  static_cast<T*>(mean) + r, static_cast<T*>(rstd) + r);
    });
  });
}

void CpuBackend::layer_norm_backward(DType dt, const void* x, const void* w, const void* mean,
                                     const void* rstd, const void* dy, int64_t rows, int64_t cols, void* dx,
                                     void* dw, void* db) {
  dispatch_floating(dt, "layer_norm_backward", [&]<class T>() {
    const int threads = worth_parallel(rows * cols * 6) ? omp_get_max_threads() : 1;
    std::vector<std::vector<T>> pw(threads), pb(threads);
    const int64_t chunk = (rows + threads - 1) / threads;
    auto work = [&](int t) {
      if (dw) pw[t].assign(cols, T(0));
      if (db) pb[t].assign(cols, T(0));
      const int64_t r0 = std::min(rows, t * chunk), r1 = std::min(rows, r0 + chunk);
      auto rows_with = [&]<bool kAffine>() {
        for (int64_t r = r0; r < r1; ++r)
          layer_norm_row_backward<kAffine, T>(
              static_cast<const T*>(x) + r * cols, static_cast<const T*>(w), static_cast<const T*>(mean)[r],
              static_cast<const T*>(rstd)[r], static_cast<const T*>(dy) + r * cols, cols,
              static_cast<T*>(dx) + r * cols, dw ? pw[t].data() : nullptr, db ? pb[t].data() : nullptr);
      };
      if (w) rows_with.template operator()<true>();
      else rows_with.template operator()<false>();
    };
    if (threads == 1) {
      work(0);
    } else {
#pragma omp parallel for num_threads(threads) schedule(static, 1)
      for (int t = 0; t < threads; ++t) work(t);
    }
    for (auto [dst, parts] : {std::pair{static_cast<T*>(dw), &pw}, std::pair{static_cast<T*>(db), &pb}}) {
      if (!dst) continue;
      std::fill_n(dst, cols, T(0));
      for (auto& part : *parts)
        for (int64_t j = 0; j < cols; ++j) dst[j] += part[j];
    }
  });
}

void CpuBackend::optimizer_update(DType dt, const UpdateSpec& spec, int64_t n, void* param, const void* grad,
                                  void* state0, void* state1, void* state2) {
  dispatch_floating(dt, "optimizer_update", [&]<class T>() {
    // Four units per element: from 64K elements on (a 256 x 256 matrix) the threads split the update,
    // each streaming its share of the parameter, gradient and state (bench mlp_step_b8, b128).
    parallel_for(n, 4, [&](int64_t b, int64_t e) {
      update_range<T>(spec, b, e, param, grad, state0, state1, state2);
    });
  });
}

namespace {

// The loop nest im2col and col2im share. One task per (image, channel) goes to a thread: the column
// rows of a channel and the pixels they read belong to that channel alone, so tasks never write the
// same memory. on_task(plane) runs first; then row(plane, col, iy, j) for every kernel offset (i, j)
// and output row y, where plane/col are element offsets of the channel's image and of the column
// segment for (i, j, y), and iy is the input row read (possibly in the padding).
template <class OnTask, class Row>
void for_each_window_row(const WindowGeometry& g, int64_t batch, OnTask&& on_task, Row&& row) {
  const int64_t L = g.out_h * g.out_w, plane = g.height * g.width;
  const int64_t rows_per_channel = g.kernel_h * g.kernel_w;
  parallel_for(batch * g.channels, rows_per_channel * L, [&](int64_t b, int64_t e) {
    for (int64_t task = b; task < e; ++task) {
      const int64_t plane_offset = task * plane, col_base = task * rows_per_channel * L;
      on_task(plane_offset);
      for (int64_t i = 0; i < g.kernel_h; ++i)
        for (int64_t j = 0; j < g.kernel_w; ++j)
          for (int64_t y = 0; y < g.out_h; ++y)
            row(plane_offset, col_base + (i * g.kernel_w + j) * L + y * g.out_w,
                y * g.stride_h - g.pad_h + i * g.dilation_h, j);
    }
  });
}

// For each kernel column j, the output columns [lo, hi) whose input column ix = xo * stride + offset
// (offset = j * dilation - pad) lies inside the image; the others read the padding. Knowing the range
// keeps the bounds test out of the copy loops, which then vectorise (stride 1: a plain copy).
struct ColumnRange {
  int64_t lo, hi, offset;
};
std::vector<ColumnRange> valid_columns(const WindowGeometry& g) {
  std::vector<ColumnRange> ranges;
  const int64_t s = g.stride_w;
  for (int64_t j = 0; j < g.kernel_w; ++j) {
    const int64_t offset = j * g.dilation_w - g.pad_w;
    const int64_t lo = std::min(g.out_w, offset >= 0 ? int64_t{0} : (-offset + s - 1) / s);
    const int64_t hi = g.width - offset <= 0 ? int64_t{0} : std::min(g.out_w, (g.width - offset + s - 1) / s);
    ranges.push_back({lo, std::max(lo, hi), offset});
  }
  return ranges;
}

// Stride 1 with outputs as wide as the image (the "same" convolutions of most CNNs): column row
// (c, i, j) is then channel c's plane shifted by a constant, so im2col and col2im can run one long
// loop per column row instead of a short one per output row (14 or 28 entries in a small CNN, where
// the per-row work costs more than the copy). A mask per kernel column marks the entries whose
// input column lies in the padding: in the long loop they would read the neighbouring row's pixel.
bool slab_layout(const WindowGeometry& g) {
  return g.stride_h == 1 && g.stride_w == 1 && g.out_w == g.width && g.height > 0 && g.width > 0;
}

// Column row (i, j) reads plane[q + shift] at its entries q in [begin, end); the others read the
// padding (rows above or below the image, or columns the mask clears).
struct Slab {
  int64_t begin, end, shift;
};
Slab slab_of(const WindowGeometry& g, int64_t i, int64_t j) {
  const int64_t w = g.width, plane = g.height * w;
  const int64_t dy = i * g.dilation_h - g.pad_h, dx = j * g.dilation_w - g.pad_w;
  const int64_t y0 = std::clamp<int64_t>(-dy, 0, g.out_h),
                y1 = std::clamp<int64_t>(g.height - dy, y0, g.out_h);
  const int64_t shift = dy * w + dx;
  const int64_t begin = std::clamp(-shift, y0 * w, y1 * w);
  return {begin, std::clamp(plane - shift, begin, y1 * w), shift};
}

// Everything the slab loops need once per call: the slab of every kernel offset (i, j), and
// inside[j * L + q]: entry q of a column row of kernel column j reads a column inside the image.
struct SlabPlan {
  std::vector<Slab> slabs;
  std::vector<uint8_t> inside;
  explicit SlabPlan(const WindowGeometry& g) {
    const int64_t L = g.out_h * g.out_w;
    for (int64_t i = 0; i < g.kernel_h; ++i)
      for (int64_t j = 0; j < g.kernel_w; ++j) slabs.push_back(slab_of(g, i, j));
    inside.resize(g.kernel_w * L);
    for (int64_t j = 0; j < g.kernel_w; ++j) {
      const int64_t dx = j * g.dilation_w - g.pad_w;
      for (int64_t y = 0; y < g.out_h; ++y)
        for (int64_t x = 0; x < g.width; ++x)
          inside[j * L + y * g.width + x] = x + dx >= 0 && x + dx < g.width;
    }
  }
};

// The plan for g, kept per thread for the last geometry: the fused convolution unfolds one image
// at a time, and building the plan for each of 64 images cost 1.4% of cnn_step_b64.
const SlabPlan& slab_plan(const WindowGeometry& g) {
  static thread_local std::optional<std::pair<WindowGeometry, SlabPlan>> last;
  if (!last || !(last->first == g)) last.emplace(g, SlabPlan(g));
  return last->second;
}

template <class T>
void im2col_slabs(const T* x, T* out, const WindowGeometry& g, int64_t batch) {
  const int64_t L = g.out_h * g.out_w, plane = g.height * g.width;
  const SlabPlan& plan = slab_plan(g);
  parallel_for(batch * g.channels, g.kernel_h * g.kernel_w * L, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t)
      for (int64_t i = 0; i < g.kernel_h; ++i)
        for (int64_t j = 0; j < g.kernel_w; ++j) {
          const Slab& s = plan.slabs[i * g.kernel_w + j];
          T* d = out + (t * g.kernel_h * g.kernel_w + i * g.kernel_w + j) * L;
          const T* src = x + t * plane + s.shift;
          const uint8_t* inside = plan.inside.data() + j * L;
          std::fill(d, d + s.begin, T(0));
#pragma omp simd
          for (int64_t q = s.begin; q < s.end; ++q) d[q] = inside[q] ? src[q] : T(0);
          std::fill(d + s.end, d + L, T(0));
        }
  });
}

// The adjoint, kernel offsets in the same order as the general loop (each pixel's sum is the same).
template <class T>
void col2im_slabs(const T* cols, T* x, const WindowGeometry& g, int64_t batch) {
  const int64_t L = g.out_h * g.out_w, plane = g.height * g.width;
  const SlabPlan& plan = slab_plan(g);
  parallel_for(batch * g.channels, g.kernel_h * g.kernel_w * L, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      std::fill(x + t * plane, x + (t + 1) * plane, T(0));
      for (int64_t i = 0; i < g.kernel_h; ++i)
        for (int64_t j = 0; j < g.kernel_w; ++j) {
          const Slab& s = plan.slabs[i * g.kernel_w + j];
          const T* c = cols + (t * g.kernel_h * g.kernel_w + i * g.kernel_w + j) * L;
          T* dst = x + t * plane + s.shift;
          const uint8_t* inside = plan.inside.data() + j * L;
#pragma omp simd
          for (int64_t q = s.begin; q < s.end; ++q)
            dst[q] = static_cast<T>(dst[q] + (inside[q] ? c[q] : T(0)));
        }
    }
  });
}

}  // namespace

void CpuBackend::im2col(DType dt, const void* in, void* out, const WindowGeometry& g, int64_t batch) {
  dispatch_numeric(dt, "im2col", [&]<class T>() {
    const T* x = static_cast<const T*>(in);
    T* o = static_cast<T*>(out);
    if (slab_layout(g)) return im2col_slabs<T>(x, o, g, batch);
    const std::vector<ColumnRange> ranges = valid_columns(g);
    for_each_window_row(
        g, batch, [](int64_t) {},
        [&](int64_t plane, int64_t col, int64_t iy, int64_t j) {
          T* dst = o + col;
          if (iy < 0 || iy >= g.height) {
            std::fill(dst, dst + g.out_w, T(0));
            return;
          }
          const T* src = x + plane + iy * g.width;
          // Plain copies, not a structured binding: clang's OpenMP regions cannot name a binding.
          const int64_t lo = ranges[j].lo, hi = ranges[j].hi, offset = ranges[j].offset;
          std::fill(dst, dst + lo, T(0));
          if (g.stride_w == 1) {
            std::copy(src + lo + offset, src + hi + offset, dst + lo);
          } else {
            for (int64_t xo = lo; xo < hi; ++xo) dst[xo] = src[xo * g.stride_w + offset];
          }
          std::fill(dst + hi, dst + g.out_w, T(0));
        });
  });
}

void CpuBackend::col2im(DType dt, const void* cols, void* out, const WindowGeometry& g, int64_t batch) {
  dispatch_numeric(dt, "col2im", [&]<class T>() {
    const T* c = static_cast<const T*>(cols);
    T* x = static_cast<T*>(out);
    if (slab_layout(g)) return col2im_slabs<T>(c, x, g, batch);
    const int64_t plane_size = g.height * g.width;
    const std::vector<ColumnRange> ranges = valid_columns(g);
    for_each_window_row(
        g, batch, [&](int64_t plane) { std::fill(x + plane, x + plane + plane_size, T(0)); },
        [&](int64_t plane, int64_t col, int64_t iy, int64_t j) {
          if (iy < 0 || iy >= g.height) return;
          const int64_t lo = ranges[j].lo, hi = ranges[j].hi, offset = ranges[j].offset;
          T* dst = x + plane + iy * g.width;
          const T* src = c + col;
          if (g.stride_w == 1) {
#pragma omp simd
            for (int64_t xo = lo; xo < hi; ++xo)
              dst[xo + offset] = static_cast<T>(dst[xo + offset] + src[xo]);
          } else {
            for (int64_t xo = lo; xo < hi; ++xo) {
              T& d = dst[xo * g.stride_w + offset];
              d = static_cast<T>(d + src[xo]);
            }
          }
        });
  });
}

// Fused attention on the CPU, float32 and float64, by blocks of query rows: a [Br, S] tile of scores
// from one GEMM, a row softmax in place, one GEMM into the output; backward recomputes the tile from
// the saved log-sum-exp and runs the five GEMMs of the attention gradient per tile. Batch entries go
// to threads (their gk/gv are private to them). Holding a [Br, S] tile is what bounds the memory:
// the L x S matrix never exists.
namespace {

constexpr int64_t kAttentionRows = 64;

// exp(x) for x <= 0: the vectorised float32 approximation, or exp itself for double.
template <class T>
T exp_nonpositive(T x) {
  if constexpr (std::is_same_v<T, float>) return fast_expf_nonpositive(x);
  else return std::exp(x);
}

template <class T>
T row_max(const T* x, int64_t n) {
  if constexpr (std::is_same_v<T, float>) return max_run(x, n);
  T m = -INFINITY;
  for (int64_t j = 0; j < n; ++j) m = (x[j] > m || std::isnan(x[j])) ? x[j] : m;
  return m;
}

// One matrix product of the attention tiles (no batch).
template <class T>
void tile_gemm(Backend& backend, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
               const T* a, int64_t lda, const T* b, int64_t ldb, double beta, T* c, int64_t ldc) {
  GemmArgs g;
  g.dtype = std::is_same_v<T, float> ? kFloat32 : kFloat64;
  g.trans_a = trans_a, g.trans_b = trans_b;
  g.m = m, g.n = n, g.k = k, g.alpha = alpha, g.beta = beta, g.lda = lda, g.ldb = ldb, g.ldc = ldc;
  backend.gemm(g, a, b, c);
}

template <class T>
struct AttentionTile {
  const AttentionShape& a;
  const T* mask;
  Dims ms;
  // Adds the mask and the causal cut to scores[r, j] of rows i0..i0+rows of batch b.
  void mask_scores(T* scores, int64_t b, int64_t i0, int64_t rows) const {
    for (int64_t r = 0; r < rows; ++r) {
      T* row = scores + r * a.kv_len;
      const int64_t i = i0 + r;
      if (mask) {
        const T* m = mask + b * ms[0] + i * ms[1];
        for (int64_t j = 0; j < a.kv_len; ++j) row[j] += m[j * ms[2]];
      }
      if (a.causal)
        for (int64_t j = i + 1; j < a.kv_len; ++j) row[j] = -INFINITY;
    }
  }
};

// C = alpha A B (B transposed when trans_b) for the forward's two products. `direct` marks a few
// query rows (generation: one new token against the cached keys): float goes straight to the skinny
// SGEMM, double to plain loops, where the backend's GEMM dispatch would cost more than the arithmetic.
template <class T>
void attention_product(Backend& backend, bool direct, bool trans_b, int64_t m, int64_t n, int64_t k,
                       double alpha, const T* a, int64_t lda, const T* b, int64_t ldb, T* c, int64_t ldc) {
  if (!direct) {
    tile_gemm<T>(backend, false, trans_b, m, n, k, alpha, a, lda, b, ldb, 0.0, c, ldc);
  } else if constexpr (std::is_same_v<T, float>) {
    small_sgemm(false, trans_b, m, n, k, static_cast<float>(alpha), a, lda, b, ldb, 0.0f, c, ldc);
  } else {
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        T dot = 0;
        for (int64_t p = 0; p < k; ++p) dot += a[i * lda + p] * (trans_b ? b[j * ldb + p] : b[p * ldb + j]);
        c[i * ldc + j] = static_cast<T>(alpha) * dot;
      }
  }
}

template <class T>
void attention_forward_tiles(Backend& backend, const AttentionShape& a, const void* q, const void* k,
                             const void* v, const void* mask, Dims mask_strides, void* out, void* lse) {
  const T* Q = static_cast<const T*>(q);
  const T* K = static_cast<const T*>(k);
  const T* V = static_cast<const T*>(v);
  T* O = static_cast<T*>(out);
  T* LSE = static_cast<T*>(lse);
  AttentionTile<T> tile{a, static_cast<const T*>(mask), mask_strides};
  const int64_t blocks = (a.q_len + kAttentionRows - 1) / kAttentionRows;
  const bool direct = a.q_len < 4;
  parallel_for(a.batch * blocks, std::min(kAttentionRows, a.q_len) * a.kv_len * (a.head_dim + a.v_dim),
               [&](int64_t t0, int64_t t1) {
                 std::vector<T> scores(std::min(kAttentionRows, a.q_len) * a.kv_len);
                 for (int64_t t = t0; t < t1; ++t) {
                   const int64_t b = t / blocks, i0 = (t % blocks) * kAttentionRows;
                   const int64_t rows = std::min(kAttentionRows, a.q_len - i0);
                   const T* Qb = Q + (b * a.q_len + i0) * a.head_dim;
                   const T* Kb = K + b * a.k_step();
                   const T* Vb = V + b * a.v_step();
                   T* Ob = O + (b * a.q_len + i0) * a.v_dim;
                   attention_product<T>(backend, direct, true, rows, a.kv_len, a.head_dim, a.scale, Qb,
                                        a.head_dim, Kb, a.head_dim, scores.data(), a.kv_len);
                   tile.mask_scores(scores.data(), b, i0, rows);
                   for (int64_t r = 0; r < rows; ++r) {
                     T* row = scores.data() + r * a.kv_len;
                     const T mx = row_max<T>(row, a.kv_len);
                     T sum = 0;
#pragma omp simd reduction(+ : sum)
                     for (int64_t j = 0; j < a.kv_len; ++j) {
                       const T e = exp_nonpositive<T>(row[j] - mx);
                       row[j] = e;
                       sum += e;
                     }
                     const T inv = T(1) / sum;
                     for (int64_t j = 0; j < a.kv_len; ++j) row[j] *= inv;
                     LSE[b * a.q_len + i0 + r] = mx + std::log(sum);  // nan/-inf rows stay nan, like softmax
                   }
                   attention_product<T>(backend, direct, false, rows, a.v_dim, a.kv_len, 1.0, scores.data(),
                                        a.kv_len, Vb, a.v_dim, Ob, a.v_dim);
                 }
               });
}

template <class T>
void attention_backward_tiles(Backend& backend, const AttentionShape& a, const void* q, const void* k,
                              const void* v, const void* mask, Dims mask_strides, const void* out,
                              const void* grad_out, const void* lse, void* gq, void* gk, void* gv) {
  const T* Q = static_cast<const T*>(q);
  const T* K = static_cast<const T*>(k);
  const T* V = static_cast<const T*>(v);
  const T* O = static_cast<const T*>(out);
  const T* GO = static_cast<const T*>(grad_out);
  const T* LSE = static_cast<const T*>(lse);
  T* GQ = static_cast<T*>(gq);
  T* GK = static_cast<T*>(gk);
  T* GV = static_cast<T*>(gv);
  AttentionTile<T> tile{a, static_cast<const T*>(mask), mask_strides};
  parallel_for(a.batch, a.q_len * a.kv_len * (a.head_dim + a.v_dim) * 4, [&](int64_t b0, int64_t b1) {
    std::vector<T> p(kAttentionRows * a.kv_len), dp(kAttentionRows * a.kv_len);
    for (int64_t b = b0; b < b1; ++b) {
      const T* Kb = K + b * a.k_step();
      const T* Vb = V + b * a.v_step();
      T* GKb = GK + b * a.kv_len * a.head_dim;
      T* GVb = GV + b * a.kv_len * a.v_dim;
      std::fill_n(GKb, a.kv_len * a.head_dim, T(0));
      std::fill_n(GVb, a.kv_len * a.v_dim, T(0));
      for (int64_t i0 = 0; i0 < a.q_len; i0 += kAttentionRows) {
        const int64_t rows = std::min(kAttentionRows, a.q_len - i0);
        const T* Qi = Q + (b * a.q_len + i0) * a.head_dim;
        const T* Oi = O + (b * a.q_len + i0) * a.v_dim;
        const T* Gi = GO + (b * a.q_len + i0) * a.v_dim;
        // P = exp(scale * Q K^T + mask - lse)
        tile_gemm<T>(backend, false, true, rows, a.kv_len, a.head_dim, a.scale, Qi, a.head_dim, Kb,
                     a.head_dim, 0.0, p.data(), a.kv_len);
        tile.mask_scores(p.data(), b, i0, rows);
        for (int64_t r = 0; r < rows; ++r) {
          T* row = p.data() + r * a.kv_len;
          const T l = LSE[b * a.q_len + i0 + r];
          if (std::isnan(l)) {  // a row that attended to nothing has no gradient
            std::fill_n(row, a.kv_len, T(0));
            continue;
          }
#pragma omp simd
          for (int64_t j = 0; j < a.kv_len; ++j) row[j] = exp_nonpositive<T>(std::min(row[j] - l, T(0)));
        }
        // dV += P^T dO;  dP = dO V^T
        tile_gemm<T>(backend, true, false, a.kv_len, a.v_dim, rows, 1.0, p.data(), a.kv_len, Gi, a.v_dim, 1.0,
                     GVb, a.v_dim);
        tile_gemm<T>(backend, false, true, rows, a.kv_len, a.v_dim, 1.0, Gi, a.v_dim, Vb, a.v_dim, 0.0,
                     dp.data(), a.kv_len);
        // dS = P * (dP - rowsum(dO * O)) * scale, written over dP
        for (int64_t r = 0; r < rows; ++r) {
          T* dr = dp.data() + r * a.kv_len;
          if (std::isnan(LSE[b * a.q_len + i0 + r])) {  // its out is NaN: keep it out of dS
            std::fill_n(dr, a.kv_len, T(0));
            continue;
          }
          T d = 0;
          for (int64_t e = 0; e < a.v_dim; ++e) d += Gi[r * a.v_dim + e] * Oi[r * a.v_dim + e];
          const T* pr = p.data() + r * a.kv_len;
          const T sc = static_cast<T>(a.scale);
#pragma omp simd
          for (int64_t j = 0; j < a.kv_len; ++j) dr[j] = pr[j] * (dr[j] - d) * sc;
        }
        // dQ = dS K;  dK += dS^T Q
        tile_gemm<T>(backend, false, false, rows, a.head_dim, a.kv_len, 1.0, dp.data(), a.kv_len, Kb,
                     a.head_dim, 0.0, GQ + (b * a.q_len + i0) * a.head_dim, a.head_dim);
        tile_gemm<T>(backend, true, false, a.kv_len, a.head_dim, rows, 1.0, dp.data(), a.kv_len, Qi,
                     a.head_dim, 1.0, GKb, a.head_dim);
      }
    }
  });
}

}  // namespace

void CpuBackend::attention_forward(DType dt, const AttentionShape& a, const void* q, const void* k,
                                   const void* v, const void* mask, Dims mask_strides, void* out, void* lse) {
  dispatch_floating(dt, "attention_forward", [&]<class T>() {
    attention_forward_tiles<T>(*this, a, q, k, v, mask, mask_strides, out, lse);
  });
}

void CpuBackend::attention_backward(DType dt, const AttentionShape& a, const void* q, const void* k,
                                    const void* v, const void* mask, Dims mask_strides, const void* out,
                                    const void* grad_out, const void* lse, void* gq, void* gk, void* gv) {
  dispatch_floating(dt, "attention_backward", [&]<class T>() {
    attention_backward_tiles<T>(*this, a, q, k, v, mask, mask_strides, out, grad_out, lse, gq, gk, gv);
  });
}

}  // namespace ember::kernels::EMBER_CPU_ISA_NS
EMBER_CPU_ISA_END
