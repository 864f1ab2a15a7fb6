// Trainer: runs a LightningModule's loops the way Lightning does: fit (train with periodic
// validation), validate, test and predict, with the hooks in Lightning's order, automatic or manual
// optimization, gradient accumulation and clipping, logging, callbacks, checkpoints that resume
// exactly, and a progress bar.
//
//   trainer::Trainer trainer({.max_epochs = 5, .callbacks = {checkpoint}});
//   trainer.fit(model, train_loader, val_loader);
//   auto results = trainer.test(model, test_loader);      // {"test_acc": 0.98, ...}
//
// The loops are documented for learners in docs/trainer.md.
#pragma once
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ember/core/autocast.h"
#include "ember/optim/grad_scaler.h"
#include "ember/trainer/batch_stream.h"
#include "ember/trainer/callback.h"
#include "ember/trainer/distributed.h"
#include "ember/trainer/gradient_reducer.h"
#include "ember/trainer/lightning_module.h"
#include "ember/trainer/logger.h"

namespace ember::trainer {

struct CheckpointContents;  // trainer/checkpoint.h

// A number of batches (an integer) or a fraction of the loader (a real number), as in Lightning:
// 10 means ten batches, 0.25 a quarter of them, 1.0 all.
struct BatchLimit {
  BatchLimit(int count) : count(count) {}
  BatchLimit(int64_t count) : count(count) {}
  BatchLimit(double fraction) : fraction(fraction) {}
  std::optional<int64_t> count;
  double fraction = 1.0;
  int64_t resolve(int64_t total, const char* what) const;
};

struct TrainerOptions {
  std::optional<int64_t> max_epochs{};  // unset: 1000, or unlimited when max_steps is set
  int64_t min_epochs = 0;
  int64_t max_steps = -1;
  int64_t min_steps = 0;   // a stop request (EarlyStopping, Timer) waits for this many steps
  std::string max_time{};  // "DD:HH:MM:SS"; empty: no limit
  BatchLimit val_check_interval = 1.0;
  int64_t check_val_every_n_epoch = 1;
  BatchLimit limit_train_batches = 1.0;
  BatchLimit limit_val_batches = 1.0;
  BatchLimit limit_test_batches = 1.0;
  BatchLimit limit_predict_batches = 1.0;
  int64_t num_sanity_val_steps = 2;
  int64_t accumulate_grad_batches = 1;
  std::optional<double> gradient_clip_val{};
  std::string gradient_clip_algorithm = "norm";  // "norm" or "value"
  bool deterministic = false;
  int64_t fast_dev_run = 0;          // n > 0: n batches of each loop, one epoch, nothing written
  BatchLimit overfit_batches = 0.0;  // train and validate on the same first batches
  int64_t log_every_n_steps = 50;
  bool enable_progress_bar = true;
  bool enable_checkpointing = true;  // adds a ModelCheckpoint when none is given
  bool enable_model_summary = true;
  std::string default_root_dir = ".";
  std::vector<std::shared_ptr<Callback>> callbacks{};
  std::vector<std::shared_ptr<Logger>> loggers{};  // empty: a CSVLogger under default_root_dir
  bool logger = true;                              // false: no logger at all
  std::string accelerator = "auto";                // "auto", "cpu" or "cuda"
  int devices = 1;                                 // with strategy "ddp": the number of ranks mpirun started
  // "auto": data-parallel ("ddp") when launched by mpirun with several ranks, else one process;
  // "ddp": the same, stated; "single": one process even under mpirun.
  std::string strategy = "auto";
  double ddp_timeout = 1800;    // seconds a collective may take before every rank is ended
  int64_t ddp_bucket_mb = 25;   // gradient all-reduce bucket size
  bool sync_batchnorm = false;  // BatchNorm statistics over the global batch (ddp only)
  // "32-true" (or "32"); "bf16-mixed": the steps run under autocast to bfloat16; "16-mixed": autocast
  // to float16 with a GradScaler (loss scaling, steps skipped on inf/NaN gradients). Parameters and
  // optimizer state stay float32.
  std::string precision = "32-true";
  std::optional<uint64_t> seed{};  // seed_everything(seed) before anything runs
};

// Seeds every generator ember uses (the CPU and CUDA generators; data loaders draw their shuffle
// seed from it when made).
void seed_everything(uint64_t seed);

class Trainer {
 public:
  explicit Trainer(TrainerOptions options = {});
  ~Trainer();

  // ---- entry points ----------------------------------------------------------------------------
  template <class M, class TL, class VL = std::nullptr_t>
  void fit(M& module, TL&& train_loader, VL&& val_loader = nullptr, const std::string& ckpt_path = "") {
    auto train = detail::make_stream(module, std::forward<TL>(train_loader));
    std::unique_ptr<BatchStream> val;
    if constexpr (!std::is_same_v<std::remove_cvref_t<VL>, std::nullptr_t>)
      val = detail::make_stream(module, std::forward<VL>(val_loader));
    fit_impl(module, std::move(train), std::move(val), ckpt_path);
  }
  template <class M, class L>
  std::map<std::string, double> validate(M& module, L&& loader, const std::string& ckpt_path = "") {
    return evaluate_impl(module, detail::make_stream(module, std::forward<L>(loader)), Stage::Validate,
                         ckpt_path);
  }
  template <class M, class L>
  std::map<std::string, double> test(M& module, L&& loader, const std::string& ckpt_path = "") {
    return evaluate_impl(module, detail::make_stream(module, std::forward<L>(loader)), Stage::Test,
                         ckpt_path);
  }
  template <class M, class L>
  std::vector<Tensor> predict(M& module, L&& loader, const std::string& ckpt_path = "") {
    return predict_impl(module, detail::make_stream(module, std::forward<L>(loader)), ckpt_path);
  }

  // Writes a checkpoint of the current state (model, optimizers, schedulers, callbacks, loops,
  // RNG) to `path`, atomically.
  void save_checkpoint(const std::string& path);

  // ---- state -------------------------------------------------------------------------------------
  int64_t current_epoch() const { return epoch_; }
  int64_t global_step() const { return global_step_; }
  bool should_stop = false;
  bool sanity_checking() const { return sanity_checking_; }
  bool training() const { return stage_ == Stage::Train && running_; }
  // Inside fit (training or its validation), as opposed to a standalone validate/test/predict.
  bool fitting() const { return fitting_; }
  const std::map<std::string, double>& callback_metrics() const { return callback_metrics_; }
  // The checkpoint this fit/validate/test started from (empty when none).
  const std::string& ckpt_path() const { return ckpt_path_; }
  // The loss scaler of precision "16-mixed" (null otherwise).
  optim::GradScaler* grad_scaler() const { return scaler_.get(); }
  const std::map<std::string, double>& logged_metrics() const { return logged_metrics_; }
  const std::map<std::string, double>& progress_bar_metrics() const { return progress_bar_metrics_; }
  int64_t num_training_batches() const { return num_training_batches_; }
  // 0 also when the module turned out to have no validation_step.
  int64_t num_val_batches() const { return val_enabled_ ? num_val_batches_ : 0; }
  int64_t accumulate_grad_batches() const { return accumulate_; }
  // Optimizer steps the whole fit will take (for OneCycleLR's total_steps and the like); valid from
  // configure_optimizers on. Counts this rank's share of the data in data-parallel runs.
  int64_t estimated_stepping_batches() const;
  void set_accumulate_grad_batches(int64_t n);
  const TrainerOptions& options() const { return o_; }
  std::vector<std::shared_ptr<Callback>>& callbacks() { return callbacks_; }
  std::vector<std::shared_ptr<Logger>>& loggers() { return loggers_; }
  std::shared_ptr<Logger> logger() const { return loggers_.empty() ? nullptr : loggers_[0]; }
  // The first logger's directory, else default_root_dir.
  std::string log_dir();
  const std::vector<std::shared_ptr<optim::Optimizer>>& optimizers() const { return optimizers_; }
  const std::vector<LRSchedulerConfig>& lr_scheduler_configs() const { return schedulers_; }
  LightningModuleBase* lightning_module() const { return module_; }
  template <class C>
  std::shared_ptr<C> find_callback() const {
    for (auto& c : callbacks_)
      if (auto p = std::dynamic_pointer_cast<C>(c)) return p;
    return nullptr;
  }
  int global_rank() const { return group_ ? group_->rank() : 0; }
  int local_rank() const { return group_ ? group_->local_rank() : 0; }
  int world_size() const { return group_ ? group_->size() : 1; }
  // The ranks of a data-parallel run (null in one process).
  const std::shared_ptr<distributed::ProcessGroup>& process_group() const { return group_; }
  // Collectives for modules and callbacks; in one process they return their input.
  Tensor all_gather(const Tensor& t);
  void broadcast(Tensor& t, int src = 0);
  std::string broadcast(const std::string& text, int src = 0);
  void barrier();
  bool is_global_zero() const { return global_rank() == 0; }
  Device device() const { return device_; }
  // Seconds since fit started.
  double elapsed_seconds() const;
  // The current loop's batch index and its length (for progress displays).
  int64_t batch_idx() const { return batch_idx_; }
  int64_t total_batches() const { return total_batches_; }
  Stage stage() const { return stage_; }

  // ---- used by LightningModule -----------------------------------------------------------------
  void log(const std::string& name, double value, const LogOptions& options);
  void manual_backward(LightningModuleBase& module, const Tensor& loss, bool retain_graph = false);
  void optimizer_zero_grad(size_t index);
  void optimizer_step(size_t index);
  // Prints to stderr once and hands the text to the loggers.
  void warn(const std::string& message);
  const std::vector<std::string>& warnings() const { return warnings_; }

 private:
  struct Metric;
  void fit_impl(LightningModuleBase& module, std::unique_ptr<BatchStream> train,
                std::unique_ptr<BatchStream> val, const std::string& ckpt_path);
  std::map<std::string, double> evaluate_impl(LightningModuleBase& module,
                                              std::unique_ptr<BatchStream> loader, Stage stage,
                                              const std::string& ckpt_path);
  std::vector<Tensor> predict_impl(LightningModuleBase& module, std::unique_ptr<BatchStream> loader,
                                   const std::string& ckpt_path);

  void attach(LightningModuleBase& module);
  void detach();
  void configure_optimizers();
  void check_registration(const Tensor& loss);
  void run_train_epoch(BatchStream& train, BatchStream* val);
  bool train_batch(BatchStream& train, int64_t batch_idx);
  void train_epoch_end_hooks();
  bool can_stop_early() const;              // min_epochs and min_steps are met
  void automatic_step(const Tensor& loss);  // zero_grad / backward / step, windowed by batch_idx_
  void backward(const Tensor& loss, bool retain_graph = false);
  void step_one(size_t index);
  bool window_start() const;  // first batch of a gradient-accumulation window
  bool window_end() const;    // last batch of one (the optimizers step)
  bool run_eval_loop(BatchStream& loader, Stage stage, int64_t max_batches, bool sanity,
                     std::vector<Tensor>* outputs = nullptr);
  enum class EvalHook { Start, EpochStart, BatchStart, BatchEnd, EpochEnd, End };
  void eval_hook(Stage stage, EvalHook when, int64_t batch_idx = 0, const Tensor* out = nullptr);
  void step_schedulers(const std::string& interval, bool plateau);
  bool time_is_up() const;
  bool past_max_steps() const { return o_.max_steps >= 0 && global_step_ >= o_.max_steps; }
  CheckpointContents restore_modules_and_callbacks(const std::string& path);
  void restore_training_state(const CheckpointContents& c, const std::string& path);
  void set_fx(const std::string& fx);
  // Lightning's rules for a log() call: where it may be called and with which on_step/on_epoch.
  void check_log_call(const std::string& name, bool on_step, bool on_epoch) const;
  void reset_metrics(Stage stage);
  void reset_all_metrics();
  void finish_epoch_metrics(Stage stage, bool send);
  void log_step_metrics();
  void send_to_loggers(const std::map<std::string, double>& metrics, int64_t step);
  void setup_ddp(BatchStream& train, BatchStream* val);
  void place(BatchStream& first, BatchStream* second);
  void on_failure(const std::exception& e);
  bool any_rank(bool flag);

  TrainerOptions o_;
  std::vector<std::shared_ptr<Callback>> callbacks_;
  std::vector<std::shared_ptr<Logger>> loggers_;
  std::shared_ptr<distributed::ProcessGroup> group_;
  std::optional<DType> autocast_dtype_;        // mixed precision
  std::unique_ptr<optim::GradScaler> scaler_;  // "16-mixed"
  void enter_autocast(std::optional<AutocastGuard>& scope) const;
  std::shared_ptr<GradientReducer> reducer_;
  LightningModuleBase* module_ = nullptr;
  Device device_ = Device::cpu();
  std::vector<std::shared_ptr<optim::Optimizer>> optimizers_;
  std::vector<LRSchedulerConfig> schedulers_;

  // loop state
  int64_t epoch_ = 0, global_step_ = 0, batches_stepped_ = 0;
  int64_t epoch_batches_done_ = 0;  // of the current epoch (resume position)
  int64_t resume_skip_ = 0;
  bool epoch_finished_ = false;
  int64_t accumulate_ = 1;
  int64_t max_epochs_ = 0;
  int64_t num_training_batches_ = 0, num_val_batches_ = 0;
  int64_t batch_idx_ = 0, total_batches_ = 0;
  int64_t current_batch_size_ = 1;
  Stage stage_ = Stage::Train;
  bool running_ = false, sanity_checking_ = false, registration_checked_ = false;
  bool val_enabled_ = true;
  bool fitting_ = false;  // false once the module turned out to have no validation_step
  std::vector<std::string> warnings_;
  std::string ckpt_path_;
  std::chrono::steady_clock::time_point start_time_;
  double max_time_seconds_ = -1;

  // logging
  bool default_on_step_ = true, default_on_epoch_ = false;
  std::string fx_;                                             // the hook running now, for log()'s checks
  std::map<std::string, std::unique_ptr<Metric>> metrics_[4];  // per Stage
  std::map<std::string, double> callback_metrics_, logged_metrics_, progress_bar_metrics_;
  std::map<std::string, double> pending_step_metrics_;
  int64_t eval_batches_seen_ = 0;  // evaluation batches of this fit/validate/test: their logging step
};

// Rebuilds a module from a checkpoint: Model(hparams, extra...) with the stored hyperparameters,
// then, for a LightningModule, its on_load_checkpoint with the checkpoint's extras (as Lightning
// does), then its weights (strict: keys of another model are an error naming them).
HParams checkpoint_hparams(const std::string& path);
void load_checkpoint_weights(nn::Module& module, const std::string& path, bool strict = true);
void load_module_checkpoint(LightningModuleBase& module, const std::string& path);
template <class Model, class... A>
std::shared_ptr<Model> load_from_checkpoint(const std::string& path, A&&... extra) {
  auto model = std::make_shared<Model>(checkpoint_hparams(path), std::forward<A>(extra)...);
  if constexpr (std::is_base_of_v<LightningModuleBase, Model>) load_module_checkpoint(*model, path);
  else load_checkpoint_weights(*model, path);
  return model;
}

}  // namespace ember::trainer
