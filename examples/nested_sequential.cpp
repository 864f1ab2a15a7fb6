// Seed pattern 1: a parent LightningModule nesting two LightningModules in sequence, each with its
// own optimizer; the parent returns its children's configure_optimizers() as its own, and the
// Trainer steps each optimizer on its own parameters after one backward.
#include <iostream>

#include "ember/ember.h"

using namespace ember;
using namespace ember::trainer;
using Batch = std::array<Tensor, 2>;

class LinearModule : public LightningModule<Batch> {
 public:
  LinearModule(int64_t in, int64_t out) : LightningModule("LinearModule") {
    linear = register_module("linear", std::make_shared<nn::Linear>(in, out));
  }
  Tensor forward(const Tensor& x) override { return (*linear)(x); }
  Tensor training_step(const Batch& batch, int64_t) override {
    auto [x, y] = batch;
    Tensor loss = nn::functional::mse_loss(forward(x), y);
    log("train_loss", loss);
    return loss;
  }
  Optimizers configure_optimizers() override {
    return std::make_shared<optim::Adam>(parameters(), optim::AdamOptions{.lr = 1e-2});
  }
  std::shared_ptr<nn::Linear> linear;
};

class SequentialNestedModule : public LightningModule<Batch> {
 public:
  SequentialNestedModule(int64_t in, int64_t hidden, int64_t out)
      : LightningModule("SequentialNestedModule") {
    linear1 = register_module("linear1", std::make_shared<LinearModule>(in, hidden));
    linear2 = register_module("linear2", std::make_shared<LinearModule>(hidden, out));
  }
  Tensor forward(const Tensor& x) override { return (*linear2)((*linear1)(x)); }
  Tensor training_step(const Batch& batch, int64_t) override {
    auto [x, y] = batch;
    Tensor loss = nn::functional::mse_loss(forward(x), y);
    log("train_loss", loss, {.prog_bar = true, .on_epoch = true});
    return loss;
  }
  Optimizers configure_optimizers() override {
    return {linear1->configure_optimizers(), linear2->configure_optimizers()};
  }
  std::shared_ptr<LinearModule> linear1, linear2;
};

int main(int argc, char** argv) {
  const int64_t epochs = argc > 1 ? std::stoll(argv[1]) : 20;
  seed_everything(0);
  Tensor x = randn({256, 8}), w = randn({8, 2});
  auto data = std::make_shared<data::TensorDataset<2>>(x, matmul(x, w));
  data::DataLoader loader(data, {.batch_size = 32, .shuffle = true});
  SequentialNestedModule model(8, 16, 2);
  Trainer trainer({.max_epochs = epochs, .enable_checkpointing = false, .logger = false});
  trainer.fit(model, loader);
  const double first = trainer.callback_metrics().at("train_loss_epoch");
  std::cout << "optimizers: " << trainer.optimizers().size() << ", final train_loss_epoch: " << first << "\n";
  return trainer.optimizers().size() == 2 && first < 0.5 ? 0 : 1;
}
