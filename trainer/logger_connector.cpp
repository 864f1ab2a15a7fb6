// The logger connector: self.log's results (which hook logged what, step and epoch values and their
// reductions), callback_metrics and progress-bar metrics, and what reaches the loggers when.
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

void Trainer::set_fx(const std::string& fx) {
  // Lightning's defaults: per step inside the training batch, per epoch everywhere else.
  default_on_step_ = stage_ == Stage::Train &&
                     (fx == "training_step" || fx.find("train_batch") != std::string::npos ||
                      fx.find("backward") != std::string::npos || fx.find("optimizer") != std::string::npos ||
                      fx.find("zero_grad") != std::string::npos);
  default_on_epoch_ = !default_on_step_;
}

void Trainer::reset_metrics(Stage stage) { metrics_[static_cast<int>(stage)].clear(); }

void Trainer::log(const std::string& name, double value, const LogOptions& opt) {
  EMBER_CHECK(opt.reduce_fx == "mean" || opt.reduce_fx == "sum" || opt.reduce_fx == "max" || opt.reduce_fx == "min",
              "log(\"", name, "\"): reduce_fx must be \"mean\", \"sum\", \"max\" or \"min\", got \"", opt.reduce_fx, "\"");
  if (sanity_checking_ || !running_) return;  // Lightning discards what the sanity check logs
  if (group_ && opt.sync_dist) {
    Tensor v = tensor({value}, kFloat64);
    const auto op = opt.reduce_fx == "sum" ? distributed::ReduceOp::Sum
                    : opt.reduce_fx == "max" ? distributed::ReduceOp::Max
                    : opt.reduce_fx == "min" ? distributed::ReduceOp::Min : distributed::ReduceOp::Mean;
    group_->all_reduce(v, op);
    value = v.item<double>();
  }
  const bool on_step = opt.on_step.value_or(default_on_step_);
  const bool on_epoch = opt.on_epoch.value_or(default_on_epoch_);
  auto& slot = metrics_[static_cast<int>(stage_)][name];
  if (!slot) slot = std::make_unique<Metric>();
  Metric& m = *slot;
  m.on_step = on_step;
  m.on_epoch = on_epoch;
  m.prog_bar = opt.prog_bar;
  m.logger = opt.logger;
  m.reduce = opt.reduce_fx;
  if (on_step) {
    const std::string key = on_epoch ? name + "_step" : name;
    callback_metrics_[name] = value;
    callback_metrics_[key] = value;
    if (opt.logger) {
      if (stage_ == Stage::Train) pending_step_metrics_[key] = value;
      else send_to_loggers({{key, value}}, batches_stepped_);
      logged_metrics_[key] = value;
    }
    if (opt.prog_bar) progress_bar_metrics_[key] = value;
  }
  if (on_epoch) {
    const double w = static_cast<double>(opt.batch_size.value_or(current_batch_size_));
    m.sum += m.reduce == "mean" ? value * w : value;
    m.weight += w;
    m.max = std::max(m.max, value);
    m.min = std::min(m.min, value);
    m.has_epoch_values = true;
  }
}

void Trainer::log_step_metrics() {
  if (pending_step_metrics_.empty()) return;
  auto metrics = pending_step_metrics_;
  metrics["epoch"] = static_cast<double>(epoch_);
  send_to_loggers(metrics, batches_stepped_ - 1);
  pending_step_metrics_.clear();
}

void Trainer::finish_epoch_metrics(Stage stage, bool send) {
  std::map<std::string, double> out;
  for (auto& [name, m] : metrics_[static_cast<int>(stage)]) {
    if (!m->on_epoch || !m->has_epoch_values) continue;
    const double v = m->epoch_value();
    const std::string key = m->on_step ? name + "_epoch" : name;
    callback_metrics_[name] = v;
    callback_metrics_[key] = v;
    if (m->prog_bar) progress_bar_metrics_[key] = v;
    if (m->logger) {
      out[key] = v;
      logged_metrics_[key] = v;
    }
  }
  if (!send || out.empty()) return;
  out["epoch"] = static_cast<double>(epoch_);
  send_to_loggers(out, std::max<int64_t>(batches_stepped_ - 1, 0));
}

void Trainer::send_to_loggers(const std::map<std::string, double>& metrics, int64_t step) {
  if (!is_global_zero()) return;
  for (auto& l : loggers_) l->log_metrics(metrics, step);
}

// The module's parameters and buffers move to the accelerator (keeping their identity, so
// optimizers made later hold them), and batches follow as they are fetched.
void Trainer::place(BatchStream& first, BatchStream* second) {
  module_->to(device_);
  first.set_device(device_);
  if (second) second->set_device(device_);
}

}  // namespace ember::trainer
