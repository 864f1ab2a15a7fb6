// MultiheadAttention with PyTorch's parameters (in_proj_weight/bias or separate q/k/v weights when
// kdim/vdim differ, out_proj, optional bias_k/bias_v), options, masks and return values.
#pragma once
#include <optional>
#include <utility>

#include "ember/nn/linear.h"
#include "ember/nn/module.h"

namespace ember::nn {

struct MultiheadAttentionOptions {
  double dropout = 0.0;
  bool bias = true;
  bool add_bias_kv = false;
  bool add_zero_attn = false;
  std::optional<int64_t> kdim{}, vdim{};
  bool batch_first = false;
};

struct AttentionForward {
  Tensor key_padding_mask{};  // [N, S]: bool (true = ignore that key) or float (added)
  bool need_weights = true;
  Tensor attn_mask{};  // [L, S] or [N*H, L, S]: bool (true = not allowed) or float
  bool average_attn_weights = true;
  bool is_causal = false;  // with no attn_mask: mask keys after each query position
};

class MultiheadAttention : public Module {
 public:
  MultiheadAttention(int64_t embed_dim, int64_t num_heads, MultiheadAttentionOptions options = {});
  // Returns (output, weights); weights are undefined unless need_weights. Shapes follow
  // batch_first: [L, N, E] / [N, L, E], or unbatched [L, E].
  std::pair<Tensor, Tensor> forward(const Tensor& query, const Tensor& key, const Tensor& value,
                                    const AttentionForward& args = {});
  std::string extra_repr() const override { return ""; }
  int64_t embed_dim, num_heads, head_dim, kdim, vdim;
  MultiheadAttentionOptions options;
  Tensor in_proj_weight, q_proj_weight, k_proj_weight, v_proj_weight, in_proj_bias, bias_k, bias_v;
  std::shared_ptr<Linear> out_proj;
};

}  // namespace ember::nn
