// The backend contract: the 23 primitives a device must implement, and nothing more. Model-level
// kernels (attention, layer norm, cross-entropy, optimizer updates, ...) are an optional second
// interface, kernels/fused.h; core composes each of them from these primitives when a backend has no
// fused kernel for it. Kernels see raw device pointers, element counts and element strides, never
// Tensors or autograd, so a backend can be written (and read) without knowing the rest of ember. Inputs are
// compact unless a primitive takes strides; outputs are always compact. Nothing here assumes a host pointer
// except `copy_to_host` / `copy_from_host`, so an asynchronous GPU backend fits the same contract (work is
// queued in order on the backend's stream; `synchronize` waits for it).
//
// Layout conventions used below:
//   * a "[outer, r, inner]" buffer is a compact tensor seen as three dims, the middle one being the
//     dim an op works along (reductions, cumsum, index ops). Any compact tensor and any single dim
//     (or run of adjacent dims) can be seen that way without a copy.
//   * strides are in elements; a stride of 0 broadcasts.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>

#include "ember/core/device.h"
#include "ember/core/dtype.h"

namespace ember::kernels {

using Dims = std::span<const int64_t>;

enum class UnaryOp {
  Neg,
  Exp,
  Log,
  Log1p,
  Sqrt,
  Rsqrt,
  Abs,
  Sign,
  Sin,
  Cos,
  Tanh,
  Sigmoid,
  Relu,
  LeakyRelu,  // a = negative slope
  Gelu,
  GeluTanh,
  Silu,
  Softplus,   // a = beta, b = threshold
  Clamp,      // a = min, b = max
  PowScalar,  // a = exponent
  Reciprocal,
  Square,
  Erf,
  LogicalNot,
  AddScalar,  // x + a
  MulScalar,  // x * a
};

enum class BinaryOp {
  Add,
  Sub,
  Mul,
  Div,
  Pow,
  Maximum,
  Minimum,
  GeluBackward,
  GeluTanhBackward,  // a * gelu'(b): GELU's backward, a the incoming gradient, b its input
  ReluBackward,      // b <= 0 ? 0 : a: ReLU's backward, a the incoming gradient, b ReLU's output
  Eq,
  Ne,
  Lt,
  Le,
  Gt,
  Ge,  // results are bool
  LogicalAnd,
  LogicalOr,
  LogicalXor,  // results are bool
};

enum class ReduceOp { Sum, Prod, Max, Min, ArgMax, ArgMin };  // Arg* write int64

// What `supports` can be asked about: each primitive below, per dtype. A caller (or a test harness)
// asks before choosing a kernel, as with ggml's supports_op.
enum class Op {
  Fill,
  Cast,
  StridedCopy,
  Unary,
  Binary,
  Where,
  Reduce,
  Cumsum,
  Gemm,
  IndexSelect,
  IndexAdd,
  Gather,
  Scatter,
  Nonzero,
  Sort,
  RandomUniform,
  RandomNormal,
};

// One (batched) row-major GEMM: C[b] = alpha * op(A[b]) * op(B[b]) + beta * C[b] for b < batch, op =
// transpose when the flag is set. lda/ldb/ldc are the row strides of the matrices as stored;
// stride_a/b/c step from one batch entry to the next.
struct GemmArgs {
  DType dtype = DType::Float32;
  bool trans_a = false, trans_b = false;
  int64_t m = 0, n = 0, k = 0;
  double alpha = 1, beta = 0;
  int64_t lda = 0, ldb = 0, ldc = 0;
  int64_t batch = 1, stride_a = 0, stride_b = 0, stride_c = 0;
};

class FusedKernels;

inline bool is_comparison(BinaryOp op) { return op >= BinaryOp::Eq; }

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;
  virtual bool supports(Op op, DType dtype) const = 0;

  // ---- memory -------------------------------------------------------------------------------
  virtual void* allocate(size_t nbytes) = 0;
  virtual void deallocate(void* ptr, size_t nbytes) = 0;  // nbytes as given to allocate
  // Returns cached free blocks to the system (allocators that cache); a no-op otherwise.
  virtual void empty_cache() {}
  virtual void copy_to_host(void* host_dst, const void* src, size_t nbytes) = 0;
  virtual void copy_from_host(void* dst, const void* host_src, size_t nbytes) = 0;
  virtual void synchronize() {}

  // ---- data movement ------------------------------------------------------------------------
  virtual void fill(DType dt, void* out, int64_t n, Scalar value) = 0;
  virtual void cast(DType from, const void* in, DType to, void* out, int64_t n) = 0;
  // dst[i] = src[i] over `sizes`, both addressed through their own strides.
  virtual void strided_copy(DType dt, const void* src, Dims src_strides, void* dst, Dims dst_strides,
                            Dims sizes) = 0;

  // ---- elementwise --------------------------------------------------------------------------
  virtual void unary(UnaryOp op, DType dt, const void* in, void* out, int64_t n, double a, double b) = 0;
  // out (compact, shape `sizes`) = a op b, inputs addressed through strides (0 = broadcast).
  // Both inputs have dtype dt; out has dt, or bool for comparisons and logical ops.
  virtual void binary(BinaryOp op, DType dt, const void* a, Dims a_strides, const void* b, Dims b_strides,
                      void* out, Dims sizes) = 0;
  // out = cond ? a : b with the same strided addressing; cond is bool.
  virtual void where(DType dt, const void* cond, Dims c_strides, const void* a, Dims a_strides, const void* b,
                     Dims b_strides, void* out, Dims sizes) = 0;

  // ---- reductions and scans over [outer, r, inner] ----------------------------------------
  virtual void reduce(ReduceOp op, DType dt, const void* in, void* out, int64_t outer, int64_t r,
                      int64_t inner) = 0;
  virtual void cumsum(DType dt, const void* in, void* out, int64_t outer, int64_t r, int64_t inner) = 0;

  // ---- linear algebra -----------------------------------------------------------------------
  virtual void gemm(const GemmArgs& args, const void* a, const void* b, void* c) = 0;

  // ---- indexing (indices are int64 and already range-checked by the caller) ----------------
  // out[o, j, i] = in[o, idx[j], i]; in is [outer, n, inner], out is [outer, k, inner].
  virtual void index_select(DType dt, const void* in, int64_t n, const int64_t* idx, int64_t k, void* out,
                            int64_t outer, int64_t inner) = 0;
  // out[o, idx[j], i] += alpha * src[o, j, i]; out is [outer, n, inner], src is [outer, k, inner].
  virtual void index_add(DType dt, void* out, int64_t n, const int64_t* idx, int64_t k, const void* src,
                         int64_t outer, int64_t inner, double alpha) = 0;
  // out[o, j, i] = in[o, idx[o, j, i], i]; in is [outer, n, inner], idx and out are [outer, k, inner].
  virtual void gather(DType dt, const void* in, int64_t n, const int64_t* idx, void* out, int64_t outer,
                      int64_t k, int64_t inner) = 0;
  // out[o, idx[o, j, i], i] (= or +=) src[o, j, i].
  virtual void scatter(DType dt, void* out, int64_t n, const int64_t* idx, const void* src, int64_t outer,
                       int64_t k, int64_t inner, bool accumulate) = 0;
  // Positions of the true elements of a bool buffer, in order; returns how many. `out` may be
  // null to only count.
  virtual int64_t nonzero(const void* mask, int64_t n, int64_t* out) = 0;
  // Indices that sort each row of a compact [rows, cols] buffer (stable).
  virtual void sort(DType dt, const void* in, int64_t* out_idx, int64_t rows, int64_t cols,
                    bool descending) = 0;

  // ---- random numbers: counter-based (Philox), so results depend only on (seed, offset) ------
  virtual void random_uniform(DType dt, void* out, int64_t n, uint64_t seed, uint64_t offset, double lo,
                              double hi) = 0;
  virtual void random_normal(DType dt, void* out, int64_t n, uint64_t seed, uint64_t offset, double mean,
                             double stddev) = 0;

  // ---- optional ------------------------------------------------------------------------------
  // The backend's fused kernels (kernels/fused.h), or null. Every fused op also has a composed
  // form built from the primitives above, which core runs when this is null or the kernels do not
  // support the op and dtype: a backend is complete with the primitives alone.
  virtual FusedKernels* fused() { return nullptr; }
};

// The backend that serves a device. For the CPU that is default_cpu_backend(), unless a
// ScopedBackend says otherwise (tests use that to run the same op on the reference backend).
Backend& backend_for(Device device);
// The CPU backend chosen by the environment: EMBER_BACKEND=reference runs every op on the plain
// loops of the reference backend; unset or "cpu", the optimised CPU backend; anything else is an
// ember::Error.
Backend& default_cpu_backend();
Backend& reference_backend();
Backend& cpu_backend();  // the optimised CPU backend at this process's instruction-set level

class ScopedBackend {
 public:
  ScopedBackend(DeviceType type, Backend& backend);
  ~ScopedBackend();
  ScopedBackend(const ScopedBackend&) = delete;
  ScopedBackend& operator=(const ScopedBackend&) = delete;

 private:
  DeviceType type_;
  Backend* previous_;
};

}  // namespace ember::kernels
