// Scaled dot-product attention and MultiheadAttention, following PyTorch's
// multi_head_attention_forward step by step (projections, bias_kv, zero_attn, masks, heads).
#include "ember/nn/attention.h"

#include <cmath>

#include "ember/autograd/engine.h"
#include "ember/autograd/grad_mode.h"
#include "ember/core/autocast.h"
#include "ember/core/fused_ops.h"
#include "ember/nn/functional.h"
#include "ember/nn/init.h"

namespace ember::nn {

namespace functional {

namespace {

// softmax(q k^T * scale + mask) v with dropout on the attention weights, from differentiable ops.
Tensor attention_with_dropout(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& float_mask,
                              double dropout_p, double scale) {
  Tensor scores = matmul(q, k.transpose(-2, -1)) * scale;
  if (float_mask.defined()) scores = scores + float_mask;
  return matmul(dropout(softmax(scores, -1), dropout_p, true), v);
}

}  // namespace

// Masks are bool (in SDPA true = may attend, in MultiheadAttention true = masked out) or float (added to the
// scores); PyTorch refuses integer masks, whose meaning (0/1 as a flag or as a score) would be a guess.
static void check_mask_dtype(const Tensor& m, const char* op, const char* name) {
  EMBER_CHECK(!m.defined() || m.dtype() == kBool || is_floating(m.dtype()), op, ": ", name, " of shape ",
              m.sizes(), " is ", dtype_name(m.dtype()), "; it must be bool or float");
}

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const Tensor& attn_mask, double dropout_p, bool is_causal,
                                    std::optional<double> scale) {
  // The fused kernels compute in float32 or float64: 16-bit inputs (and autocast) go through float32.
  if (is_half(q.dtype()) || is_half(k.dtype()) || is_half(v.dtype())) {
    const bool keep_half = !autocast::should_raise(q) && q.dtype() == k.dtype() && q.dtype() == v.dtype();
    auto up = [](const Tensor& t) { return t.defined() && is_half(t.dtype()) ? t.to(kFloat32) : t; };
    Tensor out =
        scaled_dot_product_attention(up(q), up(k), up(v), up(attn_mask), dropout_p, is_causal, scale);
    return keep_half ? out.to(q.dtype()) : out;
  }
  check_mask_dtype(attn_mask, "scaled_dot_product_attention", "attn_mask");
  EMBER_CHECK(
      q.dim() >= 2 && k.dim() >= 2 && v.dim() >= 2 && q.size(-1) == k.size(-1) && k.size(-2) == v.size(-2),
      "scaled_dot_product_attention: q ", q.sizes(), ", k ", k.sizes(), " and v ", v.sizes(),
      " do not fit ([..., L, E], [..., S, E], [..., S, Ev])");
  const double s = scale.value_or(1.0 / std::sqrt(static_cast<double>(q.size(-1))));
  const int64_t L = q.size(-2), S = k.size(-2);
  // Masks become additive float masks (bool: true = may attend).
  Tensor mask;
  if (attn_mask.defined()) {
    mask = attn_mask.dtype() == kBool
               ? masked_fill(zeros(attn_mask.sizes(), TensorOptions(q.dtype()).set_device(q.device())),
                             logical_not(attn_mask), -INFINITY)
               : attn_mask.to(q.dtype());
  }
  if (dropout_p > 0) {  // dropout sits between the softmax and the product with v: composed
    if (is_causal) {
      Tensor causal = triu(full({L, S}, -INFINITY, q.options()), 1);
      mask = mask.defined() ? mask + causal : causal;
    }
    return attention_with_dropout(q, k, v, mask, dropout_p, s);
  }
  return fused::attention(q, k, v, mask, s, is_causal);
}

}  // namespace functional

MultiheadAttention::MultiheadAttention(int64_t e, int64_t h, MultiheadAttentionOptions opts)
    : Module("MultiheadAttention"), embed_dim(e), num_heads(h), options(opts) {
  EMBER_CHECK(h > 0 && e % h == 0, "MultiheadAttention: embed_dim (", e, ") must be divisible by num_heads (",
              h, ")");
  head_dim = e / h;
  kdim = opts.kdim.value_or(e);
  vdim = opts.vdim.value_or(e);
  if (kdim == e && vdim == e) {
    in_proj_weight = register_parameter("in_proj_weight", empty({3 * e, e}));
    init::xavier_uniform_(in_proj_weight);
  } else {
    q_proj_weight = register_parameter("q_proj_weight", empty({e, e}));
    k_proj_weight = register_parameter("k_proj_weight", empty({e, kdim}));
    v_proj_weight = register_parameter("v_proj_weight", empty({e, vdim}));
    init::xavier_uniform_(q_proj_weight);
    init::xavier_uniform_(k_proj_weight);
    init::xavier_uniform_(v_proj_weight);
  }
  if (opts.bias) in_proj_bias = register_parameter("in_proj_bias", zeros({3 * e}));
  out_proj = register_module("out_proj", std::make_shared<Linear>(e, e, opts.bias));
  if (opts.bias) init::zeros_(out_proj->bias);
  if (opts.add_bias_kv) {
    bias_k = register_parameter("bias_k", empty({1, 1, e}));
    bias_v = register_parameter("bias_v", empty({1, 1, e}));
    init::xavier_normal_(bias_k);
    init::xavier_normal_(bias_v);
  }
}

namespace {
// Bool masks (true = blocked) become -inf/0 float masks so masks of both kinds can be added.
Tensor as_float_mask(const Tensor& m, DType dt) {
  if (!m.defined() || m.dtype() != kBool) return m.defined() ? m.to(dt) : m;
  return masked_fill(zeros(m.sizes(), TensorOptions(dt).set_device(m.device())), m, -INFINITY);
}
}  // namespace

std::pair<Tensor, Tensor> MultiheadAttention::forward(const Tensor& query_in, const Tensor& key_in,
                                                      const Tensor& value_in, const AttentionForward& args) {
  const bool unbatched = query_in.dim() == 2;
  EMBER_CHECK(query_in.dim() == 2 || query_in.dim() == 3,
              "MultiheadAttention: query must be 2-D "
              "(unbatched) or 3-D, got shape ",
              query_in.sizes());
  EMBER_CHECK(key_in.dim() == query_in.dim() && value_in.dim() == query_in.dim(),
              "MultiheadAttention: query ", query_in.sizes(), ", key ", key_in.sizes(), " and value ",
              value_in.sizes(), " must have the same number of dims");
  // Work sequence-first: [L, N, E].
  auto seq_first = [&](const Tensor& t) {
    if (unbatched) return t.unsqueeze(1);
    return options.batch_first ? t.transpose(0, 1) : t;
  };
  Tensor query = seq_first(query_in), key = seq_first(key_in), value = seq_first(value_in);
  const int64_t L = query.size(0), N = query.size(1), E = embed_dim, H = num_heads;
  EMBER_CHECK(query.size(2) == E, "MultiheadAttention(embed_dim=", E, "): query has ", query.size(2),
              " features (shape ", query_in.sizes(), ")");
  EMBER_CHECK(key.size(2) == kdim && value.size(2) == vdim && key.size(0) == value.size(0) &&
                  key.size(1) == N && value.size(1) == N,
              "MultiheadAttention: key ", key_in.sizes(), " and value ", value_in.sizes(),
              " do not match kdim=", kdim, ", vdim=", vdim, " and the query's batch");

  // Input projections.
  Tensor q, k, v;
  Tensor bq, bk, bv;
  if (in_proj_bias.defined()) {
    auto b = in_proj_bias.chunk(3);
    bq = b[0], bk = b[1], bv = b[2];
  }
  if (in_proj_weight.defined()) {
    auto w = in_proj_weight.chunk(3);
    q = linear(query, w[0], bq);
    k = linear(key, w[1], bk);
    v = linear(value, w[2], bv);
  } else {
    q = linear(query, q_proj_weight, bq);
    k = linear(key, k_proj_weight, bk);
    v = linear(value, v_proj_weight, bv);
  }

  functional::check_mask_dtype(args.attn_mask, "MultiheadAttention", "attn_mask");
  functional::check_mask_dtype(args.key_padding_mask, "MultiheadAttention", "key_padding_mask");
  Tensor attn_mask = args.attn_mask;
  Tensor kpm = args.key_padding_mask;
  if (!attn_mask.defined() && args.is_causal) {
    attn_mask = triu(ones({L, k.size(0)}, TensorOptions(kBool).set_device(q.device())), 1);
  }
  if (attn_mask.defined()) {
    const bool ok2 = attn_mask.dim() == 2 && attn_mask.size(0) == L && attn_mask.size(1) == k.size(0);
    const bool ok3 = attn_mask.dim() == 3 && attn_mask.size(0) == N * H && attn_mask.size(1) == L &&
                     attn_mask.size(2) == k.size(0);
    EMBER_CHECK(ok2 || ok3, "MultiheadAttention: attn_mask of shape ", attn_mask.sizes(), " should be [", L,
                ", ", k.size(0), "] or [", N * H, ", ", L, ", ", k.size(0), "]");
    attn_mask = as_float_mask(attn_mask, q.dtype());
    if (attn_mask.dim() == 2) attn_mask = attn_mask.unsqueeze(0);
  }
  if (kpm.defined()) {
    if (unbatched && kpm.dim() == 1) kpm = kpm.unsqueeze(0);
    EMBER_CHECK(kpm.dim() == 2 && kpm.size(0) == N && kpm.size(1) == k.size(0),
                "MultiheadAttention: key_padding_mask of shape ", kpm.sizes(), " should be [", N, ", ",
                k.size(0), "]");
    kpm = as_float_mask(kpm, q.dtype());
  }

  if (bias_k.defined()) {  // one learned key/value appended to every sequence
    k = cat({k, bias_k.expand({1, N, E})}, 0);
    v = cat({v, bias_v.expand({1, N, E})}, 0);
    if (attn_mask.defined()) attn_mask = pad(attn_mask, {0, 1});
    if (kpm.defined()) kpm = pad(kpm, {0, 1});
  }

  // Heads: [L, N, E] -> [N*H, L, hd].
  q = q.reshape({L, N * H, head_dim}).transpose(0, 1);
  k = k.reshape({k.size(0), N * H, head_dim}).transpose(0, 1);
  v = v.reshape({v.size(0), N * H, head_dim}).transpose(0, 1);
  if (options.add_zero_attn) {
    k = cat({k, zeros({N * H, 1, head_dim}, TensorOptions(k.dtype()).set_device(k.device()))}, 1);
    v = cat({v, zeros({N * H, 1, head_dim}, TensorOptions(v.dtype()).set_device(v.device()))}, 1);
    if (attn_mask.defined()) attn_mask = pad(attn_mask, {0, 1});
    if (kpm.defined()) kpm = pad(kpm, {0, 1});
  }
  const int64_t S = k.size(1);
  if (kpm.defined()) {
    Tensor expanded = kpm.view({N, 1, 1, S}).expand({N, H, 1, S}).reshape({N * H, 1, S});
    attn_mask = attn_mask.defined() ? attn_mask + expanded : expanded;
  }

  Tensor out, p;
  if (args.need_weights) {
    Tensor scores = matmul(q * (1.0 / std::sqrt(static_cast<double>(head_dim))), k.transpose(1, 2));
    if (attn_mask.defined()) scores = scores + attn_mask;
    p = softmax(scores, -1);
    Tensor p_drop = options.dropout > 0 ? dropout(p, options.dropout, is_training()) : p;
    out = matmul(p_drop, v);  // [N*H, L, hd]
  } else {
    // No weights requested: the fused kernel, which never holds the L x S matrix.
    out = functional::scaled_dot_product_attention(q, k, v, attn_mask, is_training() ? options.dropout : 0.0);
  }
  out = out.transpose(0, 1).reshape({L * N, E});
  out = (*out_proj)(out).view({L, N, E});
  if (unbatched) out = out.squeeze(1);
  else if (options.batch_first) out = out.transpose(0, 1);

  Tensor weights;
  if (args.need_weights) {
    weights = p.view({N, H, L, S});
    if (args.average_attn_weights) weights = weights.mean({1});
    if (unbatched) weights = weights.squeeze(0);
  }
  return {out, weights};
}

}  // namespace ember::nn
