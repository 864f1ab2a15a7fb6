// Scheduler formulas; see lr_scheduler.h.
#include "ember/optim/lr_scheduler.h"

#include <algorithm>
#include <cmath>

namespace ember::optim {

LRScheduler::LRScheduler(Optimizer& opt) : optimizer_(opt) {
  for (auto& g : opt.param_groups()) {
    g.options.emplace("initial_lr", g.lr());
    base_lrs_.push_back(g.options.at("initial_lr"));
  }
}

std::vector<double> LRScheduler::current_lrs() const {
  std::vector<double> out;
  for (auto& g : optimizer_.param_groups()) out.push_back(g.lr());
  return out;
}

void LRScheduler::initial_step() { step(); }

void LRScheduler::step() {
  ++step_count_;
  ++last_epoch_;
  std::vector<double> lrs = get_lr();
  auto& groups = optimizer_.param_groups();
  for (size_t i = 0; i < groups.size(); ++i) groups[i].lr() = lrs[i];
  last_lrs_ = lrs;
}

SchedulerState LRScheduler::state_dict() const {
  return {last_epoch_, step_count_, base_lrs_, last_lrs_, {}};
}

void LRScheduler::load_state_dict(const SchedulerState& s) {
  last_epoch_ = s.last_epoch;
  step_count_ = s.step_count;
  base_lrs_ = s.base_lrs;
  last_lrs_ = s.last_lrs;
}

StepLR::StepLR(Optimizer& opt, int64_t step_size, double gamma)
    : LRScheduler(opt), step_size_(step_size), gamma_(gamma) {
  EMBER_CHECK(step_size > 0, "StepLR: step_size must be positive, got ", step_size);
  initial_step();
}

std::vector<double> StepLR::get_lr() {
  auto lrs = current_lrs();
  if (last_epoch_ == 0 || last_epoch_ % step_size_ != 0) return lrs;
  for (auto& lr : lrs) lr *= gamma_;
  return lrs;
}

MultiStepLR::MultiStepLR(Optimizer& opt, std::vector<int64_t> milestones, double gamma)
    : LRScheduler(opt), milestones_(std::move(milestones)), gamma_(gamma) {
  initial_step();
}

std::vector<double> MultiStepLR::get_lr() {
  auto lrs = current_lrs();
  const auto hits = std::count(milestones_.begin(), milestones_.end(), last_epoch_);
  for (auto& lr : lrs) lr *= std::pow(gamma_, static_cast<double>(hits));
  return lrs;
}

ExponentialLR::ExponentialLR(Optimizer& opt, double gamma) : LRScheduler(opt), gamma_(gamma) {
  initial_step();
}

std::vector<double> ExponentialLR::get_lr() {
  auto lrs = current_lrs();
  if (last_epoch_ == 0) return lrs;
  for (auto& lr : lrs) lr *= gamma_;
  return lrs;
}

CosineAnnealingLR::CosineAnnealingLR(Optimizer& opt, int64_t t_max, double eta_min)
    : LRScheduler(opt), t_max_(t_max), eta_min_(eta_min) {
  EMBER_CHECK(t_max > 0, "CosineAnnealingLR: T_max must be positive, got ", t_max);
  initial_step();
}

std::vector<double> CosineAnnealingLR::get_lr() {
  auto lrs = current_lrs();
  const double pi = M_PI, T = static_cast<double>(t_max_), e = static_cast<double>(last_epoch_);
  for (size_t i = 0; i < lrs.size(); ++i) {
    if (last_epoch_ == 0) continue;
    if ((last_epoch_ - 1 - t_max_) % (2 * t_max_) == 0) {
      lrs[i] = lrs[i] + (base_lrs_[i] - eta_min_) * (1 - std::cos(pi / T)) / 2;
    } else {
      lrs[i] = (1 + std::cos(pi * e / T)) / (1 + std::cos(pi * (e - 1) / T)) * (lrs[i] - eta_min_) + eta_min_;
    }
  }
  return lrs;
}

LinearLR::LinearLR(Optimizer& opt, double start, double end, int64_t total)
    : LRScheduler(opt), start_(start), end_(end), total_(total) {
  EMBER_CHECK(start > 0 && start <= 1 && end >= 0 && end <= 1, "LinearLR: start_factor must be in "
              "(0, 1] and end_factor in [0, 1]");
  initial_step();
}

std::vector<double> LinearLR::get_lr() {
  auto lrs = current_lrs();
  for (auto& lr : lrs) {
    if (last_epoch_ == 0) lr *= start_;
    else if (last_epoch_ <= total_)
      lr *= 1.0 + (end_ - start_) / (total_ * start_ + (last_epoch_ - 1) * (end_ - start_));
  }
  return lrs;
}

ConstantLR::ConstantLR(Optimizer& opt, double factor, int64_t total)
    : LRScheduler(opt), factor_(factor), total_(total) {
  EMBER_CHECK(factor >= 0 && factor <= 1, "ConstantLR: factor must be in [0, 1], got ", factor);
  initial_step();
}

std::vector<double> ConstantLR::get_lr() {
  auto lrs = current_lrs();
  for (auto& lr : lrs) {
    if (last_epoch_ == 0) lr *= factor_;
    else if (last_epoch_ == total_) lr *= 1.0 / factor_;
  }
  return lrs;
}

PolynomialLR::PolynomialLR(Optimizer& opt, int64_t total, double power)
    : LRScheduler(opt), total_(total), power_(power) {
  initial_step();
}

std::vector<double> PolynomialLR::get_lr() {
  auto lrs = current_lrs();
  if (last_epoch_ == 0 || last_epoch_ > total_) return lrs;
  const double f = std::pow((1.0 - static_cast<double>(last_epoch_) / total_) /
                                (1.0 - static_cast<double>(last_epoch_ - 1) / total_),
                            power_);
  for (auto& lr : lrs) lr *= f;
  return lrs;
}

LambdaLR::LambdaLR(Optimizer& opt, std::function<double(int64_t)> lambda)
    : LRScheduler(opt), lambda_(std::move(lambda)) {
  initial_step();
}

std::vector<double> LambdaLR::get_lr() {
  std::vector<double> lrs;
  for (double b : base_lrs_) lrs.push_back(b * lambda_(last_epoch_));
  return lrs;
}

MultiplicativeLR::MultiplicativeLR(Optimizer& opt, std::function<double(int64_t)> lambda)
    : LRScheduler(opt), lambda_(std::move(lambda)) {
  initial_step();
}

std::vector<double> MultiplicativeLR::get_lr() {
  auto lrs = current_lrs();
  if (last_epoch_ > 0)
    for (auto& lr : lrs) lr *= lambda_(last_epoch_);
  return lrs;
}

ReduceLROnPlateau::ReduceLROnPlateau(Optimizer& opt, Options o) : optimizer_(opt), o_(std::move(o)) {
  EMBER_CHECK(o_.factor < 1, "ReduceLROnPlateau: factor should be < 1.0, got ", o_.factor);
  EMBER_CHECK(o_.mode == "min" || o_.mode == "max", "ReduceLROnPlateau: mode must be \"min\" or \"max\"");
  EMBER_CHECK(o_.threshold_mode == "rel" || o_.threshold_mode == "abs",
              "ReduceLROnPlateau: threshold_mode must be \"rel\" or \"abs\"");
  best_ = o_.mode == "min" ? INFINITY : -INFINITY;
}

bool ReduceLROnPlateau::better(double a, double best) const {
  if (o_.mode == "min")
    return o_.threshold_mode == "rel" ? a < best * (1 - o_.threshold) : a < best - o_.threshold;
  return o_.threshold_mode == "rel" ? a > best * (1 + o_.threshold) : a > best + o_.threshold;
}

void ReduceLROnPlateau::step(double metric) {
  ++last_epoch_;
  if (better(metric, best_)) {
    best_ = metric;
    num_bad_epochs_ = 0;
  } else {
    ++num_bad_epochs_;
  }
  if (cooldown_counter_ > 0) {
    --cooldown_counter_;
    num_bad_epochs_ = 0;
  }
  if (num_bad_epochs_ > o_.patience) {
    for (auto& g : optimizer_.param_groups()) {
      const double next = std::max(g.lr() * o_.factor, o_.min_lr);
      if (g.lr() - next > o_.eps) g.lr() = next;
    }
    cooldown_counter_ = o_.cooldown;
    num_bad_epochs_ = 0;
  }
}

std::vector<double> ReduceLROnPlateau::get_last_lr() const {
  std::vector<double> out;
  for (auto& g : optimizer_.param_groups()) out.push_back(g.lr());
  return out;
}

SchedulerState ReduceLROnPlateau::state_dict() const {
  return {last_epoch_, 0, {}, get_last_lr(),
          {{"best", best_}, {"num_bad_epochs", static_cast<double>(num_bad_epochs_)},
           {"cooldown_counter", static_cast<double>(cooldown_counter_)}}};
}

void ReduceLROnPlateau::load_state_dict(const SchedulerState& s) {
  last_epoch_ = s.last_epoch;
  best_ = s.extra.at("best");
  num_bad_epochs_ = static_cast<int64_t>(s.extra.at("num_bad_epochs"));
  cooldown_counter_ = static_cast<int64_t>(s.extra.at("cooldown_counter"));
}

}  // namespace ember::optim
