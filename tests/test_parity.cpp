// Parity with PyTorch: each case runs the op in ember on the inputs stored by
// tests/parity/make_fixtures.py and compares the output and the gradients of sum(out * w) with what
// PyTorch computed.
#include "helpers.h"

using namespace ember;
using autograd::variable_list;

namespace {

using Case = std::function<Tensor(const variable_list&)>;

std::map<std::string, Case> ember_cases() {
  return {
      {"matmul_batched", [](auto& v) { return matmul(v[0], v[1]); }},
      {"matmul_vec", [](auto& v) { return matmul(v[0], v[1]); }},
      {"linear", [](auto& v) { return linear(v[0], v[1], v[2]); }},
      {"softmax_dim1", [](auto& v) { return softmax(v[0], 1); }},
      {"log_softmax", [](auto& v) { return log_softmax(v[0] * 3.0, -1); }},
      {"gelu", [](auto& v) { return gelu(v[0]); }},
      {"gelu_tanh", [](auto& v) { return gelu(v[0], "tanh"); }},
      {"silu", [](auto& v) { return silu(v[0]); }},
      {"softplus", [](auto& v) { return softplus(v[0], 2, 3); }},
      {"leaky_relu", [](auto& v) { return leaky_relu(v[0], 0.1); }},
      {"tanh_sigmoid", [](auto& v) { return tanh(v[0]) * sigmoid(v[0]); }},
      {"logsumexp", [](auto& v) { return logsumexp(v[0], {1}); }},
      {"var_unbiased",
       [](auto& v) {
         return var(v[0], Shape{0, 2});
       }},
      {"var_biased", [](auto& v) { return var(v[0], Shape{1}, 0, true); }},
      {"norm3", [](auto& v) { return norm(v[0], 3, Shape{1}); }},
      {"cumsum", [](auto& v) { return cumsum(v[0], 1); }},
      {"cumsum_dim0", [](auto& v) { return cumsum(v[0], 0); }},
      {"prod", [](auto& v) { return prod(v[0], 1); }},
      {"pow", [](auto& v) { return pow(abs(v[0]) + 0.5, v[1]); }},
      {"maximum", [](auto& v) { return maximum(v[0], v[1]); }},
      {"max_dim", [](auto& v) { return max(v[0], 1).first; }},
      {"sort", [](auto& v) { return sort(v[0], 1, true).first; }},
      {"topk", [](auto& v) { return topk(v[0], 2, 0).first; }},
      {"cross_entropy",
       [](auto& v) {
         Tensor target = tensor({1, 0, 4, 2});
         return neg(gather(log_softmax(v[0], 1), 1, target.unsqueeze(1))).mean();
       }},
      {"layer_norm",
       [](auto& v) {
         Tensor mu = v[0].mean({-1}, true);
         Tensor var_ = var(v[0], Shape{-1}, 0, true);
         return (v[0] - mu) * rsqrt(var_ + 1e-5) * v[1] + v[2];
       }},
      {"attention",
       [](auto& v) { return matmul(softmax(matmul(v[0], v[1].transpose(-2, -1)) / 2.0, -1), v[2]); }},
      {"gather",
       [](auto& v) {
         return gather(v[0], 1, tensor({{0, 2}, {1, 1}, {3, 0}}));
       }},
      {"embedding",
       [](auto& v) {
         return embedding(v[0], tensor({{1, 3}, {0, 1}}));
       }},
      {"cat_stack",
       [](auto& v) {
         return cat({stack({v[0], v[1]}, 1), v[0].unsqueeze(1)}, 1);
       }},
      {"tril_triu", [](auto& v) { return tril(v[0], 1) * 2.0 + triu(v[0], 2); }},
      {"clamp_abs", [](auto& v) { return clamp(v[0], -0.5, 0.8) + abs(v[0]); }},
  };
}

}  // namespace

TEST_CASE("parity with PyTorch: outputs and gradients from committed fixtures") {
  std::map<std::string, Tensor> fixtures;
  for (auto& [k, t] : nn::load_safetensors(std::string(EMBER_FIXTURE_DIR) + "/parity.safetensors"))
    fixtures[k] = t;
  auto cases = ember_cases();
  size_t checked = 0;
  for (auto& [name, fn] : cases) {
    INFO("case " << name);
    REQUIRE(fixtures.count(name + ".out"));
    variable_list inputs;
    for (int i = 0; fixtures.count(name + ".in" + std::to_string(i)); ++i)
      inputs.push_back(fixtures[name + ".in" + std::to_string(i)].clone().requires_grad_());
    REQUIRE(!inputs.empty());
    Tensor out = fn(inputs);
    Tensor expected = fixtures[name + ".out"];
    REQUIRE(out.sizes() == expected.sizes());
    CHECK(allclose(out, expected, 1e-4, 1e-5));
    (out * fixtures[name + ".w"]).sum().backward();
    for (size_t i = 0; i < inputs.size(); ++i) {
      INFO("gradient of input " << i);
      Tensor g = fixtures[name + ".grad" + std::to_string(i)];
      REQUIRE(inputs[i].grad().defined());
      CHECK(allclose(inputs[i].grad(), g, 1e-4, 1e-5));
    }
    ++checked;
  }
  CHECK(checked == cases.size());
  CHECK(checked >= 30);
}
