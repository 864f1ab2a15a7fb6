// optim: every optimizer against PyTorch step by step (fixtures from
// tests/parity/make_optim_fixtures.py), param groups, state_dict exact resume, schedulers' lr
// sequences against PyTorch, clipping, and the fused update on both backends.
#include <map>

#include "helpers.h"

using namespace ember;
using ember::test::check_error;

namespace {

std::map<std::string, Tensor> fixtures() {
  std::map<std::string, Tensor> fx;
  for (auto& [k, t] : nn::load_safetensors(std::string(EMBER_FIXTURE_DIR) + "/optim_parity.safetensors"))
    fx[k] = t;
  return fx;
}

using Factory = std::function<std::unique_ptr<optim::Optimizer>(std::vector<Tensor>)>;

std::map<std::string, Factory> optimizer_configs() {
  using namespace optim;
  auto sgd = [](SGDOptions o) {
    return [o](std::vector<Tensor> p) -> std::unique_ptr<Optimizer> { return std::make_unique<SGD>(p, o); };
  };
  auto adam = [](AdamOptions o) {
    return [o](std::vector<Tensor> p) -> std::unique_ptr<Optimizer> { return std::make_unique<Adam>(p, o); };
  };
  auto adamw = [](AdamWOptions o) {
    return [o](std::vector<Tensor> p) -> std::unique_ptr<Optimizer> { return std::make_unique<AdamW>(p, o); };
  };
  auto rms = [](RMSpropOptions o) {
    return
        [o](std::vector<Tensor> p) -> std::unique_ptr<Optimizer> { return std::make_unique<RMSprop>(p, o); };
  };
  auto ada = [](AdagradOptions o) {
    return
        [o](std::vector<Tensor> p) -> std::unique_ptr<Optimizer> { return std::make_unique<Adagrad>(p, o); };
  };
  std::map<std::string, Factory> c;
  c["sgd"] = sgd({.lr = 0.1});
  c["sgd_momentum_wd"] = sgd({.lr = 0.05, .momentum = 0.9, .dampening = 0.1, .weight_decay = 0.01});
  c["sgd_nesterov_max"] = sgd({.lr = 0.05, .momentum = 0.8, .nesterov = true, .maximize = true});
  c["sgd_groups"] = [](std::vector<Tensor> p) -> std::unique_ptr<Optimizer> {
    std::vector<ParamGroup> groups = {{{p[0]}, {}}, {{p[1]}, {.lr = 0.5}}};
    return std::make_unique<SGD>(groups, SGDOptions{.lr = 0.1, .momentum = 0.5});
  };
  c["adam"] = adam({.lr = 0.01});
  c["adam_amsgrad_wd"] =
      adam({.lr = 0.02, .beta1 = 0.8, .beta2 = 0.9, .eps = 1e-6, .weight_decay = 0.1, .amsgrad = true});
  c["adam_maximize"] = adam({.lr = 0.01, .maximize = true});
  c["adamw_amsgrad"] = adamw({.lr = 0.03, .weight_decay = 0.05, .amsgrad = true});
  c["adamw"] = adamw({.lr = 0.01});  // weight_decay keeps AdamW's default, 0.01
  c["rmsprop"] = rms({.lr = 0.01});
  c["rmsprop_centered_momentum_wd"] =
      rms({.lr = 0.01, .alpha = 0.9, .weight_decay = 0.02, .momentum = 0.5, .centered = true});
  c["adagrad"] = ada({.lr = 0.1});
  c["adagrad_decay_wd_init"] =
      ada({.lr = 0.1, .lr_decay = 0.01, .weight_decay = 0.05, .initial_accumulator_value = 0.1});
  return c;
}

}  // namespace

TEST_CASE("optimizers match PyTorch after every one of 10 steps") {
  auto fx = fixtures();
  auto configs = optimizer_configs();
  CHECK(configs.size() == 13);
  for (auto& [name, make] : configs) {
    INFO("optimizer " << name);
    Tensor p0 = fx["init.p0"].clone().requires_grad_(), p1 = fx["init.p1"].clone().requires_grad_();
    auto opt = make({p0, p1});
    for (int i = 0; i < 10; ++i) {
      INFO("step " << i);
      p0.mutable_grad() = fx["grad" + std::to_string(i) + ".p0"].clone();
      p1.mutable_grad() = fx["grad" + std::to_string(i) + ".p1"].clone();
      opt->step();
      const std::string key = "opt." + name + ".step" + std::to_string(i);
      CHECK(allclose(p0, fx[key + ".p0"], 1e-10, 1e-12));
      CHECK(allclose(p1, fx[key + ".p1"], 1e-10, 1e-12));
    }
  }
}

TEST_CASE(
    "GroupOptions: named entries for serialisation, read back exactly; unknown names and bad flags "
    "rejected") {
  optim::GroupOptions o{.lr = 0.1, .beta1 = 0.9, .amsgrad = true, .initial_lr = 0.2};
  const auto named = o.named();
  REQUIRE(named.size() == 4);
  CHECK(named[0] == std::pair<std::string, double>{"lr", 0.1});
  CHECK(named[2] == std::pair<std::string, double>{"amsgrad", 1.0});
  CHECK(optim::GroupOptions::from_named(named, "test") == o);
  check_error(
      [] {
        optim::GroupOptions::from_named({{"betas", 0.9}}, "checkpoint x");
      },
      {"checkpoint x", "unknown optimizer option \"betas\""});
  check_error(
      [] {
        optim::GroupOptions::from_named({{"nesterov", 0.5}}, "checkpoint x");
      },
      {"\"nesterov\"", "0 or 1", "0.5"});
  check_error(
      [] {
        optim::ParamGroup g{{ones({1})}, {}};
        (void)g.lr();
      },
      {"\"lr\"", "not set"});
}

TEST_CASE("optimizer state_dict: 5 steps, save, restore into a fresh optimizer, 5 more == 10 steps") {
  auto fx = fixtures();
  for (auto& [name, make] : optimizer_configs()) {
    INFO("optimizer " << name);
    Tensor p0 = fx["init.p0"].clone().requires_grad_(), p1 = fx["init.p1"].clone().requires_grad_();
    auto first = make({p0, p1});
    auto set_grads = [&](int i) {
      p0.mutable_grad() = fx["grad" + std::to_string(i) + ".p0"].clone();
      p1.mutable_grad() = fx["grad" + std::to_string(i) + ".p1"].clone();
    };
    for (int i = 0; i < 5; ++i) {
      set_grads(i);
      first->step();
    }
    optim::OptimizerState saved = first->state_dict();
    auto second = make({p0, p1});
    second->load_state_dict(saved);
    for (int i = 5; i < 10; ++i) {
      set_grads(i);
      second->step();
    }
    CHECK(allclose(p0, fx["opt." + name + ".step9.p0"], 1e-10, 1e-12));
    CHECK(allclose(p1, fx["opt." + name + ".step9.p1"], 1e-10, 1e-12));
  }
}

TEST_CASE("optimizer: groups, options, skipping, errors, zero_grad, closure") {
  Tensor a = ones({2}).requires_grad_(), b = ones({3}).requires_grad_(), c = ones({1}).requires_grad_();
  optim::SGD opt({{{a}, {}}, {{b}, {.lr = 0.5}}}, {.lr = 0.1, .momentum = 0.9});
  CHECK(opt.param_groups()[0].lr() == 0.1);
  CHECK(opt.param_groups()[1].lr() == 0.5);
  CHECK(opt.param_groups()[1].options.momentum == 0.9);  // inherited default
  CHECK(opt.param_groups()[1].options.nesterov == false);
  CHECK_FALSE(opt.param_groups()[1].options.beta1.has_value());  // SGD has no betas
  opt.param_groups()[0].lr() = 0.2;                              // no casts
  opt.add_param_group({.params = {c}, .options = {.momentum = 0.0}});
  CHECK(opt.param_groups().size() == 3);
  check_error([&] { opt.add_param_group({{a}, {}}); }, {"SGD", "more than once"});
  // A misspelt option does not compile; one another optimizer has is an error.
  check_error(
      [&] {
        opt.add_param_group({{zeros({1}).requires_grad_()}, {.beta1 = 0.5}});
      },
      {"SGD", "\"beta1\"", "does not have"});
  check_error([] { optim::SGD({ones({1}).requires_grad_()}, {.lr = 0.1, .nesterov = true}); }, {"nesterov"});
  a.mutable_grad() = ones({2});
  opt.step();  // b and c have no gradient: skipped, untouched
  CHECK(allclose(a, full({2}, 0.8)));
  CHECK(allclose(b, ones({3})));
  CHECK(opt.state(b).empty());
  opt.zero_grad();
  CHECK_FALSE(a.grad().defined());
  Tensor x = tensor({3.0}).requires_grad_();
  optim::Adam adam({x}, {.lr = 0.1});
  Tensor loss = adam.step([&] {
    adam.zero_grad();
    Tensor l = (x * x).sum();
    l.backward();
    return l;
  });
  CHECK(loss.item<float>() == 9.0f);
  CHECK(x.item<float>() == doctest::Approx(2.9));  // Adam's first step moves by lr
  CHECK(adam.state(x).at("step").item<float>() == 1.0f);
}

TEST_CASE("fused optimizer update: CPU backend matches the reference backend") {
  for (auto kind : {0, 1, 2, 3, 4}) {
    INFO("kind " << kind);
    auto run = [&] {
      manual_seed(4);
      Tensor p = randn({3001}).requires_grad_();  // past the threading threshold with 8 ops/elem
      std::unique_ptr<optim::Optimizer> opt;
      if (kind == 0)
        opt = std::make_unique<optim::SGD>(std::vector<Tensor>{p},
                                           optim::SGDOptions{.lr = 0.1, .momentum = 0.9, .nesterov = true});
      if (kind == 1)
        opt = std::make_unique<optim::Adam>(std::vector<Tensor>{p}, optim::AdamOptions{.amsgrad = true});
      if (kind == 2) opt = std::make_unique<optim::AdamW>(std::vector<Tensor>{p});
      if (kind == 3)
        opt = std::make_unique<optim::RMSprop>(std::vector<Tensor>{p},
                                               optim::RMSpropOptions{.momentum = 0.3, .centered = true});
      if (kind == 4) opt = std::make_unique<optim::Adagrad>(std::vector<Tensor>{p});
      for (int i = 0; i < 3; ++i) {
        p.mutable_grad() = randn({3001});
        opt->step();
      }
      return p.detach();
    };
    test::check_against_reference(run, 1e-5, 1e-6);
  }
}

TEST_CASE("schedulers: lr sequences over 100 steps match PyTorch") {
  auto fx = fixtures();
  using namespace optim;
  std::map<std::string, std::function<std::unique_ptr<LRScheduler>(Optimizer&)>> makers = {
      {"step", [](Optimizer& o) { return std::make_unique<StepLR>(o, 7, 0.5); }},
      {"multistep",
       [](Optimizer& o) {
         return std::make_unique<MultiStepLR>(o, std::vector<int64_t>{10, 30, 30, 80}, 0.3);
       }},
      {"exponential", [](Optimizer& o) { return std::make_unique<ExponentialLR>(o, 0.97); }},
      {"cosine", [](Optimizer& o) { return std::make_unique<CosineAnnealingLR>(o, 30, 0.01); }},
      {"linear", [](Optimizer& o) { return std::make_unique<LinearLR>(o, 0.2, 0.9, 40); }},
      {"constant", [](Optimizer& o) { return std::make_unique<ConstantLR>(o, 0.4, 25); }},
      {"polynomial", [](Optimizer& o) { return std::make_unique<PolynomialLR>(o, 60, 2.0); }},
      {"lambda",
       [](Optimizer& o) { return std::make_unique<LambdaLR>(o, [](int64_t e) { return 1.0 / (1 + e); }); }},
      {"multiplicative",
       [](Optimizer& o) { return std::make_unique<MultiplicativeLR>(o, [](int64_t) { return 0.99; }); }},
      {"onecycle",
       [](Optimizer& o) {
         return std::make_unique<OneCycleLR>(o, OneCycleLR::Options{.max_lr = 0.5, .total_steps = 101});
       }},
      {"onecycle_linear_3phase",
       [](Optimizer& o) {
         return std::make_unique<OneCycleLR>(o, OneCycleLR::Options{.max_lr = 0.3,
                                                                    .total_steps = 120,
                                                                    .pct_start = 0.25,
                                                                    .anneal_strategy = "linear",
                                                                    .three_phase = true});
       }},
      {"cyclic",
       [](Optimizer& o) {
         return std::make_unique<CyclicLR>(
             o, CyclicLR::Options{.base_lr = 0.01, .max_lr = 0.1, .step_size_up = 10, .step_size_down = 15});
       }},
      {"cyclic_tri2",
       [](Optimizer& o) {
         return std::make_unique<CyclicLR>(
             o, CyclicLR::Options{.base_lr = 0.01, .max_lr = 0.1, .step_size_up = 8, .mode = "triangular2"});
       }},
      {"cyclic_exp",
       [](Optimizer& o) {
         return std::make_unique<CyclicLR>(
             o, CyclicLR::Options{
                    .base_lr = 0.01, .max_lr = 0.1, .step_size_up = 8, .mode = "exp_range", .gamma = 0.99});
       }},
      {"warm_restarts",
       [](Optimizer& o) { return std::make_unique<CosineAnnealingWarmRestarts>(o, 10, 2, 0.001); }},
  };
  for (auto& [name, make] : makers) {
    INFO("scheduler " << name);
    Tensor w = zeros({1}).requires_grad_();
    SGD opt({w}, {.lr = 0.1, .momentum = 0.9});
    auto sched = make(opt);
    std::vector<double> lrs;
    for (int i = 0; i < 100; ++i) {
      lrs.push_back(sched->get_last_lr()[0]);
      opt.step();
      sched->step();
    }
    CHECK(allclose(tensor(lrs, {100}, kFloat64), fx["sched." + name], 1e-10, 1e-14));
    CHECK(opt.param_groups()[0].options.momentum.value() ==
          doctest::Approx(fx["sched." + name + ".final_momentum"].item<double>()));
    if (name.rfind("onecycle", 0) == 0 || name.rfind("cyclic", 0) == 0) continue;  // set lr at build
    // Resuming from a state_dict continues the same sequence.
    SGD opt2({w}, {.lr = 0.1, .momentum = 0.9});
    auto resumed = make(opt2);
    resumed->load_state_dict(sched->state_dict());
    opt2.param_groups()[0].lr() = opt.param_groups()[0].lr();
    sched->step();
    resumed->step();
    CHECK(resumed->get_last_lr()[0] == doctest::Approx(sched->get_last_lr()[0]));
  }
  {
    Tensor w = zeros({1}).requires_grad_();
    SGD opt({w}, {.lr = 0.1});
    ExponentialLR a(opt, 0.98);
    StepLR b(opt, 9, 0.5);
    ChainedScheduler chain({&a, &b});
    std::vector<double> lrs;
    for (int i = 0; i < 100; ++i) {
      lrs.push_back(opt.param_groups()[0].lr());
      chain.step();
    }
    CHECK(allclose(tensor(lrs, {100}, kFloat64), fx["sched.chained"], 1e-10, 1e-14));
  }
  {
    Tensor w = zeros({1}).requires_grad_();
    SGD opt({w}, {.lr = 0.1});
    LinearLR warm(opt, 0.1, 1.0, 10);
    CosineAnnealingLR cosine(opt, 40);
    ExponentialLR decay(opt, 0.95);
    SequentialLR seq(opt, {&warm, &cosine, &decay}, {10, 50});
    std::vector<double> lrs;
    for (int i = 0; i < 100; ++i) {
      lrs.push_back(opt.param_groups()[0].lr());
      seq.step();
    }
    CHECK(allclose(tensor(lrs, {100}, kFloat64), fx["sched.sequential"], 1e-10, 1e-14));
  }
  Tensor metrics = fx["plateau.metrics"];
  for (auto [name, o] : std::vector<std::pair<std::string, ReduceLROnPlateau::Options>>{
           {"plateau_min", {.factor = 0.5, .patience = 3, .cooldown = 2, .min_lr = 0.001}},
           {"plateau_max_abs",
            {.mode = "max", .factor = 0.3, .patience = 2, .threshold = 0.01, .threshold_mode = "abs"}}}) {
    INFO("scheduler " << name);
    Tensor w = zeros({1}).requires_grad_();
    SGD opt({w}, {.lr = 0.1});
    ReduceLROnPlateau sched(opt, o);
    std::vector<double> lrs;
    for (double m : metrics.to_vector<double>()) {
      sched.step(m);
      lrs.push_back(opt.param_groups()[0].lr());
    }
    CHECK(allclose(tensor(lrs, {100}, kFloat64), fx["sched." + name], 1e-10, 1e-14));
  }
}

TEST_CASE("clip_grad_norm_, clip_grad_value_, parameters_to_vector") {
  Tensor a = zeros({2}).requires_grad_(), b = zeros({2}).requires_grad_();
  a.mutable_grad() = tensor({3.0, 0.0});
  b.mutable_grad() = tensor({0.0, 4.0});
  Tensor total = nn::utils::clip_grad_norm_({a, b}, 1.0);
  CHECK(total.item<float>() == doctest::Approx(5.0));
  CHECK(a.grad().index({0}).item<float>() == doctest::Approx(0.6).epsilon(1e-5));
  CHECK(b.grad().index({1}).item<float>() == doctest::Approx(0.8).epsilon(1e-5));
  a.mutable_grad() = tensor({-3.0, 2.0});
  CHECK(nn::utils::clip_grad_norm_({a}, 10.0, INFINITY).item<float>() == 3.0f);
  CHECK(a.grad().to_vector<float>() == std::vector<float>{-3, 2});  // under the limit: unchanged
  a.mutable_grad() = tensor({NAN, 1.0});
  check_error([&] { nn::utils::clip_grad_norm_({a}, 1.0, 2.0, true); }, {"non-finite"});
  a.mutable_grad() = tensor({-3.0, 0.5});
  nn::utils::clip_grad_value_({a}, 1.0);
  CHECK(a.grad().to_vector<float>() == std::vector<float>{-1, 0.5f});
  Tensor v = nn::utils::parameters_to_vector({ones({2, 2}), zeros({3})});
  CHECK(v.sizes() == Shape{7});
  Tensor p = zeros({2, 2}), q = zeros({3});
  nn::utils::vector_to_parameters(arange(7.0, std::nullopt), {p, q});
  CHECK(p.index({1, 1}).item<float>() == 3.0f);
  CHECK(q.index({2}).item<float>() == 6.0f);
}
