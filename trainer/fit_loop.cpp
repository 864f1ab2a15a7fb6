// The fit loop: fit_impl sets up and runs epochs, run_train_epoch runs batches and the validation
// inside an epoch, train_batch is one batch of automatic (or manual) optimization. Read top to
// bottom it is Lightning's fit pseudocode made concrete.
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

void Trainer::fit_impl(LightningModuleBase& module, std::unique_ptr<BatchStream> train,
                       std::unique_ptr<BatchStream> val, const std::string& ckpt_path) {
  start_time_ = std::chrono::steady_clock::now();
  attach(module);
  reset_all_metrics();
  ckpt_path_ = ckpt_path;
  stage_ = Stage::Train;
  should_stop = false;
  fitting_ = true;
  try {
    const int64_t max_epochs = o_.max_epochs ? *o_.max_epochs : (o_.max_steps >= 0 ? -1 : 1000);
    EMBER_HOOK(setup, "fit");
    place(*train, val.get());
    if (group_ && o_.sync_batchnorm) convert_sync_batchnorm(*module_, group_);
    if (group_) setup_ddp(*train, val.get());  // before counting batches: each rank has its share
    num_training_batches_ = o_.limit_train_batches.resolve(train->size(), "limit_train_batches");
    num_val_batches_ = val ? o_.limit_val_batches.resolve(val->size(), "limit_val_batches") : 0;
    const bool overfit =
        o_.overfit_batches.count ? *o_.overfit_batches.count > 0 : o_.overfit_batches.fraction > 0;
    BatchStream* val_stream = val.get();
    if (overfit) {  // validate on the very batches it trains on
      val_stream = train.get();
      num_val_batches_ = num_training_batches_;
    }
    max_epochs_ = max_epochs;
    std::optional<CheckpointContents> resumed;
    if (!ckpt_path.empty()) resumed = restore_modules_and_callbacks(ckpt_path);
    configure_optimizers();  // may ask estimated_stepping_batches()
    if (resumed) restore_training_state(*resumed, ckpt_path);
    if (is_global_zero())
      for (auto& l : loggers_) l->log_hyperparams(module_->hparams());
    if (o_.enable_model_summary && is_global_zero()) std::cout << model_summary(*module_);
    EMBER_HOOK(on_fit_start);
    if (val_stream && o_.num_sanity_val_steps != 0 && num_val_batches_ > 0 && val_enabled_) {
      sanity_checking_ = true;
      for (auto& cb : callbacks_) cb->on_sanity_check_start(*this, *module_);
      const int64_t n = o_.num_sanity_val_steps < 0 ? num_val_batches_
                                                    : std::min(o_.num_sanity_val_steps, num_val_batches_);
      run_eval_loop(*val_stream, Stage::Validate, n, /*sanity=*/true);
      for (auto& cb : callbacks_) cb->on_sanity_check_end(*this, *module_);
      sanity_checking_ = false;
    }
    EMBER_HOOK(on_train_start);
    // max_time is checked after every batch (like Lightning's Timer), so a run makes at least one step.
    // A stop request (EarlyStopping, Timer, max_time) waits for min_epochs and min_steps; max_steps does not.
    while (!(max_epochs >= 0 && epoch_ >= max_epochs) && !past_max_steps()) {
      if (should_stop && can_stop_early()) break;
      run_train_epoch(*train, val_stream);
    }
    EMBER_HOOK(on_train_end);
    EMBER_HOOK(on_fit_end);
    EMBER_HOOK(teardown, "fit");
    for (auto& l : loggers_) l->finalize("success");
  } catch (const std::exception& e) {
    for (auto& l : loggers_) l->finalize("failed");
    sanity_checking_ = false;
    fitting_ = false;
    on_failure(e);
    throw;
  }
  fitting_ = false;
  if (reducer_) reducer_->detach();
  reducer_.reset();
  detach();
}

void Trainer::run_train_epoch(BatchStream& train, BatchStream* val) {
  stage_ = Stage::Train;  // the module's modes are the user's (evaluation loops put them back)
  const int64_t skip = resume_skip_;
  resume_skip_ = 0;
  train.begin(epoch_, skip);
  total_batches_ = num_training_batches_;
  EMBER_HOOK(on_train_epoch_start);
  const bool validate_epoch =
      val && val_enabled_ && num_val_batches_ > 0 && (epoch_ + 1) % o_.check_val_every_n_epoch == 0;
  int64_t val_every = num_training_batches_;
  if (o_.val_check_interval.count) val_every = *o_.val_check_interval.count;
  else
    val_every =
        std::max<int64_t>(1, static_cast<int64_t>(num_training_batches_ * o_.val_check_interval.fraction));
  // Lightning validates after every val_every-th batch of the epoch (the last batch only when it is
  // one of them), and when training stops early.
  bool reached_last = false;
  for (int64_t batch_idx = skip; batch_idx < num_training_batches_ && train.next(); ++batch_idx) {
    batch_idx_ = batch_idx;
    if (!train_batch(train, batch_idx)) break;
    const bool last = batch_idx + 1 == num_training_batches_;
    reached_last = last;
    if (validate_epoch && !last && (batch_idx + 1) % val_every == 0)
      run_eval_loop(*val, Stage::Validate, num_val_batches_, false);
    if (time_is_up()) should_stop = true;
    // Every rank must stop at the same batch, or the others would wait in a collective forever.
    if (any_rank(past_max_steps() || (should_stop && can_stop_early()))) {
      should_stop = true;
      break;
    }
  }
  // Epoch-interval schedulers step only after a complete epoch (Lightning: max_steps or a stop in
  // the middle of one leaves them where they are).
  const bool complete = reached_last && module_->automatic_optimization();
  if (complete) step_schedulers("epoch", /*plateau=*/false);
  const bool last_is_check = num_training_batches_ % val_every == 0;
  if (validate_epoch && val_enabled_ && (last_is_check || !reached_last))
    run_eval_loop(*val, Stage::Validate, num_val_batches_, false);
  if (complete) step_schedulers("epoch", /*plateau=*/true);
  epoch_finished_ = reached_last;  // a checkpoint of an epoch cut short resumes inside it
  train_epoch_end_hooks();
  reset_metrics(Stage::Train);  // after the epoch, so what on_train_start logs counts in the first one
  for (auto& l : loggers_) l->save();
  should_stop = any_rank(should_stop);
  ++epoch_;
  epoch_batches_done_ = 0;
  epoch_finished_ = false;
}

// One batch: hooks, the step, and (automatic optimization) zero_grad / backward / optimizer step.
bool Trainer::train_batch(BatchStream& train, int64_t batch_idx) {
  current_batch_size_ = train.batch_size();
  set_fx("on_train_batch_start");
  for (auto& cb : callbacks_) cb->on_train_batch_start(*this, *module_, batch_idx);
  if (module_->on_train_batch_start(batch_idx) == -1) return false;
  pending_step_metrics_.clear();
  set_fx("training_step");
  Tensor loss;
  {
    std::optional<AutocastGuard> autocast;
    enter_autocast(autocast);
    loss = train.run(Stage::Train, batch_idx);
  }
  if (module_->automatic_optimization() && loss.defined()) {
    EMBER_CHECK(loss.numel() == 1, module_->type_name(),
                ".training_step: the loss must be a scalar, got shape ", loss.sizes());
    automatic_step(loss);
  }
  const Tensor out = loss.defined() ? loss.detach() : loss;
  epoch_batches_done_ = batch_idx + 1;  // a checkpoint taken in the hook resumes after this batch
  ++batches_stepped_;
  EMBER_HOOK(on_train_batch_end, out, batch_idx);
  if (batches_stepped_ % o_.log_every_n_steps == 0 || should_stop) log_step_metrics();
  return true;
}

// on_train_epoch_end in Lightning's order: the callbacks that monitor metrics (ModelCheckpoint,
// EarlyStopping) run after the module's hook, so they see what it logged there.
void Trainer::train_epoch_end_hooks() {
  auto monitors = [](const Callback& cb) {
    return dynamic_cast<const ModelCheckpoint*>(&cb) != nullptr ||
           dynamic_cast<const EarlyStopping*>(&cb) != nullptr;
  };
  finish_epoch_metrics(Stage::Train, /*send=*/false);
  set_fx("on_train_epoch_end");
  for (auto& cb : callbacks_)
    if (!monitors(*cb)) cb->on_train_epoch_end(*this, *module_);
  module_->on_train_epoch_end();
  finish_epoch_metrics(Stage::Train, /*send=*/false);
  for (auto& cb : callbacks_)
    if (monitors(*cb)) cb->on_train_epoch_end(*this, *module_);
  finish_epoch_metrics(Stage::Train, /*send=*/true);
}

bool Trainer::can_stop_early() const { return epoch_ >= o_.min_epochs && global_step_ >= o_.min_steps; }

bool Trainer::window_start() const { return batch_idx_ % accumulate_ == 0; }

bool Trainer::window_end() const {
  return (batch_idx_ + 1) % accumulate_ == 0 || batch_idx_ + 1 == num_training_batches_;
}

}  // namespace ember::trainer
