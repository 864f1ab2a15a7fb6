// Scheduler formulas; see lr_scheduler.h.
#include "ember/optim/lr_scheduler.h"

#include <algorithm>
#include <cmath>

namespace ember::optim {

LRScheduler::LRScheduler(Optimizer& opt) : optimizer_(opt) {
  for (auto& g : opt.param_groups()) {
    if (!g.options.initial_lr) g.options.initial_lr = g.lr();
    base_lrs_.push_back(*g.options.initial_lr);
  }
}

std::vector<double> LRScheduler::current_lrs() const {
  std::vector<double> out;
  for (auto& g : optimizer_.param_groups()) out.push_back(g.lr());
  return out;
}

void LRScheduler::initial_step() { step(); }

void LRScheduler::apply(const std::vector<double>& lrs) {
  auto& groups = optimizer_.param_groups();
  for (size_t i = 0; i < groups.size(); ++i) groups[i].lr() = lrs[i];
  last_lrs_ = lrs;
}

void LRScheduler::step() {
  ++step_count_;
  ++last_epoch_;
  apply(get_lr());
}

void LRScheduler::step_to(int64_t epoch) {
  ++step_count_;
  last_epoch_ = epoch;
  auto closed = closed_form();
  apply(closed ? *closed : get_lr());
}

namespace {
template <class F>
std::vector<double> from_base(const std::vector<double>& base, F&& f) {
  std::vector<double> out;
  for (double b : base) out.push_back(f(b));
  return out;
}
}  // namespace

std::optional<std::vector<double>> StepLR::closed_form() const {
  return from_base(base_lrs_, [&](double b) {
    return b * std::pow(gamma_, static_cast<double>(last_epoch_ / step_size_));
  });
}
std::optional<std::vector<double>> MultiStepLR::closed_form() const {
  std::vector<int64_t> sorted = milestones_;
  std::sort(sorted.begin(), sorted.end());
  const auto passed = std::upper_bound(sorted.begin(), sorted.end(), last_epoch_) - sorted.begin();
  return from_base(base_lrs_, [&](double b) { return b * std::pow(gamma_, static_cast<double>(passed)); });
}
std::optional<std::vector<double>> ExponentialLR::closed_form() const {
  return from_base(base_lrs_,
                   [&](double b) { return b * std::pow(gamma_, static_cast<double>(last_epoch_)); });
}
std::optional<std::vector<double>> CosineAnnealingLR::closed_form() const {
  return from_base(base_lrs_, [&](double b) {
    return eta_min_ + (b - eta_min_) * (1 + std::cos(M_PI * last_epoch_ / static_cast<double>(t_max_))) / 2;
  });
}
std::optional<std::vector<double>> LinearLR::closed_form() const {
  const double e = static_cast<double>(std::min(total_, last_epoch_));
  return from_base(base_lrs_, [&](double b) { return b * (start_ + (end_ - start_) * e / total_); });
}
std::optional<std::vector<double>> ConstantLR::closed_form() const {
  return from_base(base_lrs_,
                   [&](double b) { return b * (factor_ + (last_epoch_ >= total_) * (1 - factor_)); });
}
std::optional<std::vector<double>> PolynomialLR::closed_form() const {
  const double e = static_cast<double>(std::min(total_, last_epoch_));
  return from_base(base_lrs_, [&](double b) { return b * std::pow(1.0 - e / total_, power_); });
}

SequentialLR::SequentialLR(Optimizer& opt, std::vector<LRScheduler*> schedulers,
                           std::vector<int64_t> milestones)
    : schedulers_(std::move(schedulers)), milestones_(std::move(milestones)) {
  EMBER_CHECK(!schedulers_.empty() && milestones_.size() + 1 == schedulers_.size(),
              "SequentialLR: expected one more scheduler than milestones, got ", schedulers_.size(),
              " schedulers and ", milestones_.size(), " milestones");
  for (auto& g : opt.param_groups()) g.lr() = ParamGroup::value(g.options.initial_lr, "initial_lr");
  for (auto* s : schedulers_) --s->last_epoch_;  // undo the step each scheduler's construction took
  schedulers_[0]->initial_step();
  last_lrs_ = schedulers_[0]->get_last_lr();
}

namespace {
std::vector<LRScheduler*> raw(const std::vector<std::shared_ptr<LRScheduler>>& owned) {
  std::vector<LRScheduler*> out;
  for (auto& s : owned) out.push_back(s.get());
  return out;
}
}  // namespace

SequentialLR::SequentialLR(Optimizer& opt, std::vector<std::shared_ptr<LRScheduler>> schedulers,
                           std::vector<int64_t> milestones)
    : SequentialLR(opt, raw(schedulers), std::move(milestones)) {
  owned_ = std::move(schedulers);
}

std::vector<SchedulerState> SequentialLR::state_dict() const {
  std::vector<SchedulerState> out{{last_epoch_, 0, {}, last_lrs_, {}}};
  for (auto* s : schedulers_) out.push_back(s->state_dict());
  return out;
}

void SequentialLR::load_state_dict(const std::vector<SchedulerState>& s) {
  EMBER_CHECK(s.size() == schedulers_.size() + 1, "SequentialLR.load_state_dict: expected ",
              schedulers_.size() + 1, " states, got ", s.size());
  last_epoch_ = s[0].last_epoch;
  last_lrs_ = s[0].last_lrs;
  for (size_t i = 0; i < schedulers_.size(); ++i) schedulers_[i]->load_state_dict(s[i + 1]);
}

void SequentialLR::step() {
  ++last_epoch_;
  const size_t idx =
      std::upper_bound(milestones_.begin(), milestones_.end(), last_epoch_) - milestones_.begin();
  LRScheduler* s = schedulers_[idx];
  if (idx > 0 && milestones_[idx - 1] == last_epoch_) s->step_to(0);
  else s->step();
  last_lrs_ = s->get_last_lr();
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
  EMBER_CHECK(start > 0 && start <= 1 && end >= 0 && end <= 1,
              "LinearLR: start_factor must be in "
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

namespace {
// The optimizer's momentum-like option: SGD/RMSprop momentum, Adam(W) beta1.
GroupOptionField momentum_field(Optimizer& opt, const char* who) {
  if (opt.defaults().beta1) return &GroupOptions::beta1;
  if (opt.defaults().momentum) return &GroupOptions::momentum;
  fail(who, ": cycle_momentum needs an optimizer with momentum or betas (", opt.name(), " has neither)");
}
double anneal(const std::string& how, double start, double end, double pct) {
  if (how == "cos") return end + (start - end) / 2.0 * (std::cos(M_PI * pct) + 1);
  return (end - start) * pct + start;
}
}  // namespace

OneCycleLR::OneCycleLR(Optimizer& opt, Options o) : LRScheduler(opt), o_(std::move(o)) {
  EMBER_CHECK(o_.total_steps > 0, "OneCycleLR: total_steps must be positive");
  EMBER_CHECK(o_.pct_start >= 0 && o_.pct_start <= 1, "OneCycleLR: pct_start must be in [0, 1]");
  EMBER_CHECK(o_.anneal_strategy == "cos" || o_.anneal_strategy == "linear",
              "OneCycleLR: anneal_strategy must be \"cos\" or \"linear\"");
  const double T = static_cast<double>(o_.total_steps);
  using G = GroupOptions;
  if (o_.three_phase) {
    phases_ = {{o_.pct_start * T - 1, &G::initial_lr, &G::max_lr, o_.max_momentum, o_.base_momentum},
               {2 * o_.pct_start * T - 2, &G::max_lr, &G::initial_lr, o_.base_momentum, o_.max_momentum},
               {T - 1, &G::initial_lr, &G::min_lr, o_.max_momentum, o_.max_momentum}};
  } else {
    phases_ = {{o_.pct_start * T - 1, &G::initial_lr, &G::max_lr, o_.max_momentum, o_.base_momentum},
               {T - 1, &G::max_lr, &G::min_lr, o_.base_momentum, o_.max_momentum}};
  }
  if (o_.cycle_momentum) momentum_ = momentum_field(opt, "OneCycleLR");
  base_lrs_.clear();
  for (auto& g : opt.param_groups()) {
    const double initial = o_.max_lr / o_.div_factor;
    g.options.initial_lr = initial;
    g.options.max_lr = o_.max_lr;
    g.options.min_lr = initial / o_.final_div_factor;
    g.lr() = initial;
    base_lrs_.push_back(initial);
    if (o_.cycle_momentum) g.options.*momentum_ = o_.max_momentum;
  }
  initial_step();
}

std::vector<double> OneCycleLR::get_lr() {
  EMBER_CHECK(last_epoch_ <= o_.total_steps, "OneCycleLR: tried to step ", last_epoch_,
              " times, more than total_steps (", o_.total_steps, ")");
  std::vector<double> lrs;
  const double step = static_cast<double>(last_epoch_);
  for (auto& g : optimizer_.param_groups()) {
    double start_step = 0;
    for (size_t i = 0; i < phases_.size(); ++i) {
      const Phase& ph = phases_[i];
      if (step <= ph.end_step || i + 1 == phases_.size()) {
        const double pct = (step - start_step) / (ph.end_step - start_step);
        lrs.push_back(anneal(o_.anneal_strategy, ParamGroup::value(g.options.*ph.start_lr, "OneCycleLR's lr"),
                             ParamGroup::value(g.options.*ph.end_lr, "OneCycleLR's lr"), pct));
        if (o_.cycle_momentum) g.options.*momentum_ = anneal(o_.anneal_strategy, ph.start_m, ph.end_m, pct);
        break;
      }
      start_step = ph.end_step;
    }
  }
  return lrs;
}

CyclicLR::CyclicLR(Optimizer& opt, Options o) : LRScheduler(opt), o_(std::move(o)) {
  EMBER_CHECK(o_.mode == "triangular" || o_.mode == "triangular2" || o_.mode == "exp_range",
              "CyclicLR: mode must be triangular, triangular2 or exp_range, got \"", o_.mode, "\"");
  const double up = static_cast<double>(o_.step_size_up);
  const double down = o_.step_size_down < 0 ? up : static_cast<double>(o_.step_size_down);
  total_size_ = up + down;
  step_ratio_ = up / total_size_;
  base_lrs_.clear();
  for (auto& g : opt.param_groups()) {
    g.lr() = o_.base_lr;
    base_lrs_.push_back(o_.base_lr);
  }
  if (o_.cycle_momentum) {
    momentum_ = momentum_field(opt, "CyclicLR");
    for (auto& g : opt.param_groups()) g.options.*momentum_ = o_.max_momentum;
  }
  initial_step();
}

std::vector<double> CyclicLR::get_lr() {
  const double e = static_cast<double>(last_epoch_);
  const double cycle = std::floor(1 + e / total_size_);
  const double x = 1.0 + e / total_size_ - cycle;
  const double scale_factor = x <= step_ratio_ ? x / step_ratio_ : (x - 1) / (step_ratio_ - 1);
  double scale = 1.0;
  if (o_.mode == "triangular2") scale = 1.0 / std::pow(2.0, cycle - 1);
  if (o_.mode == "exp_range") scale = std::pow(o_.gamma, e);
  std::vector<double> lrs;
  for (size_t i = 0; i < base_lrs_.size(); ++i)
    lrs.push_back(base_lrs_[i] + (o_.max_lr - base_lrs_[i]) * scale_factor * scale);
  if (o_.cycle_momentum)
    for (auto& g : optimizer_.param_groups())
      g.options.*momentum_ = o_.max_momentum - (o_.max_momentum - o_.base_momentum) * scale_factor * scale;
  return lrs;
}

CosineAnnealingWarmRestarts::CosineAnnealingWarmRestarts(Optimizer& opt, int64_t t0, int64_t t_mult,
                                                         double eta_min)
    : LRScheduler(opt), t0_(t0), t_mult_(t_mult), t_i_(t0), eta_min_(eta_min) {
  EMBER_CHECK(t0 > 0 && t_mult >= 1, "CosineAnnealingWarmRestarts: T_0 must be positive and T_mult >= 1");
  initial_step();
}

void CosineAnnealingWarmRestarts::step() {
  if (last_epoch_ < 0) {
    t_cur_ = 0;
  } else {
    ++t_cur_;
    if (t_cur_ >= t_i_) {
      t_cur_ -= t_i_;
      t_i_ *= t_mult_;
    }
  }
  LRScheduler::step();
}

std::vector<double> CosineAnnealingWarmRestarts::get_lr() {
  std::vector<double> lrs;
  for (double b : base_lrs_)
    lrs.push_back(eta_min_ + (b - eta_min_) * (1 + std::cos(M_PI * t_cur_ / static_cast<double>(t_i_))) / 2);
  return lrs;
}

SchedulerState CosineAnnealingWarmRestarts::state_dict() const {
  SchedulerState s = LRScheduler::state_dict();
  s.extra = {{"T_i", static_cast<double>(t_i_)}, {"T_cur", static_cast<double>(t_cur_)}};
  return s;
}

void CosineAnnealingWarmRestarts::load_state_dict(const SchedulerState& s) {
  LRScheduler::load_state_dict(s);
  t_i_ = static_cast<int64_t>(s.extra.at("T_i"));
  t_cur_ = static_cast<int64_t>(s.extra.at("T_cur"));
}

ChainedScheduler::ChainedScheduler(std::vector<LRScheduler*> schedulers)
    : schedulers_(std::move(schedulers)) {
  EMBER_CHECK(!schedulers_.empty(), "ChainedScheduler: needs at least one scheduler");
}

ChainedScheduler::ChainedScheduler(std::vector<std::shared_ptr<LRScheduler>> schedulers)
    : ChainedScheduler(raw(schedulers)) {
  owned_ = std::move(schedulers);
}

void ChainedScheduler::step() {
  for (auto* s : schedulers_) s->step();
}

std::vector<SchedulerState> ChainedScheduler::state_dict() const {
  std::vector<SchedulerState> out;
  for (auto* s : schedulers_) out.push_back(s->state_dict());
  return out;
}

void ChainedScheduler::load_state_dict(const std::vector<SchedulerState>& s) {
  EMBER_CHECK(s.size() == schedulers_.size(), "ChainedScheduler.load_state_dict: expected ",
              schedulers_.size(), " states, got ", s.size());
  for (size_t i = 0; i < schedulers_.size(); ++i) schedulers_[i]->load_state_dict(s[i]);
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
  return {last_epoch_,
          0,
          {},
          get_last_lr(),
          {{"best", best_},
           {"num_bad_epochs", static_cast<double>(num_bad_epochs_)},
           {"cooldown_counter", static_cast<double>(cooldown_counter_)}}};
}

void ReduceLROnPlateau::load_state_dict(const SchedulerState& s) {
  last_epoch_ = s.last_epoch;
  best_ = s.extra.at("best");
  num_bad_epochs_ = static_cast<int64_t>(s.extra.at("num_bad_epochs"));
  cooldown_counter_ = static_cast<int64_t>(s.extra.at("cooldown_counter"));
}

}  // namespace ember::optim
