// The backend interface: the narrow set of primitives every device implements. Kernels see raw
// device pointers, element counts and element strides, never Tensors or autograd, so a backend can be
// written (and read) without knowing the rest of ember. Inputs are compact unless a primitive takes
// strides; outputs are always compact. Nothing here assumes a host pointer except `copy_to_host` /
// `copy_from_host`, so an asynchronous GPU backend fits the same contract (work is queued in order on
// the backend's stream; `synchronize` waits for it).
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
  Neg, Exp, Log, Log1p, Sqrt, Rsqrt, Abs, Sign, Sin, Cos, Tanh, Sigmoid, Relu,
  LeakyRelu,   // a = negative slope
  Gelu, GeluTanh, Silu,
  Softplus,    // a = beta, b = threshold
  Clamp,       // a = min, b = max
  PowScalar,   // a = exponent
  Reciprocal, Square, Erf, LogicalNot,
  AddScalar,   // x + a
  MulScalar,   // x * a
};

enum class BinaryOp {
  Add, Sub, Mul, Div, Pow, Maximum, Minimum,
  Eq, Ne, Lt, Le, Gt, Ge,  // results are bool
  LogicalAnd, LogicalOr, LogicalXor,  // results are bool
};

enum class ReduceOp { Sum, Prod, Max, Min, ArgMax, ArgMin };  // Arg* write int64

// Sliding-window geometry for im2col/col2im (2-D; 1-D convolutions use height 1).
struct WindowGeometry {
  int64_t channels, height, width;          // one input image
  int64_t kernel_h, kernel_w;
  int64_t pad_h, pad_w, stride_h, stride_w, dilation_h, dilation_w;
  int64_t out_h, out_w;                     // number of window positions
};

// What `supports` can be asked about. ggml-style: a caller (or a test harness) can ask a backend
// whether it has a kernel for an op and dtype before choosing it.
enum class Op {
  Fill, Cast, StridedCopy, Unary, Binary, Where, Reduce, Cumsum, Gemm, Softmax, IndexSelect,
  IndexAdd, Gather, Scatter, Nonzero, Sort, RandomUniform, RandomNormal, Im2Col, Col2Im, Attention, OptimizerUpdate, LayerNorm,
  CrossEntropy,
};

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
  virtual void unary(UnaryOp op, DType dt, const void* in, void* out, int64_t n, double a,
                     double b) = 0;
  // out (compact, shape `sizes`) = a op b, inputs addressed through strides (0 = broadcast).
  // Both inputs have dtype dt; out has dt, or bool for comparisons and logical ops.
  virtual void binary(BinaryOp op, DType dt, const void* a, Dims a_strides, const void* b,
                      Dims b_strides, void* out, Dims sizes) = 0;
  // out = cond ? a : b with the same strided addressing; cond is bool.
  virtual void where(DType dt, const void* cond, Dims c_strides, const void* a, Dims a_strides,
                     const void* b, Dims b_strides, void* out, Dims sizes) = 0;

  // ---- reductions and scans over [outer, r, inner] ----------------------------------------
  virtual void reduce(ReduceOp op, DType dt, const void* in, void* out, int64_t outer, int64_t r,
                      int64_t inner) = 0;
  virtual void cumsum(DType dt, const void* in, void* out, int64_t outer, int64_t r,
                      int64_t inner) = 0;

  // ---- linear algebra -----------------------------------------------------------------------
  // Row-major C[b] = alpha * op(A[b]) * op(B[b]) + beta * C[b] for b < batch, op = transpose when
  // the flag is set. lda/ldb/ldc are row strides of the stored matrices; stride_* step batches.
  virtual void gemm(DType dt, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                    double alpha, const void* a, int64_t lda, int64_t stride_a, const void* b,
                    int64_t ldb, int64_t stride_b, double beta, void* c, int64_t ldc,
                    int64_t stride_c, int64_t batch) = 0;
  // Softmax (or log-softmax) of each row of a compact [rows, cols] buffer.
  virtual void softmax(DType dt, const void* in, void* out, int64_t rows, int64_t cols,
                       bool log) = 0;

  // ---- indexing (indices are int64 and already range-checked by the caller) ----------------
  // out[o, j, i] = in[o, idx[j], i]; in is [outer, n, inner], out is [outer, k, inner].
  virtual void index_select(DType dt, const void* in, int64_t n, const int64_t* idx, int64_t k,
                            void* out, int64_t outer, int64_t inner) = 0;
  // out[o, idx[j], i] += alpha * src[o, j, i]; out is [outer, n, inner], src is [outer, k, inner].
  virtual void index_add(DType dt, void* out, int64_t n, const int64_t* idx, int64_t k,
                         const void* src, int64_t outer, int64_t inner, double alpha) = 0;
  // out[o, j, i] = in[o, idx[o, j, i], i]; in is [outer, n, inner], idx and out are [outer, k, inner].
  virtual void gather(DType dt, const void* in, int64_t n, const int64_t* idx, void* out,
                      int64_t outer, int64_t k, int64_t inner) = 0;
  // out[o, idx[o, j, i], i] (= or +=) src[o, j, i].
  virtual void scatter(DType dt, void* out, int64_t n, const int64_t* idx, const void* src,
                       int64_t outer, int64_t k, int64_t inner, bool accumulate) = 0;
  // Positions of the true elements of a bool buffer, in order; returns how many. `out` may be
  // null to only count.
  virtual int64_t nonzero(const void* mask, int64_t n, int64_t* out) = 0;
  // Indices that sort each row of a compact [rows, cols] buffer (stable).
  virtual void sort(DType dt, const void* in, int64_t* out_idx, int64_t rows, int64_t cols,
                    bool descending) = 0;

  // ---- sliding windows (convolution, pooling) ---------------------------------------------
  // For each of `batch` compact images [C, H, W]: out[c*kh*kw + i*kw + j, y*out_w + x] =
  // in[c, y*sh - ph + i*dh, x*sw - pw + j*dw] (0 outside the image). out is [batch, C*kh*kw, L].
  virtual void im2col(DType dt, const void* in, void* out, const WindowGeometry& g,
                      int64_t batch) = 0;
  // The adjoint: adds each column entry back to the pixel it was read from. out ([batch, C, H, W])
  // is overwritten.
  virtual void col2im(DType dt, const void* cols, void* out, const WindowGeometry& g,
                      int64_t batch) = 0;

  // ---- fused attention ---------------------------------------------------------------------
  // For each batch b < B and query row i < L (all compact): s_j = scale * q[b,i]·k[b,j] + mask,
  // p = softmax(s), out[b,i] = sum_j p_j v[b,j]; lse[b,i] = log sum_j exp(s_j) (float of dt) is
  // kept for the backward. mask (optional, dt) is added through `mask_strides` ([B, L, S], 0 =
  // broadcast); causal drops keys j > i. Only one row of S scores exists at a time.
  struct AttentionShape {
    int64_t batch, q_len, kv_len, head_dim, v_dim;
    double scale;
    bool causal;
  };
  virtual void attention_forward(DType dt, const AttentionShape& a, const void* q, const void* k,
                                 const void* v, const void* mask, Dims mask_strides, void* out,
                                 void* lse) = 0;
  // Gradients of the forward above given grad_out; gq, gk, gv are overwritten.
  virtual void attention_backward(DType dt, const AttentionShape& a, const void* q, const void* k,
                                  const void* v, const void* mask, Dims mask_strides,
                                  const void* out, const void* grad_out, const void* lse, void* gq,
                                  void* gk, void* gv) = 0;

  // ---- layer normalisation over the last `cols` elements of each of `rows` rows ------------------
  // y = (x - mean) * rstd * w + b (w, b optional); mean and rstd (per row, dtype dt) are kept for
  // the backward. Backward overwrites dx and, when given, dw and db.
  virtual void layer_norm_forward(DType dt, const void* x, const void* w, const void* b, int64_t rows,
                                  int64_t cols, double eps, void* y, void* mean, void* rstd) = 0;
  virtual void layer_norm_backward(DType dt, const void* x, const void* w, const void* mean,
                                   const void* rstd, const void* dy, int64_t rows, int64_t cols,
                                   void* dx, void* dw, void* db) = 0;

  // ---- fused cross-entropy over the rows of compact [rows, classes] logits ---------------------
  // loss[i] = w[i] * (logsumexp(x[i]) - x[i, t[i]]); lse[i] = logsumexp(x[i]) is kept for the
  // backward. t (int64) is in range; w is each row's weight (class weight, 0 where ignored).
  virtual void cross_entropy_forward(DType dt, const void* logits, const int64_t* target, const void* row_weight,
                                     int64_t rows, int64_t classes, void* loss, void* lse) = 0;
  // grad[i, c] = g[i] * w[i] * (exp(x[i, c] - lse[i]) - [c == t[i]]), overwritten.
  virtual void cross_entropy_backward(DType dt, const void* logits, const int64_t* target, const void* row_weight,
                                      const void* lse, const void* grad_loss, int64_t rows, int64_t classes,
                                      void* grad_logits) = 0;

  // ---- fused optimizer updates ---------------------------------------------------------------
  // One pass over a parameter updating it and its state buffers in place (PyTorch's formulas; see
  // kernels/optimizer_update.h). state[0..2] are the optimizer's per-parameter buffers (momentum,
  // exp_avg, exp_avg_sq, max_exp_avg_sq, square_avg, grad_avg, sum: which ones depends on kind).
  enum class OptimizerKind { SGD, Adam, AdamW, RMSprop, Adagrad };
  struct UpdateSpec {
    OptimizerKind kind;
    double lr = 0, weight_decay = 0, momentum = 0, dampening = 0, beta1 = 0.9, beta2 = 0.999,
           eps = 1e-8, alpha = 0.99;
    bool nesterov = false, maximize = false, amsgrad = false, centered = false;
    bool first_step = false;  // SGD: the momentum buffer starts as the gradient
    int64_t step = 1;         // Adam/AdamW/Adagrad: the step count after this update
    double lr_decay = 0;      // Adagrad
    bool operator==(const UpdateSpec&) const = default;
  };
  virtual void optimizer_update(DType dt, const UpdateSpec& spec, int64_t n, void* param,
                                const void* grad, void* state0, void* state1, void* state2) = 0;
  // Several parameters under one spec at once (on a GPU: one launch for all of them, instead of one
  // per parameter). This default updates them one by one.
  struct UpdateTensor {
    int64_t n;
    void* param;
    const void* grad;
    void* state[3];
  };
  virtual void optimizer_update_multi(DType dt, const UpdateSpec& spec, std::span<const UpdateTensor> tensors) {
    for (const UpdateTensor& t : tensors)
      optimizer_update(dt, spec, t.n, t.param, t.grad, t.state[0], t.state[1], t.state[2]);
  }

  // ---- random numbers: counter-based (Philox), so results depend only on (seed, offset) ------
  virtual void random_uniform(DType dt, void* out, int64_t n, uint64_t seed, uint64_t offset,
                              double lo, double hi) = 0;
  virtual void random_normal(DType dt, void* out, int64_t n, uint64_t seed, uint64_t offset,
                             double mean, double stddev) = 0;
};

// The backend that serves a device. For the CPU that is the Eigen/OpenMP backend, unless a
// ScopedBackend says otherwise (tests use that to run the same op on the reference backend).
Backend& backend_for(Device device);
Backend& reference_backend();
Backend& cpu_backend();

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
