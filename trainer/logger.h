// Loggers receive the metrics the Trainer collects from log() calls: step metrics every
// log_every_n_steps, epoch metrics at each epoch's end, and the hyperparameters once. Logging
// happens on rank 0 only.
//   CSVLogger          <save_dir>/<name>/version_<n>/metrics.csv (one row per log call, a column
//                      per key, "epoch" and "step" included) and hparams.yaml
//   TensorBoardLogger  (tensorboard_logger.h) event files TensorBoard reads
#pragma once
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ember/trainer/hparams.h"

namespace ember::trainer {

class Logger {
 public:
  virtual ~Logger() = default;
  virtual void log_hyperparams(const HParams& /*hparams*/) {}
  virtual void log_metrics(const std::map<std::string, double>& metrics, int64_t step) = 0;
  virtual void save() {}
  // Warnings the Trainer raised (e.g. unregistered parameters), for the run's record.
  virtual void log_warning(const std::string& /*message*/) {}
  virtual void finalize(const std::string& /*status*/) { save(); }
  // Where this run's files go; empty for loggers that write nothing. Set up lazily so the Trainer
  // can give a default save_dir first.
  virtual std::string log_dir() { return ""; }
  virtual void set_default_save_dir(const std::string& /*dir*/) {}
};

class CSVLogger : public Logger {
 public:
  // An empty save_dir means the Trainer's default_root_dir; no version means the next free one.
  explicit CSVLogger(std::string save_dir = "", std::string name = "lightning_logs",
                     std::optional<int> version = std::nullopt);
  void log_hyperparams(const HParams& hparams) override;
  void log_metrics(const std::map<std::string, double>& metrics, int64_t step) override;
  void save() override;
  void log_warning(const std::string& message) override;  // appended to warnings.txt
  std::string log_dir() override;
  void set_default_save_dir(const std::string& dir) override;
  int version();
  // Rows logged so far (each a key -> value map, "step" included).
  const std::vector<std::map<std::string, double>>& rows() const { return rows_; }

 private:
  std::string save_dir_, name_;
  std::optional<int> version_;
  std::string log_dir_;
  std::vector<std::map<std::string, double>> rows_;
  HParams hparams_;
  bool dirty_ = false;
};

// Text written atomically: a temporary file beside `path`, renamed over it.
void write_text_atomic(const std::string& path, const std::string& text);
// The next version_<n> number free under `dir`.
int next_version(const std::string& dir);

}  // namespace ember::trainer
