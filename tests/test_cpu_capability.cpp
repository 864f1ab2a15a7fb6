// The CPU kernels' instruction-set levels (kernels/cpu/cpu_isa.h): the level in use follows the CPU
// and EMBER_CPU_CAPABILITY, and every level this machine can run gives the reference backend's
// results on the shapes that reach its own code (packed GEMM blocks and edges, streaming stores,
// vectorised rows and their tails). ctest also runs the op tests once per level (tests/CMakeLists.txt).
#include <cstdlib>
#include <cstring>

#include <ember/kernels/cpu/cpu_backend.h>
#include "helpers.h"

using namespace ember;
using kernels::CpuCapability;

namespace {

std::vector<CpuCapability> runnable_levels() {
  std::vector<CpuCapability> levels;
  for (CpuCapability c : {CpuCapability::Default, CpuCapability::Avx2, CpuCapability::Avx512})
    if (kernels::cpu_capability_available(c)) levels.push_back(c);
  return levels;
}

// f on the CPU backend of each runnable level against f on the reference backend.
void check_every_level(const std::function<Tensor()>& f, double rtol, double atol) {
  Tensor ref;
  {
    kernels::ScopedBackend use(DeviceType::CPU, kernels::reference_backend());
    ref = f();
  }
  for (CpuCapability level : runnable_levels()) {
    INFO("level " << kernels::cpu_capability_name(level));
    kernels::ScopedBackend use(DeviceType::CPU, kernels::cpu_backend_for(level));
    Tensor got = f();
    REQUIRE(got.sizes() == ref.sizes());
    CHECK(allclose(got, ref, rtol, atol, /*equal_nan=*/true));
  }
}

}  // namespace

TEST_CASE("cpu capability: the level in use follows the CPU and EMBER_CPU_CAPABILITY") {
  const CpuCapability in_use = kernels::cpu_capability();
  CHECK(kernels::cpu_capability_available(in_use));
  CHECK(&kernels::cpu_backend() == &kernels::cpu_backend_for(in_use));
  const char* cap = std::getenv("EMBER_CPU_CAPABILITY");
  if (cap && *cap) {
    // Asked for a level the CPU has: exactly that one runs.
    for (CpuCapability c : {CpuCapability::Default, CpuCapability::Avx2, CpuCapability::Avx512})
      if (std::strcmp(cap, kernels::cpu_capability_name(c)) == 0 && kernels::cpu_capability_available(c))
        CHECK(in_use == c);
  } else {
    CHECK(in_use == kernels::cpu_supported_capability());
  }
  // The portable level is always there; a level above what the CPU supports is refused clearly.
  CHECK(kernels::cpu_capability_available(CpuCapability::Default));
  if (!kernels::cpu_capability_available(CpuCapability::Avx512))
    CHECK_THROWS_WITH_AS(kernels::cpu_backend_for(CpuCapability::Avx512),
                         doctest::Contains("avx512 kernels cannot run here"), Error);
  CHECK(!kernels::cpu_model().empty());
  CHECK(kernels::cpu_cache_sizes().l1d >= 4096);
  CHECK(kernels::cpu_cache_sizes().l2 >= kernels::cpu_cache_sizes().l1d);
}

TEST_CASE("cpu capability: GEMM at every level, across cache blocks, edges and transposes") {
  manual_seed(21);
  // Packed: sizes past one KC (depth, cut into equal blocks: 1100 = 368 + 368 + 364 where KC is 512)
  // and MC (rows) block and off every micro-tile multiple (6, 14; 16, 32). Skinny (m or k <= 16): row counts
  // off the register blocks (6, 12; 4), columns off the vector tiles, depths off the vector width. {150, 64,
  // 300} and {130, 250, 600} have few rows and an even number of column panels: the threads split the columns
  // (the last panel partial), each taking all of A. {300, 9, 800} and {33, 10, 50} have few columns: with B
  // stored transposed they are dot products, over the threads by rows in the first. {1, 258, 300} is one row
  // against a mid-size B stored transposed: B's rows over the threads. {300, 260, 9} is a large C from a
  // shallow product (a small batch's weight gradient): C's rows over the threads in bands of register blocks,
  // the last band short, past the last tile. {620, 64, 512} has few rows too, but its row-major A, rows 2 KiB
  // apart, is packed (by a transpose), and packing all of it in both threads would cost more than a row
  // split. Other row-major A's are read where they lie, but for {75, 40, 1024} (packed, the last panel
  // partial).
  std::vector<std::array<int64_t, 3>> mnk = {{17, 45, 19},   {100, 70, 1100}, {301, 129, 70}, {1200, 33, 40},
                                             {9, 1000, 17},  {64, 64, 64},    {13, 77, 300},  {200, 70, 9},
                                             {5, 64, 33},    {16, 250, 784},  {8, 256, 784},  {1, 31, 4100},
                                             {150, 64, 300}, {130, 250, 600}, {300, 9, 800},  {33, 10, 50},
                                             {1, 258, 300},  {300, 260, 9},   {620, 64, 512}, {75, 40, 1024}};
  for (auto [m, n, k] : mnk) {
    INFO(m << "x" << k << " @ " << k << "x" << n);
    Tensor a = randn({m, k}), b = randn({k, n}), c = randn({m, n});
    Tensor at = randn({k, m}).t(), bt = randn({n, k}).t();
    check_every_level([&] { return mm(a, b); }, 1e-4, 1e-4);
    check_every_level([&] { return mm(at, bt); }, 1e-4, 1e-4);
    check_every_level([&] { return mm(at, b); }, 1e-4, 1e-4);
    check_every_level([&] { return addmm(c, at, b, 1.0, 2.0); }, 1e-4, 1e-4);
    check_every_level([&] { return addmm(c, a, bt, 0.5, -1.5); }, 1e-4, 1e-4);  // beta and alpha
  }
  Tensor a64 = randn({70, 90}, kFloat64), b64 = randn({90, 50}, kFloat64);
  check_every_level([&] { return mm(a64, b64); }, 1e-12, 1e-12);
}

TEST_CASE("cpu capability: maps, reductions, softmax and norms at every level") {
  manual_seed(22);
  for (int64_t n : {int64_t{1}, int64_t{15}, int64_t{17}, int64_t{1023},
                    (int64_t{1} << 22) + 5}) {  // 16M+ bytes: streaming stores
    INFO("n=" << n);
    Tensor x = randn({n}), y = randn({n});
    check_every_level([&] { return x + y; }, 1e-6, 1e-6);
    check_every_level([&] { return exp(x); }, 2e-6, 1e-6);
    check_every_level([&] { return gelu(x); }, 2e-6, 1e-6);
    check_every_level([&] { return sum(x).reshape({1}); }, 1e-4, 1e-3);
  }
  Tensor rows = randn({37, 1029}) * 5.0;
  check_every_level([&] { return softmax(rows, -1); }, 1e-5, 1e-7);
  check_every_level([&] { return log_softmax(rows, -1); }, 1e-5, 1e-5);
  check_every_level([&] { return rows.sum(Shape{0}); }, 1e-5, 1e-4);
  Tensor w = randn({1029}), b = randn({1029});
  check_every_level([&] { return nn::functional::layer_norm(rows, {1029}, w, b, 1e-5); }, 1e-4, 1e-5);
  // Layer norm's backward, with and without an affine weight (each its own row kernel), on rows of odd
  // width whose values sit far from zero next to rows near it: the CPU's vectorised sums must match
  // the reference's serial ones.
  Tensor shifted = cat({randn({5, 131}) + 1000.0, randn({4, 131})}), dy = randn({9, 131});
  Tensor w131 = randn({131}), b131 = randn({131});
  for (bool affine : {true, false}) {
    INFO("affine " << affine);
    check_every_level(
        [&] {
          Tensor x = shifted.clone().requires_grad_();
          Tensor wg = w131.clone().requires_grad_(), bg = b131.clone().requires_grad_();
          Tensor y = affine ? nn::functional::layer_norm(x, {131}, wg, bg, 1e-5)
                            : nn::functional::layer_norm(x, {131});
          auto g =
              affine ? autograd::grad({(y * dy).sum()}, {x, wg, bg}) : autograd::grad({(y * dy).sum()}, {x});
          std::vector<Tensor> parts = {y.flatten()};
          for (const Tensor& t : g) parts.push_back(t.flatten());
          return cat(parts);
        },
        1e-4, 1e-4);
  }
  Tensor q = randn({3, 37, 16}), k = randn({3, 41, 16}), v = randn({3, 41, 8});
  check_every_level([&] { return nn::functional::scaled_dot_product_attention(q, k, v); }, 1e-4, 1e-5);
}

TEST_CASE("cpu capability: fused optimizer updates at every level") {
  using Kind = kernels::OptimizerKind;
  const int64_t n = 1037;
  for (Kind kind : {Kind::SGD, Kind::Adam, Kind::AdamW, Kind::RMSprop, Kind::Adagrad}) {
    kernels::UpdateSpec spec{.kind = kind, .lr = 0.01, .weight_decay = 0.1, .momentum = 0.9};
    spec.step = 3;
    INFO("optimizer kind " << static_cast<int>(kind));
    auto run = [&](kernels::Backend& backend) {
      std::vector<float> p(n), g(n), s0(n), s1(n), s2(n);
      for (int64_t i = 0; i < n; ++i) {
        p[i] = std::sin(0.1f * i);
        g[i] = std::cos(0.37f * i);
        s0[i] = 0.01f * (i % 7);
        s1[i] = 0.02f * (i % 5) + 0.01f;
        s2[i] = 0.03f * (i % 3) + 0.01f;
      }
      backend.fused()->optimizer_update(kFloat32, spec, n, p.data(), g.data(), s0.data(), s1.data(),
                                        s2.data());
      p.insert(p.end(), s0.begin(), s0.end());
      p.insert(p.end(), s1.begin(), s1.end());
      return p;
    };
    const std::vector<float> ref = run(kernels::reference_backend());
    for (CpuCapability level : runnable_levels()) {
      INFO("level " << kernels::cpu_capability_name(level));
      const std::vector<float> got = run(kernels::cpu_backend_for(level));
      double worst = 0;
      for (size_t i = 0; i < ref.size(); ++i) worst = std::max(worst, double(std::abs(got[i] - ref[i])));
      CHECK(worst <= 1e-6);
    }
  }
}
