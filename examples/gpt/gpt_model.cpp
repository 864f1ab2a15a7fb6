// The GPT of gpt_model.h: the blocks, the key/value cache and sampling.
#include "gpt_model.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

namespace gpt {

using namespace ember;

// ---- KVCache ----------------------------------------------------------------------------------

KVCache::KVCache(const GPTConfig& config, int64_t batch, TensorOptions options)
    : capacity_(config.block_size) {
  const int64_t hd = config.d_model / config.n_head;
  for (int64_t l = 0; l < config.n_layer; ++l)
    layers_.push_back(zeros({2, batch, config.n_head, config.block_size, hd}, options));
}

Tensor KVCache::append(int64_t layer, const Tensor& kv) {
  const int64_t t = kv.size(3);
  EMBER_CHECK(length_ + t <= capacity_, "KVCache: ", length_, " cached positions and ", t,
              " new ones exceed block_size ", capacity_);
  layers_[layer].narrow(3, length_, t).copy_(kv);
  return layers_[layer].narrow(3, 0, length_ + t);
}

// ---- the blocks -------------------------------------------------------------------------------

CausalSelfAttention::CausalSelfAttention(const GPTConfig& config, int64_t layer_index)
    : Module("CausalSelfAttention"), n_head_(config.n_head), layer_(layer_index), dropout_(config.dropout) {
  EMBER_CHECK(config.d_model % config.n_head == 0, "GPT: d_model ", config.d_model,
              " is not a multiple of n_head ", config.n_head);
  c_attn = register_module("c_attn", std::make_shared<nn::Linear>(config.d_model, 3 * config.d_model));
  c_proj = register_module("c_proj", std::make_shared<nn::Linear>(config.d_model, config.d_model));
}

Tensor CausalSelfAttention::forward(const Tensor& x, KVCache* cache) {
  const int64_t B = x.size(0), T = x.size(1), C = x.size(2), hd = C / n_head_;
  // [B, T, 3C] -> [3, B, H, T, hd]: queries, keys and values of every head, as views.
  Tensor qkv = (*c_attn)(x).view({B, T, 3, n_head_, hd}).permute({2, 0, 3, 1, 4});
  Tensor q = qkv.select(0, 0), kv = qkv.narrow(0, 1, 2);
  Tensor mask;
  bool causal = true;
  if (cache) {
    const int64_t past = cache->length();
    kv = cache->append(layer_, kv);
    if (past > 0) {
      causal = false;  // the queries sit at the end of the keys: query i sees keys 0 .. past + i
      if (T > 1) mask = tril(ones({T, past + T}, TensorOptions(kBool).set_device(x.device())), past);
    }
  }
  const double p = is_training() ? dropout_ : 0.0;
  Tensor y =
      nn::functional::scaled_dot_product_attention(q, kv.select(0, 0), kv.select(0, 1), mask, p, causal);
  y = (*c_proj)(y.transpose(1, 2).reshape({B, T, C}));  // heads side by side again
  return p > 0 ? nn::functional::dropout(y, p, true) : y;
}

MLP::MLP(const GPTConfig& config) : Module("MLP") {
  c_fc = register_module("c_fc", std::make_shared<nn::Linear>(config.d_model, 4 * config.d_model));
  c_proj = register_module("c_proj", std::make_shared<nn::Linear>(4 * config.d_model, config.d_model));
  dropout = register_module("dropout", std::make_shared<nn::Dropout>(config.dropout));
}

Tensor MLP::forward(const Tensor& x) {
  Tensor y = (*c_proj)(gelu((*c_fc)(x), "tanh"));
  return dropout->p > 0 ? (*dropout)(y) : y;
}

Block::Block(const GPTConfig& config, int64_t layer_index) : Module("Block") {
  ln_1 = register_module("ln_1", std::make_shared<nn::LayerNorm>(config.d_model));
  attn = register_module("attn", std::make_shared<CausalSelfAttention>(config, layer_index));
  ln_2 = register_module("ln_2", std::make_shared<nn::LayerNorm>(config.d_model));
  mlp = register_module("mlp", std::make_shared<MLP>(config));
}

Tensor Block::forward(const Tensor& x, KVCache* cache) {
  Tensor h = x + attn->forward((*ln_1)(x), cache);
  return h + (*mlp)((*ln_2)(h));
}

// ---- the model --------------------------------------------------------------------------------

GPT::GPT(const GPTConfig& config) : Module("GPT"), config_(config) {
  EMBER_CHECK(config.vocab_size > 0 && config.block_size > 0 && config.n_layer > 0 && config.n_head > 0,
              "GPT: vocab_size, block_size, n_layer and n_head must be positive");
  wte = register_module("wte", std::make_shared<nn::Embedding>(config.vocab_size, config.d_model));
  wpe = register_module("wpe", std::make_shared<nn::Embedding>(config.block_size, config.d_model));
  drop = register_module("drop", std::make_shared<nn::Dropout>(config.dropout));
  h = register_module("h", std::make_shared<nn::ModuleList>());
  for (int64_t l = 0; l < config.n_layer; ++l) h->push_back(std::make_shared<Block>(config, l));
  ln_f = register_module("ln_f", std::make_shared<nn::LayerNorm>(config.d_model));
  // GPT-2's initialisation: N(0, 0.02) matrices and embeddings, zero biases, and the projections
  // that write into the residual stream scaled down by sqrt(2 n_layer) so it grows slowly with depth.
  autograd::NoGradGuard no_grad;
  for (auto& [name, p] : named_parameters()) {
    if (name.ends_with(".bias")) nn::init::zeros_(p);
    else if (name.starts_with("ln") || name.find(".ln_") != std::string::npos) continue;
    else if (name.ends_with("c_proj.weight"))
      nn::init::normal_(p, 0.0, 0.02 / std::sqrt(2.0 * config.n_layer));
    else nn::init::normal_(p, 0.0, 0.02);
  }
}

Tensor GPT::forward(const Tensor& tokens, KVCache* cache) {
  EMBER_CHECK(tokens.dim() == 2 && tokens.dtype() == kInt64, "GPT: tokens must be int64 [B, T], got ",
              dtype_name(tokens.dtype()), " ", tokens.sizes());
  const int64_t past = cache ? cache->length() : 0, T = tokens.size(1);
  EMBER_CHECK(T > 0 && past + T <= config_.block_size, "GPT: ", past, " cached and ", T,
              " new tokens exceed block_size ", config_.block_size);
  Tensor positions = arange(past, past + T, 1, TensorOptions(kInt64).set_device(tokens.device()));
  Tensor x = (*wte)(tokens) + (*wpe)(positions);
  if (drop->p > 0) x = (*drop)(x);
  for (const auto& block : *h) x = std::static_pointer_cast<Block>(block)->forward(x, cache);
  if (cache) cache->advance(T);
  return linear((*ln_f)(x), wte->weight);  // the head shares the token embedding's matrix
}

std::pair<std::vector<Tensor>, std::vector<Tensor>> GPT::decay_groups() const {
  std::vector<Tensor> decay, no_decay;
  for (const auto& p : parameters()) (p.dim() >= 2 ? decay : no_decay).push_back(p);
  return {decay, no_decay};
}

// ---- generation -------------------------------------------------------------------------------

namespace {

void check_options(const GenerateOptions& o) {
  EMBER_CHECK(o.temperature >= 0 && std::isfinite(o.temperature), "generate: temperature must be >= 0, got ",
              o.temperature);
  EMBER_CHECK(o.top_p > 0 && o.top_p <= 1, "generate: top_p must be in (0, 1], got ", o.top_p);
  EMBER_CHECK(o.top_k >= 0, "generate: top_k must be >= 0, got ", o.top_k);
}

}  // namespace

int64_t sample_token(std::vector<float> logits, const GenerateOptions& o, double uniform) {
  EMBER_CHECK(!logits.empty(), "sample_token: no logits");
  check_options(o);
  const int64_t n = static_cast<int64_t>(logits.size());
  if (o.temperature == 0) return std::max_element(logits.begin(), logits.end()) - logits.begin();
  // Tokens by falling logit; keep top_k of them, then the fewest whose probabilities reach top_p.
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return logits[a] > logits[b]; });
  int64_t keep = o.top_k > 0 ? std::min(o.top_k, n) : n;
  std::vector<double> prob(keep);
  const double top = logits[order[0]];
  double total = 0;
  for (int64_t i = 0; i < keep; ++i) total += prob[i] = std::exp((logits[order[i]] - top) / o.temperature);
  if (o.top_p < 1) {
    double mass = 0;
    for (int64_t i = 0; i < keep; ++i) {
      mass += prob[i] / total;
      if (mass >= o.top_p) {
        keep = i + 1;
        break;
      }
    }
    total = std::accumulate(prob.begin(), prob.begin() + keep, 0.0);
  }
  double target = uniform * total;
  for (int64_t i = 0; i < keep; ++i) {
    target -= prob[i];
    if (target < 0) return order[i];
  }
  return order[keep - 1];
}

std::vector<int64_t> GPT::generate(const std::vector<int64_t>& prompt, int64_t max_new_tokens,
                                   const GenerateOptions& options) {
  EMBER_CHECK(!prompt.empty(), "generate: the prompt is empty (give at least one token)");
  EMBER_CHECK(max_new_tokens >= 0, "generate: max_new_tokens must be >= 0, got ", max_new_tokens);
  for (int64_t t : prompt)
    EMBER_CHECK(t >= 0 && t < config_.vocab_size, "generate: token ", t, " is outside the vocabulary of ",
                config_.vocab_size);
  check_options(options);
  autograd::NoGradGuard no_grad;
  const bool was_training = is_training();
  eval();
  const TensorOptions where = wte->weight.options();
  KVCache cache(config_, 1, where);
  std::mt19937_64 rng(options.seed);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  std::vector<int64_t> context = prompt, out;
  // Feeds `tokens` (the context's tail) and returns the logits after the last of them.
  auto feed = [&](std::vector<int64_t> tokens) {
    const int64_t n = static_cast<int64_t>(tokens.size());
    Tensor ids = tensor(tokens, {1, n}, TensorOptions(kInt64).set_device(where.device));
    Tensor logits =
        forward(ids, &cache).select(1, n - 1).reshape({-1}).to(kFloat32).to(Device::cpu()).contiguous();
    const float* p = logits.data_ptr<float>();
    return std::vector<float>(p, p + logits.numel());
  };
  const int64_t keep = std::max<int64_t>(1, config_.block_size / 2);
  auto tail = [&](int64_t n) { return std::vector<int64_t>(context.end() - n, context.end()); };
  std::vector<float> logits = feed(tail(std::min<int64_t>(context.size(), config_.block_size)));
  for (int64_t i = 0; i < max_new_tokens; ++i) {
    const int64_t next = sample_token(logits, options, uniform(rng));
    out.push_back(next);
    context.push_back(next);
    if (i + 1 == max_new_tokens) break;
    if (cache.length() == cache.capacity()) {  // full: start again from the last `keep` tokens
      cache.clear();
      logits = feed(tail(keep));
    } else {
      logits = feed({next});
    }
  }
  train(was_training);
  return out;
}

}  // namespace gpt
