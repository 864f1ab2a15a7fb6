// The checkpoint connector: what a checkpoint holds (weights, optimizer and scheduler state, loops,
// callbacks, hparams, the module's own extras), saving it, and restoring a run from it.
#include "ember/trainer/trainer.h"

#include <cmath>
#include <filesystem>
#include <iostream>
#include <set>
#include <sstream>

#include "ember/autograd/engine.h"
#include "ember/autograd/grad_mode.h"
#include "ember/core/generator.h"
#include "ember/kernels/cuda/cuda_backend.h"
#include "ember/optim/clip_grad.h"
#include "ember/trainer/callbacks.h"
#include "ember/trainer/checkpoint.h"
#include "ember/trainer/progress.h"
#include "ember/trainer/sync_batch_norm.h"
#include "ember/trainer/trainer_impl.h"

namespace ember::trainer {

void Trainer::save_checkpoint(const std::string& path) {
  EMBER_CHECK(module_, "Trainer.save_checkpoint: no module is attached (call it during or after fit)");
  if (!is_global_zero()) return;
  CheckpointContents c;
  c.epoch = epoch_;
  c.global_step = global_step_;
  c.batches_stepped = batches_stepped_;
  c.epoch_batches_done = epoch_batches_done_;
  c.epoch_finished = epoch_finished_;
  c.module_type = module_->type_name();
  c.hparams = module_->hparams();
  c.state_dict = module_->state_dict();
  for (auto& opt : optimizers_) c.optimizers.push_back(opt->state_dict());
  for (auto& s : schedulers_) c.schedulers.push_back(s.scheduler.state_json());
  for (auto& cb : callbacks_) {
    const std::string s = cb->state_dict();
    if (!s.empty()) c.callbacks[cb->state_key()] = s;
  }
  c.rng = Generator::for_device(Device::cpu()).get_state();
  c.rng_cuda = Generator::for_device(Device::cuda(0)).get_state();
  if (scaler_) c.grad_scaler = scaler_->state_dict();
  const std::string outer_fx = fx_;  // saving runs inside another hook; log() may not be called here
  set_fx("on_save_checkpoint");
  for (auto& cb : callbacks_) cb->on_save_checkpoint(*this, *module_, c.extras);
  module_->on_save_checkpoint(c.extras);
  set_fx(outer_fx);
  write_checkpoint(path, c);
}

// Lightning's order: the module's on_load_checkpoint, its weights, and in fit the callbacks' hooks and
// states, all before configure_optimizers; the optimizers, schedulers and loops after it.
CheckpointContents Trainer::restore_modules_and_callbacks(const std::string& path) {
  CheckpointContents c = read_checkpoint(path);
  const std::string outer_fx = fx_;
  set_fx("on_load_checkpoint");
  module_->on_load_checkpoint(c.extras);
  module_->load_state_dict(c.state_dict, /*strict=*/true);
  if (fitting_) {
    for (auto& cb : callbacks_) cb->on_load_checkpoint(*this, *module_, c.extras);
    for (auto& cb : callbacks_) {
      auto it = c.callbacks.find(cb->state_key());
      if (it != c.callbacks.end()) cb->load_state_dict(it->second);
    }
  }
  set_fx(outer_fx);
  return c;
}

void Trainer::restore_training_state(const CheckpointContents& c, const std::string& path) {
  EMBER_CHECK(c.optimizers.size() == optimizers_.size(), "Trainer: the checkpoint ", path, " holds ",
              c.optimizers.size(), " optimizer state(s) but configure_optimizers returned ",
              optimizers_.size());
  for (size_t i = 0; i < optimizers_.size(); ++i) optimizers_[i]->load_state_dict(c.optimizers[i]);
  EMBER_CHECK(c.schedulers.size() == schedulers_.size(), "Trainer: the checkpoint ", path, " holds ",
              c.schedulers.size(), " scheduler state(s) but configure_optimizers returned ",
              schedulers_.size());
  for (size_t i = 0; i < schedulers_.size(); ++i) schedulers_[i].scheduler.load_state_json(c.schedulers[i]);
  if (scaler_ && c.grad_scaler) scaler_->load_state_dict(*c.grad_scaler);
  global_step_ = c.global_step;
  batches_stepped_ = c.batches_stepped;
  // A finished epoch resumes with the next one; one that stopped early (max_steps, a stop request)
  // resumes at its next batch.
  if (c.epoch_finished) {
    epoch_ = c.epoch + 1;
    resume_skip_ = 0;
  } else {
    epoch_ = c.epoch;
    resume_skip_ = c.epoch_batches_done;
  }
  epoch_batches_done_ = resume_skip_;
  Generator::for_device(Device::cpu()).set_state(c.rng);
  Generator::for_device(Device::cuda(0)).set_state(c.rng_cuda);
}

HParams checkpoint_hparams(const std::string& path) { return read_checkpoint(path).hparams; }

void load_checkpoint_weights(nn::Module& module, const std::string& path, bool strict) {
  module.load_state_dict(read_checkpoint(path).state_dict, strict);
}

void load_module_checkpoint(LightningModuleBase& module, const std::string& path) {
  CheckpointContents c = read_checkpoint(path);
  module.on_load_checkpoint(c.extras);
  module.load_state_dict(c.state_dict, /*strict=*/true);
}

}  // namespace ember::trainer
