// Learning-rate schedulers with PyTorch's formulas. Like PyTorch, each computes the next lr from the
// current one (the "chainable" form), construction performs the first step (epoch 0), and step()
// advances one epoch (or iteration, as the caller decides). state_dict() holds every number a
// scheduler needs to continue exactly.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ember/optim/optimizer.h"

namespace ember::optim {

struct SchedulerState {
  int64_t last_epoch = 0;
  int64_t step_count = 0;
  std::vector<double> base_lrs, last_lrs;
  std::map<std::string, double> extra;  // scheduler-specific counters (ReduceLROnPlateau's best, ...)
};

class LRScheduler {
 public:
  explicit LRScheduler(Optimizer& optimizer);
  virtual ~LRScheduler() = default;
  virtual void step();
  const std::vector<double>& get_last_lr() const { return last_lrs_; }
  int64_t last_epoch() const { return last_epoch_; }
  virtual SchedulerState state_dict() const;
  virtual void load_state_dict(const SchedulerState& s);
  // Jumps to `epoch` (PyTorch's step(epoch)): the closed-form lr where the scheduler has one.
  void step_to(int64_t epoch);
  Optimizer& optimizer() const { return optimizer_; }

 protected:
  friend class SequentialLR;
  // The lr of each group at last_epoch_ computed from base_lrs alone, where a formula exists.
  virtual std::optional<std::vector<double>> closed_form() const { return std::nullopt; }
  void apply(const std::vector<double>& lrs);
  // The lr of each group for the epoch in last_epoch_, computed from the current lrs.
  virtual std::vector<double> get_lr() = 0;
  void initial_step();  // derived constructors call it once their fields are set
  std::vector<double> current_lrs() const;
  Optimizer& optimizer_;
  std::vector<double> base_lrs_, last_lrs_;
  int64_t last_epoch_ = -1;
  int64_t step_count_ = 0;
};

class StepLR : public LRScheduler {
 public:
  StepLR(Optimizer& opt, int64_t step_size, double gamma = 0.1);

 protected:
  std::vector<double> get_lr() override;
  std::optional<std::vector<double>> closed_form() const override;
  int64_t step_size_;
  double gamma_;
};

class MultiStepLR : public LRScheduler {
 public:
  MultiStepLR(Optimizer& opt, std::vector<int64_t> milestones, double gamma = 0.1);

 protected:
  std::vector<double> get_lr() override;
  std::optional<std::vector<double>> closed_form() const override;
  std::vector<int64_t> milestones_;
  double gamma_;
};

class ExponentialLR : public LRScheduler {
 public:
  ExponentialLR(Optimizer& opt, double gamma);

 protected:
  std::vector<double> get_lr() override;
  std::optional<std::vector<double>> closed_form() const override;
  double gamma_;
};

class CosineAnnealingLR : public LRScheduler {
 public:
  CosineAnnealingLR(Optimizer& opt, int64_t T_max, double eta_min = 0);

 protected:
  std::vector<double> get_lr() override;
  std::optional<std::vector<double>> closed_form() const override;
  int64_t t_max_;
  double eta_min_;
};

class LinearLR : public LRScheduler {
 public:
  LinearLR(Optimizer& opt, double start_factor = 1.0 / 3, double end_factor = 1.0, int64_t total_iters = 5);

 protected:
  std::vector<double> get_lr() override;
  std::optional<std::vector<double>> closed_form() const override;
  double start_, end_;
  int64_t total_;
};

class ConstantLR : public LRScheduler {
 public:
  ConstantLR(Optimizer& opt, double factor = 1.0 / 3, int64_t total_iters = 5);

 protected:
  std::vector<double> get_lr() override;
  std::optional<std::vector<double>> closed_form() const override;
  double factor_;
  int64_t total_;
};

class PolynomialLR : public LRScheduler {
 public:
  PolynomialLR(Optimizer& opt, int64_t total_iters = 5, double power = 1.0);

 protected:
  std::vector<double> get_lr() override;
  std::optional<std::vector<double>> closed_form() const override;
  int64_t total_;
  double power_;
};

// lr = base_lr * lambda(epoch)
class LambdaLR : public LRScheduler {
 public:
  LambdaLR(Optimizer& opt, std::function<double(int64_t)> lambda);

 protected:
  std::vector<double> get_lr() override;
  std::function<double(int64_t)> lambda_;
};

// lr = lr * lambda(epoch) for epochs after the first
class MultiplicativeLR : public LRScheduler {
 public:
  MultiplicativeLR(Optimizer& opt, std::function<double(int64_t)> lambda);

 protected:
  std::vector<double> get_lr() override;
  std::function<double(int64_t)> lambda_;
};

// One cycle: lr rises from max_lr/div_factor to max_lr over pct_start of total_steps, then anneals
// to initial/final_div_factor ("cos" or "linear"); momentum (SGD) or beta1 (Adam) cycles inversely.
class OneCycleLR : public LRScheduler {
 public:
  struct Options {
    double max_lr = 0.1;
    int64_t total_steps = 100;
    double pct_start = 0.3;
    std::string anneal_strategy = "cos";
    bool cycle_momentum = true;
    double base_momentum = 0.85, max_momentum = 0.95, div_factor = 25, final_div_factor = 1e4;
    bool three_phase = false;
  };
  OneCycleLR(Optimizer& opt, Options options);

 protected:
  std::vector<double> get_lr() override;
  Options o_;
  struct Phase {
    double end_step;
    GroupOptionField start_lr, end_lr;
    double start_m, end_m;
  };
  std::vector<Phase> phases_;
  GroupOptionField momentum_ = nullptr;
};

// Cyclical lr between base_lr and max_lr ("triangular", "triangular2", "exp_range"), with momentum
// cycling inversely when the optimizer has one.
class CyclicLR : public LRScheduler {
 public:
  struct Options {
    double base_lr = 1e-3, max_lr = 6e-3;
    int64_t step_size_up = 2000;
    int64_t step_size_down = -1;  // -1: same as up
    std::string mode = "triangular";
    double gamma = 1.0;
    bool cycle_momentum = true;
    double base_momentum = 0.8, max_momentum = 0.9;
  };
  CyclicLR(Optimizer& opt, Options options);

 protected:
  std::vector<double> get_lr() override;
  Options o_;
  double total_size_, step_ratio_;
  GroupOptionField momentum_ = nullptr;
};

// Cosine annealing restarting every T_i epochs, T_i growing by T_mult after each restart.
class CosineAnnealingWarmRestarts : public LRScheduler {
 public:
  CosineAnnealingWarmRestarts(Optimizer& opt, int64_t T_0, int64_t T_mult = 1, double eta_min = 0);
  void step() override;
  SchedulerState state_dict() const override;
  void load_state_dict(const SchedulerState& s) override;

 protected:
  std::vector<double> get_lr() override;
  int64_t t0_, t_mult_, t_i_, t_cur_ = -1;
  double eta_min_;
};

// Runs schedulers one after another: schedulers[i] from milestones[i-1] on (restarting its own
// count at the milestone, as PyTorch's SequentialLR does).
class SequentialLR {
 public:
  SequentialLR(Optimizer& opt, std::vector<LRScheduler*> schedulers, std::vector<int64_t> milestones);
  // The same, sharing ownership of the schedulers (what a Trainer's configure_optimizers returns).
  SequentialLR(Optimizer& opt, std::vector<std::shared_ptr<LRScheduler>> schedulers,
               std::vector<int64_t> milestones);
  void step();
  const std::vector<double>& get_last_lr() const { return last_lrs_; }
  Optimizer& optimizer() const { return schedulers_[0]->optimizer(); }
  // Its own position first, then each inner scheduler's state.
  std::vector<SchedulerState> state_dict() const;
  void load_state_dict(const std::vector<SchedulerState>& s);

 private:
  std::vector<std::shared_ptr<LRScheduler>> owned_;
  std::vector<LRScheduler*> schedulers_;
  std::vector<int64_t> milestones_;
  int64_t last_epoch_ = 0;
  std::vector<double> last_lrs_;
};

// Steps several schedulers on the same optimizer, one after the other, every step.
class ChainedScheduler {
 public:
  explicit ChainedScheduler(std::vector<LRScheduler*> schedulers);
  explicit ChainedScheduler(std::vector<std::shared_ptr<LRScheduler>> schedulers);
  void step();
  std::vector<double> get_last_lr() const { return schedulers_.back()->get_last_lr(); }
  Optimizer& optimizer() const { return schedulers_[0]->optimizer(); }
  std::vector<SchedulerState> state_dict() const;
  void load_state_dict(const std::vector<SchedulerState>& s);

 private:
  std::vector<std::shared_ptr<LRScheduler>> owned_;
  std::vector<LRScheduler*> schedulers_;
};

// Lowers the lr by `factor` when a metric stops improving for `patience` epochs.
class ReduceLROnPlateau {
 public:
  struct Options {
    std::string mode = "min";  // "min" or "max"
    double factor = 0.1;
    int64_t patience = 10;
    double threshold = 1e-4;
    std::string threshold_mode = "rel";  // "rel" or "abs"
    int64_t cooldown = 0;
    double min_lr = 0;
    double eps = 1e-8;
  };
  ReduceLROnPlateau(Optimizer& opt, Options options);
  explicit ReduceLROnPlateau(Optimizer& opt) : ReduceLROnPlateau(opt, Options{}) {}
  void step(double metric);
  std::vector<double> get_last_lr() const;
  Optimizer& optimizer() const { return optimizer_; }
  SchedulerState state_dict() const;
  void load_state_dict(const SchedulerState& s);

 private:
  bool better(double a, double best) const;
  Optimizer& optimizer_;
  Options o_;
  double best_;
  int64_t num_bad_epochs_ = 0, cooldown_counter_ = 0, last_epoch_ = 0;
};

}  // namespace ember::optim
