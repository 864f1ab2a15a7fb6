// The README's first example and a small Trainer run, built against the installed ember. Exits
// non-zero if the gradient is wrong or training does not lower the loss, so the install test checks
// behaviour, not just linking (the TensorBoard logger pulls in protobuf through the package).
#include <ember/ember.h>

#include <cmath>
#include <iostream>

int main() {
  ember::manual_seed(0);
  auto x = ember::randn({3, 4}).requires_grad_();
  auto w = ember::randn({4, 2}).requires_grad_();
  auto y = ember::matmul(x, w).relu().sum();
  y.backward();
  std::cout << x.grad() << w.grad() << y.item<float>() << "\n";
  // d(sum relu(xw))/dx = mask(xw > 0) @ w^T
  auto mask = (ember::matmul(x, w) > 0).to(ember::kFloat32);
  auto expected = ember::matmul(mask, w.t());
  if (!ember::allclose(x.grad(), expected.detach())) return 1;

  struct Fit : ember::trainer::LightningModule<std::array<ember::Tensor, 2>> {
    Fit() { lin = register_module("lin", std::make_shared<ember::nn::Linear>(3, 1)); }
    ember::Tensor training_step(const Batch& b, int64_t) override {
      auto loss = ember::nn::functional::mse_loss((*lin)(b[0]), b[1]);
      log("loss", loss, {.on_epoch = true});
      return loss;
    }
    ember::trainer::Optimizers configure_optimizers() override {
      return std::make_shared<ember::optim::SGD>(parameters(), ember::optim::SGDOptions{.lr = 0.1});
    }
    std::shared_ptr<ember::nn::Linear> lin;
  } model;
  auto data = ember::randn({8, 3});
  std::vector<std::array<ember::Tensor, 2>> batches = {{data, data.sum({1}, true)}};
  auto tb = std::make_shared<ember::trainer::TensorBoardLogger>("consumer-logs");
  ember::trainer::Trainer first({.max_epochs = 1,
                                 .enable_progress_bar = false,
                                 .enable_checkpointing = false,
                                 .enable_model_summary = false,
                                 .loggers = {tb}});
  first.fit(model, batches);
  const double before = first.callback_metrics().at("loss_epoch");
  ember::trainer::Trainer more({.max_epochs = 30,
                                .enable_progress_bar = false,
                                .enable_checkpointing = false,
                                .enable_model_summary = false,
                                .logger = false});
  more.fit(model, batches);
  const double after = more.callback_metrics().at("loss_epoch");
  std::cout << "loss " << before << " -> " << after << "\n";
  return after < before && !ember::trainer::read_tensorboard_scalars(tb->event_file()).empty() ? 0 : 1;
}
