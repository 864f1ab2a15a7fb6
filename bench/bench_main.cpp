// ember's bench suite: kernel workloads and training steps, each timed in ember and (when LibTorch is
// installed) in LibTorch, printed as a table, JSON lines, markdown and a chart (`--help` for usage).
//
// How the figures are made fair and repeatable:
//   * each library runs in its own child process of this program (`--side ember|libtorch`), so
//     neither one's worker threads spin during the other's timing and neither inherits the other's
//     allocator or cache state;
//   * LibTorch runs under every configuration that is valid here: OPENBLAS_CORETYPE unset, as the
//     environment sets it, and each core type this CPU's instruction set can run, each with one
//     thread and with all cores. A probe (cached per CPU in the build folder) drops the core types
//     whose GEMM crashes or computes a wrong product; each row's comparator is LibTorch's best
//     median over the rest, and the table names the configuration that won;
//   * a side's figure is the fastest of several rounds, each the median of repeated calls after a
//     warm-up; the spread of the round medians is printed beside it.
#include <unistd.h>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include <ember/kernels/cpu/cpu_capability.h>
#include <nlohmann/json.hpp>

#include <ember/ember.h>
#include "bench.h"
#include "bench_models.h"
#include "gpt_model.h"

namespace ember::bench {
namespace {

using Json = nlohmann::ordered_json;  // keys in the order written, as the table reads

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
                    return classifier_step<optim::Adam>(make_cnn(), randn({64, 1, 28, 28}), randint(10, {64}),
                                                        optim::AdamOptions{.lr = 1e-3});
                  }});
  list.push_back(
      {{"encoder_step", "k tokens/s", 64 * 32 * 1e6}, [] {
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
  list.push_back(
      {{"seq2seq_step", "k tokens/s", 19 * 32 * 1e6}, [] {
         auto model = std::make_shared<Seq2Seq>();
         auto opt = std::make_shared<optim::Adam>(model->parameters(), optim::AdamOptions{.lr = 1e-3});
         Tensor src = randint(100, {20, 32}), tgt = randint(100, {20, 32});
         return std::function<void()>([model, opt, src, tgt] {
           opt->zero_grad();
           Tensor logits = model->forward2(src, tgt.narrow(0, 0, 19));
           nn::functional::cross_entropy(logits.reshape({-1, 100}), tgt.narrow(0, 1, 19).reshape({-1}))
               .backward();
           opt->step();
         });
       }});
}

// The GPT of examples/gpt at 6 layers, d_model 256, 8 heads, block 128, 96 characters: a training
// step at batch 16 (AdamW, weight decay on the matrices only), and generation of 256 tokens after a
// one-token prompt with the key/value cache, greedy so that both sides do the same work.
gpt::GPTConfig bench_gpt_config() {
  return {.vocab_size = 96, .block_size = 128, .n_layer = 6, .n_head = 8, .d_model = 256};
}

void add_gpt(std::vector<Entry>& list) {
  list.push_back({{"gpt_step", "k tokens/s", 16 * 128 * 1e6}, [] {
                    auto model = std::make_shared<gpt::GPT>(bench_gpt_config());
                    auto [decay, no_decay] = model->decay_groups();
                    auto opt = std::make_shared<optim::AdamW>(
                        std::vector<optim::ParamGroup>{{decay, {.weight_decay = 0.1}},
                                                       {no_decay, {.weight_decay = 0.0}}},
                        optim::AdamWOptions{.lr = 1e-3});
                    Tensor x = randint(96, {16, 128}), y = randint(96, {16, 128});
                    return std::function<void()>([model, opt, x, y] {
                      opt->zero_grad();
                      Tensor logits = model->forward(x);
                      nn::functional::cross_entropy(logits.reshape({-1, 96}), y.reshape({-1})).backward();
                      opt->step();
                    });
                  }});
  list.push_back({{"gpt_generate", "k tokens/s", 256 * 1e6}, [] {
                    auto model = std::make_shared<gpt::GPT>(bench_gpt_config());
                    return std::function<void()>([model] { model->generate({0}, 256, {.temperature = 0}); });
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
  add_gpt(list);
  return list;
}

// ---- command line ----------------------------------------------------------------------------

struct Options {
  std::vector<std::string> filters;  // substrings; a workload runs when it contains any of them
  std::string json_path, markdown_path, plot_path;
  std::string side;    // child mode: "ember" or "libtorch"
  int threads = 0;     // child mode, LibTorch's thread count
  bool probe = false;  // child mode: LibTorch's checked GEMM probe
  bool reprobe = false;
  bool with_libtorch = true;
  int rounds = 5;
};

const char* kUsage = R"(usage: ember_bench [options]
Times each workload in ember and in LibTorch (when installed), each in its own process, and prints
a table: ember ms, LibTorch's best ms over its configurations, the winning configuration, the
speedup (LibTorch ms / ember ms) and how close ember comes to the machine's limits.

  --filter LIST      comma-separated substrings: run the workloads whose name contains one
                     (e.g. --filter sgemm,mlp_step_b8); default: all
  --json FILE        write one JSON line per workload to FILE (also printed)
  --markdown FILE    write the table, the machine and its limits as markdown
  --plot FILE.png    draw the speedups as a bar chart (python3 + matplotlib)
  --rounds N         timing rounds per workload and side (default 5)
  --no-libtorch      time ember only
  --reprobe          probe LibTorch's configurations again instead of using the cached probe
  --list             print the workload names and exit
  --help             this text
Environment: EMBER_CPU_CAPABILITY=avx512|avx2|default caps the CPU kernels' level (ember side).
)";

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

Options parse(int argc, char** argv) {
  Options o;
  auto value = [&](int& i) -> std::string {
    if (i + 1 >= argc) {
      std::fprintf(stderr, "ember_bench: %s needs a value\n%s", argv[i], kUsage);
      std::exit(2);
    }
    return argv[++i];
  };
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::printf("%s", kUsage);
      std::exit(0);
    } else if (arg == "--filter") {
      for (auto& f : split_list(value(i))) o.filters.push_back(f);
    } else if (arg == "--json") {
      o.json_path = value(i);
    } else if (arg == "--markdown") {
      o.markdown_path = value(i);
    } else if (arg == "--plot") {
      o.plot_path = value(i);
    } else if (arg == "--rounds") {
      o.rounds = std::max(1, std::atoi(value(i).c_str()));
    } else if (arg == "--side") {
      o.side = value(i);
    } else if (arg == "--threads") {
      o.threads = std::atoi(value(i).c_str());
    } else if (arg == "--probe") {
      o.probe = true;
    } else if (arg == "--reprobe") {
      o.reprobe = true;
    } else if (arg == "--no-libtorch") {
      o.with_libtorch = false;
    } else if (arg == "--list") {
      for (auto& e : workloads()) std::printf("%s\n", e.w.name.c_str());
      std::exit(0);
    } else {
      std::fprintf(stderr, "ember_bench: unknown argument %s\n%s", arg.c_str(), kUsage);
      std::exit(2);
    }
  }
  return o;
}

std::vector<Entry> selected_workloads(const Options& o) {
  std::vector<Entry> selected;
  for (auto& e : workloads()) {
    bool keep = o.filters.empty();
    for (auto& f : o.filters) keep = keep || e.w.name.find(f) != std::string::npos;
    if (keep) selected.push_back(e);
  }
  return selected;
}

// ---- child mode: one side, one configuration -------------------------------------------------

struct Timing {
  double ms = 0;
  double spread = 0;  // (slowest - fastest) / fastest of the round medians
};

// The figure is the fastest round's median: on a shared machine other work only ever adds time, and
// a disturbance that lasts a round or two moves a median of rounds but not the fastest one.
Timing time_rounds(const std::function<void()>& run, int rounds) {
  median_seconds(run, 3, 3, 0.2);  // warm-up: caches, allocator pools, thread teams
  std::vector<double> medians;
  for (int r = 0; r < rounds; ++r) medians.push_back(median_seconds(run, 0, 5, 0.2));
  std::sort(medians.begin(), medians.end());
  const double best = medians.front();
  return {best * 1e3, (medians.back() - best) / best};
}

// Prints `{"name": ..., "ms": ..., "spread": ...}` per workload on stdout, for the parent to read.
int run_side(const Options& o) {
  ember::manual_seed(0);
  if (o.side == "libtorch" && o.probe) {
    auto gflops = libtorch_checked_gemm_gflops();
    std::printf("%s\n", Json{{"probe_gflops", gflops ? Json(*gflops) : Json(nullptr)}}.dump().c_str());
    return 0;
  }
  for (auto& e : selected_workloads(o)) {
    std::function<void()> run = o.side == "ember" ? e.make() : libtorch_workload(e.w.name, o.threads);
    if (!run) continue;
    const Timing t = time_rounds(run, o.rounds);
    std::printf("%s\n", Json{{"name", e.w.name}, {"ms", t.ms}, {"spread", t.spread}}.dump().c_str());
    std::fflush(stdout);
  }
  return 0;
}

// ---- parent: children, configurations, the table ---------------------------------------------

std::string self_path() {
  char buf[4096];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, n) : std::string("ember_bench");
}

// A child's output line as JSON; null for anything else it printed.
Json parse_line(const std::string& line) { return Json::parse(line, nullptr, /*allow_exceptions=*/false); }

// Runs this program as a child with `env_prefix` (an `env ...` list) and `args`; returns its stdout
// lines, or nullopt when it crashed or failed.
std::optional<std::vector<std::string>> run_child(const std::string& env_prefix, const std::string& args) {
  const std::string cmd = "env " + env_prefix + " '" + self_path() + "' " + args + " 2>/dev/null";
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) return std::nullopt;
  std::vector<std::string> lines;
  char buf[1024];
  while (std::fgets(buf, sizeof buf, pipe)) {
    std::string line(buf);
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    lines.push_back(line);
  }
  if (pclose(pipe) != 0) return std::nullopt;
  return lines;
}

std::string filter_arg(const Options& o) {
  std::string list;
  for (auto& e : selected_workloads(o)) list += (list.empty() ? "" : ",") + e.w.name;
  return "--filter " + list + " --rounds " + std::to_string(o.rounds);
}

std::map<std::string, Timing> parse_timings(const std::vector<std::string>& lines) {
  std::map<std::string, Timing> out;
  for (auto& line : lines) {
    const Json j = parse_line(line);
    if (j.is_object() && j.contains("ms"))
      out[j["name"].get<std::string>()] = {j["ms"], j.value("spread", 0.0)};
  }
  return out;
}

// One LibTorch configuration: a core type for OpenBLAS ("" = unset) and a thread count.
struct TorchConfig {
  std::string coretype;
  int threads;
  std::string label() const {
    return (coretype.empty() ? std::string("coretype unset") : coretype) + ", " + std::to_string(threads) +
           (threads == 1 ? " thread" : " threads");
  }
  std::string env() const {
    std::string e = coretype.empty() ? "-u OPENBLAS_CORETYPE" : "OPENBLAS_CORETYPE=" + coretype;
    const std::string t = std::to_string(threads);
    return e + " OPENBLAS_NUM_THREADS=" + t + " OMP_NUM_THREADS=" + t;
  }
};

// The core types worth trying on this CPU: OpenBLAS's kernels for the instruction sets it has.
std::vector<std::string> candidate_coretypes() {
  std::vector<std::string> c = {""};
  if (const char* set = std::getenv("OPENBLAS_CORETYPE"); set && *set) c.push_back(set);
  const auto level = kernels::cpu_supported_capability();
  if (level >= kernels::CpuCapability::Avx2) c.insert(c.end(), {"Haswell", "Zen"});
  if (level >= kernels::CpuCapability::Avx512)
    c.insert(c.end(), {"SkylakeX", "Cooperlake", "SapphireRapids"});
  std::vector<std::string> unique;
  for (auto& t : c)
    if (std::find(unique.begin(), unique.end(), t) == unique.end()) unique.push_back(t);
  return unique;
}

// Probes each candidate core type once per CPU (cached beside the executable): a core type that
// crashes or computes a wrong GEMM is dropped.
std::vector<std::string> valid_coretypes(const Options& o) {
  const std::string cache = self_path() + ".libtorch-probe";
  const std::string cpu = kernels::cpu_model();
  std::vector<std::string> valid;
  if (!o.reprobe) {
    std::ifstream in(cache);
    std::string first;
    if (std::getline(in, first) && first == "cpu " + cpu) {
      for (std::string line; std::getline(in, line);)
        if (line.rfind("ok ", 0) == 0) valid.push_back(line.substr(3) == "-" ? "" : line.substr(3));
      if (!valid.empty()) return valid;
    }
  }
  std::ofstream out(cache + ".tmp");
  out << "cpu " << cpu << "\n";
  for (auto& type : candidate_coretypes()) {
    TorchConfig probe{type, static_cast<int>(std::thread::hardware_concurrency())};
    auto lines = run_child(probe.env(), "--side libtorch --probe");
    std::optional<double> gflops;
    if (lines && !lines->empty()) {
      const Json j = parse_line(lines->front());
      if (j.is_object() && j["probe_gflops"].is_number()) gflops = j["probe_gflops"].get<double>();
    }
    std::printf("  probe %-16s %s\n", type.empty() ? "unset" : type.c_str(),
                gflops ? (std::to_string(static_cast<int>(*gflops)) + " GFLOP/s, correct").c_str()
                       : "crashed or wrong: skipped");
    out << (gflops ? "ok " : "bad ") << (type.empty() ? "-" : type) << "\n";
    if (gflops) valid.push_back(type);
  }
  out.close();
  std::rename((cache + ".tmp").c_str(), cache.c_str());
  return valid;
}

struct Row {
  Workload w;
  Timing ember;
  std::optional<Timing> torch;
  std::string torch_config;
};

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

// The fraction of the machine's limit a row reaches, where the row has one (FLOP- or byte-bound).
std::string limit_fraction(const Row& r, const MachineLimits& lim) {
  const double rate = r.w.work / (r.ember.ms / 1e3) / 1e9;
  if (r.w.unit == "GFLOP/s" && lim.fma_gflops > 0) return fmt("%.0f%% FMA peak", 100 * rate / lim.fma_gflops);
  if (r.w.unit == "GB/s" && lim.read_gbs > 0) return fmt("%.0f%% read BW", 100 * rate / lim.read_gbs);
  return "-";
}

std::string json_line(const Row& r, const std::string& cpu, const char* level, const MachineLimits& lim) {
  const Json none(nullptr);
  Json j;
  j["name"] = r.w.name;
  j["ember_ms"] = r.ember.ms;
  j["ember_spread"] = r.ember.spread;
  j["libtorch_ms"] = r.torch ? Json(r.torch->ms) : none;
  j["libtorch_spread"] = r.torch ? Json(r.torch->spread) : none;
  j["libtorch_config"] = r.torch_config;
  j["speedup"] = r.torch ? Json(r.torch->ms / r.ember.ms) : none;
  j["rate"] = r.w.work / (r.ember.ms / 1e3) / 1e9;
  j["unit"] = r.w.unit;
  j["limit"] = limit_fraction(r, lim);
  j["cpu"] = cpu;
  j["capability"] = level;
  return j.dump();
}

void write_markdown(const std::string& path, const std::vector<Row>& rows, const std::string& cpu,
                    const char* level, const MachineLimits& lim, size_t configs) {
  std::ofstream md(path + ".tmp");
  md << "Machine: " << cpu << ", " << std::thread::hardware_concurrency()
     << " cores; ember's CPU kernels at level `" << level
     << "`; limits measured by the bench: " << fmt("%.0f", lim.fma_gflops) << " GFLOP/s float32 FMA, "
     << fmt("%.1f", lim.read_gbs) << " GB/s streaming read, " << fmt("%.1f", lim.copy_gbs)
     << " GB/s streaming copy. LibTorch: best figure over " << configs
     << " configurations (OpenBLAS core type x threads), each library in its own process. Spread: "
        "(slowest - fastest) / fastest of the round medians.\n\n"
     << "| workload | ember ms | spread | LibTorch ms | spread | LibTorch's best configuration | speedup | "
        "ember rate | of the limit |\n"
     << "|---|---:|---:|---:|---:|---|---:|---:|---|\n";
  for (auto& r : rows) {
    const double rate = r.w.work / (r.ember.ms / 1e3) / 1e9;
    md << "| " << r.w.name << " | " << fmt("%.3f", r.ember.ms) << " | " << fmt("%.0f%%", 100 * r.ember.spread)
       << " | " << (r.torch ? fmt("%.3f", r.torch->ms) : "-") << " | "
       << (r.torch ? fmt("%.0f%%", 100 * r.torch->spread) : "-") << " | " << (r.torch ? r.torch_config : "-")
       << " | " << (r.torch ? fmt("%.2fx", r.torch->ms / r.ember.ms) : "-") << " | " << fmt("%.1f ", rate)
       << r.w.unit << " | " << limit_fraction(r, lim) << " |\n";
  }
  md.close();
  std::rename((path + ".tmp").c_str(), path.c_str());
}

int run_parent(const Options& o) {
  const std::string cpu = kernels::cpu_model();
  const char* level = kernels::cpu_capability_name(kernels::cpu_capability());
  std::printf("ember bench on %s (%u cores), CPU kernels at level %s\n", cpu.c_str(),
              std::thread::hardware_concurrency(), level);
  const MachineLimits lim = measure_machine_limits();
  std::printf(
      "machine limits: %.0f GFLOP/s float32 FMA, %.1f GB/s streaming read, %.1f GB/s streaming copy\n",
      lim.fma_gflops, lim.read_gbs, lim.copy_gbs);
  const std::string args = filter_arg(o);
  auto ember_lines = run_child("", "--side ember " + args);
  if (!ember_lines) {
    std::fprintf(stderr, "ember_bench: the ember side failed; run it alone: %s --side ember %s\n",
                 self_path().c_str(), args.c_str());
    return 1;
  }
  const auto ember = parse_timings(*ember_lines);
  std::map<std::string, std::pair<Timing, std::string>> best;
  size_t configs = 0;
  if (o.with_libtorch && libtorch_available()) {
    std::printf("LibTorch configurations:\n");
    std::set<int> thread_counts = {1, static_cast<int>(std::thread::hardware_concurrency())};
    for (auto& type : valid_coretypes(o)) {
      for (int threads : thread_counts) {
        TorchConfig c{type, threads};
        auto lines = run_child(c.env(), "--side libtorch --threads " + std::to_string(threads) + " " + args);
        std::printf("  %-32s %s\n", c.label().c_str(), lines ? "timed" : "failed: skipped");
        if (!lines) continue;
        ++configs;
        for (auto& [name, t] : parse_timings(*lines))
          if (!best.count(name) || t.ms < best[name].first.ms) best[name] = {t, c.label()};
      }
    }
  }
  std::vector<Row> rows;
  for (auto& e : selected_workloads(o)) {
    if (!ember.count(e.w.name)) continue;
    Row r{e.w, ember.at(e.w.name), std::nullopt, ""};
    if (best.count(e.w.name)) r.torch = best[e.w.name].first, r.torch_config = best[e.w.name].second;
    rows.push_back(r);
  }
  std::printf("\n%-18s %10s %7s %12s %7s %9s %14s  %-16s %s\n", "workload", "ember ms", "spread",
              "libtorch ms", "spread", "speedup", "ember rate", "of the limit", "libtorch config");
  for (auto& r : rows) {
    const double rate = r.w.work / (r.ember.ms / 1e3) / 1e9;
    std::printf("%-18s %10.3f %6.0f%% %12s %7s %9s %8.1f %-5s  %-16s %s\n", r.w.name.c_str(), r.ember.ms,
                100 * r.ember.spread, r.torch ? fmt("%.3f", r.torch->ms).c_str() : "-",
                r.torch ? fmt("%.0f%%", 100 * r.torch->spread).c_str() : "-",
                r.torch ? fmt("%.2fx", r.torch->ms / r.ember.ms).c_str() : "-", rate,
                r.w.unit.substr(0, 5).c_str(), limit_fraction(r, lim).c_str(), r.torch_config.c_str());
  }
  std::ofstream json;
  if (!o.json_path.empty()) json.open(o.json_path);
  for (auto& r : rows) {
    const std::string line = json_line(r, cpu, level, lim);
    std::printf("%s\n", line.c_str());
    if (json) json << line << "\n";
  }
  json.close();
  if (!o.markdown_path.empty()) write_markdown(o.markdown_path, rows, cpu, level, lim, configs);
  if (!o.plot_path.empty()) {
    std::string data = o.json_path;
    if (data.empty()) {
      data = o.plot_path + ".jsonl";
      std::ofstream tmp(data);
      for (auto& r : rows) tmp << json_line(r, cpu, level, lim) << "\n";
    }
    // Debian's interpreter: matplotlib comes from python3-matplotlib (scripts/setup-deps.sh --bench).
    const std::string cmd =
        "/usr/bin/python3 '" EMBER_BENCH_PLOT_SCRIPT "' '" + data + "' '" + o.plot_path + "'";
    if (std::system(cmd.c_str()) != 0)
      std::fprintf(stderr, "ember_bench: the plot failed (%s)\n", cmd.c_str());
  }
  if (!libtorch_available())
    std::printf("(LibTorch column empty: install Debian's libtorch-dev and rebuild to compare)\n");
  return 0;
}

}  // namespace
}  // namespace ember::bench

int main(int argc, char** argv) {
  using namespace ember::bench;
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // progress shows as it happens, also through a pipe
  const Options o = parse(argc, argv);
  return o.side.empty() ? run_parent(o) : run_side(o);
}
