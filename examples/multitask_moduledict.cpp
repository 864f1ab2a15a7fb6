// Seed pattern 6: a multi-task model. A shared encoder feeds task heads kept in a ModuleDict; each
// batch is (x, task name, y) and is routed to its task's head; the loss is logged per task.
#include <iostream>
#include <tuple>

#include "ember/ember.h"

using namespace ember;
using namespace ember::trainer;
using Batch = std::tuple<Tensor, std::string, Tensor>;

class MultiTaskModel : public nn::Module {
 public:
  MultiTaskModel(int64_t embedding_dim, const std::vector<std::pair<std::string, int64_t>>& task_dims)
      : nn::Module("MultiTaskModel") {
    encoder = register_module("encoder", std::make_shared<nn::Linear>(embedding_dim, embedding_dim));
    task_heads = register_module("task_heads", std::make_shared<nn::ModuleDict>());
    for (auto& [task, dim] : task_dims)
      task_heads->insert(task, std::make_shared<nn::Linear>(embedding_dim, dim));
  }
  Tensor forward(const Tensor& x, const std::string& task) {
    return (*(*task_heads)[task])((*encoder)(x).relu());
  }
  std::shared_ptr<nn::Linear> encoder;
  std::shared_ptr<nn::ModuleDict> task_heads;
};

class MultiTaskLightningModule : public LightningModule<Batch> {
 public:
  MultiTaskLightningModule(int64_t embedding_dim,
                           const std::vector<std::pair<std::string, int64_t>>& task_dims)
      : LightningModule("MultiTaskLightningModule") {
    model = register_module("model", std::make_shared<MultiTaskModel>(embedding_dim, task_dims));
  }
  Tensor training_step(const Batch& batch, int64_t) override {
    const auto& [x, task, y] = batch;
    Tensor loss = nn::functional::cross_entropy(model->forward(x, task), y);
    log(task + "_loss", loss, {.on_epoch = true});
    return loss;
  }
  Optimizers configure_optimizers() override { return std::make_shared<optim::Adam>(parameters()); }
  std::shared_ptr<MultiTaskModel> model;
};

int main(int argc, char** argv) {
  const int64_t epochs = argc > 1 ? std::stoll(argv[1]) : 30;
  seed_everything(0);
  Tensor x = randn({32, 64});
  // Learnable targets: each task's class is a function of x.
  Tensor y_a = x.slice(1, 0, 5).argmax(1), y_b = x.slice(1, 5, 15).argmax(1);
  std::vector<Batch> train = {{x, "task_a", y_a}, {x, "task_b", y_b}};
  MultiTaskLightningModule model(64, {{"task_a", 5}, {"task_b", 10}});
  Trainer trainer({.max_epochs = epochs, .enable_checkpointing = false, .logger = false});
  trainer.fit(model, train);
  const auto& m = trainer.callback_metrics();
  std::cout << "task_a_loss = " << m.at("task_a_loss_epoch")
            << ", task_b_loss = " << m.at("task_b_loss_epoch") << "\n";
  return m.at("task_a_loss_epoch") < 1.0 && m.at("task_b_loss_epoch") < 1.5 ? 0 : 1;
}
