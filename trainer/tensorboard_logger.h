// TensorBoardLogger: writes the run's scalars as TensorBoard event files
// (<save_dir>/<name>/version_<n>/events.out.tfevents.<time>.<host>), so `tensorboard --logdir`
// shows the curves. Each record is a TFRecord: length, masked CRC-32C of the length, the Event
// protobuf (Debian's libprotobuf, schema in tensorboard_event.proto), masked CRC-32C of the data.
// Hyperparameters also go to hparams.yaml.
#pragma once
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ember/trainer/logger.h"

namespace ember::trainer {

class TensorBoardLogger : public Logger {
 public:
  explicit TensorBoardLogger(std::string save_dir = "", std::string name = "lightning_logs",
                             std::optional<int> version = std::nullopt);
  ~TensorBoardLogger() override;
  void log_hyperparams(const HParams& hparams) override;
  void log_metrics(const std::map<std::string, double>& metrics, int64_t step) override;
  void save() override;
  void finalize(const std::string& status) override;
  std::string log_dir() override;
  void set_default_save_dir(const std::string& dir) override;
  const std::string& event_file() const { return event_file_; }

 private:
  void open();
  void write_record(const std::string& data);
  std::string save_dir_, name_;
  std::optional<int> version_;
  std::string log_dir_, event_file_;
  std::ofstream out_;
};

// One scalar read back from an event file.
struct ScalarEvent {
  std::string tag;
  int64_t step;
  float value;
  double wall_time;
};
// Reads every scalar of an event file, checking each record's CRCs (a corrupt file is an error).
std::vector<ScalarEvent> read_tensorboard_scalars(const std::string& path);

// CRC-32C (Castagnoli), as TFRecord framing uses it.
uint32_t crc32c(const void* data, size_t n);

}  // namespace ember::trainer
