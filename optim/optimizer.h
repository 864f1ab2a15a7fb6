// Optimizer: parameters in groups, each group with its own options (lr, weight_decay, betas, ...),
// per-parameter state, and PyTorch's step/zero_grad/state_dict contract. Options are plain numbers
// by name, so reading or setting a group's lr needs no casts: `opt.param_groups()[0].lr() = 0.1`.
#pragma once
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "ember/core/ops.h"

namespace ember::optim {

using Options = std::map<std::string, double>;  // booleans are 0 / 1

struct ParamGroup {
  std::vector<Tensor> params;
  Options options;  // missing entries are filled from the optimizer's defaults
  double& lr() { return options.at("lr"); }
  double lr() const { return options.at("lr"); }
  double& operator[](const std::string& key);
  double get(const std::string& key) const;
};

// A serialisable snapshot: group options and which parameters (by index in group order) each holds,
// and the per-parameter state tensors by parameter index.
struct OptimizerState {
  std::vector<Options> groups;
  std::vector<std::vector<int64_t>> group_params;
  std::map<int64_t, std::map<std::string, Tensor>> state;
};

class Optimizer {
 public:
  Optimizer(std::vector<ParamGroup> groups, Options defaults, std::string name);
  virtual ~Optimizer() = default;

  void add_param_group(ParamGroup group);
  std::vector<ParamGroup>& param_groups() { return groups_; }
  const std::vector<ParamGroup>& param_groups() const { return groups_; }
  const Options& defaults() const { return defaults_; }
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
  Options defaults_;
  std::string name_;
  std::map<const TensorImpl*, std::map<std::string, Tensor>> state_;
};

// Builds the groups for the common case: one group of these parameters with the defaults.
std::vector<ParamGroup> single_group(const std::vector<Tensor>& params);

}  // namespace ember::optim
