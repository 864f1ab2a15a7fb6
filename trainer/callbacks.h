// The built-in callbacks, with Lightning's options and defaults.
//   ModelCheckpoint                saves checkpoints: the top k by a monitored metric (or the latest),
//                                  last.ckpt, every n epochs or n training steps; names from a
//                                  template such as "{epoch}-{val_loss:.2f}" -> "epoch=3-val_loss=0.12.ckpt"
//   EarlyStopping                  stops when a metric stops improving (patience, min_delta) or
//                                  crosses a threshold, or is not finite
//   LearningRateMonitor            logs each optimizer's learning rate ("lr-Adam", "lr-SGD/pg1")
//   GradientAccumulationScheduler  changes accumulate_grad_batches by epoch: {{0, 8}, {4, 4}}
//   Timer                          stops training after a wall-clock duration
#pragma once
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ember/trainer/callback.h"

namespace ember::trainer {

class ModelCheckpoint : public Callback {
 public:
  struct Options {
    std::string dirpath{};   // empty: <log_dir>/checkpoints
    std::string filename{};  // empty: "{epoch}-{step}"
    std::string monitor{};   // empty: keep the most recent
    std::string mode = "min";
    int64_t save_top_k = 1;  // -1: all, 0: none (save_last still works); > 1 needs a monitor
    bool save_last = false;
    std::optional<int64_t> every_n_epochs{};  // unset: 1, or 0 when every_n_train_steps is set
    int64_t every_n_train_steps = 0;          // > 0: save on training steps instead of epochs
    // Save at the end of the training epoch (true) or after validation (false). Unset: at the end
    // of the epoch when validation runs once per epoch (or never), after each validation otherwise.
    std::optional<bool> save_on_train_epoch_end{};
    bool auto_insert_metric_name = true;
  };
  ModelCheckpoint() : ModelCheckpoint(Options{}) {}
  explicit ModelCheckpoint(Options options);

  void setup(T&, M&, const std::string& stage) override;
  void on_train_batch_end(T&, M&, const Tensor& loss, int64_t batch_idx) override;
  void on_train_epoch_end(T&, M&) override;
  void on_validation_end(T&, M&) override;
  std::string state_dict() const override;
  void load_state_dict(const std::string& state) override;
  std::string state_key() const override { return "ModelCheckpoint{monitor=" + o_.monitor + "}"; }
  std::string name() const override { return "ModelCheckpoint"; }

  const std::string& best_model_path() const { return best_model_path_; }
  // The best monitored value so far (none without a monitor); a NaN counts as +inf ("min") or -inf.
  std::optional<double> best_model_score() const { return best_model_score_; }
  // The monitored value of the latest top-k checkpoint (NaN as above).
  std::optional<double> current_score() const { return current_score_; }
  const std::string& last_model_path() const { return last_model_path_; }
  // path -> score of the kept top-k checkpoints (empty without a monitor, as in Lightning).
  const std::map<std::string, double>& best_k_models() const { return best_k_models_; }
  const std::string& dirpath() const { return dirpath_; }
  // "{epoch}-{val_loss:.2f}" with these metrics -> "epoch=3-val_loss=0.12" (no extension).
  std::string format_checkpoint_name(const std::map<std::string, double>& metrics) const;

 private:
  bool skip_saving(T& trainer) const;
  bool saves_on_train_epoch_end(T& trainer) const;
  void save_at_epoch(T& trainer);
  void save(T& trainer, bool top_k);
  bool save_top_k(T& trainer, const std::map<std::string, double>& metrics);
  bool save_latest(T& trainer, const std::map<std::string, double>& metrics);
  void save_last(T& trainer);
  std::string free_path(const std::map<std::string, double>& metrics, const std::string& replaced) const;
  void remove_replaced(T& trainer, const std::string& old_path, const std::string& new_path) const;
  bool better(double a, double b) const { return o_.mode == "min" ? a < b : a > b; }
  Options o_;
  int64_t every_n_epochs_ = 1;
  std::string dirpath_;
  std::string best_model_path_, last_model_path_;
  std::optional<double> best_model_score_, current_score_;
  std::map<std::string, double> best_k_models_;  // path -> score
  int64_t last_saved_step_ = -1;
};

class EarlyStopping : public Callback {
 public:
  struct Options {
    std::string monitor{};
    double min_delta = 0;
    int64_t patience = 3;
    std::string mode = "min";
    bool strict = true;  // a missing monitor is an error (else a warning and no check)
    bool check_finite = true;
    std::optional<double> stopping_threshold{};
    std::optional<double> divergence_threshold{};
    bool check_on_train_epoch_end = false;  // also used when there is no validation
  };
  explicit EarlyStopping(Options options);

  void on_validation_end(T&, M&) override;
  void on_train_epoch_end(T&, M&) override;
  std::string state_dict() const override;
  void load_state_dict(const std::string& state) override;
  std::string state_key() const override { return "EarlyStopping{monitor=" + o_.monitor + "}"; }
  std::string name() const override { return "EarlyStopping"; }

  int64_t wait_count() const { return wait_count_; }
  int64_t stopped_epoch() const { return stopped_epoch_; }
  double best_score() const { return best_score_; }
  const std::string& stopping_reason() const { return reason_; }

 private:
  void check(T& trainer);
  bool improved(double current, double reference) const;
  Options o_;
  int64_t wait_count_ = 0, stopped_epoch_ = 0;
  double best_score_;
  std::string reason_;
};

class LearningRateMonitor : public Callback {
 public:
  // logging_interval: "step", "epoch" or "" (the interval of each scheduler; "epoch" without one).
  explicit LearningRateMonitor(std::string logging_interval = "");
  void on_train_batch_start(T&, M&, int64_t batch_idx) override;
  void on_train_epoch_start(T&, M&) override;
  std::string name() const override { return "LearningRateMonitor"; }
  // The rates logged last, by key.
  const std::map<std::string, double>& last_lrs() const { return last_; }

 private:
  void record(T& trainer, const std::string& interval);
  std::string interval_;
  std::map<std::string, double> last_;
};

class GradientAccumulationScheduler : public Callback {
 public:
  // epoch -> accumulate_grad_batches from that epoch on.
  explicit GradientAccumulationScheduler(std::map<int64_t, int64_t> scheduling);
  void on_train_epoch_start(T&, M&) override;
  std::string name() const override { return "GradientAccumulationScheduler"; }
  int64_t factor(int64_t epoch) const;

 private:
  std::map<int64_t, int64_t> scheduling_;
};

class Timer : public Callback {
 public:
  // duration "DD:HH:MM:SS" (or seconds); interval "step" or "epoch": when to check.
  explicit Timer(std::string duration, std::string interval = "step");
  explicit Timer(double seconds, std::string interval = "step");
  void on_train_start(T&, M&) override;
  void on_train_end(T&, M&) override;
  void on_train_batch_end(T&, M&, const Tensor& loss, int64_t batch_idx) override;
  void on_train_epoch_end(T&, M&) override;
  std::string state_dict() const override;
  void load_state_dict(const std::string& state) override;
  std::string name() const override { return "Timer"; }
  double time_elapsed() const;
  double time_remaining() const { return seconds_ - time_elapsed(); }

 private:
  void check(T& trainer);
  double seconds_;
  std::string interval_;
  double offset_ = 0;  // seconds elapsed before a resume
  std::optional<double> start_, end_;
};

}  // namespace ember::trainer
