// Autograd: the engine's behaviour (accumulation, retain_graph, create_graph, grad(), hooks,
// no_grad, version checks, anomaly mode, custom Functions) and gradcheck of every differentiable op
// in float64, including broadcasting, non-contiguous inputs and double backward.
#include "helpers.h"

#include <pthread.h>

using namespace ember;
using autograd::variable_list;
using ember::test::check_error;
using ember::test::check_gradcheck;
using ember::test::randn64;

TEST_CASE("autograd: the README example gives exact gradients") {
  manual_seed(0);
  auto x = randn({3, 4}).requires_grad_();
  auto w = randn({4, 2}).requires_grad_();
  auto y = matmul(x, w).relu().sum();
  y.backward();
  Tensor mask = (matmul(x, w) > 0).to(kFloat32).detach();
  CHECK(allclose(x.grad(), matmul(mask, w.detach().t())));
  CHECK(allclose(w.grad(), matmul(x.detach().t(), mask)));
  CHECK(y.item<float>() == doctest::Approx((matmul(x, w).relu()).sum().item<float>()));
}

TEST_CASE("autograd: gradients accumulate into leaves and sum where paths meet") {
  Tensor x = tensor({1.0, 2.0, 3.0}).requires_grad_();
  Tensor y = x * x + x * 3.0;  // two paths from x
  y.sum().backward();
  CHECK(x.grad().to_vector<float>() == std::vector<float>{5, 7, 9});
  (x * 2.0).sum().backward();  // accumulates
  CHECK(x.grad().to_vector<float>() == std::vector<float>{7, 9, 11});
  x.mutable_grad() = Tensor();
  (x * x).sum().backward();
  CHECK(x.grad().to_vector<float>() == std::vector<float>{2, 4, 6});
  CHECK(x.is_leaf());
  CHECK_FALSE(y.is_leaf());
  CHECK(y.grad_fn()->name() == "add");
}

TEST_CASE("autograd: backward twice needs retain_graph") {
  Tensor x = tensor({2.0}).requires_grad_();
  Tensor y = (x * x).sum();
  y.backward(Tensor(), /*retain_graph=*/true);
  y.backward();
  CHECK(x.grad().item<float>() == 8.0f);
  check_error([&] { y.backward(); }, {"second time", "retain_graph"});
  Tensor z = tensor({1.0, 2.0}).requires_grad_() * 2.0;
  check_error([&] { z.backward(); }, {"only for scalar outputs", "[2]"});
  check_error([] { ones({1}).backward(); }, {"does not require grad"});
  z.backward(ones({2}));  // an explicit gradient works for non-scalars
}

TEST_CASE("autograd::grad returns gradients without touching .grad()") {
  Tensor x = tensor({1.0, 2.0}).requires_grad_();
  Tensor w = tensor({3.0, 4.0}).requires_grad_();
  Tensor unused = tensor({1.0}).requires_grad_();
  Tensor y = (x * w).sum();
  auto g = autograd::grad({y}, {x}, {}, true);
  CHECK(g[0].to_vector<float>() == std::vector<float>{3, 4});
  CHECK_FALSE(x.grad().defined());
  CHECK_FALSE(w.grad().defined());
  check_error([&] { autograd::grad({y}, {unused}, {}, true); }, {"not used", "allow_unused"});
  auto g2 = autograd::grad({y}, {unused, w}, {}, true, false, true);
  CHECK_FALSE(g2[0].defined());
  CHECK(g2[1].to_vector<float>() == std::vector<float>{1, 2});
  // Intermediate (non-leaf) inputs work too.
  Tensor h = x * 2.0;
  Tensor z = (h * h).sum();
  auto gh = autograd::grad({z}, {h});
  CHECK(gh[0].to_vector<float>() == std::vector<float>{4, 8});
}

TEST_CASE("autograd: double backward with create_graph") {
  Tensor x = tensor({1.5, -2.0}, kFloat64).requires_grad_();
  Tensor y = (x * x * x).sum();
  auto g = autograd::grad({y}, {x}, {}, std::nullopt, /*create_graph=*/true);
  CHECK(allclose(g[0], 3.0 * x.detach() * x.detach()));
  auto gg = autograd::grad({g[0].sum()}, {x});
  CHECK(allclose(gg[0], 6.0 * x.detach()));
  // backward(create_graph) leaves a differentiable .grad()
  Tensor a = tensor({0.3}, kFloat64).requires_grad_();
  Tensor b = sin(a);
  b.backward(Tensor(), false, true);
  Tensor ga = a.grad();
  CHECK(ga.requires_grad());
  auto second = autograd::grad({ga.sum()}, {a});
  CHECK(second[0].item<double>() == doctest::Approx(-std::sin(0.3)));
  // a.grad()'s graph holds a: the cycle PyTorch documents for backward(create_graph=True). Resetting
  // the gradient breaks it (LeakSanitizer checks that nothing else is left behind).
  a.mutable_grad() = Tensor();
}

TEST_CASE("autograd: no_grad, detach, requires_grad_") {
  Tensor x = ones({2}).requires_grad_();
  {
    NoGradGuard guard;
    Tensor y = x * 2.0;
    CHECK_FALSE(y.requires_grad());
    CHECK(y.grad_fn() == nullptr);
  }
  Tensor d = (x * 2.0).detach();
  CHECK_FALSE(d.requires_grad());
  CHECK(d.data_ptr() != nullptr);
  Tensor shared = x.detach();
  CHECK(shared.data_ptr() == x.data_ptr());  // detach shares memory, like PyTorch
  check_error([&] { (x * 2.0).requires_grad_(false); }, {"non-leaf"});
  CHECK((tensor({1, 2}) + 1).requires_grad() == false);
}

TEST_CASE("autograd: hooks and retain_grad") {
  Tensor x = tensor({1.0, 2.0}).requires_grad_();
  Tensor h = x * 3.0;
  h.retain_grad();
  std::vector<float> seen;
  h.register_hook([&](const Tensor& g) {
    seen = g.to_vector<float>();
    return g * 10.0;  // replaces the gradient flowing on
  });
  x.register_hook([](const Tensor& g) { return g + 1.0; });
  (h * h).sum().backward();
  CHECK(seen == std::vector<float>{6, 12});
  CHECK(h.grad().defined());
  CHECK(x.grad().to_vector<float>() == std::vector<float>{181, 361});  // 6*10*3+1, 12*10*3+1
}

TEST_CASE("autograd: a saved tensor modified in place is an error naming the op") {
  Tensor x = tensor({1.0, 2.0}).requires_grad_();
  Tensor a = x * 1.0;
  Tensor y = a * a;  // mul saves a
  a.add_(1.0);
  check_error([&] { y.sum().backward(); },
              {"modified by an in-place operation", "mul", "is at version 1, expected 0"});
  Tensor leaf = ones({2}).requires_grad_();
  check_error([&] { leaf.add_(1.0); }, {"add_", "leaf", "requires grad"});
  {
    NoGradGuard guard;
    leaf.add_(1.0);  // fine without grad, e.g. an optimizer step
  }
  CHECK(leaf.to_vector<float>() == std::vector<float>{2, 2});
  // In place on a non-leaf is tracked: d/dx of (x*2 + 1)^... via add_
  Tensor z = x * 2.0;
  z.add_(1.0).mul_(3.0);
  z.sum().backward();
  CHECK(x.grad().to_vector<float>() == std::vector<float>{6, 6});
}

TEST_CASE("autograd: anomaly mode names the op whose backward made NaN") {
  Tensor x = tensor({0.0, 1.0}).requires_grad_();
  Tensor y = sqrt(x) * 0.0;  // d sqrt at 0 is inf, times 0 is nan
  autograd::DetectAnomalyGuard anomaly;
  check_error([&] { y.sum().backward(); }, {"anomaly", "sqrt"});
}

struct Cube : autograd::Function<Cube> {
  static Tensor forward(autograd::AutogradContext* ctx, Tensor x, double scale) {
    ctx->save_for_backward({x});
    ctx->saved_data["scale"] = scale;
    return x * x * x * scale;
  }
  static variable_list backward(autograd::AutogradContext* ctx, variable_list g) {
    Tensor x = ctx->get_saved_variables()[0];
    double scale = std::any_cast<double>(ctx->saved_data["scale"]);
    return {g[0] * 3.0 * x * x * scale};
  }
};

TEST_CASE("autograd: custom Function with a context") {
  Tensor x = tensor({1.0, 2.0}, kFloat64).requires_grad_();
  Tensor y = Cube::apply(x, 2.0);
  CHECK(y.requires_grad());
  CHECK(y.to_vector<double>() == std::vector<double>{2, 16});
  y.sum().backward();
  CHECK(x.grad().to_vector<double>() == std::vector<double>{6, 24});
  check_gradcheck([](const variable_list& in) { return Cube::apply(in[0], 0.5); }, {randn64({3})});
  Tensor z = tensor({1.0}).requires_grad_();
  Tensor out = Cube::apply(z * 1.0, 1.0);
  z.mutable_grad() = Tensor();
  // Saved tensors of custom functions are version-checked too.
  Tensor a = z * 1.0;
  Tensor b = Cube::apply(a, 1.0);
  a.mul_(2.0);
  check_error([&] { b.sum().backward(); }, {"modified by an in-place operation"});
}

TEST_CASE("gradcheck catches a wrong gradient") {
  struct Wrong : autograd::Function<Wrong> {
    static Tensor forward(autograd::AutogradContext*, Tensor x) { return x * x; }
    static variable_list backward(autograd::AutogradContext*, variable_list g) { return {g[0]}; }
  };
  auto r = autograd::gradcheck([](const variable_list& in) { return Wrong::apply(in[0]); }, {randn64({3})});
  CHECK_FALSE(r.ok);
  CHECK(r.message.find("mismatch") != std::string::npos);
}

TEST_CASE("gradcheck: elementwise ops, with broadcasting and double backward") {
  manual_seed(11);
  using F = std::function<Tensor(const variable_list&)>;
  std::vector<std::pair<const char*, F>> unary = {
      {"neg", [](auto& v) { return neg(v[0]); }},
      {"exp", [](auto& v) { return exp(v[0]); }},
      {"log", [](auto& v) { return log(v[0] * v[0] + 0.5); }},
      {"log1p", [](auto& v) { return log1p(v[0] * v[0]); }},
      {"sqrt", [](auto& v) { return sqrt(v[0] * v[0] + 0.1); }},
      {"rsqrt", [](auto& v) { return rsqrt(v[0] * v[0] + 0.1); }},
      {"abs", [](auto& v) { return abs(v[0]); }},
      {"sin", [](auto& v) { return sin(v[0]); }},
      {"cos", [](auto& v) { return cos(v[0]); }},
      {"tanh", [](auto& v) { return tanh(v[0]); }},
      {"sigmoid", [](auto& v) { return sigmoid(v[0]); }},
      {"relu", [](auto& v) { return relu(v[0]); }},
      {"leaky_relu", [](auto& v) { return leaky_relu(v[0], 0.1); }},
      {"gelu", [](auto& v) { return gelu(v[0]); }},
      {"gelu_tanh", [](auto& v) { return gelu(v[0], "tanh"); }},
      {"silu", [](auto& v) { return silu(v[0]); }},
      {"softplus", [](auto& v) { return softplus(v[0], 2.0, 1.5); }},
      {"clamp", [](auto& v) { return clamp(v[0], -0.5, 0.5); }},
      {"pow_scalar", [](auto& v) { return pow(v[0], 3); }},
      {"square", [](auto& v) { return square(v[0]); }},
      {"reciprocal", [](auto& v) { return reciprocal(v[0] + 5.0); }},
      {"erf", [](auto& v) { return erf(v[0]); }},
  };
  for (auto& [name, fn] : unary) {
    INFO(name);
    // Values away from kinks (relu, abs, clamp) so finite differences are valid.
    Tensor x = (randn({2, 3}, kFloat64) + sign(randn({2, 3}, kFloat64)) * 0.05).requires_grad_();
    autograd::GradcheckOptions opts;
    opts.check_double_backward = std::string(name) != "relu" && std::string(name) != "abs" &&
                                 std::string(name) != "clamp" && std::string(name) != "leaky_relu";
    check_gradcheck(fn, {x}, opts);
  }
  autograd::GradcheckOptions twice;
  twice.check_double_backward = true;
  Tensor a = randn64({3, 1}), b = randn64({1, 4});
  check_gradcheck([](auto& v) { return v[0] + v[1]; }, {a, b}, twice);
  check_gradcheck([](auto& v) { return v[0] - v[1]; }, {a, b}, twice);
  check_gradcheck([](auto& v) { return v[0] * v[1]; }, {a, b}, twice);
  check_gradcheck([](auto& v) { return v[0] / (v[1] * v[1] + 1.0); }, {a, b}, twice);
  check_gradcheck([](auto& v) { return pow(v[0] * v[0] + 0.5, v[1]); }, {a, b}, twice);
  check_gradcheck([](auto& v) { return maximum(v[0], v[1]); }, {a, b});
  check_gradcheck([](auto& v) { return minimum(v[0], v[1]); }, {a, b});
  check_gradcheck([](auto& v) { return where(v[0] > 0, v[0], v[1]); }, {a, b});
  check_gradcheck([](auto& v) { return masked_fill(v[0] * v[1], v[1] > 0, 2.0); }, {a, b});
  check_gradcheck([](auto& v) { return v[0] * 2.5 + 1.0 - v[0] / 3.0; }, {a});
  check_gradcheck([](auto& v) { return 1.0 / (v[0] * v[0] + 1.0); }, {a}, twice);
  check_gradcheck([](auto& v) { return v[0].to(kFloat32).to(kFloat64); }, {a}, {1e-3, 1e-3, 1e-3, false});
  Tensor nc = randn({4, 3}, kFloat64).t().contiguous().requires_grad_();
  check_gradcheck([](auto& v) { return v[0].t() * v[0].t(); }, {nc}, twice);
}

TEST_CASE("gradcheck: reductions") {
  manual_seed(12);
  Tensor x = randn64({3, 4, 2});
  autograd::GradcheckOptions twice;
  twice.check_double_backward = true;
  check_gradcheck([](auto& v) { return v[0].sum(); }, {x});
  check_gradcheck([](auto& v) { return v[0].sum({0, 2}); }, {x});
  check_gradcheck([](auto& v) { return v[0].sum({1}, true); }, {x});
  check_gradcheck([](auto& v) { return v[0].mean({-1}); }, {x}, twice);
  check_gradcheck([](auto& v) { return v[0].prod(1); }, {x}, twice);
  Tensor with_zero = tensor({{1.5, 0.0, 2.0}, {0.0, 0.0, 3.0}}, kFloat64).requires_grad_();
  check_gradcheck([](auto& v) { return v[0].prod(1); }, {with_zero});
  check_gradcheck([](auto& v) { return v[0].max(); }, {x});
  check_gradcheck([](auto& v) { return v[0].max(1).first; }, {x});
  check_gradcheck([](auto& v) { return v[0].min(2, true).first; }, {x});
  check_gradcheck([](auto& v) { return amax(v[0], {0, 1}); }, {x});
  check_gradcheck([](auto& v) { return v[0].var(Shape{1}); }, {x}, twice);
  check_gradcheck([](auto& v) { return v[0].std(Shape{0, 2}, 0); }, {x}, twice);
  check_gradcheck([](auto& v) { return v[0].var(); }, {x});
  check_gradcheck([](auto& v) { return v[0].norm(); }, {x}, twice);
  check_gradcheck([](auto& v) { return v[0].norm(3.0, Shape{1}); }, {x});
  check_gradcheck([](auto& v) { return v[0].norm(1.0, Shape{1}); }, {x});
  check_gradcheck([](auto& v) { return v[0].norm(INFINITY, Shape{2}); }, {x});
  check_gradcheck([](auto& v) { return v[0].logsumexp({1}); }, {x}, twice);
  check_gradcheck([](auto& v) { return v[0].cumsum(1); }, {x}, twice);
  Tensor ties = tensor({1.0, 3.0, 3.0}, kFloat64).requires_grad_();
  ties.max().backward();
  CHECK(ties.grad().to_vector<double>() == std::vector<double>{0, 0.5, 0.5});  // shared evenly
  Tensor z = zeros({3}, kFloat64).requires_grad_();
  z.norm().backward();
  CHECK(z.grad().to_vector<double>() == std::vector<double>{0, 0, 0});  // not nan
}

TEST_CASE("gradcheck: matmul family, softmax, views, joins and indexing") {
  manual_seed(13);
  autograd::GradcheckOptions twice;
  twice.check_double_backward = true;
  auto mat = [](auto& v) { return matmul(v[0], v[1]); };
  std::vector<std::pair<Shape, Shape>> cases = {{{3}, {3}},          {{2, 3}, {3}},
                                                {{3}, {3, 2}},       {{2, 3}, {3, 4}},
                                                {{2, 2, 3}, {3, 4}}, {{2, 1, 2, 3}, {3, 3, 2}},
                                                {{3}, {2, 3, 4}},    {{2, 2, 3}, {3}}};
  for (auto& [sa, sb] : cases) {
    INFO(shape_str(sa) << " @ " << shape_str(sb));
    check_gradcheck(mat, {randn64(sa), randn64(sb)}, twice);
  }
  check_gradcheck([](auto& v) { return bmm(v[0], v[1]); }, {randn64({2, 2, 3}), randn64({2, 3, 2})});
  check_gradcheck([](auto& v) { return addmm(v[0], v[1], v[2], 0.5, 2.0); },
                  {randn64({2}), randn64({2, 3}), randn64({3, 2})});
  check_gradcheck([](auto& v) { return linear(v[0], v[1], v[2]); },
                  {randn64({4, 3}), randn64({2, 3}), randn64({2})}, twice);
  check_gradcheck([](auto& v) { return linear(v[0], v[1]); }, {randn64({2, 2, 3}), randn64({2, 3})});
  Tensor x = randn64({3, 4});
  check_gradcheck([](auto& v) { return softmax(v[0], 1); }, {x}, twice);
  check_gradcheck([](auto& v) { return softmax(v[0], 0); }, {x});
  check_gradcheck([](auto& v) { return log_softmax(v[0], -1); }, {x}, twice);
  check_gradcheck([](auto& v) { return v[0].view({2, 6}).t(); }, {x}, twice);
  check_gradcheck([](auto& v) { return v[0].permute({1, 0}).reshape({-1}); }, {x});
  check_gradcheck([](auto& v) { return v[0].unsqueeze(1).expand({3, 2, 4}); }, {x});
  check_gradcheck([](auto& v) { return v[0].index({Slice(1), Slice(0, 4, 2)}); }, {x}, twice);
  check_gradcheck([](auto& v) { return v[0].select(1, 2); }, {x});
  check_gradcheck([](auto& v) { return v[0].narrow(0, 1, 2).diagonal(); }, {x});
  check_gradcheck([](auto& v) { return v[0].as_strided({2, 2}, {1, 2}); }, {x});
  check_gradcheck([](auto& v) { return stack(v[0].unbind(1), 0); }, {x});
  check_gradcheck([](auto& v) { return cat({v[0], v[1] * 2.0}, 1); }, {x, randn64({3, 2})});
  check_gradcheck([](auto& v) { return cat(v[0].chunk(2, 1), 0); }, {x});
  check_gradcheck([](auto& v) { return tril(v[0], 1) + triu(v[0], -1); }, {x});
  Tensor idx = tensor({2, 0, 2});
  check_gradcheck([idx](auto& v) { return index_select(v[0], 0, idx); }, {x}, twice);
  check_gradcheck([idx](auto& v) { return index_add(v[0], 1, idx, v[1], 0.5); }, {x, randn64({3, 3})});
  Tensor gi = tensor({{0, 3}, {1, 1}, {2, 0}});
  check_gradcheck([gi](auto& v) { return gather(v[0], 1, gi); }, {x}, twice);
  check_gradcheck([gi](auto& v) { return scatter_add(v[0], 1, gi, v[1]); }, {x, randn64({3, 2})});
  Tensor gu = tensor({{0, 3}, {1, 2}, {2, 0}});  // unique per row: scatter is well defined
  check_gradcheck([gu](auto& v) { return scatter(v[0], 1, gu, v[1]); }, {x, randn64({3, 2})});
  check_gradcheck([](auto& v) { return masked_select(v[0], v[0] > 0); }, {x});
  check_gradcheck([](auto& v) { return sort(v[0], 1).first; }, {x});
  check_gradcheck([](auto& v) { return topk(v[0], 2, 0).first; }, {x});
  check_gradcheck([](auto& v) { return embedding(v[0], tensor({{1, 2}, {0, 1}})); }, {x});
  check_gradcheck([](auto& v) { return v[0].clone() * v[0].contiguous(); }, {x});
  check_gradcheck([](auto& v) { return v[0].index({tensor({1, 1})}); }, {x});
}

namespace {
// Runs f on a thread with a small stack (1 MB), so a recursion as deep as a long graph overflows it
// for sure; returns whether f finished.
bool run_on_small_stack(const std::function<void()>& f) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 1 << 20);
  pthread_t thread;
  auto* task = new std::function<void()>(f);
  auto body = [](void* arg) -> void* {
    auto* fn = static_cast<std::function<void()>*>(arg);
    (*fn)();
    delete fn;
    return nullptr;
  };
  const bool started = pthread_create(&thread, &attr, body, task) == 0;
  pthread_attr_destroy(&attr);
  if (!started) {
    delete task;
    return false;
  }
  pthread_join(thread, nullptr);
  return true;
}
}  // namespace

TEST_CASE("autograd: in-place writes into views of tracked tensors rebase the owner's history") {
  manual_seed(31);
  const Tensor w = randn({4, 3}, kFloat64), w01 = w.index({Slice(0, 2)}).clone();
  auto leaf = [](Tensor t) { return t.requires_grad_(); };
  {  // PyTorch: y = x * 2; y[0:2] = v  ->  x.grad = 2w outside rows 0-1, v.grad = w[0:2]
    Tensor x = leaf(randn({4, 3}, kFloat64)), v = leaf(randn({2, 3}, kFloat64));
    Tensor y = x * 2;
    y.index_put_({Slice(0, 2)}, v);
    CHECK(allclose(y.index({Slice(0, 2)}), v));
    (y * w).sum().backward();
    Tensor expect = w * 2;
    expect.index_put_({Slice(0, 2)}, 0.0);
    CHECK(allclose(x.grad(), expect));
    CHECK(allclose(v.grad(), w01));
  }
  {  // y[0].mul_(3): row 0's gradient is 6w, the rest 2w
    Tensor x = leaf(randn({4, 3}, kFloat64));
    Tensor y = x * 2;
    y[0].mul_(3);
    (y * w).sum().backward();
    Tensor expect = w * 2;
    expect[0].mul_(3);
    CHECK(allclose(x.grad(), expect));
  }
  {  // a constant written into a view cuts that region off: y[1].zero_()
    Tensor x = leaf(randn({4, 3}, kFloat64));
    Tensor y = x * 2;
    y[1].zero_();
    (y * w).sum().backward();
    Tensor expect = w * 2;
    expect[1].zero_();
    CHECK(allclose(x.grad(), expect));
  }
  {  // a view of a view: column 2 of y through y.t()[2]
    Tensor x = leaf(randn({4, 3}, kFloat64)), c = leaf(randn({4}, kFloat64));
    Tensor y = x * 1;
    y.t()[2].add_(c * c);
    (y * w).sum().backward();
    CHECK(allclose(x.grad(), w));
    CHECK(allclose(c.grad(), w.select(1, 2) * 2 * c.detach()));
  }
  {  // the owner need not require grad: y = zeros; y[1].copy_(x[0])
    Tensor x = leaf(randn({4, 3}, kFloat64));
    Tensor y = zeros({4, 3}, kFloat64);
    y[1].copy_(x[0]);
    CHECK(y.requires_grad());
    (y * w).sum().backward();
    Tensor expect = zeros({4, 3}, kFloat64);
    expect[0].copy_(w[1]);
    CHECK(allclose(x.grad(), expect));
  }
  {  // a constant over a whole tracked tensor: y.zero_() passes nothing back
    Tensor x = leaf(randn({4, 3}, kFloat64));
    Tensor y = x * 2;
    y.zero_();
    (y * w + x).sum().backward();
    CHECK(allclose(x.grad(), ones({4, 3}, kFloat64)));
  }
  // Finite differences agree through several writes into views, double backward included.
  autograd::GradcheckOptions twice;
  twice.check_double_backward = true;
  check_gradcheck(
      [](const variable_list& in) {
        Tensor y = in[0] * in[0];
        y.index({Slice(1, 3)}).mul_(in[1]);
        y.narrow(1, 0, 2).add_(in[1].sum());
        y.t()[0].copy_(in[1][0].sin());
        return y;
      },
      {randn64({4, 3}), randn64({3})}, twice);
  // A view of a leaf that requires grad refuses, and is left as it was.
  Tensor x = leaf(randn({4, 3}, kFloat64));
  Tensor before = x.detach().clone();
  check_error([&] { x[0].mul_(2); }, {"mul_", "view of a leaf tensor that requires grad", "[4, 3]"});
  CHECK(equal(x.detach(), before));
}

TEST_CASE("autograd: a graph 100,000 nodes deep runs backward, grad and its own release on a 1 MB stack") {
  // Each walk over the graph (dependency counts, the nodes autograd::grad needs, the graph's
  // destruction) is iterative: this chain overflows a 1 MB stack in any recursive one.
  double via_grad = 0, via_backward = 0;
  bool released = false;
  REQUIRE(run_on_small_stack([&] {
    Tensor x = tensor({1.0}, kFloat64).requires_grad_();
    Tensor y = x;
    for (int i = 0; i < 100000; ++i) y = y * 1.00001;
    via_grad = autograd::grad({y.sum()}, {x}, {}, true)[0].item<double>();
    y.sum().backward();
    via_backward = x.grad().item<double>();
    y = Tensor();  // releases the whole chain
    released = true;
  }));
  CHECK(via_grad == doctest::Approx(std::pow(1.00001, 100000)).epsilon(1e-9));
  CHECK(via_backward == doctest::Approx(std::pow(1.00001, 100000)).epsilon(1e-9));
  CHECK(released);
}
