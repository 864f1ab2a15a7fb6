// Scaled dot-product attention, fused or composed (see core/fused_ops.h). The fused kernels work on
// [B, L, E] batches of compact matrices: the batch dims of q, k and v are broadcast and flattened to
// one B first, and a mask that only varies over [L, S] is passed with zero batch strides instead of
// being copied per batch.
#include <algorithm>
#include <cmath>

#include "ember/autograd/engine.h"
#include "ember/core/fused_ops.h"
#include "ember/core/ops/internal.h"
#include "ember/core/trace.h"

namespace ember::fused {
using namespace detail;

Tensor attention_composed(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask, double scale,
                          bool is_causal) {
  Tensor scores = matmul(q, k.transpose(-2, -1)) * scale;
  if (mask.defined()) scores = scores + mask;
  if (is_causal) scores = scores + triu(full({q.size(-2), k.size(-2)}, -INFINITY, q.options()), 1);
  return matmul(softmax(scores, -1), v);
}

Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask, double scale,
                 bool is_causal) {
  if (trace::recording())
    return trace::traced("attention", {q, k, v, mask},
                         {.ints = {{"is_causal", {is_causal}}}, .floats = {{"scale", scale}}},
                         [&] { return attention(q, k, v, mask, scale, is_causal); });
  auto* fused = fused_of(q, kernels::FusedOp::Attention, q.dtype());
  const bool fusable = fused && k.dtype() == q.dtype() && v.dtype() == q.dtype() &&
                       (!mask.defined() || mask.dtype() == q.dtype());
  if (!fusable) return attention_composed(q, k, v, mask, scale, is_causal);
  const int64_t L = q.size(-2), S = k.size(-2), E = q.size(-1), Ev = v.size(-1);
  Shape batch(q.sizes().begin(), q.sizes().end() - 2);
  Shape kb(k.sizes().begin(), k.sizes().end() - 2), vb(v.sizes().begin(), v.sizes().end() - 2);
  batch = broadcast_shapes(broadcast_shapes(batch, kb, "scaled_dot_product_attention"), vb,
                           "scaled_dot_product_attention");
  auto full_shape = [batch](int64_t a, int64_t b) {  // by value: the backward keeps it
    Shape sh = batch;
    sh.push_back(a);
    sh.push_back(b);
    return sh;
  };
  int64_t B = 1;
  for (auto d : batch) B *= d;
  Tensor q3, k3, v3, m3, out3, lse;
  Shape mask_strides = {0, 0, 0};
  // Without a graph to record, keys and values whose rows are compact are read where they lie, however
  // far apart their batch entries are: a key/value cache's views then cost no copy per token.
  const bool records =
      autograd::GradMode::is_enabled() && (q.requires_grad() || k.requires_grad() || v.requires_grad());
  auto batch_step = [&](Tensor& t, int64_t rows, int64_t width) -> int64_t {
    const bool rows_compact = (width <= 1 || t.stride(2) == 1) && (rows <= 1 || t.stride(1) == width);
    if (!records && rows_compact && (B == 1 || t.stride(0) > 0)) return B == 1 ? 0 : t.stride(0);
    t = t.contiguous();
    return 0;
  };
  int64_t k_step = 0, v_step = 0;
  // [batch..., rows, width] -> [B, rows, width]; the expand only where the batch dims broadcast.
  auto flatten_batch = [&](const Tensor& t, int64_t rows, int64_t width) {
    const bool full = t.dim() == static_cast<int64_t>(batch.size()) + 2 &&
                      std::equal(batch.begin(), batch.end(), t.sizes().begin());
    return (full ? t : t.expand(full_shape(rows, width))).reshape({B, rows, width});
  };
  {
    autograd::NoGradGuard guard;
    q3 = flatten_batch(q, L, E).contiguous();
    k3 = flatten_batch(k, S, E);
    v3 = flatten_batch(v, S, Ev);
    k_step = batch_step(k3, S, E);
    v_step = batch_step(v3, S, Ev);
    if (mask.defined()) {
      Tensor mf = mask.expand(full_shape(L, S));
      bool batch_broadcast = true;
      for (size_t d = 0; d < batch.size(); ++d) batch_broadcast &= mf.stride(d) == 0 || batch[d] == 1;
      if (batch_broadcast) {
        m3 = mf;
        mask_strides = {0, mf.stride(-2), mf.stride(-1)};
      } else {
        m3 = mf.reshape({B, L, S}).contiguous();
        mask_strides = {L * S, S, 1};
      }
    }
    out3 = empty({B, L, Ev}, q.options());
    lse = empty({B, L}, q.options());
    kernels::AttentionShape shape{B, L, S, E, Ev, scale, is_causal, k_step, v_step};
    fused->attention_forward(q.dtype(), shape, q3.data_ptr(), k3.data_ptr(), v3.data_ptr(),
                             m3.defined() ? m3.data_ptr() : nullptr, mask_strides, out3.data_ptr(),
                             lse.data_ptr());
  }
  Tensor out = out3.view(full_shape(L, Ev));
  autograd::record("scaled_dot_product_attention", {q, k, v}, {out}, {q3, k3, v3, out, lse, m3, q, k, v},
                   [=](FunctionNode& n, const variable_list& g) -> variable_list {
                     Tensor q3 = n.saved(0), k3 = n.saved(1), v3 = n.saved(2), o = n.saved(3);
                     Tensor lse = n.saved(4), m3 = n.saved(5);
                     Shape eq = full_shape(L, E), ek = full_shape(S, E), ev = full_shape(S, Ev);
                     auto* fused = fused_of(q3, kernels::FusedOp::Attention, q3.dtype());
                     if (autograd::GradMode::is_enabled() || !fused) {
                       // create_graph: differentiate the composed formula, in terms of the original inputs so
                       // the result stays connected to them.
                       Tensor mask_full = m3.defined() ? m3.reshape(full_shape(L, S)) : Tensor();
                       Tensor qq = n.saved(6), kk = n.saved(7), vv = n.saved(8);
                       Tensor y = attention_composed(qq, kk, vv, mask_full, scale, is_causal);
                       return autograd::grad_aligned(y, {qq, kk, vv}, g[0], true);
                     }
                     Tensor go = g[0].reshape({B, L, Ev}).contiguous();
                     Tensor gq = empty({B, L, E}, q3.options());
                     Tensor gk = empty({B, S, E}, q3.options());
                     Tensor gv = empty({B, S, Ev}, q3.options());
                     kernels::AttentionShape shape{B, L, S, E, Ev, scale, is_causal};
                     fused->attention_backward(q3.dtype(), shape, q3.data_ptr(), k3.data_ptr(), v3.data_ptr(),
                                               m3.defined() ? m3.data_ptr() : nullptr, mask_strides,
                                               o.reshape({B, L, Ev}).contiguous().data_ptr(), go.data_ptr(),
                                               lse.data_ptr(), gq.data_ptr(), gk.data_ptr(), gv.data_ptr());
                     return {gq.view(eq), gk.view(ek), gv.view(ev)};
                   });
  return out;
}

}  // namespace ember::fused
