// Mixed precision: autocast's op lists and casts (and that gradients reach float32 parameters as
// float32, equal to the same graph written with explicit casts), and GradScaler's arithmetic, skipped
// steps, backoff and growth, errors and state_dict.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "ember/ember.h"
#include "helpers.h"

using namespace ember;
using ember::test::check_error;
namespace F = nn::functional;

TEST_CASE("autocast: matmul-like ops run in the 16-bit dtype, softmax and losses in float32") {
  manual_seed(41);
  Tensor a = randn({5, 7}), b = randn({7, 3}), x = randn({4, 7});
  nn::Linear lin(7, 3);
  {
    AutocastGuard guard(DeviceType::CPU, kBFloat16);
    CHECK(is_autocast_enabled(DeviceType::CPU));
    CHECK_FALSE(is_autocast_enabled(DeviceType::CUDA));
    Tensor y = matmul(a, b);
    CHECK(y.dtype() == kBFloat16);
    CHECK(equal(y, matmul(a.to(kBFloat16), b.to(kBFloat16))));
    CHECK(lin(x).dtype() == kBFloat16);
    CHECK(bmm(a.unsqueeze(0), b.unsqueeze(0)).dtype() == kBFloat16);
    CHECK(softmax(y, 1).dtype() == kFloat32);
    CHECK(log_softmax(y, 1).dtype() == kFloat32);
    CHECK(F::cross_entropy(y, tensor({0, 2, 1, 1, 0})).dtype() == kFloat32);
    CHECK(F::mse_loss(y, zeros({5, 3})).dtype() == kFloat32);
    CHECK(F::layer_norm(y, {3}, {}, {}, 1e-5).dtype() == kFloat32);
    CHECK((y + zeros({5, 3})).dtype() == kFloat32);  // promotion: bfloat16 with float32 is float32
    CHECK((y + a.sum()).dtype() == kBFloat16);       // a 0-dim float32 does not widen it (PyTorch's rule)
    CHECK(matmul(a.to(kFloat64), b.to(kFloat64)).dtype() == kFloat64);  // float64 is never cast
    {
      AutocastGuard off(DeviceType::CPU, kBFloat16, /*enabled=*/false);
      CHECK(matmul(a, b).dtype() == kFloat32);
    }
    CHECK(matmul(a, b).dtype() == kBFloat16);  // restored
  }
  CHECK(matmul(a, b).dtype() == kFloat32);
  {
    AutocastGuard cuda_only(DeviceType::CUDA, kFloat16);  // CPU tensors are not touched
    CHECK(matmul(a, b).dtype() == kFloat32);
  }
  check_error([] { AutocastGuard bad(DeviceType::CPU, kFloat32); },
              {"autocast", "bfloat16 or float16", "float32"});
}

TEST_CASE("autocast: gradients reach float32 parameters as float32, equal to explicit casts") {
  manual_seed(42);
  Tensor x = randn({6, 5});
  Tensor labels = tensor({0, 1, 2, 1, 0, 2});
  for (DType half : {kBFloat16, kFloat16}) {
    Tensor w1 = (randn({5, 8}) * 0.4).requires_grad_(), w2 = (randn({8, 3}) * 0.4).requires_grad_();
    Tensor v1 = w1.detach().clone().requires_grad_(), v2 = w2.detach().clone().requires_grad_();
    {
      AutocastGuard guard(DeviceType::CPU, half);
      Tensor loss = F::cross_entropy(matmul(matmul(x, w1).relu(), w2), labels);
      CHECK(loss.dtype() == kFloat32);
      loss.backward();
    }
    // The same computation with the casts written out.
    Tensor h = matmul(x.to(half), v1.to(half)).relu();
    F::cross_entropy(matmul(h, v2.to(half)).to(kFloat32), labels).backward();
    CHECK(w1.grad().dtype() == kFloat32);
    CHECK(equal(w1.grad(), v1.grad()));
    CHECK(equal(w2.grad(), v2.grad()));
  }
}

TEST_CASE("autocast: half inputs to attention compute in float32") {
  manual_seed(43);
  Tensor q = randn({2, 5, 8}), k = randn({2, 6, 8}), v = randn({2, 6, 4});
  Tensor ref = F::scaled_dot_product_attention(q.to(kBFloat16).to(kFloat32), k.to(kBFloat16).to(kFloat32),
                                               v.to(kBFloat16).to(kFloat32));
  Tensor half = F::scaled_dot_product_attention(q.to(kBFloat16), k.to(kBFloat16), v.to(kBFloat16));
  CHECK(half.dtype() == kBFloat16);
  CHECK(equal(half, ref.to(kBFloat16)));
  AutocastGuard guard(DeviceType::CPU, kBFloat16);
  CHECK(F::scaled_dot_product_attention(q.to(kBFloat16), k.to(kBFloat16), v.to(kBFloat16)).dtype() ==
        kFloat32);
}

namespace {
// One parameter with a given gradient, and an SGD optimizer over it.
struct OneParam {
  Tensor p = tensor({1.0f, -2.0f, 3.0f}).requires_grad_();
  optim::SGD opt{{p}, optim::SGDOptions{.lr = 0.5}};
  void set_grad(const Tensor& g) { p.mutable_grad() = g.clone(); }
};
}  // namespace

TEST_CASE("GradScaler: scales the loss, unscales exactly, and steps like the optimizer alone") {
  optim::GradScaler scaler;
  CHECK(scaler.get_scale() == 65536.0);
  Tensor loss = tensor({0.25f}).sum();
  CHECK(scaler.scale(loss).item<float>() == 0.25f * 65536);
  OneParam a, b;
  a.set_grad(tensor({0.5f, 0.25f, -1.0f}) * 65536);  // what backward of a scaled loss gives
  b.set_grad(tensor({0.5f, 0.25f, -1.0f}));
  CHECK(scaler.step(a.opt));
  scaler.update();
  b.opt.step();
  CHECK(equal(a.p, b.p));  // powers of two: unscaling is exact
  CHECK(equal(a.p, tensor({0.75f, -2.125f, 3.5f})));
}

TEST_CASE("GradScaler: inf or NaN gradients skip the step and back off; clean steps grow the scale") {
  optim::GradScaler scaler(
      {.init_scale = 8.0, .growth_factor = 2.0, .backoff_factor = 0.25, .growth_interval = 2});
  OneParam a;
  for (float bad : {std::numeric_limits<float>::infinity(), std::nanf("")}) {
    a.set_grad(tensor({1.0f, bad, 1.0f}));
    Tensor before = a.p.detach().clone();
    CHECK_FALSE(scaler.step(a.opt));
    scaler.update();
    CHECK(equal(a.p, before));  // skipped
  }
  CHECK(scaler.get_scale() == 8.0 * 0.25 * 0.25);
  a.set_grad(tensor({1.0f, 1.0f, 1.0f}));
  CHECK(scaler.step(a.opt));
  scaler.update();
  CHECK(scaler.get_scale() == 0.5);  // one clean step: not yet
  a.set_grad(tensor({1.0f, 1.0f, 1.0f}));
  scaler.step(a.opt);
  scaler.update();
  CHECK(scaler.get_scale() == 1.0);  // two clean steps: grown
  auto state = scaler.state_dict();
  REQUIRE(state.has_value());
  CHECK(state->scale == 1.0);
  CHECK(state->growth_tracker == 0);
  optim::GradScaler restored;
  restored.load_state_dict(*state);
  CHECK(restored.get_scale() == 1.0);
  CHECK(restored.state_dict() == state);
}

TEST_CASE("GradScaler: unscale_ once per update, update after a step, disabled is a pass-through") {
  optim::GradScaler scaler;
  OneParam a;
  a.set_grad(tensor({65536.0f, 0.0f, 0.0f}));
  scaler.unscale_(a.opt);
  CHECK(a.p.grad().index({0}).item<float>() == 1.0f);  // unscaled in place, e.g. before clipping
  check_error([&] { scaler.unscale_(a.opt); }, {"unscale_", "already"});
  scaler.step(a.opt);  // uses the gradients unscaled above, no second division
  CHECK(a.p.index({0}).item<float>() == 0.5f);
  check_error([&] { scaler.step(a.opt); }, {"GradScaler.step", "already"});
  scaler.update();
  check_error([&] { scaler.update(); }, {"GradScaler.update", "step()"});
  check_error([] { optim::GradScaler bad({.backoff_factor = 2.0}); }, {"GradScaler", "backoff_factor"});
  optim::GradScaler off({.enabled = false});
  Tensor loss = tensor({3.0f}).sum();
  CHECK(off.scale(loss).item<float>() == 3.0f);
  OneParam b;
  b.set_grad(tensor({1.0f, 1.0f, 1.0f}));
  CHECK(off.step(b.opt));
  off.update();
  CHECK(b.p.index({0}).item<float>() == 0.5f);
}
