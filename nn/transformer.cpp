// Transformer layers, stacks and model; see transformer.h.
#include "ember/nn/transformer.h"

#include <cmath>

#include "ember/autograd/grad_mode.h"
#include "ember/nn/init.h"

namespace ember::nn {

namespace {

Tensor activate(const Tensor& x, const std::string& name) {
  if (name == "relu") return relu(x);
  if (name == "gelu") return gelu(x);
  fail("Transformer: activation must be \"relu\" or \"gelu\", got \"", name, "\"");
}

MultiheadAttentionOptions attention_options(const TransformerLayerOptions& o) {
  MultiheadAttentionOptions a;
  a.dropout = o.dropout;
  a.bias = o.bias;
  a.batch_first = o.batch_first;
  return a;
}

TransformerLayerOptions basic(int64_t d_model, int64_t nhead, int64_t ff, double dropout) {
  TransformerLayerOptions o;
  o.d_model = d_model;
  o.nhead = nhead;
  o.dim_feedforward = ff;
  o.dropout = dropout;
  return o;
}

// num_layers copies of one layer, as PyTorch's deepcopy makes them.
template <class Layer>
std::shared_ptr<ModuleList> clones_of(const Layer& layer, int64_t num_layers) {
  auto list = std::make_shared<ModuleList>();
  for (int64_t i = 0; i < num_layers; ++i) list->push_back(layer.clone());
  return list;
}

template <class M>
std::shared_ptr<M> copy_of(const M& layer) {
  auto copy = std::make_shared<M>(layer.options);
  copy->load_state_dict(layer.state_dict());
  copy->train(layer.is_training());
  return copy;
}

}  // namespace

TransformerEncoderLayer::TransformerEncoderLayer(TransformerLayerOptions o)
    : Module("TransformerEncoderLayer"), options(o) {
  EMBER_CHECK(o.activation == "relu" || o.activation == "gelu",
              "TransformerEncoderLayer: activation must be \"relu\" or \"gelu\", got \"", o.activation, "\"");
  self_attn = register_module("self_attn",
                              std::make_shared<MultiheadAttention>(o.d_model, o.nhead, attention_options(o)));
  linear1 = register_module("linear1", std::make_shared<Linear>(o.d_model, o.dim_feedforward, o.bias));
  dropout = register_module("dropout", std::make_shared<Dropout>(o.dropout));
  linear2 = register_module("linear2", std::make_shared<Linear>(o.dim_feedforward, o.d_model, o.bias));
  norm1 =
      register_module("norm1", std::make_shared<LayerNorm>(Shape{o.d_model}, o.layer_norm_eps, true, o.bias));
  norm2 =
      register_module("norm2", std::make_shared<LayerNorm>(Shape{o.d_model}, o.layer_norm_eps, true, o.bias));
  dropout1 = register_module("dropout1", std::make_shared<Dropout>(o.dropout));
  dropout2 = register_module("dropout2", std::make_shared<Dropout>(o.dropout));
}

TransformerEncoderLayer::TransformerEncoderLayer(int64_t d, int64_t h, int64_t ff, double p)
    : TransformerEncoderLayer(basic(d, h, ff, p)) {}

std::shared_ptr<TransformerEncoderLayer> TransformerEncoderLayer::clone() const { return copy_of(*this); }

Tensor TransformerEncoderLayer::self_attention_block(const Tensor& x, const EncoderMasks& masks) {
  AttentionForward args;
  args.attn_mask = masks.mask;
  args.key_padding_mask = masks.src_key_padding_mask;
  args.need_weights = false;
  args.is_causal = masks.is_causal;
  return (*dropout1)(self_attn->forward(x, x, x, args).first);
}

Tensor TransformerEncoderLayer::feed_forward_block(const Tensor& x) {
  return (*dropout2)((*linear2)((*dropout)(activate((*linear1)(x), options.activation))));
}

Tensor TransformerEncoderLayer::forward(const Tensor& src, const EncoderMasks& masks) {
  Tensor x = src;
  if (options.norm_first) {
    x = x + self_attention_block((*norm1)(x), masks);
    x = x + feed_forward_block((*norm2)(x));
  } else {
    x = (*norm1)(x + self_attention_block(x, masks));
    x = (*norm2)(x + feed_forward_block(x));
  }
  return x;
}

TransformerEncoder::TransformerEncoder(const TransformerEncoderLayer& layer, int64_t num_layers,
                                       std::shared_ptr<LayerNorm> final_norm)
    : Module("TransformerEncoder") {
  layers = register_module("layers", clones_of(layer, num_layers));
  if (final_norm) norm = register_module("norm", final_norm);
}

Tensor TransformerEncoder::forward(const Tensor& src, const EncoderMasks& masks) {
  Tensor x = src;
  for (auto& m : *layers) x = std::static_pointer_cast<TransformerEncoderLayer>(m)->forward(x, masks);
  return norm ? (*norm)(x) : x;
}

TransformerDecoderLayer::TransformerDecoderLayer(TransformerLayerOptions o)
    : Module("TransformerDecoderLayer"), options(o) {
  EMBER_CHECK(o.activation == "relu" || o.activation == "gelu",
              "TransformerDecoderLayer: activation must be \"relu\" or \"gelu\", got \"", o.activation, "\"");
  self_attn = register_module("self_attn",
                              std::make_shared<MultiheadAttention>(o.d_model, o.nhead, attention_options(o)));
  multihead_attn = register_module(
      "multihead_attn", std::make_shared<MultiheadAttention>(o.d_model, o.nhead, attention_options(o)));
  linear1 = register_module("linear1", std::make_shared<Linear>(o.d_model, o.dim_feedforward, o.bias));
  dropout = register_module("dropout", std::make_shared<Dropout>(o.dropout));
  linear2 = register_module("linear2", std::make_shared<Linear>(o.dim_feedforward, o.d_model, o.bias));
  norm1 =
      register_module("norm1", std::make_shared<LayerNorm>(Shape{o.d_model}, o.layer_norm_eps, true, o.bias));
  norm2 =
      register_module("norm2", std::make_shared<LayerNorm>(Shape{o.d_model}, o.layer_norm_eps, true, o.bias));
  norm3 =
      register_module("norm3", std::make_shared<LayerNorm>(Shape{o.d_model}, o.layer_norm_eps, true, o.bias));
  dropout1 = register_module("dropout1", std::make_shared<Dropout>(o.dropout));
  dropout2 = register_module("dropout2", std::make_shared<Dropout>(o.dropout));
  dropout3 = register_module("dropout3", std::make_shared<Dropout>(o.dropout));
}

TransformerDecoderLayer::TransformerDecoderLayer(int64_t d, int64_t h, int64_t ff, double p)
    : TransformerDecoderLayer(basic(d, h, ff, p)) {}

std::shared_ptr<TransformerDecoderLayer> TransformerDecoderLayer::clone() const { return copy_of(*this); }

Tensor TransformerDecoderLayer::feed_forward_block(const Tensor& x) {
  return (*dropout3)((*linear2)((*dropout)(activate((*linear1)(x), options.activation))));
}

Tensor TransformerDecoderLayer::forward(const Tensor& tgt, const Tensor& memory, const DecoderMasks& masks) {
  auto self_block = [&](const Tensor& x) {
    AttentionForward a;
    a.attn_mask = masks.tgt_mask;
    a.key_padding_mask = masks.tgt_key_padding_mask;
    a.need_weights = false;
    a.is_causal = masks.tgt_is_causal;
    return (*dropout1)(self_attn->forward(x, x, x, a).first);
  };
  auto cross_block = [&](const Tensor& x) {
    AttentionForward a;
    a.attn_mask = masks.memory_mask;
    a.key_padding_mask = masks.memory_key_padding_mask;
    a.need_weights = false;
    a.is_causal = masks.memory_is_causal;
    return (*dropout2)(multihead_attn->forward(x, memory, memory, a).first);
  };
  Tensor x = tgt;
  if (options.norm_first) {
    x = x + self_block((*norm1)(x));
    x = x + cross_block((*norm2)(x));
    x = x + feed_forward_block((*norm3)(x));
  } else {
    x = (*norm1)(x + self_block(x));
    x = (*norm2)(x + cross_block(x));
    x = (*norm3)(x + feed_forward_block(x));
  }
  return x;
}

TransformerDecoder::TransformerDecoder(const TransformerDecoderLayer& layer, int64_t num_layers,
                                       std::shared_ptr<LayerNorm> final_norm)
    : Module("TransformerDecoder") {
  layers = register_module("layers", clones_of(layer, num_layers));
  if (final_norm) norm = register_module("norm", final_norm);
}

Tensor TransformerDecoder::forward(const Tensor& tgt, const Tensor& memory, const DecoderMasks& masks) {
  Tensor x = tgt;
  for (auto& m : *layers) x = std::static_pointer_cast<TransformerDecoderLayer>(m)->forward(x, memory, masks);
  return norm ? (*norm)(x) : x;
}

Transformer::Transformer(TransformerOptions o) : Module("Transformer"), options(o) {
  TransformerLayerOptions layer = o;
  encoder = register_module(
      "encoder", std::make_shared<TransformerEncoder>(
                     TransformerEncoderLayer(layer), o.num_encoder_layers,
                     std::make_shared<LayerNorm>(Shape{o.d_model}, o.layer_norm_eps, true, o.bias)));
  decoder = register_module(
      "decoder", std::make_shared<TransformerDecoder>(
                     TransformerDecoderLayer(layer), o.num_decoder_layers,
                     std::make_shared<LayerNorm>(Shape{o.d_model}, o.layer_norm_eps, true, o.bias)));
  // PyTorch's Transformer re-initialises every matrix with xavier_uniform_.
  for (auto& p : parameters())
    if (p.dim() > 1) init::xavier_uniform_(p);
}

Tensor Transformer::forward(const Tensor& src, const Tensor& tgt, const TransformerMasks& m) {
  const int64_t batch_dim = options.batch_first ? 0 : 1;
  if (src.dim() == 3)
    EMBER_CHECK(src.size(batch_dim) == tgt.size(batch_dim), "Transformer: the batch of src (",
                src.size(batch_dim), ") and tgt (", tgt.size(batch_dim), ") must be equal");
  EMBER_CHECK(src.size(-1) == options.d_model && tgt.size(-1) == options.d_model,
              "Transformer: the feature size of src ", src.sizes(), " and tgt ", tgt.sizes(),
              " must equal d_model (", options.d_model, ")");
  Tensor memory = encoder->forward(src, EncoderMasks{m.src_mask, m.src_key_padding_mask, m.src_is_causal});
  DecoderMasks dm{m.tgt_mask,      m.memory_mask,     m.tgt_key_padding_mask, m.memory_key_padding_mask,
                  m.tgt_is_causal, m.memory_is_causal};
  return decoder->forward(tgt, memory, dm);
}

Tensor Transformer::generate_square_subsequent_mask(int64_t sz, DType dtype) {
  return triu(full({sz, sz}, -INFINITY, TensorOptions(dtype)), 1);
}

}  // namespace ember::nn
