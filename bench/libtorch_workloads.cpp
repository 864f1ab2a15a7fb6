// The same workloads as bench_main.cpp, built in LibTorch (Debian's libtorch-dev). The bench times
// them in child processes of its own, one per LibTorch configuration (see bench_main.cpp). Compiled
// only when LibTorch is found.
#include <torch/torch.h>

#include <cmath>
#include <map>

#include "bench.h"

namespace ember::bench {

bool libtorch_available() { return true; }

std::function<void()> libtorch_gpt_step();  // libtorch_gpt.cpp
std::function<void()> libtorch_gpt_generate();

std::function<void()> libtorch_workload(const std::string& name, int threads) {
  torch::manual_seed(0);
  torch::set_num_threads(threads);
  if (name == "gpt_step") return libtorch_gpt_step();
  if (name == "gpt_generate") return libtorch_gpt_generate();
  if (name == "mha_fwd_bwd") {
    auto mha = torch::nn::MultiheadAttention(torch::nn::MultiheadAttentionOptions(256, 8));
    auto x = torch::randn({128, 32, 256}).requires_grad_();
    return [mha, x]() mutable {
      auto out = std::get<0>(mha->forward(x, x, x, {}, /*need_weights=*/false));
      out.sum().backward();
      mha->zero_grad();
      x.mutable_grad() = torch::Tensor();
    };
  }
  // Training steps, the same models as bench_main.cpp.
  auto mlp = [] {
    return torch::nn::Sequential(torch::nn::Linear(784, 256), torch::nn::ReLU(), torch::nn::Linear(256, 256),
                                 torch::nn::ReLU(), torch::nn::Linear(256, 10));
  };
  auto classifier = [&](torch::nn::Sequential model, torch::Tensor x, torch::Tensor y,
                        std::shared_ptr<torch::optim::Optimizer> opt) -> std::function<void()> {
    return [model, x, y, opt]() mutable {
      opt->zero_grad();
      torch::nn::functional::cross_entropy(model->forward(x), y).backward();
      opt->step();
    };
  };
  if (name == "mlp_step_b128") {
    auto m = mlp();
    return classifier(m, torch::randn({128, 784}), torch::randint(10, {128}),
                      std::make_shared<torch::optim::Adam>(m->parameters(), torch::optim::AdamOptions(1e-3)));
  }
  if (name == "mlp_step_b8") {
    auto m = mlp();
    return classifier(m, torch::randn({8, 784}), torch::randint(10, {8}),
                      std::make_shared<torch::optim::SGD>(m->parameters(), torch::optim::SGDOptions(1e-2)));
  }
  if (name == "cnn_step_b64") {
    namespace tn = torch::nn;
    tn::Sequential m(tn::Conv2d(tn::Conv2dOptions(1, 32, 3).padding(1)), tn::BatchNorm2d(32), tn::ReLU(),
                     tn::MaxPool2d(2), tn::Conv2d(tn::Conv2dOptions(32, 64, 3).padding(1)),
                     tn::BatchNorm2d(64), tn::ReLU(), tn::MaxPool2d(2), tn::Flatten(), tn::Linear(3136, 128),
                     tn::ReLU(), tn::Linear(128, 10));
    return classifier(m, torch::randn({64, 1, 28, 28}), torch::randint(10, {64}),
                      std::make_shared<torch::optim::Adam>(m->parameters(), torch::optim::AdamOptions(1e-3)));
  }
  if (name == "encoder_step") {
    namespace tn = torch::nn;
    tn::Embedding emb(1000, 128);
    tn::TransformerEncoder enc(tn::TransformerEncoderOptions(
        tn::TransformerEncoderLayerOptions(128, 4).dim_feedforward(512).dropout(0.0), 2));
    tn::Linear head(128, 1000);
    std::vector<torch::Tensor> params;
    for (auto* mod : std::vector<tn::Module*>{emb.get(), enc.get(), head.get()})
      for (auto& p : mod->parameters()) params.push_back(p);
    auto opt = std::make_shared<torch::optim::Adam>(params, torch::optim::AdamOptions(1e-3));
    auto tokens = torch::randint(1000, {64, 32}), targets = torch::randint(1000, {64, 32});
    return [emb, enc, head, opt, tokens, targets]() mutable {
      opt->zero_grad();
      auto logits = head(enc(emb(tokens)));
      torch::nn::functional::cross_entropy(logits.reshape({-1, 1000}), targets.reshape({-1})).backward();
      opt->step();
    };
  }
  if (name == "seq2seq_step") {
    namespace tn = torch::nn;
    tn::Embedding emb(100, 128);
    tn::Transformer model(tn::TransformerOptions(128, 4)
                              .num_encoder_layers(2)
                              .num_decoder_layers(2)
                              .dim_feedforward(512)
                              .dropout(0.0));
    tn::Linear head(128, 100);
    std::vector<torch::Tensor> params;
    for (auto* mod : std::vector<tn::Module*>{emb.get(), model.get(), head.get()})
      for (auto& p : mod->parameters()) params.push_back(p);
    auto opt = std::make_shared<torch::optim::Adam>(params, torch::optim::AdamOptions(1e-3));
    auto src = torch::randint(100, {20, 32}), tgt = torch::randint(100, {20, 32});
    auto mask = tn::TransformerImpl::generate_square_subsequent_mask(19);
    return [emb, model, head, opt, src, tgt, mask]() mutable {
      opt->zero_grad();
      auto out = model->forward(emb(src), emb(tgt.narrow(0, 0, 19)), torch::Tensor(), mask);
      torch::nn::functional::cross_entropy(head(out).reshape({-1, 100}), tgt.narrow(0, 1, 19).reshape({-1}))
          .backward();
      opt->step();
    };
  }
  // Kernel workloads run without autograd, as ember's do (its inputs do not require grad).
  std::function<void()> run;
  if (name.rfind("sgemm_", 0) == 0) {
    const int64_t n = std::stoll(name.substr(6));
    auto a = torch::randn({n, n}), b = torch::randn({n, n});
    run = [a, b] { torch::mm(a, b); };
  } else if (name == "add_16M") {
    auto a = torch::randn({1 << 24}), b = torch::randn({1 << 24}), c = torch::empty({1 << 24});
    run = [a, b, c]() mutable { torch::add_out(c, a, b); };
  } else if (name == "sum_16M") {
    auto a = torch::randn({1 << 24});
    run = [a] { a.sum(); };
  } else if (name == "softmax_4096x1024") {
    auto a = torch::randn({4096, 1024});
    run = [a] { torch::softmax(a, -1); };
  }
  return run;
}

// The probe: a product checked against plain loops in double precision (OpenBLAS computes wrong
// results with some core types on some CPUs), then timed at 1024.
std::optional<double> libtorch_checked_gemm_gflops() {
  const int64_t n = 257;
  auto a = torch::empty({n, n}), b = torch::empty({n, n});
  auto pa = a.accessor<float, 2>(), pb = b.accessor<float, 2>();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      pa[i][j] = static_cast<float>(std::sin(0.37 * i + 0.11 * j));
      pb[i][j] = static_cast<float>(std::cos(0.23 * i - 0.05 * j));
    }
  auto c = torch::mm(a, b);
  auto pc = c.accessor<float, 2>();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double ref = 0;
      for (int64_t p = 0; p < n; ++p) ref += double(pa[i][p]) * double(pb[p][j]);
      if (std::abs(pc[i][j] - ref) > 1e-3 * (1 + std::abs(ref))) return std::nullopt;
    }
  auto x = torch::randn({1024, 1024}), y = torch::randn({1024, 1024});
  const double s = median_seconds([&] { torch::mm(x, y); }, 3, 10, 0.3);
  return 2.0 * 1024 * 1024 * 1024 / s / 1e9;
}

}  // namespace ember::bench
