// Optimizers / Scheduler: see optimizer_config.h.
#include "ember/trainer/optimizer_config.h"

#include "ember/nn/json_read.h"

namespace ember::trainer {
namespace {

nlohmann::json to_json(const optim::SchedulerState& s) {
  return {{"last_epoch", s.last_epoch},
          {"step_count", s.step_count},
          {"base_lrs", s.base_lrs},
          {"last_lrs", s.last_lrs},
          {"extra", s.extra}};
}

const std::string kWhat = "checkpoint: an LR scheduler's saved state";

optim::SchedulerState from_json(const nlohmann::json& j) {
  optim::SchedulerState s;
  s.last_epoch = nn::json_field<int64_t>(j, "last_epoch", kWhat);
  s.step_count = nn::json_field<int64_t>(j, "step_count", kWhat);
  s.base_lrs = nn::json_field<std::vector<double>>(j, "base_lrs", kWhat);
  s.last_lrs = nn::json_field<std::vector<double>>(j, "last_lrs", kWhat);
  s.extra = nn::json_field<std::map<std::string, double>>(j, "extra", kWhat);
  return s;
}

nlohmann::json to_json(const std::vector<optim::SchedulerState>& v) {
  nlohmann::json out = nlohmann::json::array();
  for (auto& s : v) out.push_back(to_json(s));
  return out;
}

std::vector<optim::SchedulerState> list_from_json(const nlohmann::json& j) {
  EMBER_CHECK(j.is_array(), kWhat, " must be a list for a sequential or chained scheduler");
  std::vector<optim::SchedulerState> out;
  for (auto& s : j) out.push_back(from_json(s));
  return out;
}

}  // namespace

void Scheduler::step(std::optional<double> metric) {
  if (plateau_) {
    EMBER_CHECK(metric.has_value(), "ReduceLROnPlateau: step needs the monitored metric");
    plateau_->step(*metric);
  } else if (lr_) {
    lr_->step();
  } else if (sequential_) {
    sequential_->step();
  } else if (chained_) {
    chained_->step();
  } else if (custom_) {
    fail("Scheduler: a scheduler of your own type (", custom_type_->name(),
         ") is not one ember can step: override "
         "the LightningModule's lr_scheduler_step(scheduler, metric) and step it there");
  }
}

std::vector<double> Scheduler::get_last_lr() const {
  if (plateau_) return plateau_->get_last_lr();
  if (lr_) return lr_->get_last_lr();
  if (sequential_) return sequential_->get_last_lr();
  if (chained_) return chained_->get_last_lr();
  return {};
}

optim::Optimizer* Scheduler::optimizer() const {
  if (plateau_) return &plateau_->optimizer();
  if (lr_) return &lr_->optimizer();
  if (sequential_) return &sequential_->optimizer();
  if (chained_) return &chained_->optimizer();
  return nullptr;
}

std::string Scheduler::kind() const {
  return plateau_      ? "ReduceLROnPlateau"
         : lr_         ? "LRScheduler"
         : sequential_ ? "SequentialLR"
         : chained_    ? "ChainedScheduler"
         : custom_     ? "custom"
                       : "none";
}

std::string Scheduler::state_json() const {
  nlohmann::json j;
  if (plateau_) j = to_json(plateau_->state_dict());
  else if (lr_) j = to_json(lr_->state_dict());
  else if (sequential_) j = to_json(sequential_->state_dict());
  else if (chained_) j = to_json(chained_->state_dict());
  return j.dump();
}

void Scheduler::load_state_json(const std::string& text) {
  const auto j = nn::parse_json(text, kWhat);
  if (plateau_) plateau_->load_state_dict(from_json(j));
  else if (lr_) lr_->load_state_dict(from_json(j));
  else if (sequential_) sequential_->load_state_dict(list_from_json(j));
  else if (chained_) chained_->load_state_dict(list_from_json(j));
  // a custom scheduler's state is its owner's business (nothing was saved)
}

Optimizers::Optimizers(OptimizerConfig config) {
  if (config.optimizer) optimizers_.push_back(config.optimizer);
  if (config.lr_scheduler) schedulers_.push_back(*config.lr_scheduler);
}

Optimizers::Optimizers(std::vector<OptimizerConfig> configs) {
  for (auto& c : configs) append(Optimizers(c));
}

Optimizers::Optimizers(std::initializer_list<Optimizers> parts) {
  for (auto& p : parts) append(p);
}

Optimizers Optimizers::with_schedulers(std::vector<std::shared_ptr<optim::Optimizer>> optimizers,
                                       std::vector<LRSchedulerConfig> schedulers) {
  Optimizers out(std::move(optimizers));
  out.schedulers_ = std::move(schedulers);
  return out;
}

void Optimizers::append(const Optimizers& other) {
  optimizers_.insert(optimizers_.end(), other.optimizers_.begin(), other.optimizers_.end());
  schedulers_.insert(schedulers_.end(), other.schedulers_.begin(), other.schedulers_.end());
}

}  // namespace ember::trainer
