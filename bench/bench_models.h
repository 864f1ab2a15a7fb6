// Models shared by the bench programs (ember_bench and ddp_bench); docs/bench.md describes them.
#pragma once
#include <ember/ember.h>

namespace ember::bench {

// encoder_step's model: Embedding(1000, 128) - TransformerEncoder(2 x (d 128, 4 heads, ff 512,
// dropout 0, post-norm, ReLU)) - Linear(128, 1000).
struct EncoderLM : nn::Module {
  EncoderLM() : nn::Module("EncoderLM") {
    emb = register_module("emb", std::make_shared<nn::Embedding>(1000, 128));
    nn::TransformerLayerOptions o;
    o.d_model = 128;
    o.nhead = 4;
    o.dim_feedforward = 512;
    o.dropout = 0.0;
    enc = register_module("enc", std::make_shared<nn::TransformerEncoder>(nn::TransformerEncoderLayer(o), 2));
    head = register_module("head", std::make_shared<nn::Linear>(128, 1000));
  }
  Tensor forward(const Tensor& tokens) override { return (*head)(enc->forward((*emb)(tokens))); }
  std::shared_ptr<nn::Embedding> emb;
  std::shared_ptr<nn::TransformerEncoder> enc;
  std::shared_ptr<nn::Linear> head;
};

}  // namespace ember::bench
