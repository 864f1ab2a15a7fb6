// ember's bench suite: the kernel workloads of shared/BENCH.md, each timed in ember and (when
// LibTorch is installed) in LibTorch in the same process, printed as a table and as JSON lines:
//   {"name": ..., "ember_ms": ..., "libtorch_ms": ... or null, "rate": ..., "unit": ...}
// Usage: ember_bench [--json FILE] [--filter SUBSTRING]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <thread>
#include <vector>

#include "bench.h"
#include "bench_models.h"
#include <ember/ember.h>

namespace ember::bench {
namespace {

struct Entry {
  Workload w;
  std::function<std::function<void()>()> make;  // builds inputs, returns the timed call
};

// ---- training steps: zero_grad, forward, cross-entropy, backward, optimizer step -------------
// The rate is samples/s (tokens/s for the sequence models), reported in thousands.

struct Mlp : nn::Module {
  Mlp() : nn::Module("Mlp") {
    body = register_module("body", std::make_shared<nn::Sequential>(std::initializer_list<nn::ModulePtr>{
        std::make_shared<nn::Linear>(784, 256), std::make_shared<nn::ReLU>(),
        std::make_shared<nn::Linear>(256, 256), std::make_shared<nn::ReLU>(),
        std::make_shared<nn::Linear>(256, 10)}));
  }
  Tensor forward(const Tensor& x) override { return (*body)(x); }
  std::shared_ptr<nn::Sequential> body;
};

std::shared_ptr<nn::Sequential> make_cnn() {
  nn::Conv2dOptions pad1;
  pad1.padding = {1, 1};
  return std::make_shared<nn::Sequential>(std::initializer_list<nn::ModulePtr>{
      std::make_shared<nn::Conv2d>(1, 32, 3, pad1), std::make_shared<nn::BatchNorm2d>(32),
      std::make_shared<nn::ReLU>(), std::make_shared<nn::MaxPool2d>(2),
      std::make_shared<nn::Conv2d>(32, 64, 3, pad1), std::make_shared<nn::BatchNorm2d>(64),
      std::make_shared<nn::ReLU>(), std::make_shared<nn::MaxPool2d>(2), std::make_shared<nn::Flatten>(),
      std::make_shared<nn::Linear>(3136, 128), std::make_shared<nn::ReLU>(),
      std::make_shared<nn::Linear>(128, 10)});
}

// A classifier step on (x, y) with the given model and optimizer.
template <class Opt, class OptOptions>
std::function<void()> classifier_step(std::shared_ptr<nn::Module> model, Tensor x, Tensor y, OptOptions o) {
  auto opt = std::make_shared<Opt>(model->parameters(), o);
  return [model, opt, x, y] {
    opt->zero_grad();
    Tensor loss = nn::functional::cross_entropy((*model)(x), y);
    loss.backward();
    opt->step();
  };
}


struct Seq2Seq : nn::Module {
  Seq2Seq() : nn::Module("Seq2Seq") {
    emb = register_module("emb", std::make_shared<nn::Embedding>(100, 128));
    nn::TransformerOptions o;
    o.d_model = 128;
    o.nhead = 4;
    o.num_encoder_layers = 2;
    o.num_decoder_layers = 2;
    o.dim_feedforward = 512;
    o.dropout = 0.0;
    model = register_module("model", std::make_shared<nn::Transformer>(o));
    head = register_module("head", std::make_shared<nn::Linear>(128, 100));
  }
  Tensor forward2(const Tensor& src, const Tensor& tgt_in) {
    nn::TransformerMasks m;
    m.tgt_mask = nn::Transformer::generate_square_subsequent_mask(tgt_in.size(0));
    return (*head)(model->forward((*emb)(src), (*emb)(tgt_in), m));
  }
  std::shared_ptr<nn::Embedding> emb;
  std::shared_ptr<nn::Transformer> model;
  std::shared_ptr<nn::Linear> head;
};

void add_training_steps(std::vector<Entry>& list) {
  list.push_back({{"mlp_step_b128", "k samples/s", 128e6}, [] {
                    return classifier_step<optim::Adam>(std::make_shared<Mlp>(), randn({128, 784}),
                                                        randint(10, {128}), optim::AdamOptions{.lr = 1e-3});
                  }});
  list.push_back({{"mlp_step_b8", "k samples/s", 8e6}, [] {
                    return classifier_step<optim::SGD>(std::make_shared<Mlp>(), randn({8, 784}),
                                                       randint(10, {8}), optim::SGDOptions{.lr = 1e-2});
                  }});
  list.push_back({{"cnn_step_b64", "k samples/s", 64e6}, [] {
                    return classifier_step<optim::Adam>(make_cnn(), randn({64, 1, 28, 28}),
                                                        randint(10, {64}), optim::AdamOptions{.lr = 1e-3});
                  }});
  list.push_back({{"encoder_step", "k tokens/s", 64 * 32 * 1e6}, [] {
                    auto model = std::make_shared<EncoderLM>();
                    auto opt = std::make_shared<optim::Adam>(model->parameters(), optim::AdamOptions{.lr = 1e-3});
                    Tensor tokens = randint(1000, {64, 32}), targets = randint(1000, {64, 32});
                    return std::function<void()>([model, opt, tokens, targets] {
                      opt->zero_grad();
                      Tensor logits = (*model)(tokens);
                      nn::functional::cross_entropy(logits.reshape({-1, 1000}), targets.reshape({-1})).backward();
                      opt->step();
                    });
                  }});
  list.push_back({{"seq2seq_step", "k tokens/s", 19 * 32 * 1e6}, [] {
                    auto model = std::make_shared<Seq2Seq>();
                    auto opt = std::make_shared<optim::Adam>(model->parameters(), optim::AdamOptions{.lr = 1e-3});
                    Tensor src = randint(100, {20, 32}), tgt = randint(100, {20, 32});
                    return std::function<void()>([model, opt, src, tgt] {
                      opt->zero_grad();
                      Tensor logits = model->forward2(src, tgt.narrow(0, 0, 19));
                      nn::functional::cross_entropy(logits.reshape({-1, 100}),
                                                    tgt.narrow(0, 1, 19).reshape({-1})).backward();
                      opt->step();
                    });
                  }});
}

std::vector<Entry> workloads() {
  std::vector<Entry> list;
  for (int64_t n : {256, 1024, 2048}) {
    list.push_back({{"sgemm_" + std::to_string(n), "GFLOP/s", 2.0 * n * n * n}, [n] {
                      Tensor a = randn({n, n}), b = randn({n, n});
                      return std::function<void()>([a, b] { mm(a, b); });
                    }});
  }
  const int64_t n16 = int64_t{1} << 24;
  list.push_back({{"add_16M", "GB/s", 3.0 * 4 * n16}, [n16] {
                    Tensor a = randn({n16}), b = randn({n16});
                    Tensor c = empty({n16});  // preallocated output
                    return std::function<void()>([a, b, c]() mutable { add_out(c, a, b); });
                  }});
  list.push_back({{"sum_16M", "GB/s", 4.0 * n16}, [n16] {
                    Tensor a = randn({n16});
                    return std::function<void()>([a] { sum(a); });
                  }});
  list.push_back({{"softmax_4096x1024", "GB/s", 2.0 * 4 * 4096 * 1024}, [] {
                    Tensor a = randn({4096, 1024});
                    return std::function<void()>([a] { softmax(a, -1); });
                  }});
  // MultiheadAttention(256, 8) self-attention on [L=128, B=32, 256], forward + backward of out.sum().
  // FLOPs: 4 projections (2*L*B*E*E each, x3 for fwd+bwd) + scores and context (2*B*H*L*L*hd each,
  // x3); the rate is reported against that count.
  {
    const double L = 128, B = 32, E = 256;
    const double flops = 3 * (4 * 2 * L * B * E * E + 2 * 2 * B * L * L * E);
    list.push_back({{"mha_fwd_bwd", "GFLOP/s", flops}, [] {
                      auto mha = std::make_shared<nn::MultiheadAttention>(256, 8);
                      Tensor x = randn({128, 32, 256}).requires_grad_();
                      return std::function<void()>([mha, x]() mutable {
                        nn::AttentionForward args;
                        args.need_weights = false;
                        Tensor out = mha->forward(x, x, x, args).first;
                        out.sum().backward();
                        mha->zero_grad();
                        x.mutable_grad() = Tensor();
                      });
                    }});
  }
  add_training_steps(list);
  return list;
}

}  // namespace
}  // namespace ember::bench

int main(int argc, char** argv) {
  using namespace ember::bench;
  std::string json_path, filter;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--json" && i + 1 < argc) json_path = argv[++i];
    else if (arg == "--filter" && i + 1 < argc) filter = argv[++i];
  }
  ember::manual_seed(0);
  std::ofstream json;
  if (!json_path.empty()) json.open(json_path);
  // Rounds alternate ember and LibTorch so that drift in the shared machine's speed hits both alike;
  // each side's figure is the median of its round medians. A pause after each side lets its worker
  // threads (OpenBLAS's keep spinning for ~0.1 s after a call) go idle before the other side runs.
  std::vector<Entry> selected;
  for (auto& e : workloads())
    if (filter.empty() || e.w.name.find(filter) != std::string::npos) selected.push_back(e);
  auto pause = [] { std::this_thread::sleep_for(std::chrono::milliseconds(150)); };
  auto median_of = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  constexpr int kRounds = 3;
  std::vector<double> ember_s;
  std::vector<std::optional<double>> torch_s;
  for (auto& e : selected) {
    auto run = e.make();
    std::vector<double> mine, theirs;
    for (int round = 0; round < kRounds; ++round) {
      mine.push_back(median_seconds(run, 3, 10, 0.25));
      pause();
      std::optional<double> best;
      for (int threads : {1, 2}) {  // LibTorch gets its best setting
        auto t = libtorch_seconds(e.w.name, threads);
        if (t && (!best || *t < *best)) best = t;
      }
      if (best) {
        theirs.push_back(*best);
        pause();
      }
    }
    ember_s.push_back(median_of(mine));
    torch_s.push_back(theirs.empty() ? std::nullopt : std::optional<double>(median_of(theirs)));
  }
  std::printf("%-20s %12s %14s %16s %10s\n", "workload", "ember ms", "libtorch ms", "ember rate",
              "speedup");
  for (size_t i = 0; i < selected.size(); ++i) {
    const Workload& w = selected[i].w;
    const double rate = w.work / ember_s[i] / 1e9;
    char torch_col[32] = "-", speed_col[32] = "-";
    if (torch_s[i]) {
      std::snprintf(torch_col, sizeof torch_col, "%.3f", *torch_s[i] * 1e3);
      std::snprintf(speed_col, sizeof speed_col, "%.2fx", *torch_s[i] / ember_s[i]);
    }
    std::printf("%-20s %12.3f %14s %8.1f %-7s %10s\n", w.name.c_str(), ember_s[i] * 1e3, torch_col,
                rate, w.unit.c_str(), speed_col);
    char line[512];
    std::snprintf(line, sizeof line,
                  "{\"name\": \"%s\", \"ember_ms\": %.4f, \"libtorch_ms\": %s, \"rate\": %.2f, "
                  "\"unit\": \"%s\"}",
                  w.name.c_str(), ember_s[i] * 1e3,
                  torch_s[i] ? std::to_string(*torch_s[i] * 1e3).c_str() : "null", rate,
                  w.unit.c_str());
    std::cout << line << std::endl;
    if (json) json << line << "\n";
  }
  if (!libtorch_available())
    std::printf("(LibTorch column empty: install Debian's libtorch-dev and rebuild to compare)\n");
}
