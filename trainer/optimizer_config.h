// What configure_optimizers returns, in each of Lightning's forms:
//   return {};                                        no optimizer (fit runs the steps only)
//   return std::make_shared<optim::Adam>(...);        one optimizer
//   return {opt_a, opt_b};                            several (also children's results, mixed in)
//   return Optimizers::with_schedulers({opt}, {{.scheduler = sched}});   two lists
//   return OptimizerConfig{.optimizer = opt,          an optimizer with an lr_scheduler config
//                          .lr_scheduler = LRSchedulerConfig{.scheduler = sched, .interval = "step"}};
//   return std::vector<OptimizerConfig>{...};         a list of such configs
// Every form flattens to one list of optimizers and one list of scheduler configs.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <typeinfo>
#include <vector>

#include "ember/core/error.h"

#include "ember/optim/lr_scheduler.h"
#include "ember/optim/optimizer.h"

namespace ember::trainer {

// Any of the scheduler kinds, behind one interface the Trainer drives.
class Scheduler {
 public:
  Scheduler() = default;
  template <class S>
  requires std::derived_from<S, optim::LRScheduler> Scheduler(std::shared_ptr<S> s) : lr_(std::move(s)) {}
  Scheduler(std::shared_ptr<optim::ReduceLROnPlateau> s) : plateau_(std::move(s)) {}
  Scheduler(std::shared_ptr<optim::SequentialLR> s) : sequential_(std::move(s)) {}
  Scheduler(std::shared_ptr<optim::ChainedScheduler> s) : chained_(std::move(s)) {}

  // A scheduler of the user's own type: the Trainer cannot step it, so the module overrides
  // lr_scheduler_step and steps it there (Lightning's rule); get<S>() hands it back. Its state is
  // not saved in checkpoints.
  template <class S>
  static Scheduler custom(std::shared_ptr<S> scheduler) {
    Scheduler out;
    out.custom_ = std::move(scheduler);
    out.custom_type_ = &typeid(S);
    return out;
  }
  template <class S>
  std::shared_ptr<S> get() const {
    EMBER_CHECK(custom_ && *custom_type_ == typeid(S), "Scheduler::get: this ", kind(),
                " scheduler is not a ", typeid(S).name());
    return std::static_pointer_cast<S>(custom_);
  }
  bool is_custom() const { return custom_ != nullptr; }

  bool defined() const { return lr_ || plateau_ || sequential_ || chained_ || custom_; }
  // ReduceLROnPlateau steps with the monitored metric.
  bool needs_metric() const { return plateau_ != nullptr; }
  void step(std::optional<double> metric = std::nullopt);
  std::vector<double> get_last_lr() const;
  std::string state_json() const;
  void load_state_json(const std::string& text);
  std::string kind() const;
  // The optimizer whose learning rates it sets (null when undefined).
  optim::Optimizer* optimizer() const;

 private:
  std::shared_ptr<optim::LRScheduler> lr_;
  std::shared_ptr<optim::ReduceLROnPlateau> plateau_;
  std::shared_ptr<optim::SequentialLR> sequential_;
  std::shared_ptr<optim::ChainedScheduler> chained_;
  std::shared_ptr<void> custom_;
  const std::type_info* custom_type_ = nullptr;
};

struct LRSchedulerConfig {
  Scheduler scheduler{};
  std::string interval = "epoch";  // "epoch" or "step"
  int64_t frequency = 1;
  std::string monitor{};  // ReduceLROnPlateau only, and required there
  bool strict = true;     // a missing monitor is an error (else a warning)
  std::string name{};     // LearningRateMonitor's key
};

struct OptimizerConfig {
  std::shared_ptr<optim::Optimizer> optimizer{};
  std::optional<LRSchedulerConfig> lr_scheduler{};
};

class Optimizers {
 public:
  Optimizers() = default;
  Optimizers(std::nullptr_t) {}
  template <class O>
  requires std::derived_from<O, optim::Optimizer> Optimizers(std::shared_ptr<O> optimizer)
      : optimizers_{std::move(optimizer)} {}
  Optimizers(OptimizerConfig config);
  Optimizers(std::vector<std::shared_ptr<optim::Optimizer>> optimizers)
      : optimizers_(std::move(optimizers)) {}
  Optimizers(std::vector<OptimizerConfig> configs);
  Optimizers(std::initializer_list<Optimizers> parts);
  static Optimizers with_schedulers(std::vector<std::shared_ptr<optim::Optimizer>> optimizers,
                                    std::vector<LRSchedulerConfig> schedulers);

  const std::vector<std::shared_ptr<optim::Optimizer>>& optimizers() const { return optimizers_; }
  const std::vector<LRSchedulerConfig>& schedulers() const { return schedulers_; }
  bool empty() const { return optimizers_.empty(); }

 private:
  void append(const Optimizers& other);
  std::vector<std::shared_ptr<optim::Optimizer>> optimizers_;
  std::vector<LRSchedulerConfig> schedulers_;
};

}  // namespace ember::trainer
