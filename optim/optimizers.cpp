// The optimizers: option tables and the one fused update they share; see optimizers.h.
#include "ember/optim/optimizers.h"

namespace ember::optim {

using Kind = fused::OptimizerKind;

GroupOptions SGDOptions::group_options() const {
  EMBER_CHECK(lr >= 0 && momentum >= 0 && weight_decay >= 0, "SGD: invalid lr, momentum or weight_decay");
  EMBER_CHECK(!nesterov || (momentum > 0 && dampening == 0),
              "SGD: nesterov momentum requires a momentum and zero dampening");
  return {.lr = lr,
          .momentum = momentum,
          .dampening = dampening,
          .weight_decay = weight_decay,
          .nesterov = nesterov,
          .maximize = maximize};
}

GroupOptions AdamOptions::group_options() const {
  EMBER_CHECK(lr >= 0 && eps >= 0 && beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1 && weight_decay >= 0,
              "Adam: invalid lr, betas, eps or weight_decay");
  return {.lr = lr,
          .weight_decay = weight_decay,
          .beta1 = beta1,
          .beta2 = beta2,
          .eps = eps,
          .amsgrad = amsgrad,
          .maximize = maximize};
}

GroupOptions AdamWOptions::group_options() const {
  return AdamOptions{.lr = lr,
                     .beta1 = beta1,
                     .beta2 = beta2,
                     .eps = eps,
                     .weight_decay = weight_decay,
                     .amsgrad = amsgrad,
                     .maximize = maximize}
      .group_options();
}

GroupOptions RMSpropOptions::group_options() const {
  EMBER_CHECK(lr >= 0 && eps >= 0 && alpha >= 0 && momentum >= 0 && weight_decay >= 0,
              "RMSprop: invalid lr, alpha, eps, momentum or weight_decay");
  return {.lr = lr,
          .momentum = momentum,
          .weight_decay = weight_decay,
          .eps = eps,
          .alpha = alpha,
          .maximize = maximize,
          .centered = centered};
}

GroupOptions AdagradOptions::group_options() const {
  EMBER_CHECK(lr >= 0 && lr_decay >= 0 && weight_decay >= 0 && initial_accumulator_value >= 0 && eps >= 0,
              "Adagrad: invalid options");
  return {.lr = lr,
          .weight_decay = weight_decay,
          .eps = eps,
          .lr_decay = lr_decay,
          .initial_accumulator_value = initial_accumulator_value,
          .maximize = maximize};
}

FusedOptimizer::FusedOptimizer(std::vector<ParamGroup> groups, GroupOptions defaults, std::string name,
                               Kind kind)
    : Optimizer(std::move(groups), std::move(defaults), std::move(name)), kind_(kind) {}

SGD::SGD(std::vector<ParamGroup> g, SGDOptions o)
    : FusedOptimizer(std::move(g), o.group_options(), "SGD", Kind::SGD) {}
Adam::Adam(std::vector<ParamGroup> g, AdamOptions o)
    : FusedOptimizer(std::move(g), o.group_options(), "Adam", Kind::Adam) {}
AdamW::AdamW(std::vector<ParamGroup> g, AdamWOptions o)
    : FusedOptimizer(std::move(g), o.group_options(), "AdamW", Kind::AdamW) {}
RMSprop::RMSprop(std::vector<ParamGroup> g, RMSpropOptions o)
    : FusedOptimizer(std::move(g), o.group_options(), "RMSprop", Kind::RMSprop) {}
Adagrad::Adagrad(std::vector<ParamGroup> g, AdagradOptions o)
    : FusedOptimizer(std::move(g), o.group_options(), "Adagrad", Kind::Adagrad) {}

void FusedOptimizer::update(ParamGroup& group, Tensor& param, std::map<std::string, Tensor>& st) {
  const GroupOptions& o = group.options;
  fused::OptimizerUpdate s;
  s.kind = kind_;
  s.lr = ParamGroup::value(o.lr, "lr");
  s.weight_decay = ParamGroup::value(o.weight_decay, "weight_decay");
  s.maximize = ParamGroup::value(o.maximize, "maximize");
  auto buffer = [&](const std::string& key, double init) -> Tensor& {
    auto it = st.find(key);
    if (it == st.end()) it = st.emplace(key, full_like(param, init)).first;
    // A loaded state (a checkpoint may be hand-edited) must fit the kernel exactly: same shape, dtype
    // and device as its parameter, compact.
    const Tensor& b = it->second;
    EMBER_CHECK(b.sizes() == param.sizes() && b.dtype() == param.dtype() && b.device() == param.device() &&
                    b.is_contiguous(),
                name(), ": state \"", key, "\" (", dtype_name(b.dtype()), " ", b.sizes(),
                ") does not fit its parameter (", dtype_name(param.dtype()), " ", param.sizes(), ")");
    return it->second;
  };
  // PyTorch keeps the step count as a float tensor in the state; so do we, for state_dict parity.
  auto next_step = [&]() {
    auto it = st.find("step");
    if (it == st.end()) it = st.emplace("step", zeros({}, kFloat32)).first;
    Tensor& step = it->second;
    EMBER_CHECK(step.numel() == 1, name(), ": state \"step\" must hold one number, got shape ", step.sizes());
    step.add_(1.0);
    const double n = step.to(kFloat64).item<double>();
    EMBER_CHECK(n >= 1 && n < 9e15, name(), ": state \"step\" is ", n, ", not a step count");
    return static_cast<int64_t>(n);
  };
  Tensor s0, s1, s2;
  switch (kind_) {
    case Kind::SGD:
      s.momentum = ParamGroup::value(o.momentum, "momentum");
      s.dampening = ParamGroup::value(o.dampening, "dampening");
      s.nesterov = ParamGroup::value(o.nesterov, "nesterov");
      if (s.momentum != 0) {
        s.first_step = !st.count("momentum_buffer");
        s0 = buffer("momentum_buffer", 0.0);
      }
      break;
    case Kind::Adam:
    case Kind::AdamW:
      s.beta1 = ParamGroup::value(o.beta1, "beta1");
      s.beta2 = ParamGroup::value(o.beta2, "beta2");
      s.eps = ParamGroup::value(o.eps, "eps");
      s.amsgrad = ParamGroup::value(o.amsgrad, "amsgrad");
      s.step = next_step();
      s0 = buffer("exp_avg", 0.0);
      s1 = buffer("exp_avg_sq", 0.0);
      if (s.amsgrad) s2 = buffer("max_exp_avg_sq", 0.0);
      break;
    case Kind::RMSprop:
      s.alpha = ParamGroup::value(o.alpha, "alpha");
      s.eps = ParamGroup::value(o.eps, "eps");
      s.momentum = ParamGroup::value(o.momentum, "momentum");
      s.centered = ParamGroup::value(o.centered, "centered");
      s.step = next_step();
      s0 = buffer("square_avg", 0.0);
      if (s.momentum > 0) s1 = buffer("momentum_buffer", 0.0);
      if (s.centered) s2 = buffer("grad_avg", 0.0);
      break;
    case Kind::Adagrad:
      s.eps = ParamGroup::value(o.eps, "eps");
      s.lr_decay = ParamGroup::value(o.lr_decay, "lr_decay");
      s0 = buffer("sum", ParamGroup::value(o.initial_accumulator_value, "initial_accumulator_value"));
      s.step = next_step();
      break;
  }
  // The fused pass needs compact memory; parameters almost always are. Otherwise work on compact
  // copies and write them back.
  Tensor p = param.is_contiguous() ? param : param.contiguous();
  Tensor g = param.grad().contiguous().to(param.dtype());
  pending_.push_back({s, param, p, g, s0, s1, s2});
}

void FusedOptimizer::flush() {
  auto same_run = [](const Pending& a, const Pending& b) {
    return a.spec == b.spec && a.param.device() == b.param.device() && a.param.dtype() == b.param.dtype();
  };
  for (size_t first = 0; first < pending_.size();) {
    size_t last = first + 1;
    while (last < pending_.size() && same_run(pending_[first], pending_[last])) ++last;
    std::vector<fused::ParamUpdate> run;
    for (size_t i = first; i < last; ++i) {
      const Pending& u = pending_[i];
      run.push_back({u.work, u.grad, {u.s0, u.s1, u.s2}});
    }
    fused::optimizer_update(pending_[first].spec, run);
    first = last;
  }
  for (Pending& u : pending_) {
    if (!u.work.is_same(u.param)) u.param.assign_data_(u.work);
    else u.param.impl()->storage->bump_version();
  }
  pending_.clear();
}

}  // namespace ember::optim
