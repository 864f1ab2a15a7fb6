// The logger connector: self.log's results (which hook logged what, step and epoch values and their
// reductions), callback_metrics and progress-bar metrics, and what reaches the loggers when.
#include "ember/trainer/trainer.h"

#include <cctype>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <map>
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

namespace {

// Where log() may be called (Lightning's _FxValidator): never in the hooks around the run, only
// per epoch in the start/end hooks of loops and epochs, both ways in steps and batch hooks. Hooks
// not listed (a user's own entry points) are not checked.
enum class LogRule { Forbidden, EpochOnly, Any };
LogRule log_rule(const std::string& fx) {
  static const std::map<std::string, LogRule> rules = {{"setup", LogRule::Forbidden},
                                                       {"teardown", LogRule::Forbidden},
                                                       {"configure_optimizers", LogRule::Forbidden},
                                                       {"on_fit_start", LogRule::Forbidden},
                                                       {"on_fit_end", LogRule::Forbidden},
                                                       {"on_train_end", LogRule::Forbidden},
                                                       {"on_sanity_check_start", LogRule::Forbidden},
                                                       {"on_sanity_check_end", LogRule::Forbidden},
                                                       {"on_validation_end", LogRule::Forbidden},
                                                       {"on_test_end", LogRule::Forbidden},
                                                       {"on_predict_start", LogRule::Forbidden},
                                                       {"on_predict_end", LogRule::Forbidden},
                                                       {"on_predict_epoch_start", LogRule::Forbidden},
                                                       {"on_predict_epoch_end", LogRule::Forbidden},
                                                       {"on_predict_batch_start", LogRule::Forbidden},
                                                       {"on_predict_batch_end", LogRule::Forbidden},
                                                       {"predict_step", LogRule::Forbidden},
                                                       {"on_save_checkpoint", LogRule::Forbidden},
                                                       {"on_load_checkpoint", LogRule::Forbidden},
                                                       {"on_train_start", LogRule::EpochOnly},
                                                       {"on_train_epoch_start", LogRule::EpochOnly},
                                                       {"on_train_epoch_end", LogRule::EpochOnly},
                                                       {"on_validation_start", LogRule::EpochOnly},
                                                       {"on_validation_epoch_start", LogRule::EpochOnly},
                                                       {"on_validation_epoch_end", LogRule::EpochOnly},
                                                       {"on_test_start", LogRule::EpochOnly},
                                                       {"on_test_epoch_start", LogRule::EpochOnly},
                                                       {"on_test_epoch_end", LogRule::EpochOnly}};
  auto it = rules.find(fx);
  return it == rules.end() ? LogRule::Any : it->second;
}

// Lightning's reduce_fx names: case-insensitive, "avg" for "mean".
std::string reduce_name(const std::string& name, const std::string& key) {
  std::string r = name;
  for (char& ch : r) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (r == "avg") r = "mean";
  EMBER_CHECK(r == "mean" || r == "sum" || r == "max" || r == "min", "log(\"", key,
              "\"): reduce_fx must be \"mean\" (or \"avg\"), \"sum\", \"max\" or \"min\", got \"", name,
              "\"");
  return r;
}

}  // namespace

void Trainer::set_fx(const std::string& fx) {
  fx_ = fx;
  // Lightning's defaults: per step inside the training batch, per epoch everywhere else.
  default_on_step_ = stage_ == Stage::Train &&
                     (fx == "training_step" || fx.find("train_batch") != std::string::npos ||
                      fx.find("backward") != std::string::npos || fx.find("optimizer") != std::string::npos ||
                      fx.find("zero_grad") != std::string::npos);
  default_on_epoch_ = !default_on_step_;
}

void Trainer::reset_metrics(Stage stage) { metrics_[static_cast<int>(stage)].clear(); }

// Each entry point (fit, validate, test) starts from empty results, as in Lightning.
void Trainer::reset_all_metrics() {
  for (auto& m : metrics_) m.clear();
  callback_metrics_.clear();
  logged_metrics_.clear();
  progress_bar_metrics_.clear();
  pending_step_metrics_.clear();
  eval_batches_seen_ = 0;
}

void Trainer::log(const std::string& name, double value, const LogOptions& opt) {
  const std::string reduce = reduce_name(opt.reduce_fx, name);
  const bool on_step = opt.on_step.value_or(default_on_step_);
  const bool on_epoch = opt.on_epoch.value_or(default_on_epoch_);
  check_log_call(name, on_step, on_epoch);
  if (sanity_checking_ || !running_) return;  // Lightning discards what the sanity check logs
  if (group_ && opt.sync_dist) {
    Tensor v = tensor({value}, kFloat64);
    const auto op = reduce == "sum"   ? distributed::ReduceOp::Sum
                    : reduce == "max" ? distributed::ReduceOp::Max
                    : reduce == "min" ? distributed::ReduceOp::Min
                                      : distributed::ReduceOp::Mean;
    group_->all_reduce(v, op);
    value = v.item<double>();
  }
  auto& slot = metrics_[static_cast<int>(stage_)][name];
  if (!slot) slot = std::make_unique<Metric>();
  Metric& m = *slot;
  // Lightning keeps one set of options per (hook, name) for the epoch; a second call that
  // disagrees is an error, not a silent switch.
  const bool differs = m.on_step != on_step || m.on_epoch != on_epoch || m.prog_bar != opt.prog_bar ||
                       m.logger != opt.logger || m.reduce != reduce || m.sync_dist != opt.sync_dist;
  EMBER_CHECK(m.fx != fx_ || !differs, "log(\"", name, "\") was called twice in ", fx_,
              " with different arguments (on_step, on_epoch, prog_bar, logger, reduce_fx or sync_dist); "
              "Lightning does not allow this: log each variant under its own name");
  m.fx = fx_;
  m.on_step = on_step;
  m.on_epoch = on_epoch;
  m.prog_bar = opt.prog_bar;
  m.logger = opt.logger;
  m.sync_dist = opt.sync_dist;
  m.reduce = reduce;
  if (on_step) {
    const std::string key = on_epoch ? name + "_step" : name;
    // Lightning keeps per-step values of evaluation metrics that also reduce per epoch out of
    // callback_metrics: callbacks monitor the epoch value.
    if (stage_ == Stage::Train || !on_epoch) {
      callback_metrics_[name] = value;
      callback_metrics_[key] = value;
    }
    if (opt.logger) {
      // Evaluation steps reach the loggers at the evaluation loop's own batch count.
      if (stage_ == Stage::Train) pending_step_metrics_[key] = value;
      else send_to_loggers({{key, value}}, eval_batches_seen_);
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

void Trainer::check_log_call(const std::string& name, bool on_step, bool on_epoch) const {
  EMBER_CHECK(on_step || on_epoch, "log(\"", name, "\") in ", fx_,
              ": on_step=false with on_epoch=false "
              "logs nothing; Lightning does not allow it");
  const LogRule rule = log_rule(fx_);
  EMBER_CHECK(rule != LogRule::Forbidden, "log(\"", name, "\"): you can't log inside ", fx_,
              " (as in Lightning: only steps, batch hooks and the start/end hooks of epochs and loops log)");
  EMBER_CHECK(rule != LogRule::EpochOnly || (!on_step && on_epoch), "log(\"", name, "\") in ", fx_,
              ": this hook logs once per epoch; use on_step=false, on_epoch=true (the default here)");
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
