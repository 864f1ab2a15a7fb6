// Callback: code that hooks into the Trainer's loops without being part of the model (checkpoints,
// early stopping, progress bars, timers). A user callback derives from Callback and overrides the
// hooks it needs; the Trainer calls every callback's hook, in list order, before the module's.
// A callback with state (best score, wait count) returns it from state_dict() and gets it back on
// resume under its state_key().
#pragma once
#include <string>

#include "ember/trainer/lightning_module.h"

namespace ember::trainer {

class Callback {
 public:
  virtual ~Callback() = default;
  using M = LightningModuleBase;
  using T = Trainer;

  virtual void setup(T&, M&, const std::string& /*stage*/) {}
  virtual void teardown(T&, M&, const std::string& /*stage*/) {}
  virtual void on_fit_start(T&, M&) {}
  virtual void on_fit_end(T&, M&) {}
  virtual void on_sanity_check_start(T&, M&) {}
  virtual void on_sanity_check_end(T&, M&) {}
  virtual void on_train_start(T&, M&) {}
  virtual void on_train_end(T&, M&) {}
  virtual void on_train_epoch_start(T&, M&) {}
  virtual void on_train_epoch_end(T&, M&) {}
  virtual void on_train_batch_start(T&, M&, int64_t /*batch_idx*/) {}
  virtual void on_train_batch_end(T&, M&, const Tensor& /*loss*/, int64_t /*batch_idx*/) {}
  virtual void on_validation_start(T&, M&) {}
  virtual void on_validation_end(T&, M&) {}
  virtual void on_validation_epoch_start(T&, M&) {}
  virtual void on_validation_epoch_end(T&, M&) {}
  virtual void on_validation_batch_start(T&, M&, int64_t /*batch_idx*/) {}
  virtual void on_validation_batch_end(T&, M&, const Tensor& /*output*/, int64_t /*batch_idx*/) {}
  virtual void on_test_start(T&, M&) {}
  virtual void on_test_end(T&, M&) {}
  virtual void on_test_epoch_start(T&, M&) {}
  virtual void on_test_epoch_end(T&, M&) {}
  virtual void on_test_batch_start(T&, M&, int64_t /*batch_idx*/) {}
  virtual void on_test_batch_end(T&, M&, const Tensor& /*output*/, int64_t /*batch_idx*/) {}
  virtual void on_predict_start(T&, M&) {}
  virtual void on_predict_end(T&, M&) {}
  virtual void on_predict_epoch_start(T&, M&) {}
  virtual void on_predict_epoch_end(T&, M&) {}
  virtual void on_predict_batch_start(T&, M&, int64_t /*batch_idx*/) {}
  virtual void on_predict_batch_end(T&, M&, const Tensor& /*output*/, int64_t /*batch_idx*/) {}
  virtual void on_before_backward(T&, M&, const Tensor& /*loss*/) {}
  virtual void on_after_backward(T&, M&) {}
  virtual void on_before_optimizer_step(T&, M&, optim::Optimizer& /*optimizer*/) {}
  virtual void on_before_zero_grad(T&, M&, optim::Optimizer& /*optimizer*/) {}
  virtual void on_save_checkpoint(T&, M&, CheckpointExtras& /*checkpoint*/) {}
  virtual void on_load_checkpoint(T&, M&, const CheckpointExtras& /*checkpoint*/) {}
  virtual void on_exception(T&, M&, const std::exception& /*error*/) {}

  // State for checkpoints (JSON text); empty means stateless.
  virtual std::string state_key() const { return name(); }
  virtual std::string state_dict() const { return ""; }
  virtual void load_state_dict(const std::string& /*state*/) {}
  virtual std::string name() const { return "Callback"; }
};

}  // namespace ember::trainer
