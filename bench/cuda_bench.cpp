// The GPU bench on cuda:0: device copy bandwidth, elementwise add and row softmax
// in GB/s beside it, GEMM in TFLOP/s (float32, TF32 and bfloat16 through cuBLAS), fused attention
// forward and backward in TFLOP/s (B 8, heads 16, L 2048, head dim 64, causal, bfloat16 inputs), and
// the training steps at 8x the CPU batch. Every timed call ends with cuda::synchronize().
//   cuda_bench [--json FILE] [--small]
// --small shrinks every size so the simulated device (EMBER_CUDA_SIM=1) runs it in seconds: that is
// how CI checks the bench itself; its figures measure the simulator, not a GPU.
#include <cstdio>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <ember/ember.h>
#include <ember/kernels/cuda/cuda_backend.h>
#include "bench.h"

namespace {
using namespace ember;
namespace F = nn::functional;
const Device kCuda = Device::cuda(0);

struct Result {
  std::string name, unit;
  double ms, rate;
};

Result time_it(const std::string& name, const std::string& unit, double work,
               const std::function<void()>& run) {
  auto synced = [&] {
    run();
    cuda::synchronize();
  };
  const double s = bench::median_seconds(synced, 2, 5, 0.2);
  const double scale = unit == "TFLOP/s" ? 1e12 : unit == "GB/s" ? 1e9 : 1e3;
  return {name, unit, s * 1e3, work / s / scale};
}

// Attention FLOPs: two matmuls of L x S x D per head forward (QK^T and PV), halved when causal;
// backward is 2.5x the forward (five matmuls instead of two).
double attention_flops(int64_t b, int64_t h, int64_t l, int64_t d, bool causal) {
  return 4.0 * b * h * l * l * d * (causal ? 0.5 : 1.0);
}
}  // namespace

int main(int argc, char** argv) {
  std::string json_path;
  bool small = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--json" && i + 1 < argc) json_path = argv[++i];
    else if (arg == "--small") small = true;
  }
  if (!cuda::is_available()) {
    std::fprintf(stderr, "cuda_bench: no CUDA device: %s\n", cuda::unavailable_reason().c_str());
    return 1;
  }
  manual_seed(0);
  std::vector<Result> results;
  const TensorOptions f32 = TensorOptions(kFloat32).set_device(kCuda);

  // Bandwidth: copy, add, softmax rows.
  const int64_t n = small ? (1 << 14) : (int64_t(1) << 28);
  Tensor a = rand({n}, f32), b = rand({n}, f32), c = empty({n}, f32);
  results.push_back(time_it("copy_" + std::to_string(n), "GB/s", 8.0 * n, [&] { c.copy_(a); }));
  results.push_back(time_it("add_" + std::to_string(n), "GB/s", 12.0 * n, [&] { c = a + b; }));
  const int64_t rows = small ? 64 : 65536, cols = small ? 256 : 4096;
  Tensor logits = randn({rows, cols}, f32);
  results.push_back(time_it("softmax_" + std::to_string(rows) + "x" + std::to_string(cols), "GB/s",
                            8.0 * rows * cols, [&] { (void)softmax(logits, 1); }));

  // GEMM through cuBLAS.
  const int64_t m = small ? 64 : 8192;
  Tensor x = randn({m, m}, f32), y = randn({m, m}, f32);
  const double gemm_flops = 2.0 * m * m * m;
  results.push_back(
      time_it("sgemm_" + std::to_string(m), "TFLOP/s", gemm_flops, [&] { (void)matmul(x, y); }));
  cuda::set_allow_tf32(true);
  results.push_back(
      time_it("tf32_gemm_" + std::to_string(m), "TFLOP/s", gemm_flops, [&] { (void)matmul(x, y); }));
  cuda::set_allow_tf32(false);
  Tensor xh = x.to(kBFloat16), yh = y.to(kBFloat16);
  results.push_back(
      time_it("bf16_gemm_" + std::to_string(m), "TFLOP/s", gemm_flops, [&] { (void)matmul(xh, yh); }));

  // Fused attention, causal, bf16 inputs.
  const int64_t B = small ? 1 : 8, H = small ? 2 : 16, L = small ? 64 : 2048, D = 64;
  Tensor q = randn({B, H, L, D}, f32).to(kBFloat16).requires_grad_(),
         k = randn({B, H, L, D}, f32).to(kBFloat16).requires_grad_(),
         v = randn({B, H, L, D}, f32).to(kBFloat16).requires_grad_();
  const double fwd = attention_flops(B, H, L, D, true);
  results.push_back(time_it("attention_fwd_bf16", "TFLOP/s", fwd, [&] {
    autograd::NoGradGuard no_grad;
    (void)F::scaled_dot_product_attention(q, k, v, {}, 0.0, true);
  }));
  results.push_back(time_it("attention_fwd_bwd_bf16", "TFLOP/s", 3.5 * fwd, [&] {
    F::scaled_dot_product_attention(q, k, v, {}, 0.0, true).sum().backward();
  }));

  // Training steps at 8x the CPU batch (samples/s in thousands).
  const int64_t batch = small ? 16 : 1024;
  auto mlp = std::make_shared<nn::Sequential>(std::initializer_list<nn::ModulePtr>{
      std::make_shared<nn::Linear>(784, 256), std::make_shared<nn::ReLU>(),
      std::make_shared<nn::Linear>(256, 256), std::make_shared<nn::ReLU>(),
      std::make_shared<nn::Linear>(256, 10)});
  mlp->to(kCuda);
  optim::Adam adam(mlp->parameters(), optim::AdamOptions{.lr = 1e-3});
  Tensor inputs = randn({batch, 784}, f32), labels = randint(0, 10, {batch}).to(kCuda);
  results.push_back(time_it("mlp_step_b" + std::to_string(batch), "k samples/s", double(batch), [&] {
    adam.zero_grad();
    F::cross_entropy((*mlp)(inputs), labels).backward();
    adam.step();
  }));

  std::ofstream json;
  if (!json_path.empty()) json.open(json_path);
  std::printf("%-28s %12s %14s\n", "workload (cuda:0)", "median ms", "rate");
  for (const Result& r : results) {
    std::printf("%-28s %12.3f %10.2f %s\n", r.name.c_str(), r.ms, r.rate, r.unit.c_str());
    if (json)
      json << "{\"name\": \"" << r.name << "\", \"ms\": " << r.ms << ", \"rate\": " << r.rate
           << ", \"unit\": \"" << r.unit << "\", \"device\": \"" << kernels::backend_for(kCuda).name()
           << "\"}\n";
  }
  if (small)
    std::printf("(--small on %s: these figures time the simulator, not a GPU)\n",
                kernels::backend_for(kCuda).name());
  return 0;
}
