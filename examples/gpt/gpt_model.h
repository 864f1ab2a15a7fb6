// A decoder-only Transformer language model in the shape of GPT-2, built from ember's parts, and
// its generation with a key/value cache. The gpt example trains it, the bench times it, the tests
// check that the cache gives the logits of a full forward. docs/gpt.md walks through it.
//
//   tokens [B, T] -> token embedding + position embedding
//                 -> n_layer x Block (pre-norm: x + attn(ln_1(x)), x + mlp(ln_2(x)))
//                 -> ln_f -> logits through the token embedding's own matrix (weight tying)
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include <ember/ember.h>

namespace gpt {

using ember::Tensor;

struct GPTConfig {
  int64_t vocab_size = 96;
  int64_t block_size = 128;  // the longest context the position table covers
  int64_t n_layer = 6;
  int64_t n_head = 8;
  int64_t d_model = 256;
  double dropout = 0.0;
};

// The keys and values of every layer for the tokens seen so far, so that a new token costs one row
// of attention instead of a forward over the whole context. Storage is allocated once at
// block_size; `length` says how many positions hold data.
class KVCache {
 public:
  KVCache(const GPTConfig& config, int64_t batch, ember::TensorOptions options = {});
  int64_t length() const { return length_; }
  int64_t capacity() const { return capacity_; }
  void clear() { length_ = 0; }

  // Writes the keys and values kv ([2, B, H, T, hd]) of `layer` at positions length().., and returns
  // those of all positions up to and including them. advance() then moves length() past them.
  Tensor append(int64_t layer, const Tensor& kv);
  void advance(int64_t tokens) { length_ += tokens; }

 private:
  std::vector<Tensor> layers_;  // per layer [2 (keys, values), B, H, block_size, hd]
  int64_t length_ = 0, capacity_;
};

// softmax(q k^T / sqrt(hd)) v over the heads, causal; with a cache the keys include the past.
class CausalSelfAttention : public ember::nn::Module {
 public:
  CausalSelfAttention(const GPTConfig& config, int64_t layer_index);
  Tensor forward(const Tensor& x) override { return forward(x, nullptr); }
  Tensor forward(const Tensor& x, KVCache* cache);

  std::shared_ptr<ember::nn::Linear> c_attn, c_proj;  // [3C <- C], [C <- C] as GPT-2 names them

 private:
  int64_t n_head_, layer_;
  double dropout_;
};

// Linear(C, 4C) - GELU (tanh approximation, as GPT-2) - Linear(4C, C) - dropout.
class MLP : public ember::nn::Module {
 public:
  explicit MLP(const GPTConfig& config);
  Tensor forward(const Tensor& x) override;

  std::shared_ptr<ember::nn::Linear> c_fc, c_proj;
  std::shared_ptr<ember::nn::Dropout> dropout;
};

class Block : public ember::nn::Module {
 public:
  Block(const GPTConfig& config, int64_t layer_index);
  Tensor forward(const Tensor& x) override { return forward(x, nullptr); }
  Tensor forward(const Tensor& x, KVCache* cache);

  std::shared_ptr<ember::nn::LayerNorm> ln_1, ln_2;
  std::shared_ptr<CausalSelfAttention> attn;
  std::shared_ptr<MLP> mlp;
};

struct GenerateOptions {
  double temperature = 1.0;  // 0: always the most likely token (greedy)
  int64_t top_k = 0;         // > 0: sample among the k most likely tokens only
  double top_p = 1.0;        // < 1: sample among the fewest tokens whose probability reaches top_p
  uint64_t seed = 0;         // the same seed, prompt and model give the same tokens
};

class GPT : public ember::nn::Module {
 public:
  explicit GPT(const GPTConfig& config);

  // Logits [B, T, vocab] of the next token after every prefix of tokens [B, T] (T <= block_size).
  Tensor forward(const Tensor& tokens) override { return forward(tokens, nullptr); }
  // The same for tokens that continue the ones already in `cache` (their positions follow them).
  Tensor forward(const Tensor& tokens, KVCache* cache);

  // Continues `prompt` (token ids) by max_new_tokens sampled tokens and returns those. The cache
  // makes each token one row of attention; when the context reaches block_size, the cache is
  // rebuilt from the last block_size / 2 tokens (learned positions tie every cached key to its
  // position, so dropping one old token would change them all).
  std::vector<int64_t> generate(const std::vector<int64_t>& prompt, int64_t max_new_tokens,
                                const GenerateOptions& options = {});

  // Parameters that weight decay applies to (matrices and embeddings) and the rest (biases, norms).
  std::pair<std::vector<Tensor>, std::vector<Tensor>> decay_groups() const;

  const GPTConfig& config() const { return config_; }

  std::shared_ptr<ember::nn::Embedding> wte, wpe;
  std::shared_ptr<ember::nn::Dropout> drop;
  std::shared_ptr<ember::nn::ModuleList> h;
  std::shared_ptr<ember::nn::LayerNorm> ln_f;

 private:
  GPTConfig config_;
};

// Draws one token from next-token logits (a row of `vocab` floats) as GenerateOptions describes;
// `uniform` is a number in [0, 1) the caller draws.
int64_t sample_token(std::vector<float> logits, const GenerateOptions& options, double uniform);

}  // namespace gpt
