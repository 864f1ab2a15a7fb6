// The Trainer and LightningModule: hook order, every configure_optimizers form, logging reductions,
// accumulation, clipping, callbacks, exact resume, nested modules, the unregistered-parameter
// warning, manual optimization, and bad input.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "ember/ember.h"

#include "helpers.h"

using namespace ember;
using ember::test::check_error;
using namespace ember::trainer;
namespace fs = std::filesystem;

namespace {

using Batch = std::array<Tensor, 2>;

std::vector<Batch> regression_batches(int64_t n_batches, int64_t batch_size, uint64_t seed) {
  manual_seed(seed);
  Tensor w = randn({4, 1});
  std::vector<Batch> out;
  for (int64_t i = 0; i < n_batches; ++i) {
    Tensor x = randn({batch_size, 4});
    out.push_back({x, matmul(x, w) + 0.1 * randn({batch_size, 1})});
  }
  return out;
}

fs::path scratch(const std::string& name) {
  fs::path p = ember::test::scratch_root() / ("ember_trainer_" + name);
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

// A small regression model whose optimizers, steps and hooks the tests can swap.
struct Reg : LightningModule<Batch> {
  explicit Reg(const HParams& hp = {{"hidden", int64_t(8)}, {"lr", 0.05}, {"dropout", 0.0}})
      : LightningModule("Reg") {
    save_hyperparameters(hp);
    l1 = register_module("l1", std::make_shared<nn::Linear>(4, hp.get<int64_t>("hidden")));
    drop = register_module("drop", std::make_shared<nn::Dropout>(hp.get<double>("dropout")));
    l2 = register_module("l2", std::make_shared<nn::Linear>(hp.get<int64_t>("hidden"), 1));
  }
  Tensor forward(const Tensor& x) override { return (*l2)((*drop)((*l1)(x).relu())); }
  Tensor training_step(const Batch& b, int64_t i) override {
    if (train_fn) return train_fn(b, i);
    Tensor loss = nn::functional::mse_loss(forward(b[0]), b[1]);
    log("train_loss", loss, {.prog_bar = true, .on_epoch = true});
    return loss;
  }
  Tensor validation_step(const Batch& b, int64_t) override {
    Tensor loss = nn::functional::mse_loss(forward(b[0]), b[1]);
    log("val_loss", loss, {.prog_bar = true});
    return loss;
  }
  Tensor test_step(const Batch& b, int64_t) override {
    Tensor loss = nn::functional::mse_loss(forward(b[0]), b[1]);
    log("test_loss", loss);
    return loss;
  }
  Optimizers configure_optimizers() override {
    if (configure) return configure(*this);
    return std::make_shared<optim::SGD>(parameters(), optim::SGDOptions{.lr = hparams().get<double>("lr")});
  }
  std::function<Optimizers(Reg&)> configure;
  std::function<Tensor(const Batch&, int64_t)> train_fn;
  std::shared_ptr<nn::Linear> l1, l2;
  std::shared_ptr<nn::Dropout> drop;
};

TrainerOptions quiet(TrainerOptions o = {}) {
  o.enable_progress_bar = false;
  o.enable_model_summary = false;
  if (o.loggers.empty()) o.logger = false;
  o.enable_checkpointing = false;  // tests that want checkpoints pass a ModelCheckpoint
  return o;
}

// Compared on the CPU: under EMBER_CUDA_SIM=1 the Trainer trains on cuda:0.
bool same_weights(const nn::Module& a, const nn::Module& b) {
  auto sa = a.state_dict(), sb = b.state_dict();
  if (sa.size() != sb.size()) return false;
  for (size_t i = 0; i < sa.size(); ++i)
    if (sa[i].first != sb[i].first || !equal(sa[i].second.to(Device::cpu()), sb[i].second.to(Device::cpu())))
      return false;
  return true;
}

bool close_weights(const nn::Module& a, const nn::Module& b, double rtol, double atol) {
  auto sa = a.state_dict(), sb = b.state_dict();
  for (size_t i = 0; i < sa.size(); ++i)
    if (!allclose(sa[i].second.to(Device::cpu()), sb[i].second.to(Device::cpu()), rtol, atol)) return false;
  return sa.size() == sb.size();
}

std::vector<std::string>* g_events = nullptr;

struct Recorder : Callback {
  void rec(const std::string& s) {
    if (g_events) g_events->push_back("cb:" + s);
  }
  void setup(T&, M&, const std::string& s) override { rec("setup:" + s); }
  void on_fit_start(T&, M&) override { rec("on_fit_start"); }
  void on_train_epoch_start(T&, M&) override { rec("on_train_epoch_start"); }
  void on_train_batch_start(T&, M&, int64_t) override { rec("on_train_batch_start"); }
  void on_validation_end(T&, M&) override { rec("on_validation_end"); }
  void on_sanity_check_start(T&, M&) override { rec("on_sanity_check_start"); }
  void on_sanity_check_end(T&, M&) override { rec("on_sanity_check_end"); }
  void on_train_epoch_end(T&, M&) override { rec("on_train_epoch_end"); }
};

struct HookModel : Reg {
  void rec(const std::string& s) {
    if (g_events) g_events->push_back(s);
  }
  void setup(const std::string& s) override { rec("setup:" + s); }
  void teardown(const std::string& s) override { rec("teardown:" + s); }
  void on_fit_start() override { rec("on_fit_start"); }
  void on_fit_end() override { rec("on_fit_end"); }
  void on_train_start() override { rec("on_train_start"); }
  void on_train_end() override { rec("on_train_end"); }
  void on_train_epoch_start() override { rec("on_train_epoch_start"); }
  void on_train_epoch_end() override { rec("on_train_epoch_end"); }
  int on_train_batch_start(int64_t) override {
    rec("on_train_batch_start");
    return 0;
  }
  void on_train_batch_end(const Tensor&, int64_t) override { rec("on_train_batch_end"); }
  void on_validation_start() override { rec("on_validation_start"); }
  void on_validation_end() override { rec("on_validation_end"); }
  void on_validation_epoch_start() override { rec("on_validation_epoch_start"); }
  void on_validation_epoch_end() override { rec("on_validation_epoch_end"); }
  void on_validation_batch_start(int64_t) override { rec("on_validation_batch_start"); }
  void on_validation_batch_end(const Tensor&, int64_t) override { rec("on_validation_batch_end"); }
  void on_before_backward(const Tensor&) override { rec("on_before_backward"); }
  void on_after_backward() override { rec("on_after_backward"); }
  void on_before_optimizer_step(optim::Optimizer&) override { rec("on_before_optimizer_step"); }
  void on_before_zero_grad(optim::Optimizer&) override { rec("on_before_zero_grad"); }
  Tensor training_step(const Batch& b, int64_t i) override {
    rec("training_step");
    return Reg::training_step(b, i);
  }
  Tensor validation_step(const Batch& b, int64_t i) override {
    rec("validation_step");
    return Reg::validation_step(b, i);
  }
};

}  // namespace

TEST_CASE("Trainer: hooks run in Lightning's documented order, callbacks before the module") {
  std::vector<std::string> events;
  g_events = &events;
  HookModel model;
  auto train = regression_batches(2, 4, 1);
  auto val = regression_batches(1, 4, 2);
  Trainer t(quiet({.max_epochs = 1, .num_sanity_val_steps = 1, .callbacks = {std::make_shared<Recorder>()}}));
  t.fit(model, train, val);
  g_events = nullptr;
  std::vector<std::string> module_events;
  for (auto& e : events)
    if (e.rfind("cb:", 0) != 0) module_events.push_back(e);
  const std::vector<std::string> val_loop = {
      "on_validation_start",     "on_validation_epoch_start", "on_validation_batch_start", "validation_step",
      "on_validation_batch_end", "on_validation_epoch_end",   "on_validation_end"};
  const std::vector<std::string> batch = {"on_train_batch_start", "training_step",
                                          "on_before_zero_grad",  "on_before_backward",
                                          "on_after_backward",    "on_before_optimizer_step",
                                          "on_train_batch_end"};
  std::vector<std::string> expected = {"setup:fit", "on_fit_start"};
  expected.insert(expected.end(), val_loop.begin(), val_loop.end());  // sanity check
  expected.push_back("on_train_start");
  expected.push_back("on_train_epoch_start");
  for (int i = 0; i < 2; ++i) expected.insert(expected.end(), batch.begin(), batch.end());
  expected.insert(expected.end(), val_loop.begin(), val_loop.end());  // validation before epoch end
  for (auto e : {"on_train_epoch_end", "on_train_end", "on_fit_end", "teardown:fit"}) expected.push_back(e);
  CHECK(module_events == expected);
  // Callbacks run first, and the sanity check is bracketed by its callback hooks.
  auto pos = [&](const std::string& e) {
    return std::find(events.begin(), events.end(), e) - events.begin();
  };
  CHECK(pos("cb:setup:fit") < pos("setup:fit"));
  CHECK(pos("cb:on_fit_start") < pos("on_fit_start"));
  CHECK(pos("cb:on_sanity_check_start") < pos("on_validation_start"));
  CHECK(pos("cb:on_sanity_check_end") < pos("on_train_start"));
  CHECK(pos("cb:on_train_epoch_end") < pos("on_train_epoch_end"));
}

TEST_CASE("Trainer: on_train_batch_start returning -1 ends the epoch; max_steps; limits; fast_dev_run") {
  struct Stopper : Reg {
    int on_train_batch_start(int64_t i) override { return i == 2 ? -1 : 0; }
  } model;
  auto train = regression_batches(6, 4, 1);
  Trainer t(quiet({.max_epochs = 2}));
  t.fit(model, train);
  CHECK(t.global_step() == 4);  // two batches in each of two epochs
  Reg m2;
  Trainer t2(quiet({.max_epochs = 10, .max_steps = 7}));
  t2.fit(m2, train);
  CHECK(t2.global_step() == 7);
  CHECK(t2.current_epoch() == 2);  // the stopped epoch still ends (its end hooks ran)
  Reg m3;
  Trainer t3(quiet({.max_epochs = 2, .limit_train_batches = 0.5}));
  t3.fit(m3, train);
  CHECK(t3.global_step() == 6);
  Reg m4;
  Trainer t4(quiet({.max_epochs = 1, .limit_train_batches = 2}));
  t4.fit(m4, train);
  CHECK(t4.global_step() == 2);
  Reg m5;
  Trainer t5({.fast_dev_run = 1, .enable_progress_bar = false, .enable_model_summary = false});
  t5.fit(m5, train, regression_batches(3, 4, 2));
  CHECK(t5.global_step() == 1);
  CHECK(t5.loggers().empty());
  CHECK(t5.find_callback<ModelCheckpoint>() == nullptr);
}

TEST_CASE("configure_optimizers: every Lightning form") {
  auto train = regression_batches(3, 4, 1);
  auto run = [&](std::function<Optimizers(Reg&)> configure, int epochs = 1) {
    auto m = std::make_shared<Reg>();
    m->configure = configure;
    Reg before;
    before.load_state_dict(m->state_dict());
    auto t = std::make_shared<Trainer>(quiet({.max_epochs = epochs}));
    t->fit(*m, train);
    return std::make_tuple(m, t, !same_weights(*m, before));
  };
  {  // none: the steps run, nothing changes
    auto [m, t, changed] = run([](Reg&) { return Optimizers{}; });
    CHECK_FALSE(changed);
    CHECK(t->optimizers().empty());
  }
  {  // one optimizer
    auto [m, t, changed] = run([](Reg& r) { return std::make_shared<optim::Adam>(r.parameters()); });
    CHECK(changed);
    CHECK(t->global_step() == 3);
  }
  {  // a list of two disjoint optimizers: both step, global_step counts once per batch
    auto [m, t, changed] = run([](Reg& r) -> Optimizers {
      return {std::make_shared<optim::SGD>(r.l1->parameters(), optim::SGDOptions{.lr = 0.1}),
              std::make_shared<optim::Adam>(r.l2->parameters())};
    });
    CHECK(changed);
    CHECK(t->optimizers().size() == 2);
    CHECK(t->global_step() == 3);
  }
  {  // two lists: optimizers and step-interval schedulers with a frequency
    auto [m, t, changed] = run([](Reg& r) {
      auto opt = std::make_shared<optim::SGD>(r.parameters(), optim::SGDOptions{.lr = 1.0});
      auto sched = std::make_shared<optim::StepLR>(*opt, 1, 0.5);
      return Optimizers::with_schedulers({opt}, {{.scheduler = sched, .interval = "step", .frequency = 2}});
    });
    CHECK(t->optimizers()[0]->param_groups()[0].lr() ==
          doctest::Approx(0.5));  // stepped at global_step 2 only
  }
  {  // a config with an epoch scheduler, over two epochs
    auto [m, t, changed] = run(
        [](Reg& r) {
          auto opt = std::make_shared<optim::SGD>(r.parameters(), optim::SGDOptions{.lr = 1.0});
          return OptimizerConfig{.optimizer = opt,
                                 .lr_scheduler = LRSchedulerConfig{
                                     .scheduler = std::make_shared<optim::ExponentialLR>(*opt, 0.1)}};
        },
        2);
    CHECK(t->optimizers()[0]->param_groups()[0].lr() == doctest::Approx(0.01));
  }
  {  // a list of configs
    auto [m, t, changed] = run([](Reg& r) {
      auto a = std::make_shared<optim::SGD>(r.l1->parameters(), optim::SGDOptions{.lr = 1.0});
      auto b = std::make_shared<optim::SGD>(r.l2->parameters(), optim::SGDOptions{.lr = 1.0});
      return std::vector<OptimizerConfig>{
          {.optimizer = a,
           .lr_scheduler = LRSchedulerConfig{.scheduler = std::make_shared<optim::StepLR>(*a, 1, 0.5),
                                             .interval = "step"}},
          {.optimizer = b}};
    });
    CHECK(t->optimizers()[0]->param_groups()[0].lr() == doctest::Approx(0.125));
    CHECK(t->optimizers()[1]->param_groups()[0].lr() == doctest::Approx(1.0));
  }
  {  // ReduceLROnPlateau reads its monitor
    auto m = std::make_shared<Reg>();
    m->configure = [](Reg& r) {
      auto opt = std::make_shared<optim::SGD>(r.parameters(), optim::SGDOptions{.lr = 0.0});
      optim::ReduceLROnPlateau::Options po;
      po.patience = 0;
      po.factor = 0.5;
      return OptimizerConfig{
          .optimizer = opt,
          .lr_scheduler = LRSchedulerConfig{.scheduler = std::make_shared<optim::ReduceLROnPlateau>(*opt, po),
                                            .monitor = "train_loss"}};
    };
    Trainer t(quiet({.max_epochs = 3}));
    t.fit(*m, train);  // lr 0: the loss never improves after the first epoch
    CHECK(t.optimizers()[0]->param_groups()[0].lr() == 0.0);
    auto m2 = std::make_shared<Reg>();
    m2->configure = [](Reg& r) {
      auto opt = std::make_shared<optim::SGD>(r.parameters(), optim::SGDOptions{.lr = 0.1});
      return OptimizerConfig{
          .optimizer = opt,
          .lr_scheduler = LRSchedulerConfig{.scheduler = std::make_shared<optim::ReduceLROnPlateau>(*opt),
                                            .monitor = "nope"}};
    };
    Trainer t2(quiet({.max_epochs = 1}));
    check_error([&] { t2.fit(*m2, train); }, {"ReduceLROnPlateau", "\"nope\"", "train_loss"});
  }
  {  // overlapping parameter sets in automatic optimization are an error naming them
    auto m = std::make_shared<Reg>();
    m->configure = [](Reg& r) -> Optimizers {
      return {std::make_shared<optim::SGD>(r.parameters()),
              std::make_shared<optim::Adam>(r.l2->parameters())};
    };
    Trainer t(quiet({.max_epochs = 1}));
    check_error([&] { t.fit(*m, train); },
                {"configure_optimizers", "l2.weight", "l2.bias", "optimizers 0 and 1"});
  }
}

TEST_CASE("log: per-hook defaults, weighted epoch means, reductions, _step/_epoch keys, CSV") {
  struct Logging : Reg {
    Tensor training_step(const Batch& b, int64_t i) override {
      log("value", static_cast<double>(i + 1));                     // on_step only (training default)
      log("both", static_cast<double>(i + 1), {.on_epoch = true});  // both: value_step, value_epoch
      log("total", 1.0, {.on_step = false, .on_epoch = true, .reduce_fx = "sum"});
      log("peak", static_cast<double>(i), {.on_step = false, .on_epoch = true, .reduce_fx = "max"});
      return Reg::training_step(b, i);
    }
    Tensor validation_step(const Batch& b, int64_t) override {
      log("val_mean", static_cast<double>(b[0].size(0)));  // on_epoch (validation default), weighted
      return {};
    }
  } model;
  std::vector<Batch> train = regression_batches(3, 4, 1);
  std::vector<Batch> val = {regression_batches(1, 2, 5)[0], regression_batches(1, 6, 6)[0]};
  const fs::path dir = scratch("logging");
  auto csv = std::make_shared<CSVLogger>(dir.string());
  Trainer t(quiet({.max_epochs = 2, .num_sanity_val_steps = 0, .log_every_n_steps = 1, .loggers = {csv}}));
  t.fit(model, train, val);
  auto& cm = t.callback_metrics();
  CHECK(cm.at("value") == 3.0);
  CHECK(cm.at("both_step") == 3.0);
  CHECK(cm.at("both_epoch") == doctest::Approx(2.0));
  CHECK(cm.at("total") == 3.0);
  CHECK(cm.at("peak") == 2.0);
  CHECK(cm.count("value_epoch") == 0);
  // weighted by batch size: (2*2 + 6*6) / 8
  CHECK(cm.at("val_mean") == doctest::Approx(5.0));
  // CSV: one row per logging call, columns for every key, epoch and step.
  std::ifstream in(fs::path(csv->log_dir()) / "metrics.csv");
  std::string header;
  std::getline(in, header);
  for (auto key : {"both_epoch", "both_step", "epoch", "peak", "step", "total", "val_mean", "value"})
    CHECK(header.find(key) != std::string::npos);
  int rows = 0;
  for (std::string line; std::getline(in, line);) ++rows;
  CHECK(rows == 2 * (3 + 1 + 1));  // per epoch: 3 step rows, 1 validation row, 1 train-epoch row
  CHECK(fs::exists(fs::path(csv->log_dir()) / "hparams.yaml"));
  check_error([&] { model.log("x", 1.0, {.reduce_fx = "median"}); }, {"reduce_fx", "median"});
}

TEST_CASE("Trainer: gradient accumulation equals one step on the concatenated batch") {
  auto train = regression_batches(4, 3, 1);
  Reg a, b;
  b.load_state_dict(a.state_dict());
  Trainer ta(quiet({.max_epochs = 1, .accumulate_grad_batches = 2}));
  ta.fit(a, train);
  CHECK(ta.global_step() == 2);
  std::vector<Batch> merged = {{cat({train[0][0], train[1][0]}), cat({train[0][1], train[1][1]})},
                               {cat({train[2][0], train[3][0]}), cat({train[2][1], train[3][1]})}};
  Trainer tb(quiet({.max_epochs = 1}));
  tb.fit(b, merged);
  CHECK(close_weights(a, b, 1e-5, 1e-6));
}

TEST_CASE("Trainer: gradient clipping by norm and by value") {
  auto train = regression_batches(1, 8, 1);
  for (std::string algo : {"norm", "value"}) {
    Reg clipped, manual;
    manual.load_state_dict(clipped.state_dict());
    Trainer t(quiet({.max_epochs = 1, .gradient_clip_val = 0.01, .gradient_clip_algorithm = algo}));
    t.fit(clipped, train);
    // The same update by hand: SGD(lr 0.05) on clipped gradients.
    Tensor loss = nn::functional::mse_loss(manual.forward(train[0][0]), train[0][1]);
    loss.backward();
    auto params = manual.parameters();
    if (algo == "norm") nn::utils::clip_grad_norm_(params, 0.01);
    else nn::utils::clip_grad_value_(params, 0.01);
    {
      autograd::NoGradGuard g;
      for (auto& p : params) const_cast<Tensor&>(p).sub_(p.grad() * 0.05);
    }
    CHECK(close_weights(clipped, manual, 1e-6, 1e-7));
  }
  check_error([] { Trainer bad({.gradient_clip_algorithm = "max"}); }, {"gradient_clip_algorithm", "max"});
}

TEST_CASE("ModelCheckpoint: top-k by a monitored metric, last.ckpt, filename templates, every n steps") {
  const fs::path dir = scratch("ckpt");
  auto train = regression_batches(4, 8, 1);
  auto val = regression_batches(2, 8, 2);
  auto ckpt = std::make_shared<ModelCheckpoint>(ModelCheckpoint::Options{.dirpath = (dir / "top").string(),
                                                                         .filename = "{epoch}-{val_loss:.3f}",
                                                                         .monitor = "val_loss",
                                                                         .save_top_k = 2,
                                                                         .save_last = true});
  Reg model;
  Trainer t(quiet({.max_epochs = 4, .callbacks = {ckpt}}));
  t.fit(model, train, val);
  int files = 0;
  for (auto& e : fs::directory_iterator(dir / "top")) files += e.path().extension() == ".ckpt";
  CHECK(files == 3);  // the best two and last.ckpt
  CHECK(ckpt->best_k_models().size() == 2);
  REQUIRE(ckpt->best_model_score());
  for (auto& [path, score] : ckpt->best_k_models()) CHECK(*ckpt->best_model_score() <= score);
  CHECK(fs::path(ckpt->best_model_path()).filename().string().rfind("epoch=", 0) == 0);
  CHECK(ckpt->best_model_path().find("-val_loss=") != std::string::npos);
  CHECK(fs::exists(ckpt->last_model_path()));
  CHECK(ckpt->format_checkpoint_name({{"epoch", 3}, {"val_loss", 0.12345}}) == "epoch=3-val_loss=0.123");

  auto steps = std::make_shared<ModelCheckpoint>(ModelCheckpoint::Options{
      .dirpath = (dir / "steps").string(), .save_top_k = -1, .every_n_train_steps = 3});
  Reg m2;
  Trainer t2(quiet({.max_epochs = 2, .callbacks = {steps}}));
  t2.fit(m2, train);
  CHECK(steps->best_k_models()
            .empty());  // no monitor: nothing is ranked (Lightning's rule); the newest is best
  CHECK(fs::path(steps->best_model_path()).filename() == "epoch=1-step=6.ckpt");
  CHECK(fs::exists(dir / "steps" / "epoch=0-step=3.ckpt"));
  CHECK(fs::exists(dir / "steps" / "epoch=1-step=6.ckpt"));

  auto missing = std::make_shared<ModelCheckpoint>(
      ModelCheckpoint::Options{.dirpath = (dir / "m").string(), .monitor = "val_acc"});
  Reg m3;
  Trainer t3(quiet({.max_epochs = 1, .callbacks = {missing}}));
  check_error([&] { t3.fit(m3, train, val); }, {"ModelCheckpoint", "val_acc", "val_loss"});
}

TEST_CASE("ModelCheckpoint: same names get version suffixes, NaN is the worst score, format specs") {
  const fs::path dir = scratch("ckpt_names");
  auto train = regression_batches(2, 8, 1);
  // save_top_k = -1 with a name that never changes: every checkpoint is kept (Lightning's -vN).
  auto constant = std::make_shared<ModelCheckpoint>(
      ModelCheckpoint::Options{.dirpath = (dir / "c").string(), .filename = "model", .save_top_k = -1});
  Reg m1;
  Trainer t1(quiet({.max_epochs = 3, .callbacks = {constant}}));
  t1.fit(m1, train);
  CHECK(fs::exists(dir / "c" / "model.ckpt"));
  CHECK(fs::exists(dir / "c" / "model-v1.ckpt"));
  CHECK(fs::exists(dir / "c" / "model-v2.ckpt"));
  CHECK(constant->best_k_models().empty());
  CHECK(fs::path(constant->best_model_path()).filename() == "model-v2.ckpt");

  // A monitored value that is NaN at first is the worst score, never the best forever.
  auto nan_first = std::make_shared<ModelCheckpoint>(ModelCheckpoint::Options{
      .dirpath = (dir / "n").string(), .filename = "{epoch}", .monitor = "score", .save_top_k = 1});
  Reg m2;
  int calls = 0;
  m2.train_fn = [&](const Batch& b, int64_t) {
    const int epoch = calls++ / 2;
    m2.log("score", epoch == 0 ? NAN : 3.0 - epoch);
    return nn::functional::mse_loss(m2.forward(b[0]), b[1]);
  };
  // Beside it, one that keeps every checkpoint: the NaN epoch stays, scored +inf.
  auto keep_all = std::make_shared<ModelCheckpoint>(ModelCheckpoint::Options{
      .dirpath = (dir / "all").string(), .filename = "{epoch}", .monitor = "score", .save_top_k = -1});
  Trainer t2(quiet({.max_epochs = 3, .callbacks = {nan_first, keep_all}}));
  t2.fit(m2, train);
  REQUIRE(nan_first->best_model_score());
  CHECK(*nan_first->best_model_score() == 1.0);
  CHECK(fs::path(nan_first->best_model_path()).filename() == "epoch=2.ckpt");
  CHECK_FALSE(fs::exists(dir / "n" / "epoch=0.ckpt"));
  const std::string nan_epoch = (dir / "all" / "epoch=0.ckpt").string();
  REQUIRE(keep_all->best_k_models().count(nan_epoch) == 1);
  CHECK(keep_all->best_k_models().at(nan_epoch) == INFINITY);
  CHECK(*keep_all->best_model_score() == 1.0);
  // The +inf (JSON has no infinity) survives a round trip of the callback's state.
  ModelCheckpoint copy({.dirpath = (dir / "all").string(), .monitor = "score"});
  copy.load_state_dict(keep_all->state_dict());
  CHECK(copy.best_k_models() == keep_all->best_k_models());
  CHECK(copy.best_model_path() == keep_all->best_model_path());

  // Python format specs: the ones a file name can use, or an error naming the field.
  ModelCheckpoint f({.filename = "{epoch:03d}-{loss:.2e}-{acc:+.1f}-{rate:.1%}-{n:n}-{x:5.2g}",
                     .auto_insert_metric_name = false});
  CHECK(f.format_checkpoint_name(
            {{"epoch", 7}, {"loss", 0.000123}, {"acc", 0.25}, {"rate", 0.5}, {"n", 3}, {"x", 0.5}}) ==
        "007-1.23e-04-+0.2-50.0%-3-  0.5");
  for (std::string bad :
       {"{train_loss:n5}", "{train_loss:s}", "{train_loss:>10}", "{train_loss:,}", "{epoch:x}", "{a:.f}"})
    check_error([&] { ModelCheckpoint m({.filename = bad}); }, {"ModelCheckpoint", "format spec", bad});
}

TEST_CASE("Checkpoint: damaged and hand-edited checkpoints are ember::Errors naming the file and field") {
  const fs::path dir = scratch("damaged");
  Reg model;
  Trainer t(quiet({.max_epochs = 1}));
  t.fit(model, regression_batches(2, 4, 1));
  const std::string good = (dir / "good.ckpt").string();
  t.save_checkpoint(good);
  nn::Metadata meta;
  const nn::NamedTensors tensors = nn::load_safetensors(good, &meta);
  const auto original = nlohmann::json::parse(meta.at("ember.checkpoint"));
  // Writes a copy of the checkpoint whose metadata `edit` changed.
  auto damaged = [&](const std::string& name, const std::function<void(nlohmann::json&)>& edit,
                     nn::NamedTensors extra = {}) {
    nlohmann::json j = original;
    edit(j);
    nn::NamedTensors all = tensors;
    all.insert(all.end(), extra.begin(), extra.end());
    const std::string path = (dir / name).string();
    nn::save_safetensors(all, path, {{"ember.checkpoint", j.dump()}});
    return path;
  };
  auto resume = [&](const std::string& path) {
    Reg m;
    Trainer r(quiet({.max_epochs = 2}));
    r.fit(m, regression_batches(2, 4, 1), nullptr, path);
  };
  std::string p = damaged("no_epoch.ckpt", [](auto& j) { j.erase("epoch"); });
  check_error([&] { resume(p); }, {"checkpoint", p, "\"epoch\" is missing"});
  p = damaged("text_epoch.ckpt", [](auto& j) { j["epoch"] = "one"; });
  check_error([&] { resume(p); }, {"checkpoint", p, "\"epoch\"", "integer"});
  p = damaged("no_optimizers.ckpt", [](auto& j) { j.erase("optimizers"); });
  check_error([&] { resume(p); }, {"checkpoint", p, "\"optimizers\""});
  p = damaged("opt_text.ckpt", [](auto& j) { j["optimizers"] = "adam"; });
  check_error([&] { resume(p); }, {"checkpoint", p, "\"optimizers\"", "list"});
  p = damaged("loops.ckpt", [](auto& j) { j["loops"]["epoch_finished"] = 1.5; });
  check_error([&] { resume(p); }, {"checkpoint", p, "epoch_finished"});
  p = damaged("bad_state_name.ckpt", [](auto&) {}, {{"optimizer_states.x.0.momentum", zeros({1})}});
  check_error([&] { resume(p); }, {"checkpoint", p, "optimizer_states.x.0.momentum"});
  p = damaged("callback_state.ckpt", [](auto& j) {
    j["callbacks"] = {{"ModelCheckpoint{monitor=}", "{\"best_model_path\": 3}"}};
  });
  check_error(
      [&] {
        Reg m;
        Trainer r(quiet({.max_epochs = 2,
                         .callbacks = {std::make_shared<ModelCheckpoint>(
                             ModelCheckpoint::Options{.dirpath = (dir / "cb").string()})}}));
        r.fit(m, regression_batches(2, 4, 1), nullptr, p);
      },
      {"ModelCheckpoint", "best_model_path"});
  p = damaged("scheduler.ckpt", [](auto& j) { j["lr_schedulers"] = {"{]"}; });
  check_error(
      [&] {
        checkpoint_hparams(p);
        resume(p);
      },
      {"checkpoint"});
  // A checkpoint directory below a regular file.
  { std::ofstream(dir / "plain_file") << "x"; }
  auto blocked = std::make_shared<ModelCheckpoint>(
      ModelCheckpoint::Options{.dirpath = (dir / "plain_file" / "ckpts").string()});
  Reg m;
  Trainer r(quiet({.max_epochs = 1, .callbacks = {blocked}}));
  check_error([&] { r.fit(m, regression_batches(2, 4, 1)); },
              {"ModelCheckpoint", "cannot create the directory", "plain_file"});
}

TEST_CASE("EarlyStopping: patience, min_delta, thresholds, non-finite values; min_epochs wins") {
  auto train = regression_batches(2, 8, 1);
  auto val = regression_batches(1, 8, 2);
  {  // lr 0: val_loss never improves, so training stops after 1 + patience epochs
    Reg m({{"hidden", int64_t(4)}, {"lr", 0.0}, {"dropout", 0.0}});
    auto es = std::make_shared<EarlyStopping>(EarlyStopping::Options{.monitor = "val_loss", .patience = 2});
    Trainer t(quiet({.max_epochs = 20, .callbacks = {es}}));
    t.fit(m, train, val);
    CHECK(t.current_epoch() == 3);
    CHECK(es->stopped_epoch() == 2);
    CHECK(es->stopping_reason().find("did not improve") != std::string::npos);
    Reg m2({{"hidden", int64_t(4)}, {"lr", 0.0}, {"dropout", 0.0}});
    Trainer t2(quiet({.max_epochs = 20,
                      .min_epochs = 5,
                      .callbacks = {std::make_shared<EarlyStopping>(
                          EarlyStopping::Options{.monitor = "val_loss", .patience = 1})}}));
    t2.fit(m2, train, val);
    CHECK(t2.current_epoch() == 5);
  }
  {  // a stopping threshold every value beats
    Reg m;
    auto es = std::make_shared<EarlyStopping>(
        EarlyStopping::Options{.monitor = "val_loss", .stopping_threshold = 1e9});
    Trainer t(quiet({.max_epochs = 5, .callbacks = {es}}));
    t.fit(m, train, val);
    CHECK(t.current_epoch() == 1);
    CHECK(es->stopping_reason().find("Stopping threshold") != std::string::npos);
  }
  {  // divergence, mode max
    Reg m;
    auto es = std::make_shared<EarlyStopping>(
        EarlyStopping::Options{.monitor = "val_loss", .mode = "max", .divergence_threshold = 1e9});
    Trainer t(quiet({.max_epochs = 5, .callbacks = {es}}));
    t.fit(m, train, val);
    CHECK(t.current_epoch() == 1);
  }
  {  // a non-finite metric stops at once
    struct NaNs : Reg {
      Tensor validation_step(const Batch&, int64_t) override {
        log("val_loss", NAN);
        return {};
      }
    } m;
    auto es = std::make_shared<EarlyStopping>(EarlyStopping::Options{.monitor = "val_loss", .patience = 10});
    Trainer t(quiet({.max_epochs = 5, .callbacks = {es}}));
    t.fit(m, train, val);
    CHECK(t.current_epoch() == 1);
    CHECK(es->stopping_reason().find("not finite") != std::string::npos);
  }
  {  // strict: a missing monitor is an error naming what exists
    Reg m;
    Trainer t(quiet(
        {.max_epochs = 2,
         .callbacks = {std::make_shared<EarlyStopping>(EarlyStopping::Options{.monitor = "val_acc"})}}));
    check_error([&] { t.fit(m, train, val); }, {"EarlyStopping", "val_acc", "val_loss"});
  }
}

TEST_CASE("LearningRateMonitor, GradientAccumulationScheduler and Timer") {
  auto train = regression_batches(4, 4, 1);
  {
    Reg m;
    m.configure = [](Reg& r) {
      auto opt = std::make_shared<optim::SGD>(r.parameters(), optim::SGDOptions{.lr = 1.0});
      return OptimizerConfig{
          .optimizer = opt,
          .lr_scheduler = LRSchedulerConfig{.scheduler = std::make_shared<optim::StepLR>(*opt, 1, 0.5),
                                            .interval = "step"}};
    };
    auto lrm = std::make_shared<LearningRateMonitor>();
    Trainer t(quiet({.max_epochs = 1, .callbacks = {lrm}}));
    t.fit(m, train);
    // Logged at the start of the last batch, after three scheduler steps.
    CHECK(lrm->last_lrs().at("lr-SGD") == doctest::Approx(0.125));
  }
  {
    Reg m;
    auto gas = std::make_shared<GradientAccumulationScheduler>(std::map<int64_t, int64_t>{{0, 4}, {1, 2}});
    Trainer t(quiet({.max_epochs = 2, .callbacks = {gas}}));
    t.fit(m, train);
    CHECK(t.global_step() == 1 + 2);
    CHECK(gas->factor(7) == 2);
  }
  {
    Reg m;
    auto timer = std::make_shared<Timer>(0.0);
    Trainer t(quiet({.max_epochs = 100, .callbacks = {timer}}));
    t.fit(m, train);
    CHECK(t.global_step() == 1);  // stops after the first step
    CHECK(timer->time_elapsed() >= 0.0);
    check_error([] { Timer bad("1:2"); }, {"Timer", "DD:HH:MM:SS"});
  }
}

namespace {
// Trains `epochs` epochs of a shuffled, dropout-using, Adam + StepLR run, optionally resuming.
struct ResumeRun {
  std::shared_ptr<Reg> model;
  std::vector<std::map<std::string, double>> epoch_metrics;
};

struct MetricsTap : Callback {
  std::vector<std::map<std::string, double>>* out;
  explicit MetricsTap(std::vector<std::map<std::string, double>>* o) : out(o) {}
  void on_train_epoch_end(T& t, M&) override { out->push_back(t.callback_metrics()); }
};

ResumeRun train_for(int64_t epochs, const std::string& ckpt_dir, const std::string& resume_from,
                    int64_t every_n_steps = 0) {
  seed_everything(42);
  ResumeRun run;
  run.model = std::make_shared<Reg>(HParams{{"hidden", int64_t(16)}, {"lr", 0.01}, {"dropout", 0.3}});
  run.model->configure = [](Reg& r) {
    auto opt = std::make_shared<optim::Adam>(r.parameters(), optim::AdamOptions{.lr = 0.01});
    return OptimizerConfig{
        .optimizer = opt,
        .lr_scheduler = LRSchedulerConfig{.scheduler = std::make_shared<optim::StepLR>(*opt, 1, 0.7)}};
  };
  manual_seed(7);
  Tensor x = randn({40, 4}), y = x.sum({1}, true) + 0.1 * randn({40, 1});
  auto ds = std::make_shared<data::TensorDataset<2>>(x, y);
  data::DataLoader train(ds, {.batch_size = 8, .shuffle = true});
  data::DataLoader val(ds, {.batch_size = 20});
  seed_everything(1234);  // dropout draws from here on
  std::vector<std::shared_ptr<Callback>> cbs = {std::make_shared<MetricsTap>(&run.epoch_metrics)};
  if (!ckpt_dir.empty())
    cbs.push_back(std::make_shared<ModelCheckpoint>(ModelCheckpoint::Options{
        .dirpath = ckpt_dir, .save_top_k = -1, .save_last = true, .every_n_train_steps = every_n_steps}));
  Trainer t(quiet({.max_epochs = epochs, .num_sanity_val_steps = 1, .callbacks = cbs}));
  t.fit(*run.model, train, val, resume_from);
  return run;
}
}  // namespace

TEST_CASE("Checkpoint: 4 epochs straight == 2 epochs, stop, resume 2 more (bitwise weights and metrics)") {
  const fs::path dir = scratch("resume");
  ResumeRun straight = train_for(4, "", "");
  ResumeRun first = train_for(2, (dir / "a").string(), "");
  ResumeRun resumed = train_for(4, (dir / "b").string(), (dir / "a" / "last.ckpt").string());
  CHECK(same_weights(*straight.model, *resumed.model));
  CHECK_FALSE(same_weights(*straight.model, *first.model));
  REQUIRE(straight.epoch_metrics.size() == 4);
  REQUIRE(resumed.epoch_metrics.size() == 2);
  for (int e = 0; e < 2; ++e) {
    CHECK(straight.epoch_metrics[2 + e].at("train_loss_epoch") ==
          resumed.epoch_metrics[e].at("train_loss_epoch"));
    CHECK(straight.epoch_metrics[2 + e].at("val_loss") == resumed.epoch_metrics[e].at("val_loss"));
  }
  // Mid-epoch: resume from the checkpoint taken after step 7 (epoch 1, batch 2 of 5).
  ResumeRun stepped = train_for(2, (dir / "c").string(), "", 7);
  CHECK(fs::exists(dir / "c" / "epoch=1-step=7.ckpt"));
  ResumeRun straight2 = train_for(2, "", "");
  ResumeRun mid = train_for(2, "", (dir / "c" / "epoch=1-step=7.ckpt").string());
  CHECK(same_weights(*straight2.model, *mid.model));
  CHECK(same_weights(*straight2.model, *stepped.model));
}

TEST_CASE(
    "Checkpoint: load_from_checkpoint rebuilds from hparams; another model's checkpoint names the keys") {
  const fs::path dir = scratch("hparams");
  Reg model({{"hidden", int64_t(5)}, {"lr", 0.1}, {"dropout", 0.0}});
  Trainer t(quiet({.max_epochs = 1}));
  t.fit(model, regression_batches(2, 4, 1));
  t.save_checkpoint((dir / "m.ckpt").string());
  auto loaded = load_from_checkpoint<Reg>((dir / "m.ckpt").string());
  CHECK(loaded->hparams().get<int64_t>("hidden") == 5);
  CHECK(loaded->hparams().get<double>("lr") == 0.1);
  CHECK(same_weights(model, *loaded));
  // The checkpoint is a safetensors file any tool reads.
  nn::Metadata meta;
  auto tensors = nn::load_safetensors((dir / "m.ckpt").string(), &meta);
  CHECK(meta.count("ember.checkpoint") == 1);
  CHECK(nn::find(tensors, "state_dict.l1.weight") != nullptr);

  struct Other : LightningModule<Batch> {
    Other() : LightningModule("Other") { register_module("body", std::make_shared<nn::Linear>(4, 1)); }
  } other;
  check_error([&] { load_checkpoint_weights(other, (dir / "m.ckpt").string()); },
              {"missing key(s)", "body.weight", "unexpected key(s)", "l1.weight"});
  check_error([&] { checkpoint_hparams((dir / "nothing.ckpt").string()); }, {"checkpoint", "nothing.ckpt"});
  check_error(
      [] {
        HParams h{{"a", int64_t(1)}};
        h.get<std::string>("a");
      },
      {"\"a\"", "int"});
}

TEST_CASE("Nested LightningModules: children log through the parent's trainer with extra arguments") {
  struct Extractor : LightningModule<Batch> {
    Extractor() : LightningModule("Extractor") {
      lin = register_module("lin", std::make_shared<nn::Linear>(4, 1));
    }
    Tensor forward(const Tensor& x) override { return (*lin)(x); }
    Tensor training_step(const Batch& b, int64_t, const std::string& prefix) {
      Tensor loss = nn::functional::mse_loss(forward(b[0]), b[1]);
      log(prefix + "_loss", loss);
      return loss;
    }
    Optimizers configure_optimizers() override { return std::make_shared<optim::Adam>(parameters()); }
    std::shared_ptr<nn::Linear> lin;
  };
  struct Parent : LightningModule<Batch> {
    Parent() : LightningModule("Parent") {
      e1 = register_module("e1", std::make_shared<Extractor>());
      e2 = register_module("e2", std::make_shared<Extractor>());
    }
    Tensor training_step(const Batch& b, int64_t i) override {
      return e1->training_step(b, i, "extractor1") + e2->training_step(b, i, "extractor2");
    }
    Optimizers configure_optimizers() override {
      return {e1->configure_optimizers(), e2->configure_optimizers()};
    }
    std::shared_ptr<Extractor> e1, e2;
  } parent;
  Trainer t(quiet({.max_epochs = 1}));
  t.fit(parent, regression_batches(2, 4, 1));
  CHECK(t.callback_metrics().count("extractor1_loss") == 1);
  CHECK(t.callback_metrics().count("extractor2_loss") == 1);
  CHECK(t.optimizers().size() == 2);
  CHECK(&parent.e1->trainer() == &t);
}

TEST_CASE("Trainer: warns once about tensors with gradients outside the module tree, and idle parameters") {
  struct Stray : LightningModule<Batch> {
    Stray() : LightningModule("Stray") {
      for (int i = 0; i < 2; ++i) heads.push_back(std::make_shared<nn::Linear>(4, 3));  // not registered
      out = register_module("out", std::make_shared<nn::Linear>(6, 1));
      idle = register_module("idle", std::make_shared<nn::Linear>(2, 2));
    }
    Tensor training_step(const Batch& b, int64_t) override {
      Tensor h = cat({(*heads[0])(b[0]), (*heads[1])(b[0])}, 1);
      return nn::functional::mse_loss((*out)(h), b[1]);
    }
    Optimizers configure_optimizers() override { return std::make_shared<optim::SGD>(out->parameters()); }
    std::vector<std::shared_ptr<nn::Linear>> heads;
    std::shared_ptr<nn::Linear> out, idle;
  } model;
  // On the CPU: on an accelerator the unregistered heads would stay behind and the forward would
  // fail on mixed devices before any gradient exists (the same mistake, reported another way).
  Trainer t(quiet({.max_epochs = 2, .accelerator = "cpu"}));
  t.fit(model, regression_batches(3, 4, 1));
  REQUIRE(t.warnings().size() == 2);  // once each, not per step
  CHECK(t.warnings()[0].find("4 tensor(s) received gradients") != std::string::npos);
  CHECK(t.warnings()[0].find("[3, 4]") != std::string::npos);
  CHECK(t.warnings()[0].find("ModuleList") != std::string::npos);
  CHECK(t.warnings()[1].find("\"idle.weight\"") != std::string::npos);
}

TEST_CASE("Manual optimization: a GAN step with two optimizers, toggling, accumulation and clipping") {
  struct Gan : LightningModule<Batch> {
    Gan() : LightningModule("Gan") {
      automatic_optimization(false);
      gen = register_module("gen", std::make_shared<nn::Linear>(4, 4));
      disc = register_module("disc", std::make_shared<nn::Linear>(4, 1));
    }
    Tensor training_step(const Batch& b, int64_t i) override {
      auto opts = optimizers();
      auto& g_opt = opts[0];
      auto& d_opt = opts[1];
      // generator: make the discriminator call fakes real
      toggle_optimizer(g_opt);
      Tensor fake = (*gen)(b[0]);
      const TensorOptions on(b[0].device());
      Tensor g_loss =
          nn::functional::binary_cross_entropy_with_logits((*disc)(fake), ones({b[0].size(0), 1}, on));
      g_opt.zero_grad();
      manual_backward(g_loss);
      if (i == 0) disc_grad_during_g = disc->weight.grad().defined();
      g_opt.step();
      untoggle_optimizer(g_opt);
      // discriminator
      toggle_optimizer(d_opt);
      Tensor real =
          nn::functional::binary_cross_entropy_with_logits((*disc)(b[0]), ones({b[0].size(0), 1}, on));
      Tensor f = nn::functional::binary_cross_entropy_with_logits((*disc)(fake.detach()),
                                                                  zeros({b[0].size(0), 1}, on));
      Tensor d_loss = (real + f) / 2;
      d_opt.zero_grad();
      manual_backward(d_loss);
      d_opt.step();
      untoggle_optimizer(d_opt);
      log_dict(std::map<std::string, Tensor>{{"g_loss", g_loss}, {"d_loss", d_loss}}, {.prog_bar = true});
      return {};
    }
    Optimizers configure_optimizers() override {
      return {std::make_shared<optim::Adam>(gen->parameters()),
              std::make_shared<optim::Adam>(disc->parameters())};
    }
    std::shared_ptr<nn::Linear> gen, disc;
    bool disc_grad_during_g = true;
  } gan;
  Tensor g0 = gan.gen->weight.clone(), d0 = gan.disc->weight.clone();  // on the CPU
  Trainer t(quiet({.max_epochs = 1, .accumulate_grad_batches = 2, .gradient_clip_val = 1.0}));
  t.fit(gan, regression_batches(4, 8, 1));
  CHECK(t.global_step() == 4);  // every optimizer step counts (Lightning): two optimizers, every second batch
  CHECK_FALSE(equal(g0, gan.gen->weight.to(Device::cpu())));
  CHECK_FALSE(equal(d0, gan.disc->weight.to(Device::cpu())));
  CHECK_FALSE(gan.disc_grad_during_g);      // toggled off while the generator trained
  CHECK(gan.disc->weight.requires_grad());  // and back on after
  CHECK(t.callback_metrics().count("g_loss") == 1);
}

TEST_CASE("Bad input: a training_step returning nothing skips the step; loops without steps") {
  Reg model;
  model.train_fn = [](const Batch&, int64_t) { return Tensor(); };
  Reg before;
  before.load_state_dict(model.state_dict());
  Trainer t(quiet({.max_epochs = 1}));
  t.fit(model, regression_batches(3, 4, 1));
  CHECK(same_weights(model, before));
  CHECK(t.global_step() == 0);
  struct NoVal : LightningModule<Batch> {
    NoVal() : LightningModule("NoVal") { register_module("l", std::make_shared<nn::Linear>(4, 1)); }
    Tensor training_step(const Batch& b, int64_t) override {
      return nn::functional::mse_loss(forward_l(b[0]), b[1]);
    }
    Tensor forward_l(const Tensor& x) { return (*std::dynamic_pointer_cast<nn::Linear>(find_child("l")))(x); }
    Optimizers configure_optimizers() override { return std::make_shared<optim::SGD>(parameters()); }
  } nv;
  Trainer t2(quiet({.max_epochs = 1}));
  t2.fit(nv, regression_batches(2, 4, 1), regression_batches(1, 4, 2));  // validation silently skipped
  CHECK(t2.global_step() == 2);
  check_error([&] { t2.test(nv, regression_batches(1, 4, 2)); }, {"test", "NoVal", "test_step"});
  struct NoTrain : LightningModule<Batch> {
    NoTrain() : LightningModule("NoTrain") {}
  } nt;
  Trainer t3(quiet({.max_epochs = 1}));
  check_error([&] { t3.fit(nt, regression_batches(1, 4, 1)); }, {"NoTrain", "training_step"});
  model.train_fn = [](const Batch& b, int64_t) { return b[0]; };
  check_error([&] { t3.fit(model, regression_batches(1, 4, 1)); }, {"training_step", "scalar", "[4, 4]"});
  check_error([] { Trainer bad({.accelerator = "tpu"}); }, {"accelerator", "tpu"});
}

TEST_CASE("Trainer: validate, test and predict; val_check_interval and check_val_every_n_epoch") {
  Reg model;
  auto train = regression_batches(4, 4, 1);
  auto val = regression_batches(2, 4, 2);
  Trainer t(quiet({.max_epochs = 1}));
  t.fit(model, train, val);
  auto results = t.test(model, val);
  REQUIRE(results.count("test_loss") == 1);
  model.to(Device::cpu());  // the Trainer left it on its accelerator
  Tensor manual = (nn::functional::mse_loss(model.forward(val[0][0]), val[0][1]) +
                   nn::functional::mse_loss(model.forward(val[1][0]), val[1][1])) /
                  2;
  CHECK(results["test_loss"] == doctest::Approx(manual.item<float>()).epsilon(1e-5));
  auto vres = t.validate(model, val);
  CHECK(vres.at("val_loss") == doctest::Approx(results["test_loss"]));
  auto preds = t.predict(model, val);
  REQUIRE(preds.size() == 2);
  CHECK(preds[0].sizes() == Shape{4, 1});
  model.to(Device::cpu());
  CHECK(allclose(preds[1].to(Device::cpu()), model.forward(val[1][0]), 1e-5, 1e-6));

  struct Counting : Reg {
    int val_epochs = 0;
    void on_validation_epoch_end() override { ++val_epochs; }
  };
  Counting c1;
  Trainer t1(quiet({.max_epochs = 2, .val_check_interval = 2, .num_sanity_val_steps = 0}));
  t1.fit(c1, train, val);
  CHECK(c1.val_epochs == 2 * 2);  // after batch 2 and at the end of each epoch
  Counting c2;
  Trainer t2(quiet({.max_epochs = 4, .check_val_every_n_epoch = 2, .num_sanity_val_steps = 0}));
  t2.fit(c2, train, val);
  CHECK(c2.val_epochs == 2);
  Counting c3;
  Trainer t3(quiet({.max_epochs = 1, .overfit_batches = 1}));
  t3.fit(c3, train, val);
  CHECK(t3.global_step() == 1);
  CHECK(t3.num_val_batches() == 1);
}

TEST_CASE("ProgressBar: one plain line per epoch off a terminal; model summary") {
  Reg model;
  std::ostringstream captured;
  auto* old = std::cout.rdbuf(captured.rdbuf());
  Trainer t({.max_epochs = 2,
             .enable_checkpointing = false,
             .callbacks = {std::make_shared<ProgressBar>(false)},
             .logger = false});
  t.fit(model, regression_batches(3, 4, 1));
  std::cout.rdbuf(old);
  const std::string out = captured.str();
  CHECK(out.find("| l1   | Linear") != std::string::npos);
  CHECK(out.find("Trainable params") != std::string::npos);
  CHECK(out.find("Epoch 0: 3/3 batches") != std::string::npos);
  CHECK(out.find("Epoch 1: 3/3 batches") != std::string::npos);
  CHECK(out.find("train_loss_step=") != std::string::npos);
  CHECK(out.find("\r") == std::string::npos);
}

TEST_CASE("HParams: JSON round trip and typed access") {
  HParams h{{"layers", int64_t(3)}, {"lr", 1e-3}, {"name", std::string("cnn")}, {"bn", true}};
  HParams back = HParams::from_json(h.to_json());
  CHECK(back.get<int64_t>("layers") == 3);
  CHECK(back.get<double>("layers") == 3.0);
  CHECK(back.get<double>("lr") == 1e-3);
  CHECK(back.get<std::string>("name") == "cnn");
  CHECK(back.get<bool>("bn"));
  CHECK(back.get<int64_t>("missing", 7) == 7);
  CHECK(h.to_yaml() == "layers: 3\nlr: 0.001\nname: cnn\nbn: true\n");
  // Strings YAML would misread are quoted: a vocabulary with a newline, a number-like string.
  HParams odd{{"vocab", std::string("\n ab:#")}, {"tag", std::string("1e-3")}, {"empty", std::string()}};
  CHECK(odd.to_yaml() == "vocab: \"\\n ab:#\"\ntag: \"1e-3\"\nempty: \"\"\n");
  check_error([&] { back.at("nope"); }, {"\"nope\"", "layers, lr, name, bn"});
}

TEST_CASE("TensorBoardLogger: event records read back with the values the CSV logger got") {
  CHECK(crc32c("123456789", 9) == 0xE3069283u);  // the standard CRC-32C check value
  const fs::path dir = scratch("tensorboard");
  auto tb = std::make_shared<TensorBoardLogger>(dir.string());
  auto csv = std::make_shared<CSVLogger>(dir.string(), "csv");
  Reg model;
  Trainer t(quiet({.max_epochs = 2, .log_every_n_steps = 1, .loggers = {tb, csv}}));
  t.fit(model, regression_batches(3, 4, 1), regression_batches(1, 4, 2));
  auto scalars = read_tensorboard_scalars(tb->event_file());
  std::vector<double> tb_steps, csv_steps;
  for (auto& s : scalars)
    if (s.tag == "train_loss_step") tb_steps.push_back(s.value);
  for (auto& row : csv->rows())
    if (row.count("train_loss_step")) csv_steps.push_back(row.at("train_loss_step"));
  REQUIRE(tb_steps.size() == 6);
  REQUIRE(csv_steps.size() == 6);
  for (size_t i = 0; i < 6; ++i) CHECK(tb_steps[i] == doctest::Approx(csv_steps[i]).epsilon(1e-6));
  int val_records = 0;
  for (auto& s : scalars) val_records += s.tag == "val_loss";
  CHECK(val_records == 2);
  CHECK(scalars.back().step == 5);
  // The epoch the Trainer adds to every record is a scalar of its own, as Lightning's logger writes it.
  std::vector<double> epochs;
  for (auto& s : scalars)
    if (s.tag == "epoch") epochs.push_back(s.value);
  REQUIRE(epochs.size() == 6 + 2 + 2);  // six steps, two training and two validation epoch ends
  CHECK(epochs.front() == 0.0);
  CHECK(epochs.back() == 1.0);
  CHECK(fs::exists(dir / "lightning_logs" / "version_0" / "hparams.yaml"));
  // A flipped byte fails the CRC check.
  std::string bytes;
  {
    std::ifstream in(tb->event_file(), std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  bytes[bytes.size() - 6] ^= 0x40;
  const std::string bad = (dir / "corrupt.tfevents").string();
  std::ofstream(bad, std::ios::binary) << bytes;
  check_error([&] { read_tensorboard_scalars(bad); }, {"bad data CRC"});
}

TEST_CASE("Trainer: max_time stops training; on_exception reaches callbacks and the module") {
  Reg model;
  Trainer t(quiet({.max_epochs = 50, .max_time = "00:00:00:00"}));
  t.fit(model, regression_batches(3, 4, 1));
  CHECK(t.global_step() == 1);
  check_error([] { Trainer bad({.max_time = "10 minutes"}); }, {"max_time", "DD:HH:MM:SS"});

  struct Seen : Callback {
    std::string what;
    void on_exception(T&, M&, const std::exception& e) override { what = e.what(); }
  };
  struct Throws : Reg {
    std::string what;
    void on_exception(const std::exception& e) override { what = e.what(); }
  } bad;
  bad.train_fn = [&bad](const Batch& b, int64_t i) -> Tensor {
    EMBER_CHECK(i < 1, "planted failure in batch ", i);
    return nn::functional::mse_loss(bad.forward(b[0]), b[1]);
  };
  auto seen = std::make_shared<Seen>();
  Trainer t2(quiet({.max_epochs = 1, .callbacks = {seen}}));
  check_error([&] { t2.fit(bad, regression_batches(3, 4, 1)); }, {"planted failure in batch 1"});
  CHECK(seen->what.find("planted failure") != std::string::npos);
  CHECK(bad.what.find("planted failure") != std::string::npos);
}

TEST_CASE("LightningModule: freeze/unfreeze, lr_schedulers(), device(), print() and trainer() outside fit") {
  Reg model;
  model.freeze();
  CHECK_FALSE(model.is_training());
  for (auto& p : model.parameters()) CHECK_FALSE(p.requires_grad());
  model.unfreeze();
  CHECK(model.is_training());
  for (auto& p : model.parameters()) CHECK(p.requires_grad());
  CHECK(model.device() == Device::cpu());
  CHECK(model.current_epoch() == 0);
  check_error([&] { model.trainer(); }, {"Reg", "not attached to a Trainer"});
  model.log("ignored", 1.0);  // outside a Trainer, logging goes nowhere

  struct Peek : Reg {
    size_t schedulers = 0;
    std::string printed;
    void on_train_start() override {
      schedulers = lr_schedulers().size();
      std::ostringstream os;
      auto* old = std::cout.rdbuf(os.rdbuf());
      print("epoch ", current_epoch(), " rank ", global_rank());
      std::cout.rdbuf(old);
      printed = os.str();
    }
  } peek;
  peek.configure = [](Reg& r) {
    auto opt = std::make_shared<optim::SGD>(r.parameters());
    return OptimizerConfig{
        .optimizer = opt,
        .lr_scheduler = LRSchedulerConfig{.scheduler = std::make_shared<optim::StepLR>(*opt, 1)}};
  };
  Trainer t(quiet({.max_epochs = 1}));
  t.fit(peek, regression_batches(1, 4, 1));
  CHECK(peek.schedulers == 1);
  CHECK(peek.printed == "epoch 0 rank 0\n");
}

TEST_CASE("Trainer: estimated_stepping_batches in configure_optimizers") {
  int64_t seen = -1;
  Reg model;
  model.configure = [&seen](Reg& r) -> Optimizers {
    seen = r.trainer().estimated_stepping_batches();
    return std::make_shared<optim::SGD>(r.parameters());
  };
  Trainer t(quiet({.max_epochs = 3, .accumulate_grad_batches = 2}));
  t.fit(model, regression_batches(5, 4, 1));
  CHECK(seen == 3 * 3);  // 5 batches in windows of 2: 3 steps per epoch
  CHECK(t.global_step() == seen);
  Trainer t2(quiet({.max_epochs = 3, .max_steps = 4}));
  t2.fit(model, regression_batches(5, 4, 1));
  CHECK(seen == 4);
}

TEST_CASE(
    "Trainer: precision bf16-mixed and 16-mixed train under autocast, keep float32 weights, resume the "
    "scaler") {
  auto train = regression_batches(6, 8, 5);
  for (const std::string precision : {"bf16-mixed", "16-mixed"}) {
    CAPTURE(precision);
    struct Probe : Reg {
      DType seen = kFloat32;
      Tensor training_step(const Batch& b, int64_t) override {
        Tensor h = (*l1)(b[0]);
        seen = h.dtype();
        Tensor loss = nn::functional::mse_loss((*l2)(h.relu()), b[1]);
        log("train_loss", loss, {.on_epoch = true});
        return loss;
      }
    } model;
    const fs::path dir = scratch("precision_" + precision);
    auto ckpt = std::make_shared<ModelCheckpoint>(
        ModelCheckpoint::Options{.dirpath = dir.string(), .save_last = true});
    Trainer t(quiet({.max_epochs = 6, .callbacks = {ckpt}, .precision = precision}));
    t.fit(model, train);
    CHECK(model.seen == (precision == "bf16-mixed" ? kBFloat16 : kFloat16));
    for (auto& [name, p] : model.named_parameters()) CHECK(p.dtype() == kFloat32);
    // It learns: the last epoch's loss is well below the first batch's.
    Reg fresh;
    const double start = nn::functional::mse_loss(fresh.forward(train[0][0]), train[0][1]).item<double>();
    CHECK(t.callback_metrics().at("train_loss_epoch") < 0.5 * start);
    if (precision == "16-mixed") {
      // The GradScaler's state travels in the checkpoint and comes back on resume.
      auto c = read_checkpoint(ckpt->last_model_path());
      REQUIRE(c.grad_scaler.has_value());
      REQUIRE(t.grad_scaler() != nullptr);
      CHECK(c.grad_scaler == t.grad_scaler()->state_dict());
      // 2^16 overflows float16 in the first steps here: some were skipped and the scale backed off.
      CHECK(c.grad_scaler->scale < 65536.0);
      Probe resumed;
      Trainer t2(quiet({.max_epochs = 7, .precision = precision}));
      t2.fit(resumed, train, nullptr, ckpt->last_model_path());
      CHECK(t2.global_step() == 42);
      CHECK(t2.grad_scaler()->get_scale() == c.grad_scaler->scale);  // restored, not 2^16 again
      CHECK(t2.grad_scaler()->state_dict()->growth_tracker == c.grad_scaler->growth_tracker + 6);
    }
  }
  check_error([] { Trainer bad(quiet({.precision = "8-mixed"})); }, {"precision", "bf16-mixed", "8-mixed"});
}

TEST_CASE("Trainer: 16-mixed skips the steps whose gradients overflow float16 and backs off the scale") {
  // A loss of ~1e3 times the 65536 scale overflows float16's 65504 in the first steps: those steps
  // are skipped (weights unchanged) until the scale is small enough.
  struct Huge : Reg {
    Tensor training_step(const Batch& b, int64_t) override {
      return nn::functional::mse_loss(forward(b[0]) * 1000.0, b[1] * 1000.0);
    }
  } model;
  Reg initial;
  initial.load_state_dict(model.state_dict());
  auto train = regression_batches(1, 8, 6);
  Trainer t(quiet({.max_epochs = 1, .precision = "16-mixed"}));
  t.fit(model, train);
  CHECK(same_weights(model, initial));  // the only step overflowed and was skipped
  Trainer t2(quiet({.max_epochs = 30, .precision = "16-mixed"}));
  t2.fit(model, train);
  CHECK_FALSE(same_weights(model, initial));  // later steps went through at a smaller scale
}

TEST_CASE("Trainer: strategy \"ddp\" needs ember::distributed, and says so when it was not built") {
  if (distributed::available()) {
    CHECK_NOTHROW(Trainer({.logger = false, .strategy = "ddp"}));  // one process: ddp of one rank
  } else {
    check_error([] { Trainer({.logger = false, .strategy = "ddp"}); },
                {"strategy \"ddp\" needs ember::distributed"});
  }
}

// ---- logging rules, after Lightning's tests/tests_pytorch/trainer/logging_/ -----------------------

TEST_CASE(
    "Lightning test__training_step__log_max_reduce_fx: reduce_fx is case-insensitive, \"avg\" is the mean") {
  struct Model : Reg {
    Tensor training_step(const Batch& b, int64_t i) override {
      Tensor loss = nn::functional::mse_loss(forward(b[0]), b[1]);
      log("biggest", static_cast<double>(i), {.on_step = false, .on_epoch = true, .reduce_fx = "MAX"});
      log("average", static_cast<double>(i), {.on_step = false, .on_epoch = true, .reduce_fx = "avg"});
      return loss;
    }
  } model;
  Trainer t(quiet({.max_epochs = 1}));
  t.fit(model, regression_batches(4, 4, 2));
  CHECK(t.callback_metrics().at("biggest") == 3.0);
  CHECK(t.callback_metrics().at("average") == doctest::Approx(1.5));
  struct Bad : Reg {
    Tensor training_step(const Batch& b, int64_t) override {
      log("x", 1.0, {.reduce_fx = "median"});
      return nn::functional::mse_loss(forward(b[0]), b[1]);
    }
  } bad;
  Trainer t2(quiet({.max_epochs = 1}));
  check_error([&] { t2.fit(bad, regression_batches(2, 4, 2)); }, {"reduce_fx", "\"median\"", "avg"});
}

TEST_CASE("Lightning test_logging_raises: on_step=false with on_epoch=false, and one key logged two ways") {
  struct Neither : Reg {
    Tensor training_step(const Batch& b, int64_t) override {
      log("x", 1.0, {.on_step = false, .on_epoch = false});
      return nn::functional::mse_loss(forward(b[0]), b[1]);
    }
  } neither;
  Trainer t(quiet({.max_epochs = 1}));
  check_error([&] { t.fit(neither, regression_batches(2, 4, 2)); },
              {"log(\"x\")", "training_step", "on_epoch=false"});
  struct TwoWays : Reg {
    Tensor training_step(const Batch& b, int64_t) override {
      log("x", 1.0, {.on_step = true});
      log("x", 2.0, {.on_step = true});  // the same arguments again: allowed, the value is replaced
      log("x", 3.0, {.on_step = true, .reduce_fx = "max"});
      return nn::functional::mse_loss(forward(b[0]), b[1]);
    }
  } two_ways;
  Trainer t2(quiet({.max_epochs = 1}));
  check_error([&] { t2.fit(two_ways, regression_batches(2, 4, 2)); },
              {"log(\"x\")", "twice in training_step", "different arguments"});
}

TEST_CASE("Lightning test_fx_validator_integration: hooks that may not log, and epoch hooks log per epoch") {
  auto fails_in = [](const std::string& where) {
    struct Model : Reg {
      std::string where;
      void try_log(const std::string& fx) {
        if (fx == where) log("x", 1.0);
      }
      void setup(const std::string&) override { try_log("setup"); }
      void on_fit_start() override { try_log("on_fit_start"); }
      void on_train_end() override { try_log("on_train_end"); }
      void on_fit_end() override { try_log("on_fit_end"); }
      void on_save_checkpoint(CheckpointExtras&) override { try_log("on_save_checkpoint"); }
      Optimizers configure_optimizers() override {
        try_log("configure_optimizers");
        return Reg::configure_optimizers();
      }
    } model;
    model.where = where;
    const fs::path dir = scratch("fx_" + where);
    Trainer t(quiet({.max_epochs = 1,
                     .default_root_dir = dir.string(),
                     .callbacks = {std::make_shared<ModelCheckpoint>(
                         ModelCheckpoint::Options{.dirpath = dir.string()})}}));
    INFO(where);
    check_error([&] { t.fit(model, regression_batches(2, 4, 2)); }, {"you can't log inside " + where});
  };
  for (const char* fx :
       {"setup", "configure_optimizers", "on_fit_start", "on_train_end", "on_fit_end", "on_save_checkpoint"})
    fails_in(fx);
  struct StepInEpochHook : Reg {
    void on_train_epoch_end() override { log("x", 1.0, {.on_step = true}); }
  } per_step;
  Trainer t(quiet({.max_epochs = 1}));
  check_error([&] { t.fit(per_step, regression_batches(2, 4, 2)); },
              {"on_train_epoch_end", "once per epoch"});
  struct EpochHookDefaults : Reg {
    void on_train_epoch_end() override { log("epoch_value", 7.0); }  // the default there: per epoch
  } fine;
  Trainer t2(quiet({.max_epochs = 1}));
  t2.fit(fine, regression_batches(2, 4, 2));
  CHECK(t2.callback_metrics().at("epoch_value") == 7.0);
}

TEST_CASE(
    "Lightning test_load_from_checkpoint_hook_calls: load_from_checkpoint calls on_load_checkpoint first") {
  struct Noted : Reg {
    explicit Noted(const HParams& hp = {{"hidden", int64_t(8)}, {"lr", 0.05}, {"dropout", 0.0}}) : Reg(hp) {}
    void on_save_checkpoint(CheckpointExtras& c) override {
      c.values["note"] = "saved by on_save_checkpoint";
    }
    void on_load_checkpoint(const CheckpointExtras& c) override {
      note = c.values.count("note") ? c.values.at("note") : "";
      ++loads;
    }
    std::string note;
    int loads = 0;
  } model;
  const fs::path dir = scratch("load_hooks");
  Trainer t(quiet({.max_epochs = 1}));
  t.fit(model, regression_batches(2, 4, 1));
  t.save_checkpoint((dir / "m.ckpt").string());
  auto loaded = load_from_checkpoint<Noted>((dir / "m.ckpt").string());
  CHECK(loaded->loads == 1);
  CHECK(loaded->note == "saved by on_save_checkpoint");
  CHECK(same_weights(model, *loaded));
}

TEST_CASE(
    "Lightning test_trainer_model_hook_system_eval[validate, batches=0]: an empty loop runs none of its "
    "hooks") {
  HookModel model;
  std::vector<std::string> events;
  g_events = &events;
  Trainer t(quiet({.limit_val_batches = 0}));
  t.validate(model, regression_batches(3, 4, 1));
  g_events = nullptr;
  CHECK(events == std::vector<std::string>{"setup:validate", "teardown:validate"});
  // With batches, the loop's hooks run around them.
  events.clear();
  g_events = &events;
  Trainer t2(quiet({.limit_val_batches = 1}));
  t2.validate(model, regression_batches(3, 4, 1));
  g_events = nullptr;
  CHECK(events ==
        std::vector<std::string>{"setup:validate", "on_validation_start", "on_validation_epoch_start",
                                 "on_validation_batch_start", "validation_step", "on_validation_batch_end",
                                 "on_validation_epoch_end", "on_validation_end", "teardown:validate"});
}

TEST_CASE("Lightning test_val_check_interval: 1/3 of an epoch validates 3 times per epoch, 1/4 four times") {
  struct Counting : Reg {
    int train_epochs = 0, val_epochs = 0;
    void on_train_epoch_start() override { ++train_epochs; }
    void on_validation_epoch_start() override {
      if (!trainer().sanity_checking()) ++val_epochs;
    }
  };
  const auto batches = regression_batches(64, 1, 3);  // 64 batches, as Lightning's BoringModel has
  for (int max_epochs : {1, 2})
    for (int denominator : {1, 3, 4}) {
      INFO("max_epochs " << max_epochs << ", val_check_interval 1/" << denominator);
      Counting model;
      Trainer t(quiet({.max_epochs = max_epochs, .val_check_interval = 1.0 / denominator}));
      t.fit(model, batches, batches);
      CHECK(model.train_epochs == max_epochs);
      CHECK(model.val_epochs == max_epochs * denominator);
    }
}

// ---- hook order, stopping, schedulers and checkpoints, after Lightning's own tests ----------------

namespace {

// Every log_metrics call, in order.
struct RecordingLogger : Logger {
  std::vector<std::pair<std::map<std::string, double>, int64_t>> calls;
  void log_metrics(const std::map<std::string, double>& metrics, int64_t step) override {
    calls.push_back({metrics, step});
  }
};

struct OrderedCheckpoint : ModelCheckpoint {
  using ModelCheckpoint::ModelCheckpoint;
  void on_train_epoch_end(T& t, M& m) override {
    if (g_events) g_events->push_back("ModelCheckpoint");
    ModelCheckpoint::on_train_epoch_end(t, m);
  }
};
struct OrderedEarlyStopping : EarlyStopping {
  using EarlyStopping::EarlyStopping;
  void on_train_epoch_end(T& t, M& m) override {
    if (g_events) g_events->push_back("EarlyStopping");
    EarlyStopping::on_train_epoch_end(t, m);
  }
};

// No logging in training_step: only what a test logs reaches the loggers.
struct Silent : Reg {
  Tensor training_step(const Batch& b, int64_t) override {
    return nn::functional::mse_loss(forward(b[0]), b[1]);
  }
};

}  // namespace

TEST_CASE(
    "Lightning test_trainer_model_hook_system_fit: the module's on_train_epoch_end runs before the "
    "monitors") {
  struct Model : Reg {
    void on_train_epoch_end() override {
      if (g_events) g_events->push_back("module");
      log("from_epoch_end", 1.0);
    }
  } model;
  const fs::path dir = scratch("epoch_end_order");
  std::vector<std::string> events;
  g_events = &events;
  auto ckpt = std::make_shared<OrderedCheckpoint>(
      ModelCheckpoint::Options{.dirpath = dir.string(), .monitor = "from_epoch_end"});
  auto es = std::make_shared<OrderedEarlyStopping>(
      EarlyStopping::Options{.monitor = "from_epoch_end", .check_on_train_epoch_end = true});
  Trainer t(quiet({.max_epochs = 1, .callbacks = {ckpt, std::make_shared<Recorder>(), es}}));
  t.fit(model, regression_batches(2, 4, 1));  // the monitors find the metric the module logged
  g_events = nullptr;
  std::vector<std::string> epoch_end;
  for (auto& e : events)
    if (e == "module" || e == "ModelCheckpoint" || e == "EarlyStopping" || e == "cb:on_train_epoch_end")
      epoch_end.push_back(e);
  CHECK(epoch_end ==
        std::vector<std::string>{"cb:on_train_epoch_end", "module", "ModelCheckpoint", "EarlyStopping"});
  CHECK(ckpt->best_model_score() == 1.0);
}

TEST_CASE(
    "Lightning test_early_stopping_patience_train: check_on_train_epoch_end sees what on_train_epoch_end "
    "logs") {
  struct Case {
    std::vector<double> losses;
    int64_t patience, stop_epoch;
  };
  for (auto [losses, patience, stop_epoch] :
       {Case{{6, 5, 5, 5, 5, 5}, 3, 4}, Case{{6, 5, 4, 4, 3, 3}, 1, 3}, Case{{6, 5, 6, 5, 5, 5}, 3, 4}})
    for (bool with_validation : {false, true}) {
      struct Model : Silent {
        std::vector<double> losses;
        void on_train_epoch_end() override {
          log("train_loss", losses.at(std::min<size_t>(trainer().current_epoch(), losses.size() - 1)));
        }
      } model;
      model.losses = losses;
      auto es = std::make_shared<EarlyStopping>(EarlyStopping::Options{
          .monitor = "train_loss", .patience = patience, .check_on_train_epoch_end = true});
      Trainer t(quiet({.max_epochs = 10, .num_sanity_val_steps = 0, .callbacks = {es}}));
      if (with_validation) t.fit(model, regression_batches(2, 4, 1), regression_batches(1, 4, 2));
      else t.fit(model, regression_batches(2, 4, 1));
      INFO("patience " << patience << ", validation " << with_validation);
      CHECK(t.current_epoch() - 1 == stop_epoch);
    }
}

TEST_CASE(
    "Lightning test_trainer_min_steps_and_min_epochs: a stop request waits for min_steps and min_epochs") {
  auto stop_at_once = [] {
    return std::make_shared<EarlyStopping>(
        EarlyStopping::Options{.monitor = "train_loss", .stopping_threshold = 1e9});
  };
  auto train = regression_batches(2, 4, 1);
  Reg m1;
  Trainer t1(quiet({.max_epochs = 10, .callbacks = {stop_at_once()}}));
  t1.fit(m1, train);
  CHECK(t1.global_step() == 2);  // stopped after the first epoch
  Reg m2;
  Trainer t2(quiet({.max_epochs = 10, .min_steps = 7, .callbacks = {stop_at_once()}}));
  t2.fit(m2, train);
  CHECK(t2.global_step() == 7);  // the request stood; the epoch loop ended at the 7th step
  CHECK(t2.current_epoch() == 4);
  Reg m3;
  Trainer t3(quiet({.max_epochs = 10, .min_epochs = 3, .min_steps = 2, .callbacks = {stop_at_once()}}));
  t3.fit(m3, train);
  CHECK(t3.current_epoch() == 3);  // whole epochs: min_epochs kept the epoch loop going
  CHECK(t3.global_step() == 6);
}

TEST_CASE("Lightning test_lr_scheduler_strict: epoch-interval schedulers step only after a complete epoch") {
  auto plateau_on = [](const std::string& monitor, bool strict) {
    return [monitor, strict](Reg& r) -> Optimizers {
      auto opt = std::make_shared<optim::SGD>(r.parameters(), optim::SGDOptions{.lr = 0.01});
      return OptimizerConfig{
          .optimizer = opt,
          .lr_scheduler = LRSchedulerConfig{.scheduler = std::make_shared<optim::ReduceLROnPlateau>(*opt),
                                            .monitor = monitor,
                                            .strict = strict}};
    };
  };
  auto train = regression_batches(4, 4, 1);
  Reg stopped;
  stopped.configure = plateau_on("giraffe", true);
  Trainer t1(quiet({.max_steps = 1}));
  CHECK_NOTHROW(t1.fit(stopped, train));  // max_steps ended the epoch early: the scheduler never looked
  Reg complete;
  complete.configure = plateau_on("giraffe", true);
  Trainer t2(quiet({.max_epochs = 1}));
  check_error([&] { t2.fit(complete, train); },
              {"ReduceLROnPlateau conditioned on metric \"giraffe\"", "Available metrics"});
  Reg lenient;
  lenient.configure = plateau_on("giraffe", false);
  Trainer t3(quiet({.max_epochs = 1}));
  t3.fit(lenient, train);
  CHECK(t3.warnings().size() == 1);
  // The same for an epoch-interval StepLR: the learning rate moves only when an epoch completes.
  auto step_lr = [](Reg& r) -> Optimizers {
    auto opt = std::make_shared<optim::SGD>(r.parameters(), optim::SGDOptions{.lr = 1.0});
    return OptimizerConfig{
        .optimizer = opt,
        .lr_scheduler = LRSchedulerConfig{.scheduler = std::make_shared<optim::StepLR>(*opt, 1, 0.5)}};
  };
  Reg m4;
  m4.configure = step_lr;
  Trainer t4(quiet({.max_steps = 6}));  // one epoch and a half
  t4.fit(m4, train);
  CHECK(t4.optimizers()[0]->param_groups()[0].lr() == 0.5);
}

TEST_CASE(
    "Lightning test_lr_scheduler_state_updated_before_saving: the epoch's checkpoint holds the stepped lr") {
  struct Model : Reg {
    double lr_seen = -1;
    void on_save_checkpoint(CheckpointExtras&) override {
      lr_seen = trainer().optimizers()[0]->param_groups()[0].lr();
    }
  };
  for (bool with_validation : {false, true}) {
    Model model;
    model.configure = [](Reg& r) -> Optimizers {
      auto opt = std::make_shared<optim::SGD>(r.parameters(), optim::SGDOptions{.lr = 1.0});
      return OptimizerConfig{
          .optimizer = opt,
          .lr_scheduler = LRSchedulerConfig{.scheduler = std::make_shared<optim::ExponentialLR>(*opt, 10.0)}};
    };
    const fs::path dir = scratch("lr_before_saving");
    Trainer t(quiet({.max_epochs = 1,
                     .callbacks = {std::make_shared<ModelCheckpoint>(
                         ModelCheckpoint::Options{.dirpath = dir.string()})}}));
    if (with_validation) t.fit(model, regression_batches(2, 4, 1), regression_batches(1, 4, 2));
    else t.fit(model, regression_batches(2, 4, 1));
    INFO("validation " << with_validation);
    CHECK(model.lr_seen == 10.0);
  }
}

TEST_CASE("Lightning test_optimizers: ReduceLROnPlateau needs a monitor; no optimizer at all is a warning") {
  Reg m;
  m.configure = [](Reg& r) -> Optimizers {
    auto opt = std::make_shared<optim::SGD>(r.parameters(), optim::SGDOptions{.lr = 0.01});
    return OptimizerConfig{
        .optimizer = opt,
        .lr_scheduler = LRSchedulerConfig{.scheduler = std::make_shared<optim::ReduceLROnPlateau>(*opt)}};
  };
  Trainer t(quiet({.max_epochs = 1}));
  check_error([&] { t.fit(m, regression_batches(2, 4, 1)); }, {"ReduceLROnPlateau", "monitor"});
  CHECK(t.global_step() == 0);  // raised before training
  Reg none;
  none.configure = [](Reg&) -> Optimizers { return {}; };
  Trainer t2(quiet({.max_epochs = 1}));
  t2.fit(none, regression_batches(2, 4, 1));
  REQUIRE(t2.warnings().size() == 1);
  CHECK(t2.warnings()[0].find("returned no optimizer") != std::string::npos);
}

TEST_CASE(
    "Lightning test_model_checkpoint_none_monitor: without a monitor nothing is ranked; the newest is best") {
  const fs::path dir = scratch("none_monitor");
  auto ckpt = std::make_shared<ModelCheckpoint>(
      ModelCheckpoint::Options{.dirpath = dir.string(), .filename = "{epoch}", .save_top_k = -1});
  Reg model;
  Trainer t(quiet({.max_epochs = 2, .callbacks = {ckpt}}));
  t.fit(model, regression_batches(3, 4, 1), regression_batches(2, 4, 2));
  CHECK(ckpt->best_model_path() == (dir / "epoch=1.ckpt").string());
  CHECK(ckpt->last_model_path().empty());
  CHECK_FALSE(ckpt->best_model_score().has_value());
  CHECK(ckpt->best_k_models().empty());
  std::set<std::string> files;
  for (auto& e : fs::directory_iterator(dir)) files.insert(e.path().filename().string());
  CHECK(files == std::set<std::string>{"epoch=0.ckpt", "epoch=1.ckpt"});
  // save_top_k above 1 has nothing to rank by; every_n_train_steps and every_n_epochs exclude each other.
  check_error([] { ModelCheckpoint({.save_top_k = 3}); },
              {"save_top_k=3", "monitor", "not a valid configuration"});
  check_error([] { ModelCheckpoint({.every_n_epochs = 2, .every_n_train_steps = 5}); },
              {"mutually exclusive"});
  CHECK_NOTHROW(ModelCheckpoint({.every_n_train_steps = 5}));
}

TEST_CASE("Lightning test_val_check_interval_checkpoint_files: a checkpoint after every validation") {
  const fs::path dir = scratch("val_interval_ckpt");
  struct Model : Reg {
    Tensor validation_step(const Batch& b, int64_t i) override {
      log("val_acc", static_cast<double>(trainer().global_step()));
      return Reg::validation_step(b, i);
    }
  } model;
  auto ckpt = std::make_shared<ModelCheckpoint>(ModelCheckpoint::Options{
      .dirpath = dir.string(), .monitor = "val_acc", .mode = "max", .save_top_k = -1});
  Trainer t(quiet({.max_epochs = 1, .val_check_interval = 0.2, .callbacks = {ckpt}}));
  t.fit(model, regression_batches(10, 2, 1), regression_batches(1, 2, 2));
  std::set<std::string> files;
  for (auto& e : fs::directory_iterator(dir)) files.insert(e.path().filename().string());
  CHECK(files == std::set<std::string>{"epoch=0-step=2.ckpt", "epoch=0-step=4.ckpt", "epoch=0-step=6.ckpt",
                                       "epoch=0-step=8.ckpt", "epoch=0-step=10.ckpt"});
  CHECK(ckpt->best_model_score() == 10.0);
}

TEST_CASE("Lightning test_checkpointing_with_nan_as_first and test_current_score_when_nan") {
  for (std::string mode : {"min", "max"}) {
    INFO(mode);
    const std::vector<double> scores =
        mode == "max" ? std::vector<double>{NAN, 5, 7, 8} : std::vector<double>{NAN, 8, 7, 5};
    struct Model : Reg {
      std::vector<double> scores;
      void on_validation_epoch_end() override { log("abc", scores[trainer().current_epoch()]); }
    } model;
    model.scores = scores;
    struct Counting : ModelCheckpoint {
      using ModelCheckpoint::ModelCheckpoint;
      int saves = 0;
      void on_save_checkpoint(T&, M&, CheckpointExtras&) override { ++saves; }
    };
    const fs::path dir = scratch("nan_first_" + mode);
    auto ckpt = std::make_shared<Counting>(
        ModelCheckpoint::Options{.dirpath = dir.string(), .monitor = "abc", .mode = mode});
    Trainer t(quiet({.max_epochs = 4, .callbacks = {ckpt}}));
    t.fit(model, regression_batches(2, 4, 1), regression_batches(1, 4, 2));
    CHECK(ckpt->saves == 4);  // the NaN epoch too: the top-k was not full yet
    CHECK(ckpt->best_model_score() == (mode == "max" ? 8.0 : 5.0));
    // A NaN alone: best and current score are the worst value of the mode.
    struct AllNaN : Reg {
      Tensor training_step(const Batch& b, int64_t i) override {
        log("foo", NAN);
        return Reg::training_step(b, i);
      }
    } nan_model;
    auto only = std::make_shared<ModelCheckpoint>(
        ModelCheckpoint::Options{.dirpath = (dir / "only").string(), .monitor = "foo", .mode = mode});
    Trainer t2(quiet({.max_epochs = 1, .callbacks = {only}}));
    t2.fit(nan_model, regression_batches(1, 4, 1));
    const double worst = mode == "min" ? INFINITY : -INFINITY;
    CHECK(only->best_model_score() == worst);
    CHECK(only->current_score() == worst);
  }
}

TEST_CASE(
    "Lightning test_model_checkpoint_save_last_checkpoint_contents: last.ckpt holds the top-k file's state") {
  const fs::path dir = scratch("last_contents");
  auto ckpt = std::make_shared<ModelCheckpoint>(ModelCheckpoint::Options{.dirpath = dir.string(),
                                                                         .filename = "{epoch}",
                                                                         .monitor = "val_loss",
                                                                         .save_top_k = -1,
                                                                         .save_last = true});
  Reg model;
  Trainer t(quiet({.max_epochs = 3, .callbacks = {ckpt}}));
  t.fit(model, regression_batches(2, 4, 1), regression_batches(1, 4, 2));
  CHECK(ckpt->last_model_path() == (dir / "last.ckpt").string());
  const auto last = read_checkpoint((dir / "last.ckpt").string());
  const auto epoch2 = read_checkpoint((dir / "epoch=2.ckpt").string());
  CHECK(last.epoch == epoch2.epoch);
  CHECK(last.global_step == epoch2.global_step);
  REQUIRE(last.callbacks.count(ckpt->state_key()) == 1);
  CHECK(last.callbacks.at(ckpt->state_key()) == epoch2.callbacks.at(ckpt->state_key()));
  // The state names the file itself among the kept ones, with the score it was saved with.
  const auto state = nlohmann::json::parse(epoch2.callbacks.at(ckpt->state_key()));
  CHECK(state["best_k_models"].contains((dir / "epoch=2.ckpt").string()));
  CHECK(state["current_score"] == t.callback_metrics().at("val_loss"));
  ModelCheckpoint restored({.dirpath = dir.string(), .monitor = "val_loss"});
  restored.load_state_dict(ckpt->state_dict());
  CHECK(restored.current_score() == ckpt->current_score());
}

TEST_CASE("Lightning test_callbacks_and_logger_not_called_with_fastdevrun") {
  const fs::path dir = scratch("fast_dev_run");
  auto ckpt = std::make_shared<ModelCheckpoint>(ModelCheckpoint::Options{.dirpath = (dir / "ckpt").string()});
  auto es = std::make_shared<EarlyStopping>(
      EarlyStopping::Options{.monitor = "foo"});  // never logged: a check would fail
  auto logger = std::make_shared<RecordingLogger>();
  Reg model;
  Trainer t({.fast_dev_run = 2,
             .enable_progress_bar = false,
             .enable_model_summary = false,
             .callbacks = {ckpt, es},
             .loggers = {logger}});
  t.fit(model, regression_batches(4, 4, 1), regression_batches(4, 4, 2));
  CHECK(t.global_step() == 2);
  CHECK(t.find_callback<ModelCheckpoint>() == ckpt);  // still there, but idle
  CHECK(ckpt->best_model_path().empty());
  CHECK_FALSE(fs::exists(dir / "ckpt"));
  CHECK(es->wait_count() == 0);
  CHECK(logger->calls.empty());
}

TEST_CASE(
    "Lightning test__validation_step__log and test_eval_logging_auto_reduce: eval step keys stay out of "
    "callback_metrics") {
  struct Model : Reg {
    Tensor training_step(const Batch& b, int64_t) override {
      Tensor loss = nn::functional::mse_loss(forward(b[0]), b[1]);
      log("a", loss, {.on_step = true, .on_epoch = true});
      log("a2", 2.0);
      return loss;
    }
    std::vector<double> val_values;
    Tensor validation_step(const Batch& b, int64_t) override {
      Tensor loss = nn::functional::mse_loss(forward(b[0]), b[1]);
      if (!trainer().sanity_checking()) val_values.push_back(loss.item<double>());
      log("b", loss, {.on_step = true, .on_epoch = true});
      return loss;
    }
  } model;
  Trainer t(
      quiet({.max_epochs = 2, .limit_train_batches = 2, .limit_val_batches = 3, .log_every_n_steps = 1}));
  t.fit(model, regression_batches(2, 4, 1), regression_batches(3, 4, 2));
  std::set<std::string> logged, callback;
  for (auto& [k, v] : t.logged_metrics()) logged.insert(k);
  for (auto& [k, v] : t.callback_metrics()) callback.insert(k);
  CHECK(logged == std::set<std::string>{"a2", "a_step", "a_epoch", "b_step", "b_epoch"});
  CHECK(callback == std::set<std::string>{"a", "a2", "b", "a_epoch", "b_epoch", "a_step"});
  // b is the epoch mean of the last validation, b_step the last value the loggers got.
  REQUIRE(model.val_values.size() == 6);
  const double mean = (model.val_values[3] + model.val_values[4] + model.val_values[5]) / 3;
  CHECK(t.callback_metrics().at("b") == doctest::Approx(mean));
  CHECK(t.callback_metrics().at("b_epoch") == doctest::Approx(mean));
  CHECK(t.logged_metrics().at("b_step") == doctest::Approx(model.val_values.back()));
}

TEST_CASE(
    "Lightning test_eval_step_logging: eval steps log at the eval loop's own count; test starts afresh") {
  struct Model : Silent {
    Tensor validation_step(const Batch&, int64_t i) override {
      log(trainer().fitting() ? "val_log_fit" : "val_log_validate", static_cast<double>(i),
          {.on_step = true, .on_epoch = false});
      return {};
    }
    Tensor test_step(const Batch&, int64_t i) override {
      log("test_log", static_cast<double>(i), {.on_step = true, .on_epoch = false});
      return {};
    }
  } model;
  auto logger = std::make_shared<RecordingLogger>();
  TrainerOptions o =
      quiet({.max_epochs = 3, .limit_train_batches = 1, .limit_val_batches = 4, .limit_test_batches = 4});
  o.logger = true;
  o.loggers = {logger};
  Trainer t(o);
  auto val = regression_batches(4, 2, 2);
  t.fit(model, regression_batches(1, 2, 1), val);  // the sanity check's logs are discarded
  std::vector<std::pair<std::map<std::string, double>, int64_t>> expected;
  for (int epoch = 0; epoch < 3; ++epoch)
    for (int step = 0; step < 4; ++step) expected.push_back({{{"val_log_fit", step}}, step + 4 * epoch});
  CHECK(logger->calls == expected);
  logger->calls.clear();
  t.validate(model, val);
  expected.clear();
  for (int step = 0; step < 4; ++step) expected.push_back({{{"val_log_validate", step}}, step});
  CHECK(logger->calls == expected);
  logger->calls.clear();
  t.test(model, val);
  expected.clear();
  for (int step = 0; step < 4; ++step) expected.push_back({{{"test_log", step}}, step});
  CHECK(logger->calls == expected);
  std::set<std::string> callback;
  for (auto& [k, v] : t.callback_metrics()) callback.insert(k);
  CHECK(callback == std::set<std::string>{"test_log"});  // nothing left from fit or validate
}

TEST_CASE("Lightning test_log_on_train_start: what on_train_start logs counts in the first epoch only") {
  struct Model : Silent {
    void on_train_start() override { log("foo", 123.0); }
  } model;
  auto logger = std::make_shared<RecordingLogger>();
  TrainerOptions o = quiet({.max_epochs = 2, .limit_train_batches = 1, .log_every_n_steps = 1});
  o.logger = true;
  o.loggers = {logger};
  Trainer t(o);
  t.fit(model, regression_batches(1, 2, 1));
  using Call = std::pair<std::map<std::string, double>, int64_t>;
  CHECK(logger->calls == std::vector<Call>{{{{"foo", 123.0}, {"epoch", 0.0}}, 0}});
  CHECK(t.callback_metrics().at("foo") == 123.0);
}

TEST_CASE(
    "Lightning test_resume_training_preserves_old_ckpt_last: a resumed run leaves the first run's files") {
  const fs::path dir = scratch("preserve_last");
  auto options = [&](const std::string& dirpath) {
    return ModelCheckpoint::Options{.dirpath = dirpath,
                                    .filename = "{step}",
                                    .monitor = "step",
                                    .mode = "max",
                                    .save_top_k = 2,
                                    .save_last = true,
                                    .every_n_train_steps = 1};
  };
  Reg model;
  auto batches = regression_batches(3, 4, 1);
  Trainer t(quiet({.max_epochs = 1,
                   .default_root_dir = dir.string(),
                   .callbacks = {std::make_shared<ModelCheckpoint>(options(""))}}));
  t.fit(model, batches);
  std::set<std::string> files;
  for (auto& e : fs::directory_iterator(dir / "checkpoints")) files.insert(e.path().filename().string());
  CHECK(files == std::set<std::string>{"last.ckpt", "step=2.ckpt", "step=3.ckpt"});
  Trainer t2(quiet({.max_epochs = 2,
                    .default_root_dir = dir.string(),
                    .callbacks = {std::make_shared<ModelCheckpoint>(options((dir / "new").string()))}}));
  t2.fit(model, batches, nullptr, (dir / "checkpoints" / "last.ckpt").string());
  CHECK(t2.global_step() == 6);
  files.clear();
  for (auto& e : fs::directory_iterator(dir / "checkpoints")) files.insert(e.path().filename().string());
  CHECK(files == std::set<std::string>{"last.ckpt", "step=2.ckpt", "step=3.ckpt"});
  CHECK(fs::exists(dir / "new" / "last.ckpt"));
  CHECK(fs::exists(dir / "new" / "step=6.ckpt"));
}

TEST_CASE(
    "Lightning test_trainer_model_hook_system_fit_no_val_and_resume_max_epochs: restore order on resume") {
  const fs::path dir = scratch("resume_order");
  auto ckpt_options = ModelCheckpoint::Options{.dirpath = dir.string(), .save_last = true};
  Reg first;
  Trainer t(quiet({.max_epochs = 1, .callbacks = {std::make_shared<ModelCheckpoint>(ckpt_options)}}));
  t.fit(first, regression_batches(2, 4, 1));
  struct Model : HookModel {
    void on_load_checkpoint(const CheckpointExtras&) override { rec("on_load_checkpoint"); }
    Optimizers configure_optimizers() override {
      rec("configure_optimizers");
      return Reg::configure_optimizers();
    }
  } model;
  struct Loading : ModelCheckpoint {
    using ModelCheckpoint::ModelCheckpoint;
    void on_load_checkpoint(T&, M&, const CheckpointExtras&) override {
      g_events->push_back("cb:on_load_checkpoint");
    }
    void load_state_dict(const std::string& s) override {
      g_events->push_back("cb:load_state_dict");
      ModelCheckpoint::load_state_dict(s);
    }
  };
  std::vector<std::string> events;
  g_events = &events;
  Trainer t2(quiet({.max_epochs = 2, .callbacks = {std::make_shared<Loading>(ckpt_options)}}));
  t2.fit(model, regression_batches(2, 4, 1), nullptr, (dir / "last.ckpt").string());
  g_events = nullptr;
  const std::vector<std::string> head(events.begin(), events.begin() + 6);
  CHECK(head == std::vector<std::string>{"setup:fit", "on_load_checkpoint", "cb:on_load_checkpoint",
                                         "cb:load_state_dict", "configure_optimizers", "on_fit_start"});
  CHECK(t2.global_step() == 4);
}

TEST_CASE("Lightning test_trainer_model_hook_system_fit_no_val_and_resume_max_steps: on in the same epoch") {
  const fs::path dir = scratch("resume_steps");
  struct Model : Silent {
    std::vector<std::pair<int64_t, int64_t>> seen;  // (epoch, batch) of every training step
    Tensor training_step(const Batch& b, int64_t i) override {
      seen.push_back({trainer().current_epoch(), i});
      return Silent::training_step(b, i);
    }
  };
  auto batches = regression_batches(2, 4, 1);
  Model first;
  Trainer t(quiet({.max_steps = 1,
                   .callbacks = {std::make_shared<ModelCheckpoint>(
                       ModelCheckpoint::Options{.dirpath = dir.string(), .save_last = true})}}));
  t.fit(first, batches);
  Model resumed;
  Trainer t2(quiet({.max_steps = 3}));
  t2.fit(resumed, batches, nullptr, (dir / "last.ckpt").string());
  using Seen = std::vector<std::pair<int64_t, int64_t>>;
  CHECK(resumed.seen == Seen{{0, 1}, {1, 0}});
  CHECK(t2.global_step() == 3);
}

TEST_CASE("Lightning test_hooks: evaluation puts each module's mode back; fit never forces train()") {
  struct Model : Reg {
    int train_calls = 0, eval_calls = 0;
    bool l1_training_seen = true, training_seen = false;
    nn::Module& train(bool on) override {
      ++(on ? train_calls : eval_calls);
      return Reg::train(on);
    }
    Tensor training_step(const Batch& b, int64_t i) override {
      l1_training_seen = l1->is_training();
      training_seen = is_training();
      return Reg::training_step(b, i);
    }
  } model;
  model.l1->eval();  // a frozen part the user keeps in eval mode
  Trainer t(quiet({.max_epochs = 1, .val_check_interval = 0.5, .num_sanity_val_steps = 1}));
  t.fit(model, regression_batches(4, 4, 1), regression_batches(1, 4, 2));
  CHECK(model.train_calls == 0);
  CHECK(model.eval_calls == 3);  // the sanity check and two validations
  CHECK(model.training_seen);
  CHECK_FALSE(model.l1_training_seen);
  CHECK_FALSE(model.l1->is_training());
  CHECK(model.l2->is_training());
}

TEST_CASE(
    "Lightning test_multiple_optimizers_manual_call_counts: manual steps, closures, retain_graph, hooks") {
  struct Model : Reg {
    std::vector<std::string> order;
    Model() { automatic_optimization(false); }
    Tensor training_step(const Batch& b, int64_t) override {
      auto opts = optimizers();
      for (auto& opt : opts) {
        opt.zero_grad();
        Tensor loss = nn::functional::mse_loss(forward(b[0]), b[1]);
        opt.step([&] {
          order.push_back("closure");
          manual_backward(loss, /*retain_graph=*/true);
          manual_backward(loss);  // the graph was kept for this second pass
        });
      }
      return {};
    }
    void on_before_zero_grad(optim::Optimizer&) override { order.push_back("on_before_zero_grad"); }
    void on_before_optimizer_step(optim::Optimizer&) override { order.push_back("on_before_optimizer_step"); }
    Optimizers configure_optimizers() override {
      return {std::make_shared<optim::SGD>(l1->parameters(), optim::SGDOptions{.lr = 0.01}),
              std::make_shared<optim::SGD>(l2->parameters(), optim::SGDOptions{.lr = 0.01})};
    }
  } model;
  Trainer t(quiet({.max_epochs = 1}));
  t.fit(model, regression_batches(2, 4, 1));
  CHECK(t.global_step() == 4);  // 2 optimizers x 2 batches
  const std::vector<std::string> one = {"closure", "on_before_optimizer_step"};
  std::vector<std::string> expected;
  for (int i = 0; i < 4; ++i) expected.insert(expected.end(), one.begin(), one.end());
  CHECK(model.order == expected);  // and no on_before_zero_grad in manual optimization
}

TEST_CASE(
    "Lightning test_lr_scheduler_step_hook: a scheduler of the user's own type steps through the module") {
  struct Halver {  // not an optim:: scheduler
    optim::Optimizer* opt;
    int steps = 0;
    void step() {
      ++steps;
      for (auto& g : opt->param_groups()) g.lr() = g.lr() / 2;
    }
  };
  struct Model : Reg {
    bool override_hook = true;
    std::shared_ptr<Halver> halver;
    Optimizers configure_optimizers() override {
      auto opt = std::make_shared<optim::SGD>(parameters(), optim::SGDOptions{.lr = 1.0});
      halver = std::make_shared<Halver>(Halver{opt.get()});
      return OptimizerConfig{
          .optimizer = opt,
          .lr_scheduler = LRSchedulerConfig{.scheduler = Scheduler::custom(halver), .interval = "step"}};
    }
    void lr_scheduler_step(Scheduler& scheduler, std::optional<double> metric) override {
      if (override_hook) scheduler.get<Halver>()->step();
      else Reg::lr_scheduler_step(scheduler, metric);
    }
  } model;
  Trainer t(quiet({.max_epochs = 1}));
  t.fit(model, regression_batches(3, 4, 1));
  CHECK(model.halver->steps == 3);
  CHECK(t.optimizers()[0]->param_groups()[0].lr() == 0.125);
  check_error([&] { Scheduler::custom(model.halver).get<int>(); }, {"Scheduler::get", "custom"});
  Model plain;
  plain.override_hook = false;
  Trainer t2(quiet({.max_epochs = 1}));
  check_error([&] { t2.fit(plain, regression_batches(3, 4, 1)); }, {"your own type", "lr_scheduler_step"});
}

TEST_CASE(
    "Lightning test_logging_in_callbacks_with_log_function: callbacks log through the module, on_train_start "
    "too") {
  struct Logging : Callback {
    void on_train_start(T&, M& m) override { m.log("on_train_start", 1.0); }
    void on_train_epoch_start(T&, M& m) override { m.log("on_train_epoch_start", 2.0); }
    void on_train_batch_end(T&, M& m, const Tensor&, int64_t) override { m.log("on_train_batch_end", 3.0); }
    void on_train_epoch_end(T&, M& m) override { m.log("on_train_epoch_end", 4.0); }
  };
  Silent model;
  Trainer t(quiet({.max_epochs = 1,
                   .limit_train_batches = 1,
                   .limit_val_batches = 1,
                   .callbacks = {std::make_shared<Logging>()}}));
  t.fit(model, regression_batches(1, 4, 1), regression_batches(1, 4, 2));
  std::map<std::string, double> expected = {{"on_train_start", 1},
                                            {"on_train_epoch_start", 2},
                                            {"on_train_batch_end", 3},
                                            {"on_train_epoch_end", 4},
                                            {"val_loss", t.callback_metrics().at("val_loss")}};
  CHECK(t.callback_metrics() ==
        expected);  // (Reg's validation_step logs val_loss, which BoringModel does not)
}
