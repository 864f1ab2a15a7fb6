// Seed pattern 3: a nested module that runs only when the batch says so. The batch is a tuple of
// two tensors and a plain bool; batches with the flag off skip the child, and its optimizer then
// skips its parameters (no gradient, no update).
#include <iostream>
#include <tuple>

#include "ember/ember.h"

using namespace ember;
using namespace ember::trainer;
using Batch = std::tuple<Tensor, Tensor, bool>;  // x, y, condition

class ConditionalModule : public LightningModule<Batch> {
 public:
  ConditionalModule(int64_t in, int64_t out) : LightningModule("ConditionalModule") {
    linear = register_module("linear", std::make_shared<nn::Linear>(in, out));
  }
  Tensor forward(const Tensor& x, bool condition) { return condition ? (*linear)(x) : x; }
  Optimizers configure_optimizers() override { return std::make_shared<optim::Adam>(parameters()); }
  std::shared_ptr<nn::Linear> linear;
};

class ConditionalNestedModule : public LightningModule<Batch> {
 public:
  ConditionalNestedModule(int64_t in, int64_t hidden) : LightningModule("ConditionalNestedModule") {
    linear = register_module("linear", std::make_shared<nn::Linear>(in, hidden));
    conditional = register_module("conditional_module", std::make_shared<ConditionalModule>(hidden, hidden));
  }
  Tensor forward(const Tensor& x, bool condition) { return conditional->forward((*linear)(x), condition); }
  Tensor training_step(const Batch& batch, int64_t) override {
    const auto& [x, y, condition] = batch;
    Tensor loss = nn::functional::mse_loss(forward(x, condition), y);
    log(condition ? "loss_with_child" : "loss_without_child", loss, {.on_epoch = true});
    return loss;
  }
  Optimizers configure_optimizers() override {
    return {std::make_shared<optim::Adam>(linear->parameters()), conditional->configure_optimizers()};
  }
  std::shared_ptr<nn::Linear> linear;
  std::shared_ptr<ConditionalModule> conditional;
};

int main(int argc, char** argv) {
  const int64_t epochs = argc > 1 ? std::stoll(argv[1]) : 10;
  seed_everything(0);
  std::vector<Batch> batches;
  for (int i = 0; i < 8; ++i) {
    Tensor x = randn({16, 6});
    batches.emplace_back(x, x.slice(1, 0, 4) * 2.0, i % 2 == 0);
  }
  ConditionalNestedModule model(6, 4);
  Tensor child_before = model.conditional->linear->weight.clone();
  Trainer trainer({.max_epochs = epochs, .enable_checkpointing = false, .logger = false});
  trainer.fit(model, batches);
  const auto& m = trainer.callback_metrics();
  std::cout << "loss_with_child = " << m.at("loss_with_child")
            << ", loss_without_child = " << m.at("loss_without_child") << "\n";
  return equal(child_before, model.conditional->linear->weight) ? 1 : 0;  // the child trained too
}
