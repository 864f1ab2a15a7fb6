// The evaluation loop: validation (also inside fit and as the sanity check), test and predict, with
// their hooks in Lightning's order.
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

// The hook of `stage` for moment `when`: on_validation_start, on_test_batch_end, ...
#define EMBER_EVAL_HOOKS(prefix)                                                          \
  switch (when) {                                                                         \
    case EvalHook::Start: EMBER_HOOK(on_##prefix##_start); break;                         \
    case EvalHook::EpochStart: EMBER_HOOK(on_##prefix##_epoch_start); break;              \
    case EvalHook::BatchStart: EMBER_HOOK(on_##prefix##_batch_start, batch_idx); break;   \
    case EvalHook::BatchEnd: EMBER_HOOK(on_##prefix##_batch_end, *out, batch_idx); break; \
    case EvalHook::EpochEnd: EMBER_HOOK(on_##prefix##_epoch_end); break;                  \
    case EvalHook::End: EMBER_HOOK(on_##prefix##_end); break;                             \
  }

void Trainer::eval_hook(Stage stage, EvalHook when, int64_t batch_idx, const Tensor* out) {
  if (stage == Stage::Validate) EMBER_EVAL_HOOKS(validation)
  else if (stage == Stage::Test) EMBER_EVAL_HOOKS(test)
  else EMBER_EVAL_HOOKS(predict)
}
#undef EMBER_EVAL_HOOKS

// Returns false when the module has no step for this stage.
bool Trainer::run_eval_loop(BatchStream& loader, Stage stage, int64_t max_batches, bool sanity,
                            std::vector<Tensor>* outputs) {
  if (max_batches == 0) return true;  // Lightning skips an empty loop whole: none of its hooks run
  const std::vector<bool> modes = module_->training_modes();  // put back as found, as Lightning does
  const Stage outer = stage_;
  const int64_t outer_idx = batch_idx_, outer_total = total_batches_;
  module_->eval();
  autograd::NoGradGuard no_grad;
  stage_ = stage;
  if (!sanity) reset_metrics(stage);
  total_batches_ = max_batches;
  eval_hook(stage, EvalHook::Start);
  eval_hook(stage, EvalHook::EpochStart);
  loader.begin(0, 0);
  bool implemented = true;
  for (int64_t i = 0; i < max_batches && loader.next(); ++i) {
    batch_idx_ = i;
    current_batch_size_ = loader.batch_size();
    eval_hook(stage, EvalHook::BatchStart, i);
    set_fx(stage == Stage::Validate ? "validation_step"
           : stage == Stage::Test   ? "test_step"
                                    : "predict_step");
    Tensor out;
    try {
      std::optional<AutocastGuard> autocast;
      enter_autocast(autocast);
      out = loader.run(stage, i);
    } catch (const detail::StepNotOverridden&) {
      implemented = false;
      break;
    }
    if (outputs) outputs->push_back(out);
    eval_hook(stage, EvalHook::BatchEnd, i, &out);
    if (!sanity) ++eval_batches_seen_;
  }
  if (implemented) {
    eval_hook(stage, EvalHook::EpochEnd);
    if (!sanity && stage != Stage::Predict) finish_epoch_metrics(stage, /*send=*/true);
    eval_hook(stage, EvalHook::End);
  }
  module_->set_training_modes(modes);
  stage_ = outer;
  batch_idx_ = outer_idx;
  total_batches_ = outer_total;
  if (!implemented && stage == Stage::Validate) val_enabled_ = false;  // no validation_step: skip it
  return implemented;
}

std::map<std::string, double> Trainer::evaluate_impl(LightningModuleBase& module,
                                                     std::unique_ptr<BatchStream> loader, Stage stage,
                                                     const std::string& ckpt_path) {
  const char* name = stage == Stage::Validate ? "validate" : "test";
  attach(module);
  start_time_ = std::chrono::steady_clock::now();
  reset_all_metrics();
  ckpt_path_ = ckpt_path;
  std::map<std::string, double> results;
  try {
    EMBER_HOOK(setup, name);
    place(*loader, nullptr);
    if (!ckpt_path.empty()) restore_modules_and_callbacks(ckpt_path);
    if (group_) loader->distribute(global_rank(), world_size(), false);
    const BatchLimit& limit = stage == Stage::Validate ? o_.limit_val_batches : o_.limit_test_batches;
    const int64_t n =
        limit.resolve(loader->size(), stage == Stage::Validate ? "limit_val_batches" : "limit_test_batches");
    const bool saved_val = val_enabled_;
    val_enabled_ = true;
    const bool ok = run_eval_loop(*loader, stage, n, false);
    val_enabled_ = saved_val;
    EMBER_CHECK(ok, "Trainer.", name, ": ", module.type_name(), " does not override ",
                stage == Stage::Validate ? "validation_step" : "test_step");
    for (auto& [k, m] : metrics_[static_cast<int>(stage)])
      if (m->on_epoch) results[m->on_step ? k + "_epoch" : k] = m->epoch_value();
    EMBER_HOOK(teardown, name);
    for (auto& l : loggers_) l->save();
  } catch (const std::exception& e) {
    on_failure(e);
    throw;
  }
  detach();
  return results;
}

std::vector<Tensor> Trainer::predict_impl(LightningModuleBase& module, std::unique_ptr<BatchStream> loader,
                                          const std::string& ckpt_path) {
  attach(module);
  std::vector<Tensor> outputs;
  try {
    EMBER_HOOK(setup, "predict");
    place(*loader, nullptr);
    if (!ckpt_path.empty()) restore_modules_and_callbacks(ckpt_path);
    if (group_) loader->distribute(global_rank(), world_size(), false);
    const int64_t n = o_.limit_predict_batches.resolve(loader->size(), "limit_predict_batches");
    run_eval_loop(*loader, Stage::Predict, n, false, &outputs);
    EMBER_HOOK(teardown, "predict");
  } catch (const std::exception& e) {
    on_failure(e);
    throw;
  }
  detach();
  return outputs;
}

}  // namespace ember::trainer
