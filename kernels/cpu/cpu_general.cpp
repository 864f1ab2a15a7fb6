// The CPU backend's primitives that decide little of training speed: the general reductions (max,
// min, their indices, products, integer sums), where, cumsum, the index ops, nonzero, sort and the
// random fills. Each is a straightforward loop, spread over OpenMP threads where its rows are
// independent and the work is large enough to pay for the fork. Compiled once per instruction-set
// level, like cpu_backend.cpp.
#include <omp.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <numeric>
#include <vector>

#include "ember/kernels/cpu/cpu_isa.h"
#include "ember/kernels/dispatch.h"
#include "ember/kernels/elementwise_ops.h"
#include "ember/kernels/philox.h"

EMBER_CPU_ISA_BEGIN
#include "ember/kernels/cpu/cpu_backend.h"

namespace ember::kernels::EMBER_CPU_ISA_NS {

bool CpuBackend::supports(Op op, DType dt) const {
  switch (op) {
    case Op::Fill:
    case Op::Cast:
    case Op::StridedCopy:
    case Op::IndexSelect:
    case Op::Gather:
    case Op::Nonzero:
    case Op::Where: return true;
    case Op::Gemm:
    case Op::RandomUniform:
    case Op::RandomNormal: return dt == kFloat32 || dt == kFloat64;
    default: return !is_half(dt);
  }
}

// The fused kernels this backend has: softmax and cross-entropy in float32, the row kernels it
// vectorises (in float64, used for gradient checks, they run composed from the primitives); both
// float types for the rest.
bool CpuBackend::supports(FusedOp op, DType dt) const {
  switch (op) {
    case FusedOp::Softmax:
    case FusedOp::CrossEntropy: return dt == kFloat32;
    case FusedOp::Im2Col:
    case FusedOp::Col2Im: return !is_half(dt);
    default: return dt == kFloat32 || dt == kFloat64;
  }
}

void CpuBackend::copy_to_host(void* dst, const void* src, size_t nbytes) {
  if (nbytes) std::memcpy(dst, src, nbytes);
}
void CpuBackend::copy_from_host(void* dst, const void* src, size_t nbytes) {
  if (nbytes) std::memcpy(dst, src, nbytes);
}

void CpuBackend::general_reduce(ReduceOp op, DType dt, const void* in, void* out, int64_t outer, int64_t r,
                                int64_t inner) {
  dispatch_numeric(dt, "reduce", [&]<class T>() {
    const T* x = static_cast<const T*>(in);
    const bool want_max = op == ReduceOp::Max || op == ReduceOp::ArgMax;
#pragma omp parallel for schedule(static) if (outer * inner * r >= kParallelGrain)
    for (int64_t p = 0; p < outer * inner; ++p) {
      const T* row = x + (p / inner) * r * inner + p % inner;  // the r values, `inner` apart
      if (op == ReduceOp::Sum || op == ReduceOp::Prod) {
        acc_t<T> acc = op == ReduceOp::Sum ? 0 : 1;
        for (int64_t j = 0; j < r; ++j)
          acc = op == ReduceOp::Sum ? acc + row[j * inner] : acc * row[j * inner];
        static_cast<T*>(out)[p] = static_cast<T>(acc);
        continue;
      }
      int64_t best = 0;  // the first extreme wins; a NaN wins over everything
      for (int64_t j = 1; j < r && !is_nan(row[best * inner]); ++j) {
        const T v = row[j * inner];
        if (is_nan(v) || (want_max ? v > row[best * inner] : v < row[best * inner])) best = j;
      }
      if (op == ReduceOp::ArgMax || op == ReduceOp::ArgMin) static_cast<int64_t*>(out)[p] = best;
      else static_cast<T*>(out)[p] = row[best * inner];
    }
  });
}

// Each thread takes a contiguous run of output elements, finds the three input offsets of its first
// element once, then steps them like an odometer: no division per element.
namespace {

// The three operands of where with dims merged where all three are contiguous across them and
// size-1 dims dropped, so the innermost loop runs as long as the layout allows.
struct WhereLayout {
  std::vector<int64_t> sizes;
  std::array<std::vector<int64_t>, 3> strides;  // condition, a, b
};
WhereLayout merge_where_dims(Dims sizes, const std::array<Dims, 3>& strides) {
  WhereLayout l;
  for (size_t d = 0; d < sizes.size(); ++d) {
    if (sizes[d] == 1) continue;
    bool merge = !l.sizes.empty();
    for (int k = 0; k < 3 && merge; ++k) merge = l.strides[k].back() == strides[k][d] * sizes[d];
    if (merge) {
      l.sizes.back() *= sizes[d];
      for (int k = 0; k < 3; ++k) l.strides[k].back() = strides[k][d];
    } else {
      l.sizes.push_back(sizes[d]);
      for (int k = 0; k < 3; ++k) l.strides[k].push_back(strides[k][d]);
    }
  }
  if (l.sizes.empty()) {
    l.sizes.push_back(1);
    for (auto& s : l.strides) s.push_back(0);
  }
  return l;
}

}  // namespace

// Element ranges over the merged layout (so one long row splits across threads too): an odometer
// over the outer dims, a plain loop along the innermost one, written out for the stride patterns
// that vectorise (everything compact, or one side a broadcast scalar).
void CpuBackend::where(DType dt, const void* cond, Dims c_strides, const void* a, Dims a_strides,
                       const void* b, Dims b_strides, void* out, Dims sizes) {
  const WhereLayout l = merge_where_dims(sizes, {c_strides, a_strides, b_strides});
  const int64_t outer_dims = static_cast<int64_t>(l.sizes.size()) - 1, inner = l.sizes.back();
  int64_t total = inner;
  for (int64_t d = 0; d < outer_dims; ++d) total *= l.sizes[d];
  const int64_t cs = l.strides[0].back(), as = l.strides[1].back(), bs = l.strides[2].back();
  dispatch_by_size(dt, [&]<class T>() {
    const bool* c = static_cast<const bool*>(cond);
    const T *x = static_cast<const T*>(a), *y = static_cast<const T*>(b);
    T* o = static_cast<T*>(out);
    // Elements [j0, j1) of one row whose operands start at c0, x0, y0; output from o0.
    auto row = [&](const bool* c0, const T* x0, const T* y0, T* o0, int64_t j0, int64_t j1) {
      if (cs == 1 && as == 1 && bs == 0) {
        const T v = *y0;
#pragma omp simd
        for (int64_t j = j0; j < j1; ++j) o0[j] = c0[j] ? x0[j] : v;
      } else if (cs == 1 && as == 1 && bs == 1) {
#pragma omp simd
        for (int64_t j = j0; j < j1; ++j) o0[j] = c0[j] ? x0[j] : y0[j];
      } else {
        for (int64_t j = j0; j < j1; ++j) o0[j] = c0[j * cs] ? x0[j * as] : y0[j * bs];
      }
    };
    auto run = [&](int64_t begin, int64_t end) {
      if (begin >= end) return;
      std::vector<int64_t> at(outer_dims);
      int64_t off[3] = {0, 0, 0};
      for (int64_t d = outer_dims - 1, rest = begin / inner; d >= 0; --d) {
        at[d] = rest % l.sizes[d];
        rest /= l.sizes[d];
        for (int k = 0; k < 3; ++k) off[k] += at[d] * l.strides[k][d];
      }
      for (int64_t r = begin / inner; r * inner < end; ++r) {
        const int64_t j0 = std::max(begin - r * inner, int64_t{0}), j1 = std::min(end - r * inner, inner);
        row(c + off[0], x + off[1], y + off[2], o + r * inner, j0, j1);
        for (int64_t d = outer_dims - 1; d >= 0; --d) {
          for (int k = 0; k < 3; ++k) off[k] += l.strides[k][d];
          if (++at[d] < l.sizes[d]) break;
          for (int k = 0; k < 3; ++k) off[k] -= l.strides[k][d] * l.sizes[d];
          at[d] = 0;
        }
      }
    };
    if (total < kParallelGrain || omp_get_max_threads() == 1) {
      run(0, total);
      return;
    }
#pragma omp parallel
    {
      const int64_t threads = omp_get_num_threads(), t = omp_get_thread_num();
      const int64_t chunk = (total + threads - 1) / threads;
      run(std::min(total, t * chunk), std::min(total, (t + 1) * chunk));
    }
  });
}

void CpuBackend::cumsum(DType dt, const void* in, void* out, int64_t outer, int64_t r, int64_t inner) {
  dispatch_numeric(dt, "cumsum", [&]<class T>() {
    const T* x = static_cast<const T*>(in);
    T* y = static_cast<T*>(out);
#pragma omp parallel for schedule(static) if (outer * inner * r >= kParallelGrain)
    for (int64_t p = 0; p < outer * inner; ++p) {
      const int64_t base = (p / inner) * r * inner + p % inner;
      acc_t<T> acc = 0;
      for (int64_t j = 0; j < r; ++j) {
        acc += x[base + j * inner];
        y[base + j * inner] = static_cast<T>(acc);
      }
    }
  });
}

// Indices may repeat, so the rows of one `o` are added in order on one thread; different `o` are
// independent.
void CpuBackend::index_add(DType dt, void* out, int64_t n, const int64_t* idx, int64_t k, const void* src,
                           int64_t outer, int64_t inner, double alpha) {
  dispatch_numeric(dt, "index_add", [&]<class T>() {
    T* y = static_cast<T*>(out);
    const T* s = static_cast<const T*>(src);
    const T al = static_cast<T>(alpha);
#pragma omp parallel for schedule(static) if (outer * k * inner >= kParallelGrain)
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t j = 0; j < k; ++j) {
        T* dst = y + (o * n + idx[j]) * inner;
        const T* from = s + (o * k + j) * inner;
        for (int64_t i = 0; i < inner; ++i) dst[i] = static_cast<T>(dst[i] + al * from[i]);
      }
  });
}

void CpuBackend::gather(DType dt, const void* in, int64_t n, const int64_t* idx, void* out, int64_t outer,
                        int64_t k, int64_t inner) {
  dispatch_by_size(dt, [&]<class T>() {
    const T* x = static_cast<const T*>(in);
    T* y = static_cast<T*>(out);
#pragma omp parallel for schedule(static) if (outer * k * inner >= kParallelGrain)
    for (int64_t row = 0; row < outer * k; ++row) {  // row = o * k + j
      const T* from = x + row / k * n * inner;
      const int64_t* at = idx + row * inner;
      T* to = y + row * inner;
      for (int64_t i = 0; i < inner; ++i) to[i] = from[at[i] * inner + i];
    }
  });
}

// Later entries win (or all add up) at a repeated index, as in the sequential order: each (o, i)
// column is walked along j on one thread.
void CpuBackend::scatter(DType dt, void* out, int64_t n, const int64_t* idx, const void* src, int64_t outer,
                         int64_t k, int64_t inner, bool accumulate) {
  dispatch_numeric(dt, "scatter", [&]<class T>() {
    T* y = static_cast<T*>(out);
    const T* s = static_cast<const T*>(src);
#pragma omp parallel for schedule(static) if (outer * k * inner >= kParallelGrain)
    for (int64_t c = 0; c < outer * inner; ++c) {
      const int64_t o = c / inner, i = c % inner;
      for (int64_t j = 0; j < k; ++j) {
        const int64_t p = (o * k + j) * inner + i;
        T& dst = y[(o * n + idx[p]) * inner + i];
        dst = accumulate ? static_cast<T>(dst + s[p]) : s[p];
      }
    }
  });
}

// Two passes over one chunk per thread: count each chunk's true elements, then let each chunk write
// its positions from where the chunks before it end.
int64_t CpuBackend::nonzero(const void* mask, int64_t n, int64_t* out) {
  const bool* m = static_cast<const bool*>(mask);
  const int64_t chunks = n >= kParallelGrain ? omp_get_max_threads() : 1;
  const int64_t chunk = (n + chunks - 1) / chunks;
  std::vector<int64_t> ends(chunks + 1, 0);  // ends[c + 1]: trues in chunks 0..c
#pragma omp parallel for schedule(static) if (chunks > 1)
  for (int64_t c = 0; c < chunks; ++c)
    ends[c + 1] = std::count(m + std::min(n, c * chunk), m + std::min(n, (c + 1) * chunk), true);
  std::partial_sum(ends.begin(), ends.end(), ends.begin());
  if (out) {
#pragma omp parallel for schedule(static) if (chunks > 1)
    for (int64_t c = 0; c < chunks; ++c) {
      int64_t next = ends[c];
      for (int64_t i = std::min(n, c * chunk); i < std::min(n, (c + 1) * chunk); ++i)
        if (m[i]) out[next++] = i;
    }
  }
  return ends[chunks];
}

void CpuBackend::sort(DType dt, const void* in, int64_t* out_idx, int64_t rows, int64_t cols,
                      bool descending) {
  dispatch_numeric(dt, "sort", [&]<class T>() {
    // Locals, not the enclosing function's names: the comparator is a lambda inside an OpenMP region.
    const T* values = static_cast<const T*>(in);
    const bool desc = descending;
#pragma omp parallel for schedule(dynamic) if (rows > 1 && rows * cols >= kParallelGrain / 8)
    for (int64_t row = 0; row < rows; ++row) {
      const T* x = values + row * cols;
      int64_t* idx = out_idx + row * cols;
      std::iota(idx, idx + cols, int64_t{0});
      std::stable_sort(idx, idx + cols, [x, desc](int64_t p, int64_t q) {
        return desc ? less_nan_last(x[q], x[p]) : less_nan_last(x[p], x[q]);
      });
    }
  });
}

// Counter-based: element i is a function of (seed, offset + i) alone, so any split over threads
// gives the same numbers.
void CpuBackend::random_uniform(DType dt, void* out, int64_t n, uint64_t seed, uint64_t offset, double lo,
                                double hi) {
  dispatch_floating(dt, "random_uniform", [&]<class T>() {
    T* y = static_cast<T*>(out);
#pragma omp parallel for schedule(static) if (n >= kParallelGrain / 16)
    for (int64_t i = 0; i < n; ++i) y[i] = static_cast<T>(lo + (hi - lo) * philox_uniform(seed, offset + i));
  });
}

void CpuBackend::random_normal(DType dt, void* out, int64_t n, uint64_t seed, uint64_t offset, double mean,
                               double stddev) {
  dispatch_floating(dt, "random_normal", [&]<class T>() {
    T* y = static_cast<T*>(out);
#pragma omp parallel for schedule(static) if (n >= kParallelGrain / 16)
    for (int64_t i = 0; i < n; ++i) y[i] = static_cast<T>(mean + stddev * philox_normal(seed, offset + i));
  });
}

}  // namespace ember::kernels::EMBER_CPU_ISA_NS
EMBER_CPU_ISA_END
