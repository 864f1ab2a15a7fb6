// The LightningModule's side of the Trainer: logging, optimizers and schedulers, manual backward,
// toggling, freezing and the counters, each reaching the Trainer that runs the module.
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

void LightningOptimizer::zero_grad() { trainer_->optimizer_zero_grad(index_); }
void LightningOptimizer::step() { trainer_->optimizer_step(index_); }
void LightningOptimizer::step(const std::function<void()>& closure) {
  if (closure) closure();
  trainer_->optimizer_step(index_);
}
optim::Optimizer& LightningOptimizer::optimizer() const { return *trainer_->optimizers().at(index_); }

Trainer& LightningModuleBase::trainer() const {
  EMBER_CHECK(trainer_, type_name(),
              ": not attached to a Trainer (trainer() is available during fit/validate/test/predict)");
  return *trainer_;
}

void LightningModuleBase::log(const std::string& name, const Tensor& value, const LogOptions& options) {
  EMBER_CHECK(value.defined() && value.numel() == 1, "log(\"", name,
              "\"): expected a one-element tensor, got ", value.defined() ? value.sizes() : Shape{});
  log(name, value.detach().to(kFloat64).item<double>(), options);
}

void LightningModuleBase::log(const std::string& name, double value, const LogOptions& options) {
  if (!trainer_) return;  // a module used outside a Trainer logs nowhere, like Lightning's
  trainer_->log(name, value, options);
}

void LightningModuleBase::log_dict(const std::map<std::string, Tensor>& values, const LogOptions& options) {
  for (auto& [k, v] : values) log(k, v, options);
}

void LightningModuleBase::log_dict(const std::map<std::string, double>& values, const LogOptions& options) {
  for (auto& [k, v] : values) log(k, v, options);
}

std::vector<LightningOptimizer> LightningModuleBase::optimizers() const {
  std::vector<LightningOptimizer> out;
  for (size_t i = 0; i < trainer().optimizers().size(); ++i) out.emplace_back(trainer_, i);
  return out;
}

std::vector<Scheduler> LightningModuleBase::lr_schedulers() const {
  std::vector<Scheduler> out;
  for (auto& c : trainer().lr_scheduler_configs()) out.push_back(c.scheduler);
  return out;
}

void LightningModuleBase::manual_backward(const Tensor& loss, bool retain_graph) {
  trainer().manual_backward(*this, loss, retain_graph);
}

void LightningModuleBase::toggle_optimizer(const LightningOptimizer& optimizer) {
  std::set<const TensorImpl*> mine;
  for (auto& g : optimizer.optimizer().param_groups())
    for (auto& p : g.params) mine.insert(p.impl());
  toggled_requires_grad_.clear();
  for (auto& p : parameters()) {
    toggled_requires_grad_[p.impl()] = p.requires_grad();
    if (!mine.count(p.impl())) const_cast<Tensor&>(p).requires_grad_(false);
  }
}

void LightningModuleBase::untoggle_optimizer(const LightningOptimizer&) {
  for (auto& p : parameters()) {
    auto it = toggled_requires_grad_.find(p.impl());
    if (it != toggled_requires_grad_.end()) const_cast<Tensor&>(p).requires_grad_(it->second);
  }
  toggled_requires_grad_.clear();
}

void LightningModuleBase::freeze() {
  for (auto& p : parameters()) const_cast<Tensor&>(p).requires_grad_(false);
  eval();
}

void LightningModuleBase::unfreeze() {
  for (auto& p : parameters()) const_cast<Tensor&>(p).requires_grad_(true);
  train();
}

int64_t LightningModuleBase::current_epoch() const { return trainer_ ? trainer_->current_epoch() : 0; }
int64_t LightningModuleBase::global_step() const { return trainer_ ? trainer_->global_step() : 0; }
Device LightningModuleBase::device() const {
  auto ps = parameters();
  return ps.empty() ? Device::cpu() : ps[0].device();
}
Tensor LightningModuleBase::all_gather(const Tensor& t) const {
  return trainer_ ? trainer_->all_gather(t) : t.unsqueeze(0);
}
void LightningModuleBase::broadcast(Tensor& t, int src) const {
  if (trainer_) trainer_->broadcast(t, src);
}
void LightningModuleBase::barrier() const {
  if (trainer_) trainer_->barrier();
}
int LightningModuleBase::global_rank() const { return trainer_ ? trainer_->global_rank() : 0; }
int LightningModuleBase::local_rank() const { return trainer_ ? trainer_->local_rank() : 0; }

}  // namespace ember::trainer
