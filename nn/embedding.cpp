// Embedding; see embedding.h.
#include "ember/nn/embedding.h"

#include "ember/autograd/grad_mode.h"
#include "ember/nn/functional.h"
#include "ember/nn/init.h"

namespace ember::nn {

Embedding::Embedding(int64_t num, int64_t dim, std::optional<int64_t> pad)
    : Module("Embedding"), num_embeddings(num), embedding_dim(dim), padding_idx(pad) {
  if (padding_idx) {
    EMBER_CHECK(*padding_idx < num && *padding_idx >= -num, "Embedding: padding_idx ", *padding_idx,
                " must be within num_embeddings (", num, ")");
    if (*padding_idx < 0) padding_idx = *padding_idx + num;
  }
  weight = register_parameter("weight", empty({num, dim}));
  init::normal_(weight);
  if (padding_idx) {
    autograd::NoGradGuard guard;
    weight.select(0, *padding_idx).zero_();
  }
}

std::shared_ptr<Embedding> Embedding::from_pretrained(const Tensor& embeddings, bool freeze,
                                                      std::optional<int64_t> padding_idx) {
  EMBER_CHECK(embeddings.dim() == 2, "Embedding::from_pretrained: embeddings must be 2-D, got ",
              embeddings.sizes());
  auto e = std::make_shared<Embedding>(embeddings.size(0), embeddings.size(1), padding_idx);
  {
    autograd::NoGradGuard guard;
    e->weight.copy_(embeddings);
  }
  e->weight.requires_grad_(!freeze);
  return e;
}

Tensor Embedding::forward(const Tensor& indices) {
  return functional::embedding(indices, weight, padding_idx);
}

std::string Embedding::extra_repr() const {
  std::string s = std::to_string(num_embeddings) + ", " + std::to_string(embedding_dim);
  if (padding_idx) s += ", padding_idx=" + std::to_string(*padding_idx);
  return s;
}

}  // namespace ember::nn
