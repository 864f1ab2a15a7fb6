// GradScaler: see grad_scaler.h. Finding inf/NaN costs one host sync per optimizer: each gradient
// contributes sum(g * 0), which is 0 for finite values and NaN if any element is inf or NaN, and the
// total is read once.
#include "ember/optim/grad_scaler.h"

#include <cmath>

#include "ember/autograd/grad_mode.h"
#include "ember/core/error.h"
#include "ember/core/ops.h"

namespace ember::optim {

GradScaler::GradScaler(GradScalerOptions options) : options_(options), scale_(options.init_scale) {
  EMBER_CHECK(options.init_scale > 0 && options.growth_factor > 1 && options.backoff_factor > 0 &&
                  options.backoff_factor < 1 && options.growth_interval > 0,
              "GradScaler: need init_scale > 0, growth_factor > 1, 0 < backoff_factor < 1 and "
              "growth_interval > 0, got ",
              options.init_scale, ", ", options.growth_factor, ", ", options.backoff_factor, ", ",
              options.growth_interval);
}

Tensor GradScaler::scale(const Tensor& loss) const {
  if (!options_.enabled) return loss;
  return loss * scale_;
}

void GradScaler::unscale_(Optimizer& optimizer) {
  if (!options_.enabled) return;
  PerOptimizer& state = per_optimizer_[&optimizer];
  EMBER_CHECK(!state.unscaled,
              "GradScaler.unscale_: already called on this optimizer since the last update()");
  EMBER_CHECK(!state.stepped, "GradScaler.unscale_: called after step(); call it before step()");
  autograd::NoGradGuard no_grad;
  const double inverse = 1.0 / scale_;
  Tensor non_finite;  // NaN iff some gradient has an inf or NaN
  for (auto& group : optimizer.param_groups())
    for (auto& p : group.params) {
      Tensor g = p.grad();
      if (!g.defined()) continue;
      Tensor probe = (g * 0.0).sum().to(kFloat32);
      non_finite = non_finite.defined() ? non_finite + probe.to(non_finite.device()) : probe;
      g.mul_(inverse);
    }
  state.found_inf = non_finite.defined() && !std::isfinite(non_finite.item<float>());
  state.unscaled = true;
}

bool GradScaler::step(Optimizer& optimizer) {
  if (!options_.enabled) {
    optimizer.step();
    return true;
  }
  PerOptimizer& state = per_optimizer_[&optimizer];
  EMBER_CHECK(!state.stepped, "GradScaler.step: already called on this optimizer since the last update()");
  if (!state.unscaled) unscale_(optimizer);  // fills in state (map references stay valid)
  state.stepped = true;
  if (state.found_inf) return false;
  optimizer.step();
  return true;
}

void GradScaler::update(std::optional<double> new_scale) {
  if (!options_.enabled) return;
  if (new_scale) {
    EMBER_CHECK(*new_scale > 0, "GradScaler.update: new_scale must be positive, got ", *new_scale);
    scale_ = *new_scale;
  } else {
    EMBER_CHECK(!per_optimizer_.empty(),
                "GradScaler.update: no inf checks were recorded; call step() (or "
                "unscale_()) on an optimizer first");
    bool found_inf = false;
    for (auto& [opt, state] : per_optimizer_) found_inf = found_inf || state.found_inf;
    if (found_inf) {
      scale_ *= options_.backoff_factor;
      growth_tracker_ = 0;
    } else if (++growth_tracker_ == options_.growth_interval) {
      scale_ *= options_.growth_factor;
      growth_tracker_ = 0;
    }
  }
  per_optimizer_.clear();
}

std::optional<GradScalerState> GradScaler::state_dict() const {
  if (!options_.enabled) return std::nullopt;
  return GradScalerState{.scale = scale_,
                         .growth_factor = options_.growth_factor,
                         .backoff_factor = options_.backoff_factor,
                         .growth_interval = options_.growth_interval,
                         .growth_tracker = growth_tracker_};
}

void GradScaler::load_state_dict(const GradScalerState& state) {
  EMBER_CHECK(state.scale > 0 && std::isfinite(state.scale) && state.growth_factor > 1 &&
                  state.backoff_factor > 0 && state.backoff_factor < 1 && state.growth_interval > 0 &&
                  state.growth_tracker >= 0,
              "GradScaler.load_state_dict: invalid state (scale ", state.scale, ", growth_factor ",
              state.growth_factor, ", backoff_factor ", state.backoff_factor, ", growth_interval ",
              state.growth_interval, ", _growth_tracker ", state.growth_tracker, ")");
  scale_ = state.scale;
  options_.growth_factor = state.growth_factor;
  options_.backoff_factor = state.backoff_factor;
  options_.growth_interval = state.growth_interval;
  growth_tracker_ = state.growth_tracker;
}

}  // namespace ember::optim
