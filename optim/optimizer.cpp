// Optimizer's groups, state and serialisation; see optimizer.h.
#include "ember/optim/optimizer.h"

#include <set>

#include "ember/autograd/grad_mode.h"

namespace ember::optim {

double& ParamGroup::operator[](const std::string& key) {
  auto it = options.find(key);
  EMBER_CHECK(it != options.end(), "param_group: no option \"", key, "\"");
  return it->second;
}

double ParamGroup::get(const std::string& key) const {
  auto it = options.find(key);
  EMBER_CHECK(it != options.end(), "param_group: no option \"", key, "\"");
  return it->second;
}

std::vector<ParamGroup> single_group(const std::vector<Tensor>& params) { return {ParamGroup{params, {}}}; }

Optimizer::Optimizer(std::vector<ParamGroup> groups, Options defaults, std::string name)
    : defaults_(std::move(defaults)), name_(std::move(name)) {
  EMBER_CHECK(!groups.empty(), name_, ": got an empty list of parameter groups");
  for (auto& g : groups) add_param_group(std::move(g));
}

void Optimizer::add_param_group(ParamGroup group) {
  EMBER_CHECK(!group.params.empty(), name_, ": a parameter group needs at least one parameter");
  for (auto& [k, v] : group.options)
    EMBER_CHECK(defaults_.count(k), name_, ": unknown option \"", k, "\" in a parameter group");
  for (auto& [k, v] : defaults_) group.options.emplace(k, v);  // inherit what was not given
  std::set<const TensorImpl*> seen;
  for (auto& g : groups_)
    for (auto& p : g.params) seen.insert(p.impl());
  for (auto& p : group.params) {
    EMBER_CHECK(p.defined() && p.is_leaf(), name_, ": can only optimize leaf tensors");
    EMBER_CHECK(p.is_floating_point(), name_, ": can only optimize floating point tensors, got ",
                dtype_name(p.dtype()));
    EMBER_CHECK(seen.insert(p.impl()).second, name_, ": a parameter of shape ", p.sizes(),
                " appears more than once; each parameter may be given once");
  }
  groups_.push_back(std::move(group));
}

void Optimizer::zero_grad(bool set_to_none) {
  for (auto& g : groups_)
    for (auto& p : g.params) {
      if (!p.grad().defined()) continue;
      if (set_to_none) p.mutable_grad() = Tensor();
      else {
        autograd::NoGradGuard guard;
        p.mutable_grad().zero_();
      }
    }
}

void Optimizer::step() {
  autograd::NoGradGuard guard;
  // A gradient set by hand (mutable_grad) may not fit its parameter; checked before anything moves.
  for (auto& g : groups_)
    for (auto& p : g.params)
      EMBER_CHECK(!p.grad().defined() || (p.grad().sizes() == p.sizes() && p.grad().device() == p.device()),
                  name_, ".step: a parameter of shape ", p.sizes(), " on ", p.device().str(), " has a gradient of shape ",
                  p.grad().sizes(), " on ", p.grad().device().str());
  try {
    for (auto& g : groups_)
      for (auto& p : g.params)
        if (p.grad().defined()) update(g, p, state_[p.impl()]);
  } catch (...) {
    drop_queued();  // no half-applied step
    throw;
  }
  flush();
}

Tensor Optimizer::step(const std::function<Tensor()>& closure) {
  Tensor loss;
  {
    autograd::AutoGradMode on(true);
    loss = closure();
  }
  step();
  return loss;
}

std::map<std::string, Tensor>& Optimizer::state(const Tensor& param) { return state_[param.impl()]; }

OptimizerState Optimizer::state_dict() const {
  OptimizerState out;
  int64_t index = 0;
  for (auto& g : groups_) {
    out.groups.push_back(g.options);
    std::vector<int64_t> ids;
    for (auto& p : g.params) {
      auto it = state_.find(p.impl());
      if (it != state_.end() && !it->second.empty()) {
        auto& dst = out.state[index];
        for (auto& [k, t] : it->second) dst[k] = t.clone();
      }
      ids.push_back(index++);
    }
    out.group_params.push_back(ids);
  }
  return out;
}

void Optimizer::load_state_dict(const OptimizerState& s) {
  EMBER_CHECK(s.groups.size() == groups_.size() && s.group_params.size() == groups_.size(), name_,
              ": loaded state has ", s.groups.size(), " parameter groups, the optimizer has ",
              groups_.size());
  for (size_t g = 0; g < groups_.size(); ++g)
    EMBER_CHECK(s.group_params[g].size() == groups_[g].params.size(), name_, ": group ", g,
                " has ", groups_[g].params.size(), " parameters but the loaded state has ",
                s.group_params[g].size());
  autograd::NoGradGuard guard;
  state_.clear();
  for (size_t g = 0; g < groups_.size(); ++g) {
    groups_[g].options = s.groups[g];
    for (size_t i = 0; i < groups_[g].params.size(); ++i) {
      auto it = s.state.find(s.group_params[g][i]);
      if (it == s.state.end()) continue;
      const Tensor& p = groups_[g].params[i];
      auto& dst = state_[p.impl()];
      for (auto& [k, t] : it->second) {
        if (t.dim() > 0)
          EMBER_CHECK(t.sizes() == p.sizes(), name_, ": state \"", k, "\" of shape ", t.sizes(),
                      " does not match its parameter of shape ", p.sizes());
        // Floating state follows its parameter's dtype (PyTorch's rule); the step counter stays as saved.
        const bool cast = t.dim() > 0 && is_floating(t.dtype()) && is_floating(p.dtype());
        dst[k] = (cast ? t.to(p.device(), p.dtype()) : t.to(p.device())).clone();
      }
    }
  }
}

}  // namespace ember::optim
