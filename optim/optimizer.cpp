// Optimizer's groups, state and serialisation; see optimizer.h.
#include "ember/optim/optimizer.h"

#include <set>
#include <type_traits>

#include "ember/autograd/grad_mode.h"

namespace ember::optim {

namespace {
// The one table of option names. f(name, member, is_scheduler_entry) for every field of GroupOptions.
template <class F>
void for_each_option(F&& f) {
  using G = GroupOptions;
  f("lr", &G::lr, false);
  f("momentum", &G::momentum, false);
  f("dampening", &G::dampening, false);
  f("weight_decay", &G::weight_decay, false);
  f("beta1", &G::beta1, false);
  f("beta2", &G::beta2, false);
  f("eps", &G::eps, false);
  f("alpha", &G::alpha, false);
  f("lr_decay", &G::lr_decay, false);
  f("initial_accumulator_value", &G::initial_accumulator_value, false);
  f("nesterov", &G::nesterov, false);
  f("amsgrad", &G::amsgrad, false);
  f("maximize", &G::maximize, false);
  f("centered", &G::centered, false);
  f("initial_lr", &G::initial_lr, true);
  f("max_lr", &G::max_lr, true);
  f("min_lr", &G::min_lr, true);
}
}  // namespace

std::vector<std::pair<std::string, double>> GroupOptions::named() const {
  std::vector<std::pair<std::string, double>> out;
  for_each_option([&](const char* name, auto member, bool) {
    if (const auto& v = this->*member) out.emplace_back(name, static_cast<double>(*v));
  });
  return out;
}

GroupOptions GroupOptions::from_named(const std::vector<std::pair<std::string, double>>& entries,
                                      const std::string& what) {
  GroupOptions out;
  for (const auto& entry : entries) {
    // (Not a structured binding: clang 14 cannot capture one in the lambda below.)
    const std::string& key = entry.first;
    const double value = entry.second;
    bool known = false;
    for_each_option([&](const char* name, auto member, bool) {
      if (key != name) return;
      known = true;
      using T = typename std::remove_reference_t<decltype(out.*member)>::value_type;
      if constexpr (std::is_same_v<T, bool>)
        EMBER_CHECK(value == 0 || value == 1, what, ": option \"", key, "\" is a flag (0 or 1), got ", value);
      out.*member = static_cast<T>(value);
    });
    EMBER_CHECK(known, what, ": unknown optimizer option \"", key, "\"");
  }
  return out;
}

namespace {
void check_set(bool set, const char* name) {
  EMBER_CHECK(set, "param_group: the option \"", name, "\" is not set (is the group in an optimizer?)");
}
}  // namespace

double& ParamGroup::value(std::optional<double>& option, const char* name) {
  check_set(option.has_value(), name);
  return *option;
}

double ParamGroup::value(const std::optional<double>& option, const char* name) {
  check_set(option.has_value(), name);
  return *option;
}

bool ParamGroup::value(const std::optional<bool>& option, const char* name) {
  check_set(option.has_value(), name);
  return *option;
}

std::vector<ParamGroup> single_group(const std::vector<Tensor>& params) { return {ParamGroup{params, {}}}; }

Optimizer::Optimizer(std::vector<ParamGroup> groups, GroupOptions defaults, std::string name)
    : defaults_(std::move(defaults)), name_(std::move(name)) {
  EMBER_CHECK(!groups.empty(), name_, ": got an empty list of parameter groups");
  for (auto& g : groups) add_param_group(std::move(g));
}

void Optimizer::add_param_group(ParamGroup group) {
  EMBER_CHECK(!group.params.empty(), name_, ": a parameter group needs at least one parameter");
  for_each_option([&](const char* key, auto member, bool scheduler_entry) {
    auto& given = group.options.*member;
    const auto& fallback = defaults_.*member;
    EMBER_CHECK(scheduler_entry || !given || fallback, name_, ": a parameter group sets \"", key,
                "\", which ", name_, " does not have");
    if (!given) given = fallback;  // inherit what was not given
  });
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
                  name_, ".step: a parameter of shape ", p.sizes(), " on ", p.device().str(),
                  " has a gradient of shape ", p.grad().sizes(), " on ", p.grad().device().str());
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

void Optimizer::check_loaded_options(const GroupOptions& loaded, size_t group) const {
  // Exactly this optimizer's options (a state saved by another optimizer, or a hand-edited one, is
  // refused here rather than at the next step); the schedulers' entries may be there or not.
  for_each_option([&](const char* key, auto member, bool scheduler_entry) {
    if (scheduler_entry) return;
    const bool has = (loaded.*member).has_value(), wanted = (defaults_.*member).has_value();
    EMBER_CHECK(has == wanted, name_, ".load_state_dict: group ", group,
                has ? " has the option \"" : " lacks the option \"", key, "\"",
                has ? (", which " + name_ + " does not have") : std::string(),
                " (a state saved by another optimizer?)");
  });
}

void Optimizer::load_state_dict(const OptimizerState& s) {
  EMBER_CHECK(s.groups.size() == groups_.size() && s.group_params.size() == groups_.size(), name_,
              ": loaded state has ", s.groups.size(), " parameter groups, the optimizer has ",
              groups_.size());
  for (size_t g = 0; g < groups_.size(); ++g)
    EMBER_CHECK(s.group_params[g].size() == groups_[g].params.size(), name_, ": group ", g, " has ",
                groups_[g].params.size(), " parameters but the loaded state has ", s.group_params[g].size());
  for (size_t g = 0; g < groups_.size(); ++g) check_loaded_options(s.groups[g], g);
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
