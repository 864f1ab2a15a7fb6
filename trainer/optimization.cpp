// The optimization step: backward (under the scaler and autocast), the accumulation window,
// clipping, the optimizer steps of automatic and manual optimization, and the schedulers.
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
using detail::join_names;
using detail::shapes_of;

void Trainer::automatic_step(const Tensor& loss) {
  if (optimizers_.empty()) return;  // fit without optimizers runs the steps only
  if (window_start())
    for (auto& opt : optimizers_) {
      EMBER_HOOK(on_before_zero_grad, *opt);
      opt->zero_grad();
    }
  backward(loss);
  if (!window_end()) return;
  for (size_t i = 0; i < optimizers_.size(); ++i) step_one(i);
  ++global_step_;
  step_schedulers("step", /*plateau=*/false);
}

// Mixed precision: the module's steps run under autocast (backward and optimizer steps do not).
void Trainer::enter_autocast(std::optional<AutocastGuard>& scope) const {
  if (autocast_dtype_) scope.emplace(device_.type, *autocast_dtype_);
}

void Trainer::backward(const Tensor& loss, bool retain_graph) {
  check_registration(loss);
  // Accumulated gradients are the mean over the window, as if the batches were one; "16-mixed"
  // multiplies by the GradScaler's scale (step_one divides it out again).
  Tensor scaled = accumulate_ > 1 ? loss / static_cast<double>(accumulate_) : loss;
  if (scaler_) scaled = scaler_->scale(scaled);
  EMBER_HOOK(on_before_backward, scaled);
  if (reducer_) reducer_->arm(window_end());  // gradients travel during backward at window ends
  scaled.backward({}, retain_graph);
  if (reducer_) reducer_->finish();
  EMBER_HOOK(on_after_backward);
}

void Trainer::step_one(size_t index) {
  optim::Optimizer& opt = *optimizers_[index];
  if (scaler_) scaler_->unscale_(opt);  // hooks and clipping see the true gradients
  EMBER_HOOK(on_before_optimizer_step, opt);
  if (o_.gradient_clip_val && *o_.gradient_clip_val > 0) {
    std::vector<Tensor> params;
    for (auto& g : opt.param_groups()) params.insert(params.end(), g.params.begin(), g.params.end());
    if (o_.gradient_clip_algorithm == "norm") nn::utils::clip_grad_norm_(params, *o_.gradient_clip_val);
    else nn::utils::clip_grad_value_(params, *o_.gradient_clip_val);
  }
  if (scaler_) {
    scaler_->step(opt);  // skipped when a gradient is inf/NaN; the scale then backs off
    scaler_->update();
  } else {
    opt.step();
  }
}

// Manual optimization: the module drives, the Trainer keeps accumulation, clipping and counters.
void Trainer::manual_backward(LightningModuleBase&, const Tensor& loss, bool retain_graph) {
  EMBER_CHECK(running_, "manual_backward: the module is not being trained by a Trainer");
  backward(loss, retain_graph);
}

void Trainer::optimizer_zero_grad(size_t index) {
  EMBER_CHECK(index < optimizers_.size(), "optimizers(): index ", index, " out of range");
  if (!window_start()) return;
  optimizers_[index]
      ->zero_grad();  // no on_before_zero_grad here: Lightning calls it in automatic optimization only
}

void Trainer::optimizer_step(size_t index) {
  EMBER_CHECK(index < optimizers_.size(), "optimizers(): index ", index, " out of range");
  if (!window_end()) return;
  step_one(index);
  ++global_step_;  // in manual optimization every optimizer step counts (Lightning)
}

void Trainer::step_schedulers(const std::string& interval, bool plateau) {
  for (auto& cfg : schedulers_) {
    const bool wants_metric =
        cfg.scheduler.needs_metric() || (cfg.scheduler.is_custom() && !cfg.monitor.empty());
    if (cfg.interval != interval || wants_metric != plateau) continue;
    const int64_t counter = interval == "step" ? global_step_ : epoch_ + 1;
    if (counter % cfg.frequency != 0) continue;
    if (!plateau) {
      module_->lr_scheduler_step(cfg.scheduler, std::nullopt);
      continue;
    }
    auto it = callback_metrics_.find(cfg.monitor);
    if (it == callback_metrics_.end()) {
      std::vector<std::string> have;
      for (auto& [k, v] : callback_metrics_) have.push_back(k);
      const std::string msg = "ReduceLROnPlateau conditioned on metric \"" + cfg.monitor +
                              "\" which is not available. Available metrics are: [" + join_names(have) +
                              "]. Set the scheduler config's monitor to one of them.";
      EMBER_CHECK(!cfg.strict, msg);
      warn("ember: " + msg + " (strict=false: the scheduler was not stepped)");
      continue;
    }
    module_->lr_scheduler_step(cfg.scheduler, it->second);
  }
}

}  // namespace ember::trainer
