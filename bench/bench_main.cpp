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
#include <ember/ember.h>

namespace ember::bench {

double median_seconds(const std::function<void()>& run, int warmup, int min_iters,
                      double min_seconds) {
  using clock = std::chrono::steady_clock;
  for (int i = 0; i < warmup; ++i) run();
  std::vector<double> times;
  const auto start = clock::now();
  while (static_cast<int>(times.size()) < min_iters ||
         std::chrono::duration<double>(clock::now() - start).count() < min_seconds) {
    const auto t0 = clock::now();
    run();
    times.push_back(std::chrono::duration<double>(clock::now() - t0).count());
    if (times.size() >= 1000) break;
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

namespace {

struct Entry {
  Workload w;
  std::function<std::function<void()>()> make;  // builds inputs, returns the timed call
};

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
