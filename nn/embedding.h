// Embedding: a lookup table of num_embeddings vectors. Initialised N(0, 1) as in PyTorch, with the
// padding_idx row zeroed and excluded from gradients.
#pragma once
#include <optional>

#include "ember/nn/module.h"

namespace ember::nn {

class Embedding : public Module {
 public:
  Embedding(int64_t num_embeddings, int64_t embedding_dim, std::optional<int64_t> padding_idx = std::nullopt);
  // A table initialised from `embeddings` ([num, dim]); freeze makes it non-trainable.
  static std::shared_ptr<Embedding> from_pretrained(const Tensor& embeddings, bool freeze = true,
                                                    std::optional<int64_t> padding_idx = std::nullopt);
  Tensor forward(const Tensor& indices) override;
  std::string extra_repr() const override;
  int64_t num_embeddings, embedding_dim;
  std::optional<int64_t> padding_idx;
  Tensor weight;
};

}  // namespace ember::nn
