// Elementwise kernels: fill, cast, strided copy, unary maps, broadcasting binary ops and where. Every
// kernel is a grid-stride loop; the op's formula is the lambda from kernels/elementwise_ops.h (the
// same one the CPU backends use), passed as a template argument.
#include "ember/kernels/cuda/cuda_kernels.h"
#include "ember/kernels/cuda/grid.h"
#include "ember/kernels/cuda/portability.h"
#include "ember/kernels/elementwise_ops.h"

namespace ember::kernels::cuda {
namespace {

constexpr int kThreads = 256;

// Element offsets of operand `op` for the output element `linear`.
EMBER_HD inline int64_t offset_of(const Strided& s, int op, int64_t linear) {
  int64_t off = 0;
  for (int d = s.ndim - 1; d >= 0; --d) {
    const int64_t i = linear % s.sizes[d];
    linear /= s.sizes[d];
    off += i * s.strides[op][d];
  }
  return off;
}

EMBER_HD inline int64_t numel_of(const Strided& s) {
  int64_t n = 1;
  for (int d = 0; d < s.ndim; ++d) n *= s.sizes[d];
  return n;
}

template <class T>
__global__ void fill_kernel(T* out, int64_t n, T value) {
  EMBER_GRID_STRIDE(i, n) out[i] = value;
}

template <class From, class To>
__global__ void cast_kernel(const From* in, To* out, int64_t n) {
  EMBER_GRID_STRIDE(i, n) out[i] = static_cast<To>(in[i]);
}

template <class T>
__global__ void strided_copy_kernel(const T* src, T* dst, Strided s, int64_t n) {
  EMBER_GRID_STRIDE(i, n) dst[offset_of(s, 1, i)] = src[offset_of(s, 0, i)];
}

template <class T, class F>
__global__ void unary_kernel(F f, const T* in, T* out, int64_t n) {
  EMBER_GRID_STRIDE(i, n) out[i] = f(in[i]);
}

template <class T, class R, class F>
__global__ void binary_kernel(F f, const T* a, const T* b, R* out, Strided s, int64_t n) {
  EMBER_GRID_STRIDE(i, n) out[i] = static_cast<R>(f(a[offset_of(s, 0, i)], b[offset_of(s, 1, i)]));
}

template <class T>
__global__ void where_kernel(const bool* cond, const T* a, const T* b, T* out, Strided s, int64_t n) {
  EMBER_GRID_STRIDE(i, n) out[i] = cond[offset_of(s, 0, i)] ? a[offset_of(s, 1, i)] : b[offset_of(s, 2, i)];
}

}  // namespace

Strided make_strided(Dims sizes, Dims s0, Dims s1, Dims s2) {
  EMBER_CHECK(static_cast<int>(sizes.size()) <= kMaxDims, "cuda: tensors of ", sizes.size(),
              " dims are not supported (at most ", kMaxDims, ")");
  Strided s;
  s.ndim = static_cast<int>(sizes.size());
  for (int d = 0; d < s.ndim; ++d) {
    s.sizes[d] = sizes[d];
    s.strides[0][d] = d < static_cast<int>(s0.size()) ? s0[d] : 0;
    s.strides[1][d] = d < static_cast<int>(s1.size()) ? s1[d] : 0;
    s.strides[2][d] = d < static_cast<int>(s2.size()) ? s2[d] : 0;
  }
  return s;
}

void fill(DType dt, void* out, int64_t n, Scalar value) {
  if (n == 0) return;
  dispatch_all(dt, "cuda fill", [&]<class T>() {
    constexpr bool floating =
        std::is_floating_point_v<T> || std::is_same_v<T, BFloat16> || std::is_same_v<T, Half>;
    const T v = floating ? T(static_cast<float>(value.to_double())) : static_cast<T>(value.to_int());
    EMBER_LAUNCH((fill_kernel<T>), grid_for(n), kThreads, 0, gpu::stream(), static_cast<T*>(out), n, v);
  });
}

void cast(DType from, const void* in, DType to, void* out, int64_t n) {
  if (n == 0) return;
  // Every pair, the 16-bit floats included (their conversions are EMBER_HD, core/half_bits.h).
  dispatch_all(from, "cuda cast", [&]<class A>() {
    dispatch_all(to, "cuda cast", [&]<class B>() {
      EMBER_LAUNCH((cast_kernel<A, B>), grid_for(n), kThreads, 0, gpu::stream(), static_cast<const A*>(in),
                   static_cast<B*>(out), n);
    });
  });
}

void strided_copy(DType dt, const void* src, void* dst, const Strided& s) {
  const int64_t n = numel_of(s);
  if (n == 0) return;
  dispatch_by_size(dt, [&]<class T>() {  // a copy needs only the element width
    EMBER_LAUNCH((strided_copy_kernel<T>), grid_for(n), kThreads, 0, gpu::stream(),
                 static_cast<const T*>(src), static_cast<T*>(dst), s, n);
  });
}

// The launchers are named types, not lambdas: nvcc does not allow an extended (device) lambda inside
// a function template whose template argument is a local lambda type.
template <class T>
struct LaunchUnary {
  const void* in;
  void* out;
  int64_t n;
  template <class F>
  void operator()(F f) const {
    EMBER_LAUNCH((unary_kernel<T, F>), grid_for(n), kThreads, 0, gpu::stream(), f, static_cast<const T*>(in),
                 static_cast<T*>(out), n);
  }
};

template <class T>
struct LaunchBinary {
  const void *a, *b;
  void* out;
  const Strided* s;
  int64_t n;
  template <class F>
  void operator()(F f) const {
    using R = std::conditional_t<std::is_same_v<decltype(f(T(), T())), bool>, bool, T>;
    EMBER_LAUNCH((binary_kernel<T, R, F>), grid_for(n), kThreads, 0, gpu::stream(), f,
                 static_cast<const T*>(a), static_cast<const T*>(b), static_cast<R*>(out), *s, n);
  }
};

void unary(UnaryOp op, DType dt, const void* in, void* out, int64_t n, double a, double b) {
  if (n == 0) return;
  dispatch_numeric(dt, "cuda unary", [&]<class T>() {
    visit_unary<T>(op, a, b, LaunchUnary<T>{in, out, n});
  });
}

void binary(BinaryOp op, DType dt, const void* a, const void* b, void* out, const Strided& s) {
  const int64_t n = numel_of(s);
  if (n == 0) return;
  dispatch_numeric(dt, "cuda binary", [&]<class T>() {
    visit_binary<T>(op, LaunchBinary<T>{a, b, out, &s, n});
  });
}

void where(DType dt, const void* cond, const void* a, const void* b, void* out, const Strided& s) {
  const int64_t n = numel_of(s);
  if (n == 0) return;
  dispatch_by_size(dt, [&]<class T>() {
    EMBER_LAUNCH((where_kernel<T>), grid_for(n), kThreads, 0, gpu::stream(), static_cast<const bool*>(cond),
                 static_cast<const T*>(a), static_cast<const T*>(b), static_cast<T*>(out), s, n);
  });
}

}  // namespace ember::kernels::cuda
