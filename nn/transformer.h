// Transformer building blocks with PyTorch's structure and parameter names: encoder/decoder layers
// (post-norm by default, norm_first for pre-norm), stacks of them, and the full Transformer.
// Stacks start from copies of one layer (same initial weights), as PyTorch's deepcopy does.
#pragma once
#include <string>

#include "ember/nn/activation.h"
#include "ember/nn/attention.h"
#include "ember/nn/containers.h"
#include "ember/nn/linear.h"
#include "ember/nn/normalization.h"

namespace ember::nn {

struct TransformerLayerOptions {
  int64_t d_model = 512;
  int64_t nhead = 8;
  int64_t dim_feedforward = 2048;
  double dropout = 0.1;
  std::string activation = "relu";  // or "gelu"
  double layer_norm_eps = 1e-5;
  bool batch_first = false;
  bool norm_first = false;
  bool bias = true;
};

struct EncoderMasks {
  Tensor mask{};                  // [S, S] or [N*H, S, S]
  Tensor src_key_padding_mask{};  // [N, S]
  bool is_causal = false;
};

class TransformerEncoderLayer : public Module {
 public:
  explicit TransformerEncoderLayer(TransformerLayerOptions options);
  TransformerEncoderLayer(int64_t d_model, int64_t nhead, int64_t dim_feedforward = 2048,
                          double dropout = 0.1);
  Tensor forward(const Tensor& src) override { return forward(src, EncoderMasks{}); }
  Tensor forward(const Tensor& src, const EncoderMasks& masks);
  // A new layer with the same options and a copy of this one's weights.
  std::shared_ptr<TransformerEncoderLayer> clone() const;
  TransformerLayerOptions options;
  std::shared_ptr<MultiheadAttention> self_attn;
  std::shared_ptr<Linear> linear1, linear2;
  std::shared_ptr<Dropout> dropout, dropout1, dropout2;
  std::shared_ptr<LayerNorm> norm1, norm2;

 private:
  Tensor self_attention_block(const Tensor& x, const EncoderMasks& masks);
  Tensor feed_forward_block(const Tensor& x);
};

class TransformerEncoder : public Module {
 public:
  TransformerEncoder(const TransformerEncoderLayer& layer, int64_t num_layers,
                     std::shared_ptr<LayerNorm> norm = nullptr);
  Tensor forward(const Tensor& src) override { return forward(src, EncoderMasks{}); }
  Tensor forward(const Tensor& src, const EncoderMasks& masks);
  std::shared_ptr<ModuleList> layers;
  std::shared_ptr<LayerNorm> norm;
};

struct DecoderMasks {
  Tensor tgt_mask{};                 // [T, T]
  Tensor memory_mask{};              // [T, S]
  Tensor tgt_key_padding_mask{};     // [N, T]
  Tensor memory_key_padding_mask{};  // [N, S]
  bool tgt_is_causal = false;
  bool memory_is_causal = false;
};

class TransformerDecoderLayer : public Module {
 public:
  explicit TransformerDecoderLayer(TransformerLayerOptions options);
  TransformerDecoderLayer(int64_t d_model, int64_t nhead, int64_t dim_feedforward = 2048,
                          double dropout = 0.1);
  Tensor forward(const Tensor& tgt, const Tensor& memory, const DecoderMasks& masks = {});
  std::shared_ptr<TransformerDecoderLayer> clone() const;
  TransformerLayerOptions options;
  std::shared_ptr<MultiheadAttention> self_attn, multihead_attn;
  std::shared_ptr<Linear> linear1, linear2;
  std::shared_ptr<Dropout> dropout, dropout1, dropout2, dropout3;
  std::shared_ptr<LayerNorm> norm1, norm2, norm3;

 private:
  Tensor feed_forward_block(const Tensor& x);
};

class TransformerDecoder : public Module {
 public:
  TransformerDecoder(const TransformerDecoderLayer& layer, int64_t num_layers,
                     std::shared_ptr<LayerNorm> norm = nullptr);
  Tensor forward(const Tensor& tgt, const Tensor& memory, const DecoderMasks& masks = {});
  std::shared_ptr<ModuleList> layers;
  std::shared_ptr<LayerNorm> norm;
};

struct TransformerOptions : TransformerLayerOptions {
  int64_t num_encoder_layers = 6;
  int64_t num_decoder_layers = 6;
};

struct TransformerMasks {
  Tensor src_mask{}, tgt_mask{}, memory_mask{};
  Tensor src_key_padding_mask{}, tgt_key_padding_mask{}, memory_key_padding_mask{};
  bool src_is_causal = false, tgt_is_causal = false, memory_is_causal = false;
};

class Transformer : public Module {
 public:
  explicit Transformer(TransformerOptions options = {});
  Tensor forward(const Tensor& src, const Tensor& tgt, const TransformerMasks& masks = {});
  // [sz, sz] float mask: 0 on and below the diagonal, -inf above (a query may not see later keys).
  static Tensor generate_square_subsequent_mask(int64_t sz, DType dtype = kFloat32);
  TransformerOptions options;
  std::shared_ptr<TransformerEncoder> encoder;
  std::shared_ptr<TransformerDecoder> decoder;
};

}  // namespace ember::nn
