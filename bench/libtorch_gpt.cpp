// The GPT of examples/gpt in LibTorch, for the gpt_step and gpt_generate rows: the same shapes,
// initialisation scheme, weight tying, pre-norm blocks and causal attention (LibTorch 1.13's
// _scaled_dot_product_attention), and the same key/value cache for generation, so that neither side
// is timed doing work the other skips.
#include <torch/torch.h>

#include "bench.h"

namespace ember::bench {
namespace {

namespace tn = torch::nn;

struct LtBlock : tn::Module {
  LtBlock(int64_t d, int64_t heads) : heads(heads) {
    ln_1 = register_module("ln_1", tn::LayerNorm(tn::LayerNormOptions({d})));
    c_attn = register_module("c_attn", tn::Linear(d, 3 * d));
    attn_proj = register_module("attn_proj", tn::Linear(d, d));
    ln_2 = register_module("ln_2", tn::LayerNorm(tn::LayerNormOptions({d})));
    c_fc = register_module("c_fc", tn::Linear(d, 4 * d));
    mlp_proj = register_module("mlp_proj", tn::Linear(4 * d, d));
  }
  // x [B, T, C]; with a cache (k_cache, v_cache [B, H, block, hd] holding `past` positions) the
  // new keys and values are written after the past ones and attention reads all of them.
  torch::Tensor forward(torch::Tensor x, torch::Tensor* k_cache = nullptr, torch::Tensor* v_cache = nullptr,
                        int64_t past = 0) {
    const int64_t B = x.size(0), T = x.size(1), C = x.size(2), hd = C / heads;
    auto qkv = c_attn(ln_1(x)).split(C, 2);
    auto heads_of = [&](const torch::Tensor& t) { return t.view({B, T, heads, hd}).transpose(1, 2); };
    auto q = heads_of(qkv[0]), k = heads_of(qkv[1]), v = heads_of(qkv[2]);
    bool causal = true;
    c10::optional<torch::Tensor> mask;
    if (k_cache) {
      k_cache->narrow(2, past, T).copy_(k);
      v_cache->narrow(2, past, T).copy_(v);
      k = k_cache->narrow(2, 0, past + T);
      v = v_cache->narrow(2, 0, past + T);
      if (past > 0) {
        causal = false;
        if (T > 1) mask = torch::ones({T, past + T}, torch::kBool).tril(past);
      }
    }
    auto y = std::get<0>(at::_scaled_dot_product_attention(q, k, v, mask, 0.0, false, causal));
    x = x + attn_proj(y.transpose(1, 2).reshape({B, T, C}));
    return x + mlp_proj(torch::gelu(c_fc(ln_2(x)), "tanh"));
  }
  int64_t heads;
  tn::LayerNorm ln_1{nullptr}, ln_2{nullptr};
  tn::Linear c_attn{nullptr}, attn_proj{nullptr}, c_fc{nullptr}, mlp_proj{nullptr};
};

struct LtGPT : tn::Module {
  LtGPT(int64_t vocab, int64_t block, int64_t layers, int64_t heads, int64_t d)
      : block(block), layers(layers), heads(heads), d(d) {
    wte = register_module("wte", tn::Embedding(vocab, d));
    wpe = register_module("wpe", tn::Embedding(block, d));
    for (int64_t l = 0; l < layers; ++l)
      blocks.push_back(
          register_module(std::string("h").append(std::to_string(l)), std::make_shared<LtBlock>(d, heads)));
    ln_f = register_module("ln_f", tn::LayerNorm(tn::LayerNormOptions({d})));
    torch::NoGradGuard no_grad;
    for (auto& item : named_parameters()) {
      const std::string& name = item.key();
      torch::Tensor& p = item.value();
      if (name.find("ln_") != std::string::npos) continue;
      if (name.ends_with(".bias")) p.zero_();
      else if (name.ends_with("proj.weight")) p.normal_(0.0, 0.02 / std::sqrt(2.0 * layers));
      else p.normal_(0.0, 0.02);
    }
  }
  torch::Tensor forward(const torch::Tensor& tokens, std::vector<torch::Tensor>* cache = nullptr,
                        int64_t past = 0) {
    const int64_t T = tokens.size(1);
    auto x = wte(tokens) + wpe(torch::arange(past, past + T, torch::kInt64));
    for (size_t l = 0; l < blocks.size(); ++l)
      x = cache ? blocks[l]->forward(x, &(*cache)[2 * l], &(*cache)[2 * l + 1], past) : blocks[l]->forward(x);
    return torch::nn::functional::linear(ln_f(x), wte->weight);
  }
  int64_t block, layers, heads, d;
  tn::Embedding wte{nullptr}, wpe{nullptr};
  std::vector<std::shared_ptr<LtBlock>> blocks;
  tn::LayerNorm ln_f{nullptr};
};

constexpr int64_t kVocab = 96, kBlock = 128, kLayers = 6, kHeads = 8, kDModel = 256;

}  // namespace

// A training step at batch 16 x block 128, AdamW with weight decay on the matrices only.
std::function<void()> libtorch_gpt_step() {
  auto model = std::make_shared<LtGPT>(kVocab, kBlock, kLayers, kHeads, kDModel);
  std::vector<torch::Tensor> decay, no_decay;
  for (auto& p : model->parameters()) (p.dim() >= 2 ? decay : no_decay).push_back(p);
  std::vector<torch::optim::OptimizerParamGroup> groups{
      {decay,
       std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(1e-3).weight_decay(0.1))},
      {no_decay,
       std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(1e-3).weight_decay(0.0))}};
  auto opt = std::make_shared<torch::optim::AdamW>(std::move(groups));
  auto x = torch::randint(kVocab, {16, kBlock}), y = torch::randint(kVocab, {16, kBlock});
  return [model, opt, x, y] {
    opt->zero_grad();
    auto logits = model->forward(x);
    torch::nn::functional::cross_entropy(logits.reshape({-1, kVocab}), y.reshape({-1})).backward();
    opt->step();
  };
}

// 256 tokens after a one-token prompt, greedy, batch 1, with the cache; when the cache is full it is
// rebuilt from the last block / 2 tokens, as examples/gpt does.
std::function<void()> libtorch_gpt_generate() {
  auto model = std::make_shared<LtGPT>(kVocab, kBlock, kLayers, kHeads, kDModel);
  model->eval();
  return [model] {
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> cache;
    for (int64_t l = 0; l < 2 * kLayers; ++l)
      cache.push_back(torch::zeros({1, kHeads, kBlock, kDModel / kHeads}));
    std::vector<int64_t> context{0};
    int64_t past = 0;
    auto feed = [&](std::vector<int64_t> tokens) {
      const int64_t n = static_cast<int64_t>(tokens.size());
      auto ids = torch::tensor(tokens, torch::kInt64).view({1, n});
      auto logits = model->forward(ids, &cache, past);
      past += n;
      return logits.select(1, n - 1).argmax(-1).item<int64_t>();
    };
    int64_t next = feed(context);
    for (int64_t i = 0; i < 256; ++i) {
      context.push_back(next);
      if (i + 1 == 256) break;
      if (past == kBlock) {
        past = 0;
        next = feed(std::vector<int64_t>(context.end() - kBlock / 2, context.end()));
      } else {
        next = feed({next});
      }
    }
  };
}

}  // namespace ember::bench
