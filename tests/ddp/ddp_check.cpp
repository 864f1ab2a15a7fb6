// Data-parallel checks, run by ctest under `mpirun -np 2` (and once without mpirun). Each mode exits
// non-zero when what it checks does not hold.
//   equivalence   2 ranks x batch 16 == 1 process x batch 32, after 5 steps (also with one bucket
//                 per parameter: equivalence_small_buckets)
//   coverage      every example is seen exactly once per epoch across ranks; eval metrics with
//                 sync_dist equal one process's; sync_dist reduces across ranks
//   syncbn        sync_batchnorm: 2 ranks x batch 8 == 1 process x batch 16, running stats included
//   checkpoint    rank 0 alone writes checkpoints and logs (a 2-rank run writes DIR/last.ckpt)
//   resume DIR    one process resumes the 2-rank checkpoint and trains on
//   throw         rank 1 throws in training_step: every rank ends, naming rank 1
//   hang          rank 1 stops calling collectives: the watchdog ends every rank
#include <chrono>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <set>
#include <thread>

#include "ember/ember.h"

using namespace ember;
using namespace ember::trainer;
using Batch = std::array<Tensor, 3>;  // x, y, example id

namespace {

int failures = 0;
void expect(bool ok, const std::string& what) {
  if (!ok) {
    std::cerr << "ddp_check: FAILED: " << what << "\n";
    ++failures;
  }
}

std::shared_ptr<data::TensorDataset<3>> dataset(int64_t n) {
  manual_seed(5);
  Tensor x = randn({n, 4});
  Tensor y = matmul(x, randn({4, 1})) + 0.1 * randn({n, 1});
  return std::make_shared<data::TensorDataset<3>>(x, y, arange(n, kInt64));
}

struct Model : LightningModule<Batch> {
  Model() : LightningModule("Model") {
    seed_everything(11);
    l1 = register_module("l1", std::make_shared<nn::Linear>(4, 8));
    l2 = register_module("l2", std::make_shared<nn::Linear>(8, 1));
    unused = register_module("unused", std::make_shared<nn::Linear>(2, 2));  // never in forward
  }
  Tensor forward(const Tensor& x) override { return (*l2)((*l1)(x).tanh()); }
  Tensor training_step(const Batch& b, int64_t i) override {
    if (throw_on_rank >= 0 && global_rank() == throw_on_rank && i == 1) EMBER_CHECK(false, "planted failure");
    if (hang_on_rank >= 0 && global_rank() == hang_on_rank && i == 1)
      std::this_thread::sleep_for(std::chrono::hours(1));
    Tensor ids = b[2];
    for (int64_t k = 0; k < ids.numel(); ++k) seen.push_back(ids[k].item<int64_t>());
    Tensor loss = nn::functional::mse_loss(forward(b[0]), b[1]);
    log("train_loss", loss, {.on_epoch = true, .sync_dist = true});
    log("rank_mean", static_cast<double>(global_rank()), {.on_step = true, .sync_dist = true});
    return loss;
  }
  Tensor validation_step(const Batch& b, int64_t) override {
    Tensor loss = nn::functional::mse_loss(forward(b[0]), b[1]);
    log("val_loss", loss, {.sync_dist = true});
    return loss;
  }
  Optimizers configure_optimizers() override {
    return std::make_shared<optim::SGD>(parameters(), optim::SGDOptions{.lr = 0.1, .momentum = 0.9});
  }
  std::shared_ptr<nn::Linear> l1, l2, unused;
  std::vector<int64_t> seen;
  int throw_on_rank = -1, hang_on_rank = -1;
};

TrainerOptions quiet(TrainerOptions o) {
  o.enable_progress_bar = false;
  o.enable_model_summary = false;
  return o;
}

// bucket_mb 0 puts every parameter in its own bucket (many all-reduces in flight during backward).
int equivalence(int64_t bucket_mb) {
  auto ds = dataset(32);
  Model ddp;
  data::DataLoader loader(ds, {.batch_size = 16, .shuffle = true, .seed = 3});
  Trainer t(
      quiet({.max_epochs = 5, .enable_checkpointing = false, .logger = false, .ddp_bucket_mb = bucket_mb}));
  expect(t.world_size() == 2, "two ranks");
  t.fit(ddp, loader);
  // The same 5 steps in one process on the whole batch of 32.
  Model single;
  optim::SGD opt(single.parameters(), optim::SGDOptions{.lr = 0.1, .momentum = 0.9});
  for (int step = 0; step < 5; ++step) {
    opt.zero_grad();
    nn::functional::mse_loss(single.forward(ds->tensors()[0]), ds->tensors()[1]).backward();
    opt.step();
  }
  auto a = ddp.state_dict(), b = single.state_dict();
  for (size_t i = 0; i < a.size(); ++i)
    expect(allclose(a[i].second, b[i].second, 1e-5, 1e-6), "weights equal after 5 steps: " + a[i].first);
  expect(t.global_step() == 5, "5 steps");
  expect(!ddp.unused->weight.grad().defined(), "a parameter no rank used keeps no gradient");
  return failures;
}

// SyncBatchNorm: 2 ranks x batch 8 == 1 process x batch 16, running statistics included.
int syncbn() {
  struct BnModel : LightningModule<Batch> {
    BnModel() : LightningModule("BnModel") {
      seed_everything(21);
      body = register_module("body",
                             std::make_shared<nn::Sequential>(std::initializer_list<nn::ModulePtr>{
                                 std::make_shared<nn::Linear>(4, 6), std::make_shared<nn::BatchNorm1d>(6),
                                 std::make_shared<nn::Tanh>(), std::make_shared<nn::Linear>(6, 1)}));
    }
    Tensor forward(const Tensor& x) override { return (*body)(x); }
    Tensor training_step(const Batch& b, int64_t) override {
      return nn::functional::mse_loss(forward(b[0]), b[1]);
    }
    Optimizers configure_optimizers() override {
      return std::make_shared<optim::SGD>(parameters(), optim::SGDOptions{.lr = 0.2});
    }
    std::shared_ptr<nn::Sequential> body;
  };
  auto ds = dataset(16);
  BnModel ddp;
  Trainer t(quiet({.max_epochs = 3, .enable_checkpointing = false, .logger = false, .sync_batchnorm = true}));
  t.fit(ddp, data::DataLoader(ds, {.batch_size = 8}));
  BnModel single;
  optim::SGD opt(single.parameters(), optim::SGDOptions{.lr = 0.2});
  for (int step = 0; step < 3; ++step) {
    opt.zero_grad();
    nn::functional::mse_loss(single.forward(ds->tensors()[0]), ds->tensors()[1]).backward();
    opt.step();
  }
  auto a = ddp.state_dict(), b = single.state_dict();
  for (size_t i = 0; i < a.size(); ++i)
    expect(allclose(a[i].second.to(kFloat64), b[i].second.to(kFloat64), 1e-4, 1e-5),
           "sync batchnorm: " + a[i].first);
  return failures;
}

int coverage() {
  auto ds = dataset(40);
  Model m;
  data::DataLoader train(ds, {.batch_size = 4, .shuffle = true});
  data::DataLoader val(ds, {.batch_size = 10});
  Trainer t(
      quiet({.max_epochs = 1, .num_sanity_val_steps = 0, .enable_checkpointing = false, .logger = false}));
  t.fit(m, train, val);
  Tensor mine = tensor(m.seen, {static_cast<int64_t>(m.seen.size())});
  Tensor all = t.all_gather(mine).flatten().contiguous();
  std::multiset<int64_t> ids(all.data_ptr<int64_t>(), all.data_ptr<int64_t>() + all.numel());
  expect(ids.size() == 40, "40 examples per epoch over both ranks, got " + std::to_string(ids.size()));
  for (int64_t k = 0; k < 40; ++k) expect(ids.count(k) == 1, "example " + std::to_string(k) + " seen once");
  expect(std::fabs(t.callback_metrics().at("rank_mean") - 0.5) < 1e-12,
         "sync_dist mean of ranks 0 and 1 is 0.5");
  // Validation metrics equal one process's (40 examples split 20 / 20).
  const double val_loss = t.callback_metrics().at("val_loss");
  autograd::NoGradGuard g;
  m.eval();
  const double single = nn::functional::mse_loss(m.forward(ds->tensors()[0]), ds->tensors()[1]).item<float>();
  expect(std::fabs(val_loss - single) < 1e-5,
         "val_loss " + std::to_string(val_loss) + " == single-process " + std::to_string(single));
  return failures;
}

int checkpoint(const std::string& dir) {
  auto ds = dataset(32);
  Model m;
  data::DataLoader loader(ds, {.batch_size = 8, .shuffle = true, .seed = 1});
  auto ckpt = std::make_shared<ModelCheckpoint>(
      ModelCheckpoint::Options{.dirpath = dir, .save_top_k = 0, .save_last = true});
  Trainer t(quiet({.max_epochs = 2, .default_root_dir = dir + "/root", .callbacks = {ckpt}}));
  t.fit(m, loader);
  t.barrier();
  namespace fs = std::filesystem;
  expect(fs::exists(dir + "/last.ckpt"), "last.ckpt written");
  // Only rank 0 made a log directory.
  int versions = 0;
  for (auto& e : fs::directory_iterator(dir + "/root/lightning_logs")) versions += e.is_directory();
  expect(versions == 1, "one log directory (rank 0's), got " + std::to_string(versions));
  if (t.global_rank() == 0) save(m, dir + "/weights_after_2.safetensors");
  return failures;
}

int resume(const std::string& dir) {
  auto ds = dataset(32);
  Model m;
  data::DataLoader loader(ds, {.batch_size = 8, .shuffle = true, .seed = 1});
  Model saved;
  nn::load(saved, dir + "/weights_after_2.safetensors");
  Trainer t(quiet({.max_epochs = 2, .enable_checkpointing = false, .logger = false}));
  t.fit(m, loader, nullptr, dir + "/last.ckpt");  // max_epochs reached: restores, trains nothing
  auto a = m.state_dict(), b = saved.state_dict();
  for (size_t i = 0; i < a.size(); ++i) expect(equal(a[i].second, b[i].second), "restored " + a[i].first);
  expect(t.global_step() == 4,
         "global_step 4 (2 epochs x 2 batches of 8 per rank), got " + std::to_string(t.global_step()));
  Trainer more(quiet({.max_epochs = 3, .enable_checkpointing = false, .logger = false}));
  more.fit(m, loader, nullptr, dir + "/last.ckpt");
  expect(more.global_step() == 4 + 4, "one more epoch of 4 steps (32 examples, batch 8) in one process");
  return failures;
}

int failing(bool hang) {
  auto ds = dataset(32);
  Model m;
  (hang ? m.hang_on_rank : m.throw_on_rank) = 1;
  data::DataLoader loader(ds, {.batch_size = 4});
  Trainer t(quiet({.max_epochs = 1, .enable_checkpointing = false, .logger = false, .ddp_timeout = 3}));
  t.fit(m, loader);
  std::cerr << "ddp_check: the run should not have finished\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  try {
    if (mode == "equivalence") return equivalence(25);
    if (mode == "equivalence_small_buckets") return equivalence(0);
    if (mode == "coverage") return coverage();
    if (mode == "syncbn") return syncbn();
    if (mode == "checkpoint" && argc > 2) return checkpoint(argv[2]);
    if (mode == "resume" && argc > 2) return resume(argv[2]);
    if (mode == "throw") return failing(false);
    if (mode == "hang") return failing(true);
  } catch (const std::exception& e) {
    std::cerr << "ddp_check: " << e.what() << "\n";
    return 1;
  }
  std::cerr << "usage: ddp_check equivalence|coverage|checkpoint DIR|resume DIR|throw|hang\n";
  return 2;
}
