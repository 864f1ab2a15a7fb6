// The optional half of the backend contract: fused kernels, each doing in one or two passes what
// core can also compose from the primitives of backend.h. A backend implements any subset, op by op,
// and says which through `supports` (per op and dtype, like ggml's supports_op); core asks before
// every call (`fused_for`) and otherwise runs the composed form. The composed form is also what the
// tests compare every fused kernel with, and what runs when the result must itself be differentiable
// (backward with create_graph).
#pragma once
#include <cstdint>
#include <span>

#include "ember/kernels/backend.h"
#include "ember/kernels/host_device.h"

namespace ember::kernels {

enum class FusedOp {
  Softmax,
  Im2Col,
  Col2Im,
  Attention,
  LayerNorm,
  CrossEntropy,
  OptimizerUpdate,
  BatchNorm,
  MaxPool2d,
  Conv2d,
};
const char* fused_op_name(FusedOp op);

// Sliding-window geometry for im2col/col2im (2-D; 1-D convolutions use height 1).
struct WindowGeometry {
  int64_t channels, height, width;  // one input image
  int64_t kernel_h, kernel_w;
  int64_t pad_h, pad_w, stride_h, stride_w, dilation_h, dilation_w;
  int64_t out_h, out_w;  // number of window positions
  bool operator==(const WindowGeometry&) const = default;
};

// Scaled dot-product attention over `batch` [len, dim] matrices with compact rows. In the forward,
// the batch entries of k and v may lie k_batch_stride / v_batch_stride elements apart (views into a
// longer buffer, such as a key/value cache); 0 means compact, kv_len rows apart. Backward's inputs
// are always compact.
struct AttentionShape {
  int64_t batch, q_len, kv_len, head_dim, v_dim;
  double scale;
  bool causal;
  int64_t k_batch_stride = 0, v_batch_stride = 0;
  EMBER_HD int64_t k_step() const { return k_batch_stride ? k_batch_stride : kv_len * head_dim; }
  EMBER_HD int64_t v_step() const { return v_batch_stride ? v_batch_stride : kv_len * v_dim; }
};

// One optimizer step's settings (PyTorch's formulas; see kernels/optimizer_update.h).
enum class OptimizerKind { SGD, Adam, AdamW, RMSprop, Adagrad };
struct UpdateSpec {
  OptimizerKind kind;
  double lr = 0, weight_decay = 0, momentum = 0, dampening = 0, beta1 = 0.9, beta2 = 0.999, eps = 1e-8,
         alpha = 0.99;
  bool nesterov = false, maximize = false, amsgrad = false, centered = false;
  bool first_step = false;  // SGD: the momentum buffer starts as the gradient
  int64_t step = 1;         // Adam/AdamW/Adagrad: the step count after this update
  double lr_decay = 0;      // Adagrad
  bool operator==(const UpdateSpec&) const = default;
};
// One parameter of a multi-tensor update: its element count, the parameter, its gradient and its
// state buffers (which ones depends on the kind; unused ones are null).
struct UpdateTensor {
  int64_t n;
  void* param;
  const void* grad;
  void* state[3];
};

class FusedKernels {
 public:
  virtual ~FusedKernels() = default;
  virtual bool supports(FusedOp op, DType dtype) const = 0;

  // Softmax (or log-softmax) of each row of a compact [rows, cols] buffer.
  virtual void softmax(DType dt, const void* in, void* out, int64_t rows, int64_t cols, bool log);

  // For each of `batch` compact images [C, H, W]: out[c*kh*kw + i*kw + j, y*out_w + x] =
  // in[c, y*sh - ph + i*dh, x*sw - pw + j*dw] (0 outside the image). out is [batch, C*kh*kw, L].
  virtual void im2col(DType dt, const void* in, void* out, const WindowGeometry& g, int64_t batch);
  // The adjoint: adds each column entry back to the pixel it was read from. out ([batch, C, H, W])
  // is overwritten.
  virtual void col2im(DType dt, const void* cols, void* out, const WindowGeometry& g, int64_t batch);

  // For each batch b < B and query row i < L (all compact): s_j = scale * q[b,i]·k[b,j] + mask,
  // p = softmax(s), out[b,i] = sum_j p_j v[b,j]; lse[b,i] = log sum_j exp(s_j) (float of dt) is
  // kept for the backward. mask (optional, dt) is added through `mask_strides` ([B, L, S], 0 =
  // broadcast); causal drops keys j > i. Only one row of S scores exists at a time.
  virtual void attention_forward(DType dt, const AttentionShape& a, const void* q, const void* k,
                                 const void* v, const void* mask, Dims mask_strides, void* out, void* lse);
  // Gradients of the forward above given grad_out; gq, gk, gv are overwritten.
  virtual void attention_backward(DType dt, const AttentionShape& a, const void* q, const void* k,
                                  const void* v, const void* mask, Dims mask_strides, const void* out,
                                  const void* grad_out, const void* lse, void* gq, void* gk, void* gv);

  // Layer normalisation over the last `cols` elements of each of `rows` rows: y = (x - mean) * rstd
  // * w + b (w, b optional); mean and rstd (per row, dtype dt) are kept for the backward. Backward
  // overwrites dx and, when given, dw and db.
  virtual void layer_norm_forward(DType dt, const void* x, const void* w, const void* b, int64_t rows,
                                  int64_t cols, double eps, void* y, void* mean, void* rstd);
  virtual void layer_norm_backward(DType dt, const void* x, const void* w, const void* mean, const void* rstd,
                                   const void* dy, int64_t rows, int64_t cols, void* dx, void* dw, void* db);

  // Training-mode batch normalisation of a compact [n, c, s] buffer (s: the product of the spatial
  // dims, 1 for [N, C]). Per channel, over its n*s values: mean, biased var, rstd = 1/sqrt(var + eps)
  // (all three written, [c] of dt: the running statistics need var, the backward mean and rstd);
  // y = (x - mean) * rstd * w + b, w and b optional. Sums are taken in double.
  virtual void batch_norm_forward(DType dt, const void* x, const void* w, const void* b, int64_t n, int64_t c,
                                  int64_t s, double eps, void* y, void* mean, void* var, void* rstd);
  // With xhat = (x - mean) * rstd, per channel: dx = rstd * w * (dy - mean(dy) - xhat *
  // mean(dy * xhat)), dw = sum(dy * xhat), db = sum(dy). Each of dx, dw, db is written when not null.
  virtual void batch_norm_backward(DType dt, const void* x, const void* w, const void* mean, const void* rstd,
                                   const void* dy, int64_t n, int64_t c, int64_t s, void* dx, void* dw,
                                   void* db);

  // Max pooling of `planes` compact [g.height, g.width] images (g.channels is ignored): out[p, y, x]
  // is the largest in[p, y*sh - ph + i*dh, x*sw - pw + j*dw] inside the image (padding never wins;
  // of equal values the first does, and a NaN beats everything: the last NaN, as in PyTorch), and
  // index[p, y, x] (int64) its position h * width + w in the plane. out and index are [planes,
  // out_h, out_w].
  virtual void max_pool2d_forward(DType dt, const void* in, const WindowGeometry& g, int64_t planes,
                                  void* out, int64_t* index);
  // The adjoint: grad_in ([planes, height, width], overwritten) receives each grad_out value at its
  // window's index.
  virtual void max_pool2d_backward(DType dt, const void* grad_out, const int64_t* index,
                                   const WindowGeometry& g, int64_t planes, void* grad_in);

  // Convolution (one group) of `batch` compact images [C, H, W] (C = g.channels) with a compact
  // weight [O, C*kh*kw]: out[n, o, l] = bias[o] + sum_k w[o, k] * cols_n[k, l], where cols_n is
  // image n unfolded as by im2col and l runs over the g.out_h * g.out_w windows. bias is optional;
  // out ([batch, O, L]) is overwritten.
  virtual void conv2d_forward(DType dt, const void* x, const void* w, const void* bias,
                              const WindowGeometry& g, int64_t batch, int64_t out_channels, void* out);
  // The input gradient: dx[n] = col2im(w^T @ dy[n]); dx ([batch, C, H, W]) is overwritten.
  virtual void conv2d_backward_input(DType dt, const void* dy, const void* w, const WindowGeometry& g,
                                     int64_t batch, int64_t out_channels, void* dx);
  // The parameter gradients: dw = sum_n dy[n] @ cols_n^T ([O, C*kh*kw]) and, when db is not null,
  // db[o] = sum over n and l of dy[n, o, l]; both overwritten.
  virtual void conv2d_backward_weight(DType dt, const void* x, const void* dy, const WindowGeometry& g,
                                      int64_t batch, int64_t out_channels, void* dw, void* db);

  // Cross-entropy over the rows of compact [rows, classes] logits: loss[i] = w[i] *
  // (logsumexp(x[i]) - x[i, t[i]]); lse[i] = logsumexp(x[i]) is kept for the backward. t (int64) is
  // in range; w is each row's weight (class weight, 0 where ignored).
  virtual void cross_entropy_forward(DType dt, const void* logits, const int64_t* target,
                                     const void* row_weight, int64_t rows, int64_t classes, void* loss,
                                     void* lse);
  // grad[i, c] = g[i] * w[i] * (exp(x[i, c] - lse[i]) - [c == t[i]]), overwritten.
  virtual void cross_entropy_backward(DType dt, const void* logits, const int64_t* target,
                                      const void* row_weight, const void* lse, const void* grad_loss,
                                      int64_t rows, int64_t classes, void* grad_logits);

  // One pass over a parameter updating it and its state buffers in place (PyTorch's formulas; see
  // kernels/optimizer_update.h). state[0..2] are the optimizer's per-parameter buffers (momentum,
  // exp_avg, exp_avg_sq, max_exp_avg_sq, square_avg, grad_avg, sum: which ones depends on kind).
  virtual void optimizer_update(DType dt, const UpdateSpec& spec, int64_t n, void* param, const void* grad,
                                void* state0, void* state1, void* state2);
  // Several parameters under one spec at once (on a GPU: one launch for all of them, instead of one
  // per parameter). This default updates them one by one.
  virtual void optimizer_update_multi(DType dt, const UpdateSpec& spec,
                                      std::span<const UpdateTensor> tensors);
};

// The backend's fused kernels when they support `op` for `dtype`, else null (run the composed form).
inline FusedKernels* fused_for(Backend& backend, FusedOp op, DType dtype) {
  FusedKernels* f = backend.fused();
  return f && f->supports(op, dtype) ? f : nullptr;
}

}  // namespace ember::kernels
