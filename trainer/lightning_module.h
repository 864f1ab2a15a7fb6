// LightningModule: an nn::Module that also says how it is trained. The user writes training_step
// (and optionally validation/test/predict steps), configure_optimizers and any hooks; the Trainer
// runs the loops. The batch type is the user's: LightningModule<Batch> for any Batch (a tensor,
// a std::array / std::tuple / struct of tensors and plain values such as a task name or a flag).
//
//   struct Lit : trainer::LightningModule<std::array<Tensor, 2>> {
//     Tensor training_step(const Batch& b, int64_t i) override {
//       auto [x, y] = b;
//       Tensor loss = nn::functional::cross_entropy((*net)(x), y);
//       log("train_loss", loss, {.prog_bar = true});
//       return loss;                       // an undefined Tensor skips the optimizer step
//     }
//     trainer::Optimizers configure_optimizers() override {
//       return std::make_shared<optim::Adam>(parameters());
//     }
//   };
//
// LightningModuleBase holds everything that does not depend on the batch type (hooks, logging,
// optimizers, hparams), so the Trainer's loops are ordinary compiled code and nested modules with
// other batch types still find their trainer.
#pragma once
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>

#include "ember/nn/module.h"
#include "ember/onnx/export.h"
#include "ember/trainer/hparams.h"
#include "ember/trainer/optimizer_config.h"

namespace ember::trainer {

class Trainer;

struct LogOptions {
  bool prog_bar = false;
  bool logger = true;
  // Unset: Lightning's default for the hook that logs (training_step and batch hooks: on_step;
  // validation/test steps and epoch hooks: on_epoch).
  std::optional<bool> on_step{};
  std::optional<bool> on_epoch{};
  std::string reduce_fx = "mean";  // epoch reduction: "mean" (weighted by batch size), "sum", "max", "min"
  bool sync_dist = false;          // reduce across processes (a no-op in one process)
  std::optional<int64_t> batch_size{};  // the weight of this value in the epoch mean; inferred if unset
};

// What a module keeps in (and reads from) a checkpoint besides its weights: on_save_checkpoint may
// add entries, on_load_checkpoint reads them back.
struct CheckpointExtras {
  std::map<std::string, std::string> values;
  nn::NamedTensors tensors;
};

// One optimizer as the module sees it in manual optimization: zero_grad/step go through the
// Trainer, so gradient accumulation, clipping, hooks and global_step keep working.
class LightningOptimizer {
 public:
  LightningOptimizer(Trainer* trainer, size_t index) : trainer_(trainer), index_(index) {}
  void zero_grad();
  void step();
  // Lightning's step(closure): the closure (which computes the loss and calls manual_backward)
  // runs first, then the step.
  void step(const std::function<void()>& closure);
  optim::Optimizer& optimizer() const;
  size_t index() const { return index_; }

 private:
  Trainer* trainer_;
  size_t index_;
};

namespace detail {
// Thrown by the default validation/test steps so the Trainer can tell "not written" from "ran".
struct StepNotOverridden {};
}  // namespace detail

class LightningModuleBase : public nn::Module {
 public:
  explicit LightningModuleBase(std::string type_name = "LightningModule")
      : nn::Module(std::move(type_name)) {}

  virtual Optimizers configure_optimizers() { return {}; }

  // ---- hooks (Lightning's names and order; the Trainer calls callbacks first, then these) ----
  virtual void setup(const std::string& /*stage*/) {}
  virtual void teardown(const std::string& /*stage*/) {}
  virtual void on_fit_start() {}
  virtual void on_fit_end() {}
  virtual void on_train_start() {}
  virtual void on_train_end() {}
  virtual void on_train_epoch_start() {}
  virtual void on_train_epoch_end() {}
  // Returning -1 ends the current epoch.
  virtual int on_train_batch_start(int64_t /*batch_idx*/) { return 0; }
  virtual void on_train_batch_end(const Tensor& /*loss*/, int64_t /*batch_idx*/) {}
  virtual void on_validation_start() {}
  virtual void on_validation_end() {}
  virtual void on_validation_epoch_start() {}
  virtual void on_validation_epoch_end() {}
  virtual void on_validation_batch_start(int64_t /*batch_idx*/) {}
  virtual void on_validation_batch_end(const Tensor& /*output*/, int64_t /*batch_idx*/) {}
  virtual void on_test_start() {}
  virtual void on_test_end() {}
  virtual void on_test_epoch_start() {}
  virtual void on_test_epoch_end() {}
  virtual void on_test_batch_start(int64_t /*batch_idx*/) {}
  virtual void on_test_batch_end(const Tensor& /*output*/, int64_t /*batch_idx*/) {}
  virtual void on_predict_start() {}
  virtual void on_predict_end() {}
  virtual void on_predict_epoch_start() {}
  virtual void on_predict_epoch_end() {}
  virtual void on_predict_batch_start(int64_t /*batch_idx*/) {}
  virtual void on_predict_batch_end(const Tensor& /*output*/, int64_t /*batch_idx*/) {}
  virtual void on_before_backward(const Tensor& /*loss*/) {}
  virtual void on_after_backward() {}
  virtual void on_before_optimizer_step(optim::Optimizer& /*optimizer*/) {}
  virtual void on_before_zero_grad(optim::Optimizer& /*optimizer*/) {}
  virtual void on_save_checkpoint(CheckpointExtras& /*checkpoint*/) {}
  virtual void on_load_checkpoint(const CheckpointExtras& /*checkpoint*/) {}
  virtual void on_exception(const std::exception& /*error*/) {}
  // Steps one scheduler (with its monitored value for ReduceLROnPlateau, or for a custom scheduler
  // whose config names a monitor). Override it to drive a scheduler of your own type.
  virtual void lr_scheduler_step(Scheduler& scheduler, std::optional<double> metric) {
    scheduler.step(metric);
  }

  // ---- logging ------------------------------------------------------------------------------
  void log(const std::string& name, const Tensor& value, const LogOptions& options = {});
  void log(const std::string& name, double value, const LogOptions& options = {});
  void log_dict(const std::map<std::string, Tensor>& values, const LogOptions& options = {});
  void log_dict(const std::map<std::string, double>& values, const LogOptions& options = {});
  // Prints from rank 0 only (every process in a multi-process run would print otherwise).
  template <class... A>
  void print(const A&... parts) const {
    if (global_rank() != 0) return;
    ((std::cout << parts), ...);
    std::cout << "\n";
  }

  // ---- hyperparameters ---------------------------------------------------------------------
  void save_hyperparameters(const HParams& hparams) { hparams_ = hparams; }
  // Lightning's to_onnx: exports forward(input_sample) in eval mode (modes restored after); see
  // onnx/export.h. (Lightning's to_torchscript has no C++ counterpart: ONNX is the deployment format.)
  void to_onnx(const std::string& path, const Tensor& input_sample, const onnx::ExportOptions& options = {}) {
    onnx::export_model(*this, input_sample, path, options);
  }
  const HParams& hparams() const { return hparams_; }
  HParams& hparams() { return hparams_; }

  // ---- optimization --------------------------------------------------------------------------
  bool automatic_optimization() const { return automatic_optimization_; }
  void automatic_optimization(bool on) { automatic_optimization_ = on; }
  std::vector<LightningOptimizer> optimizers() const;
  std::vector<Scheduler> lr_schedulers() const;
  // backward with the Trainer's hooks (manual optimization).
  void manual_backward(const Tensor& loss, bool retain_graph = false);
  // Only this optimizer's parameters require grad until untoggle_optimizer (alternating updates).
  void toggle_optimizer(const LightningOptimizer& optimizer);
  void untoggle_optimizer(const LightningOptimizer& optimizer);
  // No gradients and eval mode / the reverse.
  void freeze();
  void unfreeze();

  // ---- where and when ------------------------------------------------------------------------
  bool has_trainer() const { return trainer_ != nullptr; }
  Trainer& trainer() const;
  int64_t current_epoch() const;
  int64_t global_step() const;
  Device device() const;
  int global_rank() const;
  int local_rank() const;

  // Across the ranks of a data-parallel run (in one process: the input itself, stacked for all_gather).
  Tensor all_gather(const Tensor& t) const;
  void broadcast(Tensor& t, int src = 0) const;
  void barrier() const;

  void attach_trainer(Trainer* t) { trainer_ = t; }

 private:
  Trainer* trainer_ = nullptr;
  bool automatic_optimization_ = true;
  HParams hparams_;
  std::map<const TensorImpl*, bool> toggled_requires_grad_;
};

template <class BatchT>
class LightningModule : public LightningModuleBase {
 public:
  using Batch = BatchT;
  using LightningModuleBase::LightningModuleBase;

  // The loss of one batch. Must be overridden to train; undefined skips the optimizer step.
  virtual Tensor training_step(const Batch& /*batch*/, int64_t /*batch_idx*/) {
    EMBER_CHECK(false, type_name(), ": training_step is not overridden; the Trainer has nothing to train");
    return {};
  }
  // Optional: when not overridden the Trainer skips the loop (validation during fit) or says so.
  virtual Tensor validation_step(const Batch& /*batch*/, int64_t /*batch_idx*/) {
    throw detail::StepNotOverridden{};
  }
  virtual Tensor test_step(const Batch& /*batch*/, int64_t /*batch_idx*/) {
    throw detail::StepNotOverridden{};
  }
  // Default: forward on the batch (a tensor), or on its first element (an array or tuple).
  virtual Tensor predict_step(const Batch& batch, int64_t /*batch_idx*/) {
    if constexpr (std::is_convertible_v<const Batch&, const Tensor&>) {
      return forward(batch);
    } else if constexpr (requires { std::get<0>(batch); }) {
      if constexpr (std::is_convertible_v<decltype(std::get<0>(batch)), const Tensor&>)
        return forward(std::get<0>(batch));
    }
    EMBER_CHECK(false, type_name(),
                ": predict_step is not overridden and the batch is not a tensor "
                "or a tuple starting with one");
    return {};
  }
};

}  // namespace ember::trainer
