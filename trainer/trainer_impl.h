// Shared by the files that implement the Trainer, one per seam of Lightning's own: trainer.cpp
// (construction and set-up), fit_loop.cpp, optimization.cpp, evaluation_loop.cpp,
// logger_connector.cpp, data_parallel.cpp, checkpoint_connector.cpp and lightning_module.cpp (the
// module's side). Not part of the public API.
#pragma once
#include <cmath>
#include <string>
#include <vector>

#include "ember/trainer/trainer.h"

namespace ember::trainer {

// Calls a hook on every callback (in order) and then on the module, with logging defaults for it.
#define EMBER_HOOK(name, ...)                                                           \
  do {                                                                                  \
    set_fx(#name);                                                                      \
    for (auto& cb_ : callbacks_) cb_->name(*this, *module_ __VA_OPT__(, ) __VA_ARGS__); \
    module_->name(__VA_ARGS__);                                                         \
  } while (0)

struct Trainer::Metric {
  std::string fx;  // the hook that logged it (empty until the first call)
  bool on_step = false, on_epoch = false, prog_bar = false, logger = true, sync_dist = false;
  std::string reduce = "mean";
  double sum = 0, weight = 0, max = -INFINITY, min = INFINITY;
  bool has_epoch_values = false;
  double epoch_value() const {
    if (reduce == "sum") return sum;
    if (reduce == "max") return max;
    if (reduce == "min") return min;
    return weight > 0 ? sum / weight : NAN;
  }
};

namespace detail {
inline std::string join_names(const std::vector<std::string>& names) {
  std::string out;
  for (auto& n : names) out += (out.empty() ? "\"" : ", \"") + n + "\"";
  return out;
}

inline std::string shapes_of(const std::vector<Tensor>& ts) {
  std::ostringstream os;
  for (size_t i = 0; i < ts.size(); ++i) os << (i ? ", " : "") << shape_str(ts[i].sizes());
  return os.str();
}

}  // namespace detail

}  // namespace ember::trainer
