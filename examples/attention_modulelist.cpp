// Seed patterns 4 and 5: a multi-head layer whose heads live in a ModuleList - every head is a
// registered parameter, so the optimizer trains it - and the same layer with a plain std::vector
// (--broken), where the heads get gradients but no optimizer sees them. The Trainer notices after
// the first backward and warns, naming the shapes and the fix.
#include <iostream>

#include "ember/ember.h"

using namespace ember;
using namespace ember::trainer;
using Batch = std::array<Tensor, 2>;  // x [B, T, E], class per position [B, T]

class MultiHeadAttentionLayer : public nn::Module {
 public:
  MultiHeadAttentionLayer(int64_t num_heads, int64_t embedding_dim, bool use_module_list)
      : nn::Module("MultiHeadAttentionLayer") {
    for (int64_t h = 0; h < num_heads; ++h) {
      auto head = std::make_shared<nn::Linear>(embedding_dim, embedding_dim);
      if (use_module_list) registered_heads->push_back(head);
      else plain_heads.push_back(head);  // the mistake: a std::vector registers nothing
    }
    if (use_module_list) register_module("attention_heads", registered_heads);
    projection =
        register_module("projection", std::make_shared<nn::Linear>(embedding_dim * num_heads, embedding_dim));
  }
  Tensor forward(const Tensor& x) override {
    std::vector<Tensor> outputs;
    for (auto& head : registered_heads->size()
                          ? std::vector<nn::ModulePtr>(registered_heads->begin(), registered_heads->end())
                          : std::vector<nn::ModulePtr>(plain_heads.begin(), plain_heads.end()))
      outputs.push_back((*head)(x));
    return (*projection)(cat(outputs, -1));
  }
  std::shared_ptr<nn::ModuleList> registered_heads = std::make_shared<nn::ModuleList>();
  std::vector<std::shared_ptr<nn::Linear>> plain_heads;
  std::shared_ptr<nn::Linear> projection;
};

class ExampleLightningModule : public LightningModule<Batch> {
 public:
  ExampleLightningModule(int64_t num_heads, int64_t embedding_dim, bool use_module_list)
      : LightningModule("ExampleLightningModule") {
    attention_layer = register_module("attention_layer", std::make_shared<MultiHeadAttentionLayer>(
                                                             num_heads, embedding_dim, use_module_list));
    linear = register_module("linear", std::make_shared<nn::Linear>(embedding_dim, 10));
  }
  Tensor forward(const Tensor& x) override { return (*linear)((*attention_layer)(x)); }
  Tensor training_step(const Batch& batch, int64_t) override {
    auto [x, y] = batch;
    Tensor logits = forward(x);
    Tensor loss = nn::functional::cross_entropy(logits.reshape({-1, 10}), y.reshape({-1}));
    log("train_loss", loss, {.prog_bar = true});
    return loss;
  }
  Optimizers configure_optimizers() override { return std::make_shared<optim::Adam>(parameters()); }
  std::shared_ptr<MultiHeadAttentionLayer> attention_layer;
  std::shared_ptr<nn::Linear> linear;
};

int main(int argc, char** argv) {
  const bool broken = argc > 1 && std::string(argv[1]) == "--broken";
  seed_everything(0);
  ExampleLightningModule model(4, 64, !broken);
  auto first_head = broken ? model.attention_layer->plain_heads[0]
                           : model.attention_layer->registered_heads->at<nn::Linear>(0);
  Tensor before = first_head->weight.clone();
  std::vector<Batch> train = {{randn({32, 10, 64}), randint(10, {32, 10})}};
  Trainer trainer({.max_epochs = 1, .enable_checkpointing = false, .logger = false});
  trainer.fit(model, train);
  const bool head_trained = !equal(before, first_head->weight);
  std::cout << "parameters registered: " << model.parameters().size()
            << ", first head trained: " << (head_trained ? "yes" : "no") << "\n";
  // ModuleList: the heads train. std::vector: they do not, and the Trainer said so.
  return broken ? (!head_trained && !trainer.warnings().empty() ? 0 : 1) : (head_trained ? 0 : 1);
}
