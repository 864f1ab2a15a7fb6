// What the Trainer prints: a progress bar and the model summary.
//
// On a terminal the bar redraws one line per epoch: epoch, batch i/n, it/s, ETA, the loss and every
// metric logged with prog_bar. When stdout is not a terminal (a log file, CI) it prints one plain
// line per epoch instead, so logs stay readable. trainer.validate/test print their results.
#pragma once
#include <chrono>
#include <string>

#include "ember/trainer/callback.h"

namespace ember::trainer {

class ProgressBar : public Callback {
 public:
  ProgressBar();
  // Force terminal or plain mode (tests); by default it asks isatty(stdout).
  explicit ProgressBar(bool terminal);
  void on_train_epoch_start(T&, M&) override;
  void on_train_batch_end(T&, M&, const Tensor& loss, int64_t batch_idx) override;
  void on_validation_batch_end(T&, M&, const Tensor& output, int64_t batch_idx) override;
  void on_train_epoch_end(T&, M&) override;
  void on_validation_end(T&, M&) override;
  void on_test_end(T&, M&) override;
  std::string name() const override { return "ProgressBar"; }

 private:
  void draw(T& trainer, bool final);
  std::string metrics_text(T& trainer) const;
  bool terminal_;
  std::chrono::steady_clock::time_point epoch_start_, last_draw_;
  int64_t done_ = 0;
  double last_loss_ = 0;
  bool has_loss_ = false;
};

// A table of the module's direct children: name, type, parameter count, mode; then totals.
std::string model_summary(const nn::Module& module);

}  // namespace ember::trainer
