// Tour 05: the Trainer runs the loop a LightningModule describes. The module says what one step is
// (training_step, validation_step) and which optimizer to use; the Trainer owns the epochs, the
// batches, zero_grad/backward/step, the logging of self.log-style metrics and the hooks. A Callback
// here records the hooks it sees, in order, and the validation loss after each epoch. Exits non-zero
// when the order or the learning is not what this comment says.
#include <iostream>
#include <string>
#include <vector>

#include "ember/ember.h"

using namespace ember;
using namespace ember::trainer;
using Batch = std::array<Tensor, 2>;

namespace {

// Linear regression: the step logs its loss; the Trainer reduces it per epoch.
class Regression : public LightningModule<Batch> {
 public:
  Regression() : LightningModule("Regression") {
    fc = register_module("fc", std::make_shared<nn::Linear>(3, 1));
  }
  Tensor forward(const Tensor& x) override { return (*fc)(x); }
  Tensor training_step(const Batch& batch, int64_t) override {
    Tensor loss = nn::functional::mse_loss(forward(batch[0]), batch[1]);
    log("train_loss", loss, {.on_epoch = true});
    return loss;
  }
  Tensor validation_step(const Batch& batch, int64_t) override {
    Tensor loss = nn::functional::mse_loss(forward(batch[0]), batch[1]);
    log("val_loss", loss);
    return loss;
  }
  Optimizers configure_optimizers() override {
    return std::make_shared<optim::SGD>(parameters(), optim::SGDOptions{.lr = 0.1});
  }
  std::shared_ptr<nn::Linear> fc;
};

// Records the hooks of the first epoch (a run of one hook once) and every epoch's val_loss.
class Recorder : public Callback {
 public:
  void on_fit_start(Trainer&, LightningModuleBase&) override { hooks.push_back("on_fit_start"); }
  void on_train_epoch_start(Trainer& t, LightningModuleBase&) override { note(t, "on_train_epoch_start"); }
  void on_train_batch_end(Trainer& t, LightningModuleBase&, const Tensor&, int64_t) override {
    note(t, "on_train_batch_end");
  }
  void on_validation_epoch_end(Trainer& t, LightningModuleBase&) override {
    note(t, "on_validation_epoch_end");
  }
  // The epoch's reduced metrics reach callback_metrics once the validation epoch has ended, so they
  // are read here (ModelCheckpoint and EarlyStopping read them at this point too).
  void on_validation_end(Trainer& t, LightningModuleBase&) override {
    note(t, "on_validation_end");
    val_losses.push_back(t.callback_metrics().at("val_loss"));
  }
  void on_train_epoch_end(Trainer& t, LightningModuleBase&) override { note(t, "on_train_epoch_end"); }
  void on_fit_end(Trainer&, LightningModuleBase&) override { hooks.push_back("on_fit_end"); }
  std::vector<std::string> hooks;
  std::vector<double> val_losses;

 private:
  void note(Trainer& t, const std::string& hook) {
    if (t.current_epoch() == 0 && (hooks.empty() || hooks.back() != hook)) hooks.push_back(hook);
  }
};

}  // namespace

int main() {
  seed_everything(0);
  Tensor x = randn({256, 3}), y = matmul(x, tensor({1.0f, -2.0f, 0.5f}).reshape({3, 1})) + 0.3;
  auto train = std::make_shared<data::TensorDataset<2>>(x.narrow(0, 0, 192), y.narrow(0, 0, 192));
  auto val = std::make_shared<data::TensorDataset<2>>(x.narrow(0, 192, 64), y.narrow(0, 192, 64));
  data::DataLoader train_loader(train, {.batch_size = 32, .shuffle = true});
  data::DataLoader val_loader(val, {.batch_size = 64});
  auto recorder = std::make_shared<Recorder>();
  Regression model;
  Trainer trainer({.max_epochs = 5,
                   .num_sanity_val_steps = 0,
                   .enable_progress_bar = false,
                   .enable_checkpointing = false,
                   .enable_model_summary = false,
                   .callbacks = {recorder},
                   .logger = false});
  trainer.fit(model, train_loader, val_loader);

  std::cout << "hooks of epoch 0, in order:\n";
  for (const auto& h : recorder->hooks) std::cout << "  " << h << "\n";
  const std::vector<std::string> expected = {
      "on_fit_start",      "on_train_epoch_start", "on_train_batch_end", "on_validation_epoch_end",
      "on_validation_end", "on_train_epoch_end",   "on_fit_end"};
  std::cout << "val_loss per epoch:";
  for (double v : recorder->val_losses) std::cout << " " << v;
  std::cout << "\n";
  const bool order_ok = recorder->hooks == expected;
  const bool learned =
      recorder->val_losses.size() == 5 && recorder->val_losses.back() < 0.1 * recorder->val_losses.front();
  std::cout << (order_ok ? "  ok    " : "  WRONG ") << "the hooks ran in Lightning's order\n";
  std::cout << (learned ? "  ok    " : "  WRONG ") << "val_loss fell tenfold in five epochs\n";
  return order_ok && learned ? 0 : 1;
}
