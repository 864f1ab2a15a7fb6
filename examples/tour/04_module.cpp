// Tour 04: a Module is a tree of named parameters, buffers and children. register_* gives each a
// dotted name (what state_dict and optimizers see), operator() runs the pre-hooks, forward and the
// post-hooks, and train()/eval() flips the mode down the tree. Exits non-zero if a claim fails.
#include <iostream>
#include <string>
#include <vector>

#include "ember/ember.h"

using namespace ember;

namespace {
int failures = 0;
void expect(bool ok, const std::string& what) {
  std::cout << (ok ? "  ok    " : "  WRONG ") << what << "\n";
  if (!ok) ++failures;
}

// A scaled residual block: y = x + scale * fc(norm(x)), with a buffer counting the calls.
struct Residual : nn::Module {
  explicit Residual(int64_t dim) : nn::Module("Residual") {
    norm = register_module("norm", std::make_shared<nn::LayerNorm>(Shape{dim}));
    fc = register_module("fc", std::make_shared<nn::Linear>(dim, dim));
    scale = register_parameter("scale", full({1}, 0.5));
    calls = register_buffer("calls", zeros({1}));
  }
  Tensor forward(const Tensor& x) override {
    if (is_training()) calls.add_(1.0);
    return x + scale * (*fc)((*norm)(x));
  }
  std::shared_ptr<nn::LayerNorm> norm;
  std::shared_ptr<nn::Linear> fc;
  Tensor scale, calls;
};
}  // namespace

int main() {
  manual_seed(0);
  nn::Sequential net(
      {std::make_shared<Residual>(4), std::make_shared<nn::ReLU>(), std::make_shared<Residual>(4)});
  std::cout << net << "\n";
  std::vector<std::string> names;
  for (const auto& [name, p] : net.named_parameters()) names.push_back(name);
  for (const auto& n : names) std::cout << "  parameter " << n << "\n";
  expect(names.front() == "0.scale" && names.back() == "2.fc.bias",
         "dotted names, a module's own parameters before its children's (as in PyTorch)");
  expect(net.state_dict().size() == names.size() + 2, "state_dict = parameters + the two persistent buffers");

  // Hooks see every call: a pre-hook may replace the input, a post-hook the output.
  std::vector<std::string> order;
  auto& first = *net[0];
  first.register_forward_pre_hook([&](nn::Module& m, const Tensor& x) {
    order.push_back("pre " + m.type_name());
    return x;
  });
  first.register_forward_hook([&](nn::Module& m, const Tensor&, const Tensor& y) {
    order.push_back("post " + m.type_name());
    return y * 1.0;
  });
  Tensor x = randn({2, 4});
  Tensor y = net(x);
  expect(order == std::vector<std::string>{"pre Residual", "post Residual"}, "pre-hook, forward, post-hook");

  // The gradient reaches every parameter, the buffer only counts.
  y.sum().backward();
  bool all = true;
  for (const auto& [name, p] : net.named_parameters()) all = all && p.grad().defined();
  expect(all, "backward gives every parameter a gradient");
  auto residual = std::static_pointer_cast<Residual>(net[0]);
  expect(residual->calls.item<float>() == 1.0f, "the buffer counted one training call");
  net.eval();
  (void)net(x);
  expect(!residual->is_training() && residual->calls.item<float>() == 1.0f, "eval() reaches the children");
  return failures == 0 ? 0 : 1;
}
