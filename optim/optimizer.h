// Optimizer: parameters in groups, each group with its own options (lr, weight_decay, betas, ...),
// per-parameter state, and PyTorch's step/zero_grad/state_dict contract. A group's options are one
// typed struct shared by every optimizer, so a misspelt option is a compile error and reading or
// setting a group's lr needs no casts: `opt.param_groups()[0].lr() = 0.1`.
#pragma once
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ember/core/ops.h"

namespace ember::optim {

// Every option of every optimizer, and the entries LR schedulers add (initial_lr, max_lr, min_lr),
// under PyTorch's names (Adam's betas are beta1 and beta2). In a ParamGroup given to an optimizer only
// the overrides are set: `ParamGroup{.params = biases, .options = {.weight_decay = 0.0}}`; the
// optimizer fills in the rest from its defaults and rejects an option it does not have.
struct GroupOptions {
  // (The empty braces spare designated initialisers GCC's -Wmissing-field-initializers.)
  std::optional<double> lr{}, momentum{}, dampening{}, weight_decay{}, beta1{}, beta2{}, eps{}, alpha{},
      lr_decay{}, initial_accumulator_value{};
  std::optional<bool> nesterov{}, amsgrad{}, maximize{}, centered{};
  std::optional<double> initial_lr{}, max_lr{}, min_lr{};  // written by LR schedulers

  // The options that are set, by name (booleans as 0 / 1): for serialisation and messages.
  std::vector<std::pair<std::string, double>> named() const;
  // The reverse of named(); an unknown name is an error naming `what`.
  static GroupOptions from_named(const std::vector<std::pair<std::string, double>>& entries,
                                 const std::string& what);
  bool operator==(const GroupOptions&) const = default;
};

// One numeric option of every group, chosen at run time (a scheduler's momentum or beta1).
using GroupOptionField = std::optional<double> GroupOptions::*;

struct ParamGroup {
  std::vector<Tensor> params{};
  GroupOptions options{};  // unset entries are filled from the optimizer's defaults
  double& lr() { return value(options.lr, "lr"); }
  double lr() const { return value(options.lr, "lr"); }
  // An option the group must have once it belongs to an optimizer (a clear error otherwise).
  static double& value(std::optional<double>& option, const char* name);
  static double value(const std::optional<double>& option, const char* name);
  static bool value(const std::optional<bool>& option, const char* name);
};

// A serialisable snapshot: group options and which parameters (by index in group order) each holds,
// and the per-parameter state tensors by parameter index.
struct OptimizerState {
  std::vector<GroupOptions> groups;
  std::vector<std::vector<int64_t>> group_params;
  std::map<int64_t, std::map<std::string, Tensor>> state;
};

class Optimizer {
 public:
  Optimizer(std::vector<ParamGroup> groups, GroupOptions defaults, std::string name);
  virtual ~Optimizer() = default;

  void add_param_group(ParamGroup group);
  std::vector<ParamGroup>& param_groups() { return groups_; }
  const std::vector<ParamGroup>& param_groups() const { return groups_; }
  const GroupOptions& defaults() const { return defaults_; }
  const std::string& name() const { return name_; }

  void zero_grad(bool set_to_none = true);
  // One update of every parameter that has a gradient (those without are skipped).
  void step();
  // Re-evaluates the model through closure (with grad enabled) and returns its loss, then steps.
  Tensor step(const std::function<Tensor()>& closure);

  OptimizerState state_dict() const;
  // Restores options and state exactly (state tensors are copied), so a resumed run continues
  // identically. The groups must hold the same number of parameters with the same shapes.
  void load_state_dict(const OptimizerState& state);
  // The state of one parameter (empty until its first step).
  std::map<std::string, Tensor>& state(const Tensor& param);

 protected:
  // Updates one parameter of a group with its gradient and state (or queues the update).
  virtual void update(ParamGroup& group, Tensor& param, std::map<std::string, Tensor>& state) = 0;
  // Called at the end of step(): runs queued updates; drop_queued() forgets them (step() failed).
  virtual void flush() {}
  virtual void drop_queued() {}

 private:
  std::vector<ParamGroup> groups_;
  GroupOptions defaults_;
  std::string name_;
  std::map<const TensorImpl*, std::map<std::string, Tensor>> state_;

  void check_loaded_options(const GroupOptions& loaded, size_t group) const;
};

// Builds the groups for the common case: one group of these parameters with the defaults.
std::vector<ParamGroup> single_group(const std::vector<Tensor>& params);

}  // namespace ember::optim
