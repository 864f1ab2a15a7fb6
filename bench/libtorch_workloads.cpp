// The same workloads as bench_main.cpp, run by LibTorch (Debian's libtorch-dev), so the bench can
// print both columns from one process. Compiled only when LibTorch is found.
#include <torch/torch.h>

#include <map>

#include "bench.h"

namespace ember::bench {

bool libtorch_available() { return true; }

std::optional<double> libtorch_seconds(const std::string& name, int threads) {
  torch::manual_seed(0);
  torch::set_num_threads(threads);
  if (name == "mha_fwd_bwd") {
    auto mha = torch::nn::MultiheadAttention(torch::nn::MultiheadAttentionOptions(256, 8));
    auto x = torch::randn({128, 32, 256}).requires_grad_();
    return median_seconds([&] {
      auto out = std::get<0>(mha->forward(x, x, x, {}, /*need_weights=*/false));
      out.sum().backward();
      mha->zero_grad();
      x.mutable_grad() = torch::Tensor();
    }, 2, 5, 0.5);
  }
  torch::NoGradGuard no_grad;
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
  } else {
    return std::nullopt;
  }
  return median_seconds(run, 3, 10, 0.25);
}

}  // namespace ember::bench
