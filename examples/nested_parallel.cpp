// Seed pattern 2: two feature extractors in parallel. Each is a LightningModule whose own
// training_step (with a name prefix) and log() calls the parent invokes; a third optimizer trains
// the final layer. Every child's logs reach the Trainer under the names they were given.
#include <iostream>

#include "ember/ember.h"

using namespace ember;
using namespace ember::trainer;
using Batch = std::array<Tensor, 2>;

class FeatureExtractor : public LightningModule<Batch> {
 public:
  FeatureExtractor(int64_t in, int64_t out) : LightningModule("FeatureExtractor") {
    linear = register_module("linear", std::make_shared<nn::Linear>(in, out));
  }
  Tensor forward(const Tensor& x) override { return (*linear)(x); }
  // Called by the parent with a prefix for the logged name.
  Tensor training_step(const Batch& batch, int64_t, const std::string& prefix) {
    auto [x, y] = batch;
    Tensor loss = nn::functional::mse_loss(forward(x), y);
    log(prefix + "_loss", loss, {.on_epoch = true});
    return loss;
  }
  Optimizers configure_optimizers() override { return std::make_shared<optim::Adam>(parameters()); }
  std::shared_ptr<nn::Linear> linear;
};

class ParallelNestedModule : public LightningModule<Batch> {
 public:
  ParallelNestedModule(int64_t in, int64_t hidden, int64_t out) : LightningModule("ParallelNestedModule") {
    extractor1 = register_module("extractor1", std::make_shared<FeatureExtractor>(in, hidden));
    extractor2 = register_module("extractor2", std::make_shared<FeatureExtractor>(in, hidden));
    final_linear = register_module("final_linear", std::make_shared<nn::Linear>(2 * hidden, out));
  }
  Tensor forward(const Tensor& x) override {
    return (*final_linear)(cat({(*extractor1)(x), (*extractor2)(x)}, 1));
  }
  Tensor training_step(const Batch& batch, int64_t batch_idx) override {
    Tensor loss1 = extractor1->training_step(batch, batch_idx, "extractor1");
    Tensor loss2 = extractor2->training_step(batch, batch_idx, "extractor2");
    auto [x, y] = batch;
    Tensor loss3 = nn::functional::mse_loss(forward(x), y.slice(1, 0, 1));
    log("final_loss", loss3, {.prog_bar = true, .on_epoch = true});
    return loss1 + loss2 + loss3;
  }
  Optimizers configure_optimizers() override {
    return {extractor1->configure_optimizers(), extractor2->configure_optimizers(),
            std::make_shared<optim::Adam>(final_linear->parameters())};
  }
  std::shared_ptr<FeatureExtractor> extractor1, extractor2;
  std::shared_ptr<nn::Linear> final_linear;
};

int main(int argc, char** argv) {
  const int64_t epochs = argc > 1 ? std::stoll(argv[1]) : 10;
  seed_everything(0);
  Tensor x = randn({256, 8});
  auto data = std::make_shared<data::TensorDataset<2>>(x, matmul(x, randn({8, 4})));
  ParallelNestedModule model(8, 4, 1);
  Trainer trainer({.max_epochs = epochs, .enable_checkpointing = false, .logger = false});
  trainer.fit(model, data::DataLoader(data, {.batch_size = 32, .shuffle = true}));
  const auto& m = trainer.callback_metrics();
  for (auto key : {"extractor1_loss_epoch", "extractor2_loss_epoch", "final_loss_epoch"})
    std::cout << key << " = " << m.at(key) << "\n";
  return trainer.optimizers().size() == 3 ? 0 : 1;
}
