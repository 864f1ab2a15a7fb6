// Loss scaling for float16 mixed precision, PyTorch's torch.amp.GradScaler. float16 gradients of
// small losses underflow to zero; multiplying the loss by a large factor (the scale) before backward
// keeps them representable, and dividing the gradients by it before the optimizer step (unscale_)
// restores their values. If any gradient came out inf or NaN, the scale was too large: that step is
// skipped and the scale shrinks (backoff_factor); after growth_interval clean steps it grows again.
//
//   optim::GradScaler scaler;
//   scaler.scale(loss).backward();
//   scaler.unscale_(opt);                          // optional: before gradient clipping
//   nn::utils::clip_grad_norm_(params, 1.0);
//   scaler.step(opt);                              // skipped when a gradient is inf / NaN
//   scaler.update();
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "ember/core/tensor.h"
#include "ember/optim/optimizer.h"

namespace ember::optim {

struct GradScalerOptions {
  double init_scale = 65536.0;  // 2^16
  double growth_factor = 2.0;
  double backoff_factor = 0.5;
  int64_t growth_interval = 2000;
  bool enabled = true;  // disabled: scale() returns the loss, step() is opt.step(), update() nothing
};

// What a GradScaler saves and restores; PyTorch's state_dict holds the same five entries (the
// tracker under the key "_growth_tracker"): the clean steps since the scale last changed.
struct GradScalerState {
  double scale = 65536.0, growth_factor = 2.0, backoff_factor = 0.5;
  int64_t growth_interval = 2000, growth_tracker = 0;
  bool operator==(const GradScalerState&) const = default;
};

class GradScaler {
 public:
  explicit GradScaler(GradScalerOptions options = {});

  // loss * scale (the loss itself when disabled).
  Tensor scale(const Tensor& loss) const;
  // Divides this optimizer's gradients by the scale, in place, and records whether any is inf/NaN.
  // At most once per optimizer between update()s.
  void unscale_(Optimizer& optimizer);
  // Unscales (if unscale_ was not called) and steps the optimizer unless a gradient was inf/NaN.
  // Returns whether it stepped.
  bool step(Optimizer& optimizer);
  // Adjusts the scale after the steps of one iteration: backoff when any optimizer found inf/NaN,
  // growth after growth_interval clean iterations; new_scale sets it directly.
  void update(std::optional<double> new_scale = std::nullopt);

  double get_scale() const { return options_.enabled ? scale_ : 1.0; }
  bool is_enabled() const { return options_.enabled; }
  // Empty when disabled (nothing to restore), as PyTorch's state_dict is.
  std::optional<GradScalerState> state_dict() const;
  void load_state_dict(const GradScalerState& state);

 private:
  struct PerOptimizer {
    bool unscaled = false, stepped = false, found_inf = false;
  };
  GradScalerOptions options_;
  double scale_;
  int64_t growth_tracker_ = 0;
  std::map<const Optimizer*, PerOptimizer> per_optimizer_;  // since the last update()
};

}  // namespace ember::optim
