// Plain loops for every primitive; see reference_backend.h.
#include "ember/kernels/reference/reference_backend.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <vector>

#include "ember/kernels/dispatch.h"
#include "ember/kernels/philox.h"
#include "ember/kernels/reference/attention_rows.h"
#include "ember/kernels/reference/reference_math.h"

namespace ember::kernels {
using reference::Accumulator;
using reference::is_nan;
using reference::less_nan_last;

namespace {

// Visits every index of `sizes` in row-major order, keeping one running offset per strided
// operand: f(offsets) with offsets[j] the element offset of operand j.
template <size_t N, class F>
void for_each_strided(Dims sizes, const std::array<Dims, N>& strides, F&& f) {
  const size_t nd = sizes.size();
  int64_t total = 1;
  for (auto s : sizes) total *= s;
  if (total == 0) return;
  std::array<int64_t, N> off{};
  std::vector<int64_t> counter(nd, 0);
  for (int64_t i = 0; i < total; ++i) {
    f(off);
    for (size_t d = nd; d-- > 0;) {  // odometer: bump the last dim, carry into earlier ones
      ++counter[d];
      for (size_t j = 0; j < N; ++j) off[j] += strides[j][d];
      if (counter[d] < sizes[d]) break;
      for (size_t j = 0; j < N; ++j) off[j] -= strides[j][d] * sizes[d];
      counter[d] = 0;
    }
  }
}

}  // namespace

bool ReferenceBackend::supports(Op op, DType dt) const {
  switch (op) {
    case Op::Fill:
    case Op::Cast:
    case Op::StridedCopy:
    case Op::IndexSelect:
    case Op::Gather:
    case Op::Nonzero: return true;
    case Op::Gemm:
    case Op::RandomUniform:
    case Op::RandomNormal: return dt == kFloat32 || dt == kFloat64;
    default: return !is_half(dt);
  }
}

bool ReferenceBackend::supports(FusedOp op, DType dt) const {
  if (op == FusedOp::Im2Col || op == FusedOp::Col2Im) return !is_half(dt);
  return dt == kFloat32 || dt == kFloat64;
}

void* ReferenceBackend::allocate(size_t nbytes) {
  // 64-byte alignment: a full cache line and an AVX-512 vector.
  size_t rounded = (std::max<size_t>(nbytes, 1) + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, rounded);
  if (!p) fail("allocate: out of memory allocating ", nbytes, " bytes");
  return p;
}
void ReferenceBackend::deallocate(void* ptr, size_t) { std::free(ptr); }
void ReferenceBackend::copy_to_host(void* dst, const void* src, size_t nbytes) {
  if (nbytes) std::memcpy(dst, src, nbytes);
}
void ReferenceBackend::copy_from_host(void* dst, const void* src, size_t nbytes) {
  if (nbytes) std::memcpy(dst, src, nbytes);
}

void ReferenceBackend::fill(DType dt, void* out, int64_t n, Scalar value) {
  dispatch_all(dt, "fill", [&]<class T>() {
    T v = scalar_as<T>(value);
    T* o = static_cast<T*>(out);
    for (int64_t i = 0; i < n; ++i) o[i] = v;
  });
}

void ReferenceBackend::cast(DType from, const void* in, DType to, void* out, int64_t n) {
  dispatch_all(from, "cast", [&]<class S>() {
    dispatch_all(to, "cast", [&]<class D>() {
      const S* src = static_cast<const S*>(in);
      D* dst = static_cast<D*>(out);
      for (int64_t i = 0; i < n; ++i) dst[i] = convert<D>(src[i]);
    });
  });
}

void ReferenceBackend::strided_copy(DType dt, const void* src, Dims src_strides, void* dst, Dims dst_strides,
                                    Dims sizes) {
  dispatch_by_size(dt, [&]<class T>() {
    const T* s = static_cast<const T*>(src);
    T* d = static_cast<T*>(dst);
    for_each_strided<2>(sizes, {src_strides, dst_strides},
                        [&](const std::array<int64_t, 2>& off) { d[off[1]] = s[off[0]]; });
  });
}

void ReferenceBackend::unary(UnaryOp op, DType dt, const void* in, void* out, int64_t n, double a, double b) {
  dispatch_numeric(dt, "unary", [&]<class T>() {
    const T* x = static_cast<const T*>(in);
    T* y = static_cast<T*>(out);
    for (int64_t i = 0; i < n; ++i) y[i] = reference::unary_value<T>(op, x[i], a, b);
  });
}

void ReferenceBackend::binary(BinaryOp op, DType dt, const void* a, Dims a_strides, const void* b,
                              Dims b_strides, void* out, Dims sizes) {
  const std::vector<int64_t> out_strides = compact_strides(sizes);
  dispatch_numeric(dt, "binary", [&]<class T>() {
    const T* x = static_cast<const T*>(a);
    const T* y = static_cast<const T*>(b);
    for_each_strided<3>(
        sizes, {a_strides, b_strides, Dims(out_strides)}, [&](const std::array<int64_t, 3>& off) {
          if (is_comparison(op))
            static_cast<bool*>(out)[off[2]] = reference::predicate_value<T>(op, x[off[0]], y[off[1]]);
          else static_cast<T*>(out)[off[2]] = reference::arithmetic_value<T>(op, x[off[0]], y[off[1]]);
        });
  });
}

void ReferenceBackend::where(DType dt, const void* cond, Dims c_strides, const void* a, Dims a_strides,
                             const void* b, Dims b_strides, void* out, Dims sizes) {
  const std::vector<int64_t> out_strides = compact_strides(sizes);
  dispatch_by_size(dt, [&]<class T>() {
    const bool* c = static_cast<const bool*>(cond);
    const T* x = static_cast<const T*>(a);
    const T* y = static_cast<const T*>(b);
    T* o = static_cast<T*>(out);
    for_each_strided<4>(
        sizes, {c_strides, a_strides, b_strides, Dims(out_strides)},
        [&](const std::array<int64_t, 4>& off) { o[off[3]] = c[off[0]] ? x[off[1]] : y[off[2]]; });
  });
}

void ReferenceBackend::reduce(ReduceOp op, DType dt, const void* in, void* out, int64_t outer, int64_t r,
                              int64_t inner) {
  dispatch_numeric(dt, "reduce", [&]<class T>() {
    const T* x = static_cast<const T*>(in);
    for (int64_t o = 0; o < outer; ++o) {
      for (int64_t i = 0; i < inner; ++i) {
        auto at = [&](int64_t j) { return x[(o * r + j) * inner + i]; };
        const int64_t dst = o * inner + i;
        if (op == ReduceOp::Sum || op == ReduceOp::Prod) {
          Accumulator<T> acc = op == ReduceOp::Sum ? 0 : 1;
          for (int64_t j = 0; j < r; ++j) acc = op == ReduceOp::Sum ? acc + at(j) : acc * at(j);
          static_cast<T*>(out)[dst] = static_cast<T>(acc);
        } else {
          // Max/Min and their arg versions; the first extreme wins, NaN beats everything.
          const bool want_max = op == ReduceOp::Max || op == ReduceOp::ArgMax;
          int64_t best = 0;
          for (int64_t j = 1; j < r; ++j) {
            if (is_nan(at(best))) break;
            T v = at(j);
            if (is_nan(v) || (want_max ? v > at(best) : v < at(best))) best = j;
          }
          if (op == ReduceOp::ArgMax || op == ReduceOp::ArgMin) static_cast<int64_t*>(out)[dst] = best;
          else static_cast<T*>(out)[dst] = at(best);
        }
      }
    }
  });
}

void ReferenceBackend::cumsum(DType dt, const void* in, void* out, int64_t outer, int64_t r, int64_t inner) {
  dispatch_numeric(dt, "cumsum", [&]<class T>() {
    const T* x = static_cast<const T*>(in);
    T* y = static_cast<T*>(out);
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) {
        Accumulator<T> acc = 0;
        for (int64_t j = 0; j < r; ++j) {
          acc += x[(o * r + j) * inner + i];
          y[(o * r + j) * inner + i] = static_cast<T>(acc);
        }
      }
  });
}

void ReferenceBackend::gemm(const GemmArgs& g, const void* a, const void* b, void* c) {
  dispatch_floating(g.dtype, "gemm", [&]<class T>() {
    for (int64_t p = 0; p < g.batch; ++p) {
      const T* A = static_cast<const T*>(a) + p * g.stride_a;
      const T* B = static_cast<const T*>(b) + p * g.stride_b;
      T* C = static_cast<T*>(c) + p * g.stride_c;
      for (int64_t i = 0; i < g.m; ++i)
        for (int64_t j = 0; j < g.n; ++j) {
          double acc = 0;
          for (int64_t q = 0; q < g.k; ++q) {
            T av = g.trans_a ? A[q * g.lda + i] : A[i * g.lda + q];
            T bv = g.trans_b ? B[j * g.ldb + q] : B[q * g.ldb + j];
            acc += static_cast<double>(av) * bv;
          }
          // beta == 0 overwrites (C may hold garbage, even NaN), as BLAS specifies.
          double prev = g.beta == 0.0 ? 0.0 : g.beta * C[i * g.ldc + j];
          C[i * g.ldc + j] = static_cast<T>(g.alpha * acc + prev);
        }
    }
  });
}

void ReferenceBackend::softmax(DType dt, const void* in, void* out, int64_t rows, int64_t cols, bool log) {
  dispatch_floating(dt, "softmax", [&]<class T>() {
    for (int64_t row = 0; row < rows; ++row) {
      const T* x = static_cast<const T*>(in) + row * cols;
      T* y = static_cast<T*>(out) + row * cols;
      double mx = -INFINITY;
      for (int64_t j = 0; j < cols; ++j) mx = std::max<double>(mx, x[j]);
      double sum = 0;
      for (int64_t j = 0; j < cols; ++j) sum += std::exp(static_cast<double>(x[j]) - mx);
      for (int64_t j = 0; j < cols; ++j) {
        double z = static_cast<double>(x[j]) - mx;
        y[j] = static_cast<T>(log ? z - std::log(sum) : std::exp(z) / sum);
      }
    }
  });
}

void ReferenceBackend::index_select(DType dt, const void* in, int64_t n, const int64_t* idx, int64_t k,
                                    void* out, int64_t outer, int64_t inner) {
  dispatch_by_size(dt, [&]<class T>() {
    const T* x = static_cast<const T*>(in);
    T* y = static_cast<T*>(out);
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t j = 0; j < k; ++j)
        for (int64_t i = 0; i < inner; ++i) y[(o * k + j) * inner + i] = x[(o * n + idx[j]) * inner + i];
  });
}

void ReferenceBackend::index_add(DType dt, void* out, int64_t n, const int64_t* idx, int64_t k,
                                 const void* src, int64_t outer, int64_t inner, double alpha) {
  dispatch_numeric(dt, "index_add", [&]<class T>() {
    T* y = static_cast<T*>(out);
    const T* s = static_cast<const T*>(src);
    const T al = static_cast<T>(alpha);
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t j = 0; j < k; ++j)
        for (int64_t i = 0; i < inner; ++i)
          y[(o * n + idx[j]) * inner + i] += al * s[(o * k + j) * inner + i];
  });
}

void ReferenceBackend::gather(DType dt, const void* in, int64_t n, const int64_t* idx, void* out,
                              int64_t outer, int64_t k, int64_t inner) {
  dispatch_by_size(dt, [&]<class T>() {
    const T* x = static_cast<const T*>(in);
    T* y = static_cast<T*>(out);
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t j = 0; j < k; ++j)
        for (int64_t i = 0; i < inner; ++i) {
          const int64_t p = (o * k + j) * inner + i;
          y[p] = x[(o * n + idx[p]) * inner + i];
        }
  });
}

void ReferenceBackend::scatter(DType dt, void* out, int64_t n, const int64_t* idx, const void* src,
                               int64_t outer, int64_t k, int64_t inner, bool accumulate) {
  dispatch_numeric(dt, "scatter", [&]<class T>() {
    T* y = static_cast<T*>(out);
    const T* s = static_cast<const T*>(src);
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t j = 0; j < k; ++j)
        for (int64_t i = 0; i < inner; ++i) {
          const int64_t p = (o * k + j) * inner + i;
          T& dst = y[(o * n + idx[p]) * inner + i];
          dst = accumulate ? static_cast<T>(dst + s[p]) : s[p];
        }
  });
}

int64_t ReferenceBackend::nonzero(const void* mask, int64_t n, int64_t* out) {
  const bool* m = static_cast<const bool*>(mask);
  int64_t count = 0;
  for (int64_t i = 0; i < n; ++i)
    if (m[i]) {
      if (out) out[count] = i;
      ++count;
    }
  return count;
}

void ReferenceBackend::sort(DType dt, const void* in, int64_t* out_idx, int64_t rows, int64_t cols,
                            bool descending) {
  dispatch_numeric(dt, "sort", [&]<class T>() {
    for (int64_t row = 0; row < rows; ++row) {
      const T* x = static_cast<const T*>(in) + row * cols;
      int64_t* idx = out_idx + row * cols;
      std::iota(idx, idx + cols, int64_t{0});
      std::stable_sort(idx, idx + cols, [&](int64_t p, int64_t q) {
        return descending ? less_nan_last(x[q], x[p]) : less_nan_last(x[p], x[q]);
      });
    }
  });
}

// Visits every (column row, window position) pair with the input pixel it reads (or -1 when that
// falls in the padding), in the order im2col lays them out.
template <class F>
static void for_each_window_entry(const WindowGeometry& g, F&& f) {
  const int64_t L = g.out_h * g.out_w;
  for (int64_t c = 0; c < g.channels; ++c)
    for (int64_t i = 0; i < g.kernel_h; ++i)
      for (int64_t j = 0; j < g.kernel_w; ++j) {
        const int64_t row = (c * g.kernel_h + i) * g.kernel_w + j;
        for (int64_t y = 0; y < g.out_h; ++y)
          for (int64_t x = 0; x < g.out_w; ++x) {
            const int64_t iy = y * g.stride_h - g.pad_h + i * g.dilation_h;
            const int64_t ix = x * g.stride_w - g.pad_w + j * g.dilation_w;
            const bool inside = iy >= 0 && iy < g.height && ix >= 0 && ix < g.width;
            f(row * L + y * g.out_w + x, inside ? (c * g.height + iy) * g.width + ix : -1);
          }
      }
}

void ReferenceBackend::im2col(DType dt, const void* in, void* out, const WindowGeometry& g, int64_t batch) {
  dispatch_numeric(dt, "im2col", [&]<class T>() {
    const int64_t image = g.channels * g.height * g.width;
    const int64_t cols = g.channels * g.kernel_h * g.kernel_w * g.out_h * g.out_w;
    for (int64_t n = 0; n < batch; ++n) {
      const T* x = static_cast<const T*>(in) + n * image;
      T* o = static_cast<T*>(out) + n * cols;
      for_each_window_entry(g, [&](int64_t dst, int64_t src) { o[dst] = src < 0 ? T(0) : x[src]; });
    }
  });
}

void ReferenceBackend::col2im(DType dt, const void* cols_in, void* out, const WindowGeometry& g,
                              int64_t batch) {
  dispatch_numeric(dt, "col2im", [&]<class T>() {
    const int64_t image = g.channels * g.height * g.width;
    const int64_t cols = g.channels * g.kernel_h * g.kernel_w * g.out_h * g.out_w;
    for (int64_t n = 0; n < batch; ++n) {
      const T* c = static_cast<const T*>(cols_in) + n * cols;
      T* o = static_cast<T*>(out) + n * image;
      for (int64_t p = 0; p < image; ++p) o[p] = T(0);
      for_each_window_entry(g, [&](int64_t src, int64_t dst) {
        if (dst >= 0) o[dst] = static_cast<T>(o[dst] + c[src]);
      });
    }
  });
}

namespace {
template <class T>
AttentionRows<T> attention_rows(const AttentionShape& a, const void* q, const void* k, const void* v,
                                const void* mask, Dims mask_strides) {
  return {a,
          static_cast<const T*>(q),
          static_cast<const T*>(k),
          static_cast<const T*>(v),
          static_cast<const T*>(mask),
          mask_strides};
}
}  // namespace

void ReferenceBackend::attention_forward(DType dt, const AttentionShape& a, const void* q, const void* k,
                                         const void* v, const void* mask, Dims mask_strides, void* out,
                                         void* lse) {
  dispatch_floating(dt, "attention_forward", [&]<class T>() {
    const auto rows = attention_rows<T>(a, q, k, v, mask, mask_strides);
    std::vector<double> scratch(a.kv_len);
    for (int64_t b = 0; b < a.batch; ++b)
      for (int64_t i = 0; i < a.q_len; ++i)
        rows.forward_row(b, i, static_cast<T*>(out), static_cast<T*>(lse), scratch);
  });
}

void ReferenceBackend::attention_backward(DType dt, const AttentionShape& a, const void* q, const void* k,
                                          const void* v, const void* mask, Dims mask_strides, const void* out,
                                          const void* grad_out, const void* lse, void* gq, void* gk,
                                          void* gv) {
  dispatch_floating(dt, "attention_backward", [&]<class T>() {
    const auto rows = attention_rows<T>(a, q, k, v, mask, mask_strides);
    std::fill_n(static_cast<T*>(gk), a.batch * a.kv_len * a.head_dim, T(0));
    std::fill_n(static_cast<T*>(gv), a.batch * a.kv_len * a.v_dim, T(0));
    for (int64_t b = 0; b < a.batch; ++b)
      for (int64_t i = 0; i < a.q_len; ++i)
        rows.backward_row(b, i, static_cast<const T*>(out), static_cast<const T*>(grad_out),
                          static_cast<const T*>(lse), static_cast<T*>(gq), static_cast<T*>(gk),
                          static_cast<T*>(gv));
  });
}

// Per row: mean and variance in double (two passes), y = (x - mean) * rstd * w + b. Backward, with
// xhat = (x - mean) * rstd and g = dy * w: dx = rstd * (g - mean(g) - xhat * mean(g * xhat)),
// dw = sum over rows of dy * xhat, db = sum of dy.
void ReferenceBackend::layer_norm_forward(DType dt, const void* x_in, const void* w_in, const void* b_in,
                                          int64_t rows, int64_t cols, double eps, void* y_out, void* mean_out,
                                          void* rstd_out) {
  dispatch_floating(dt, "layer_norm", [&]<class T>() {
    const T *w = static_cast<const T*>(w_in), *b = static_cast<const T*>(b_in);
    for (int64_t r = 0; r < rows; ++r) {
      const T* x = static_cast<const T*>(x_in) + r * cols;
      T* y = static_cast<T*>(y_out) + r * cols;
      double mean = 0, var = 0;
      for (int64_t j = 0; j < cols; ++j) mean += x[j];
      mean /= static_cast<double>(cols);
      for (int64_t j = 0; j < cols; ++j) var += (x[j] - mean) * (x[j] - mean);
      const double rstd = 1 / std::sqrt(var / static_cast<double>(cols) + eps);
      for (int64_t j = 0; j < cols; ++j)
        y[j] = static_cast<T>((x[j] - mean) * rstd * (w ? w[j] : 1.0) + (b ? b[j] : 0.0));
      static_cast<T*>(mean_out)[r] = static_cast<T>(mean);
      static_cast<T*>(rstd_out)[r] = static_cast<T>(rstd);
    }
  });
}

void ReferenceBackend::layer_norm_backward(DType dt, const void* x_in, const void* w_in, const void* mean_in,
                                           const void* rstd_in, const void* dy_in, int64_t rows, int64_t cols,
                                           void* dx_out, void* dw_out, void* db_out) {
  dispatch_floating(dt, "layer_norm_backward", [&]<class T>() {
    const T* w = static_cast<const T*>(w_in);
    std::vector<double> dw(cols, 0.0), db(cols, 0.0);
    for (int64_t r = 0; r < rows; ++r) {
      const T* x = static_cast<const T*>(x_in) + r * cols;
      const T* dy = static_cast<const T*>(dy_in) + r * cols;
      const double mean = static_cast<const T*>(mean_in)[r], rstd = static_cast<const T*>(rstd_in)[r];
      double mean_g = 0, mean_gx = 0;
      for (int64_t j = 0; j < cols; ++j) {
        const double xhat = (x[j] - mean) * rstd, g = dy[j] * (w ? w[j] : 1.0);
        mean_g += g / static_cast<double>(cols);
        mean_gx += g * xhat / static_cast<double>(cols);
        dw[j] += dy[j] * xhat;
        db[j] += dy[j];
      }
      T* dx = static_cast<T*>(dx_out) + r * cols;
      for (int64_t j = 0; j < cols; ++j) {
        const double xhat = (x[j] - mean) * rstd, g = dy[j] * (w ? w[j] : 1.0);
        dx[j] = static_cast<T>(rstd * (g - mean_g - xhat * mean_gx));
      }
    }
    for (int64_t j = 0; j < cols; ++j) {
      if (dw_out) static_cast<T*>(dw_out)[j] = static_cast<T>(dw[j]);
      if (db_out) static_cast<T*>(db_out)[j] = static_cast<T>(db[j]);
    }
  });
}

// Per channel of [n, c, s], in double throughout: the mean, the biased variance around it, then y.
// Backward: dx = rstd * w * (dy - mean(dy) - xhat * mean(dy * xhat)), dw = sum(dy * xhat),
// db = sum(dy), xhat from the saved mean and rstd.
void ReferenceBackend::batch_norm_forward(DType dt, const void* x_in, const void* w_in, const void* b_in,
                                          int64_t n, int64_t c, int64_t s, double eps, void* y_out,
                                          void* mean_out, void* var_out, void* rstd_out) {
  dispatch_floating(dt, "batch_norm", [&]<class T>() {
    const T *x = static_cast<const T*>(x_in), *w = static_cast<const T*>(w_in),
            *b = static_cast<const T*>(b_in);
    T* y = static_cast<T*>(y_out);
    const double count = static_cast<double>(n * s);
    for (int64_t ch = 0; ch < c; ++ch) {
      auto at = [&](int64_t i, int64_t j) { return (i * c + ch) * s + j; };
      double mean = 0, var = 0;
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < s; ++j) mean += x[at(i, j)];
      mean /= count;
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < s; ++j) var += (x[at(i, j)] - mean) * (x[at(i, j)] - mean);
      var /= count;
      const double rstd = 1 / std::sqrt(var + eps);
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < s; ++j)
          y[at(i, j)] = static_cast<T>((x[at(i, j)] - mean) * rstd * (w ? w[ch] : 1.0) + (b ? b[ch] : 0.0));
      static_cast<T*>(mean_out)[ch] = static_cast<T>(mean);
      static_cast<T*>(var_out)[ch] = static_cast<T>(var);
      static_cast<T*>(rstd_out)[ch] = static_cast<T>(rstd);
    }
  });
}

void ReferenceBackend::batch_norm_backward(DType dt, const void* x_in, const void* w_in, const void* mean_in,
                                           const void* rstd_in, const void* dy_in, int64_t n, int64_t c,
                                           int64_t s, void* dx_out, void* dw_out, void* db_out) {
  dispatch_floating(dt, "batch_norm_backward", [&]<class T>() {
    const T *x = static_cast<const T*>(x_in), *w = static_cast<const T*>(w_in),
            *dy = static_cast<const T*>(dy_in);
    const double count = static_cast<double>(n * s);
    for (int64_t ch = 0; ch < c; ++ch) {
      auto at = [&](int64_t i, int64_t j) { return (i * c + ch) * s + j; };
      const double mean = static_cast<const T*>(mean_in)[ch], rstd = static_cast<const T*>(rstd_in)[ch];
      double sum_dy = 0, sum_dy_xhat = 0;
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < s; ++j) {
          sum_dy += dy[at(i, j)];
          sum_dy_xhat += dy[at(i, j)] * (x[at(i, j)] - mean) * rstd;
        }
      if (dw_out) static_cast<T*>(dw_out)[ch] = static_cast<T>(sum_dy_xhat);
      if (db_out) static_cast<T*>(db_out)[ch] = static_cast<T>(sum_dy);
      if (!dx_out) continue;
      const double wc = w ? w[ch] : 1.0;
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < s; ++j) {
          const double xhat = (x[at(i, j)] - mean) * rstd;
          static_cast<T*>(dx_out)[at(i, j)] =
              static_cast<T>(rstd * wc * (dy[at(i, j)] - sum_dy / count - xhat * sum_dy_xhat / count));
        }
    }
  });
}

// Convolution by its definition: every (weight column, window) pair that reads a pixel inside the
// image, summed in double; nothing is unfolded.
void ReferenceBackend::conv2d_forward(DType dt, const void* x_in, const void* w_in, const void* bias,
                                      const WindowGeometry& g, int64_t batch, int64_t out_channels,
                                      void* out) {
  dispatch_floating(dt, "conv2d", [&]<class T>() {
    const int64_t L = g.out_h * g.out_w, K = g.channels * g.kernel_h * g.kernel_w;
    const int64_t image = g.channels * g.height * g.width, O = out_channels;
    const T* w = static_cast<const T*>(w_in);
    std::vector<double> acc(O * L);
    for (int64_t n = 0; n < batch; ++n) {
      const T* x = static_cast<const T*>(x_in) + n * image;
      for (int64_t o = 0; o < O; ++o)
        std::fill_n(acc.begin() + o * L, L, bias ? static_cast<double>(static_cast<const T*>(bias)[o]) : 0.0);
      for_each_window_entry(g, [&](int64_t entry, int64_t src) {
        if (src < 0) return;
        const int64_t k = entry / L, l = entry % L;
        for (int64_t o = 0; o < O; ++o) acc[o * L + l] += static_cast<double>(w[o * K + k]) * x[src];
      });
      T* y = static_cast<T*>(out) + n * O * L;
      for (int64_t i = 0; i < O * L; ++i) y[i] = static_cast<T>(acc[i]);
    }
  });
}

void ReferenceBackend::conv2d_backward_input(DType dt, const void* dy_in, const void* w_in,
                                             const WindowGeometry& g, int64_t batch, int64_t out_channels,
                                             void* dx) {
  dispatch_floating(dt, "conv2d_backward_input", [&]<class T>() {
    const int64_t L = g.out_h * g.out_w, K = g.channels * g.kernel_h * g.kernel_w;
    const int64_t image = g.channels * g.height * g.width, O = out_channels;
    const T* w = static_cast<const T*>(w_in);
    std::vector<double> acc(image);
    for (int64_t n = 0; n < batch; ++n) {
      const T* dy = static_cast<const T*>(dy_in) + n * O * L;
      std::fill(acc.begin(), acc.end(), 0.0);
      for_each_window_entry(g, [&](int64_t entry, int64_t src) {
        if (src < 0) return;
        const int64_t k = entry / L, l = entry % L;
        for (int64_t o = 0; o < O; ++o) acc[src] += static_cast<double>(w[o * K + k]) * dy[o * L + l];
      });
      T* d = static_cast<T*>(dx) + n * image;
      for (int64_t i = 0; i < image; ++i) d[i] = static_cast<T>(acc[i]);
    }
  });
}

void ReferenceBackend::conv2d_backward_weight(DType dt, const void* x_in, const void* dy_in,
                                              const WindowGeometry& g, int64_t batch, int64_t out_channels,
                                              void* dw, void* db) {
  dispatch_floating(dt, "conv2d_backward_weight", [&]<class T>() {
    const int64_t L = g.out_h * g.out_w, K = g.channels * g.kernel_h * g.kernel_w;
    const int64_t image = g.channels * g.height * g.width, O = out_channels;
    std::vector<double> acc_w(O * K, 0.0), acc_b(O, 0.0);
    for (int64_t n = 0; n < batch; ++n) {
      const T* x = static_cast<const T*>(x_in) + n * image;
      const T* dy = static_cast<const T*>(dy_in) + n * O * L;
      for_each_window_entry(g, [&](int64_t entry, int64_t src) {
        if (src < 0) return;
        const int64_t k = entry / L, l = entry % L;
        for (int64_t o = 0; o < O; ++o) acc_w[o * K + k] += static_cast<double>(dy[o * L + l]) * x[src];
      });
      for (int64_t o = 0; o < O; ++o)
        for (int64_t l = 0; l < L; ++l) acc_b[o] += dy[o * L + l];
    }
    for (int64_t i = 0; i < O * K; ++i) static_cast<T*>(dw)[i] = static_cast<T>(acc_w[i]);
    if (db)
      for (int64_t o = 0; o < O; ++o) static_cast<T*>(db)[o] = static_cast<T>(acc_b[o]);
  });
}

// Each plane's windows visited entry by entry in the order of im2col; a window keeps the first
// largest value it meets, or the last NaN.
void ReferenceBackend::max_pool2d_forward(DType dt, const void* in, const WindowGeometry& geometry,
                                          int64_t planes, void* out, int64_t* index) {
  dispatch_floating(dt, "max_pool2d", [&]<class T>() {
    WindowGeometry g = geometry;
    g.channels = 1;
    const int64_t image = g.height * g.width, L = g.out_h * g.out_w;
    for (int64_t p = 0; p < planes; ++p) {
      const T* x = static_cast<const T*>(in) + p * image;
      T* o = static_cast<T*>(out) + p * L;
      int64_t* at = index + p * L;
      std::fill_n(at, L, int64_t{-1});
      std::fill_n(o, L, static_cast<T>(-INFINITY));
      for_each_window_entry(g, [&](int64_t entry, int64_t src) {
        const int64_t k = entry % L;
        if (src >= 0 && (at[k] < 0 || x[src] > o[k] || is_nan(x[src]))) {
          o[k] = x[src];
          at[k] = src;
        }
      });
    }
  });
}

void ReferenceBackend::max_pool2d_backward(DType dt, const void* grad_out, const int64_t* index,
                                           const WindowGeometry& g, int64_t planes, void* grad_in) {
  dispatch_floating(dt, "max_pool2d_backward", [&]<class T>() {
    const int64_t image = g.height * g.width, L = g.out_h * g.out_w;
    T* dst = static_cast<T*>(grad_in);
    std::fill_n(dst, planes * image, T(0));
    for (int64_t p = 0; p < planes; ++p)
      for (int64_t k = 0; k < L; ++k)
        if (index[p * L + k] >= 0)
          dst[p * image + index[p * L + k]] += static_cast<const T*>(grad_out)[p * L + k];
  });
}

void ReferenceBackend::cross_entropy_forward(DType dt, const void* logits, const int64_t* target,
                                             const void* row_weight, int64_t rows, int64_t classes,
                                             void* loss, void* lse) {
  dispatch_floating(dt, "cross_entropy", [&]<class T>() {
    const T* x = static_cast<const T*>(logits);
    const T* w = static_cast<const T*>(row_weight);
    for (int64_t i = 0; i < rows; ++i) {
      const T* row = x + i * classes;
      double mx = -INFINITY;
      for (int64_t c = 0; c < classes; ++c) mx = std::max<double>(mx, row[c]);
      double sum = 0;
      for (int64_t c = 0; c < classes; ++c) sum += std::exp(row[c] - mx);
      const double l = mx + std::log(sum);
      static_cast<T*>(lse)[i] = static_cast<T>(l);
      static_cast<T*>(loss)[i] = w[i] == T(0) ? T(0) : static_cast<T>(w[i] * (l - row[target[i]]));
    }
  });
}

void ReferenceBackend::cross_entropy_backward(DType dt, const void* logits, const int64_t* target,
                                              const void* row_weight, const void* lse, const void* grad_loss,
                                              int64_t rows, int64_t classes, void* grad_logits) {
  dispatch_floating(dt, "cross_entropy_backward", [&]<class T>() {
    const T* x = static_cast<const T*>(logits);
    const T* w = static_cast<const T*>(row_weight);
    const T* g = static_cast<const T*>(grad_loss);
    const T* l = static_cast<const T*>(lse);
    T* out = static_cast<T*>(grad_logits);
    for (int64_t i = 0; i < rows; ++i) {
      const double coef = static_cast<double>(g[i]) * w[i];
      for (int64_t c = 0; c < classes; ++c)
        out[i * classes + c] = static_cast<T>(
            coef * (std::exp(x[i * classes + c] - static_cast<double>(l[i])) - (c == target[i] ? 1.0 : 0.0)));
    }
  });
}

void ReferenceBackend::optimizer_update(DType dt, const UpdateSpec& spec, int64_t n, void* param,
                                        const void* grad, void* state0, void* state1, void* state2) {
  dispatch_floating(dt, "optimizer_update", [&]<class T>() {
    T *p = static_cast<T*>(param), *s0 = static_cast<T*>(state0), *s1 = static_cast<T*>(state1),
      *s2 = static_cast<T*>(state2);
    const T* g = static_cast<const T*>(grad);
    for (int64_t i = 0; i < n; ++i)
      reference::optimizer_step<T>(spec, p[i], g[i], s0 ? s0 + i : nullptr, s1 ? s1 + i : nullptr,
                                   s2 ? s2 + i : nullptr);
  });
}

void ReferenceBackend::random_uniform(DType dt, void* out, int64_t n, uint64_t seed, uint64_t offset,
                                      double lo, double hi) {
  dispatch_floating(dt, "random_uniform", [&]<class T>() {
    T* y = static_cast<T*>(out);
    for (int64_t i = 0; i < n; ++i) y[i] = static_cast<T>(lo + (hi - lo) * philox_uniform(seed, offset + i));
  });
}

void ReferenceBackend::random_normal(DType dt, void* out, int64_t n, uint64_t seed, uint64_t offset,
                                     double mean, double stddev) {
  dispatch_floating(dt, "random_normal", [&]<class T>() {
    T* y = static_cast<T*>(out);
    for (int64_t i = 0; i < n; ++i) y[i] = static_cast<T>(mean + stddev * philox_normal(seed, offset + i));
  });
}

}  // namespace ember::kernels
