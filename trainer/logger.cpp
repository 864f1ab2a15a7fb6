// CSVLogger: see logger.h.
#include "ember/trainer/logger.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <set>
#include <sstream>

#include "ember/core/atomic_file.h"
#include "ember/core/error.h"

namespace ember::trainer {
namespace fs = std::filesystem;

void write_text_atomic(const std::string& path, const std::string& text) {
  write_file_atomic(
      path, [&](std::ostream& out) { out << text; }, "CSVLogger");
}

int next_version(const std::string& dir) {
  int next = 0;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return 0;
  for (auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string n = entry.path().filename().string();
    if (entry.is_directory() && n.rfind("version_", 0) == 0) {
      try {
        next = std::max(next, std::stoi(n.substr(8)) + 1);
      } catch (...) {
      }
    }
  }
  return next;
}

CSVLogger::CSVLogger(std::string save_dir, std::string name, std::optional<int> version)
    : save_dir_(std::move(save_dir)), name_(std::move(name)), version_(version) {}

void CSVLogger::set_default_save_dir(const std::string& dir) {
  if (save_dir_.empty()) save_dir_ = dir;
}

int CSVLogger::version() {
  if (!version_) version_ = next_version((fs::path(save_dir_.empty() ? "." : save_dir_) / name_).string());
  return *version_;
}

std::string CSVLogger::log_dir() {
  if (log_dir_.empty()) {
    const fs::path root = fs::path(save_dir_.empty() ? "." : save_dir_) / name_;
    log_dir_ = (root / ("version_" + std::to_string(version()))).string();
    create_directories_or_fail(log_dir_, "CSVLogger");
  }
  return log_dir_;
}

void CSVLogger::log_hyperparams(const HParams& hparams) {
  hparams_ = hparams;
  write_text_atomic((fs::path(log_dir()) / "hparams.yaml").string(), hparams_.to_yaml());
}

void CSVLogger::log_metrics(const std::map<std::string, double>& metrics, int64_t step) {
  auto row = metrics;
  row["step"] = static_cast<double>(step);
  rows_.push_back(std::move(row));
  dirty_ = true;
}

void CSVLogger::log_warning(const std::string& message) {
  std::ofstream out(fs::path(log_dir()) / "warnings.txt", std::ios::app);
  out << message << "\n";
}

void CSVLogger::save() {
  if (!dirty_) return;
  std::set<std::string> keys;
  for (auto& r : rows_)
    for (auto& [k, v] : r) keys.insert(k);
  std::ostringstream os;
  os << std::setprecision(9);
  bool first = true;
  for (auto& k : keys) os << (first ? "" : ",") << k, first = false;
  os << "\n";
  for (auto& r : rows_) {
    first = true;
    for (auto& k : keys) {
      os << (first ? "" : ",");
      first = false;
      auto it = r.find(k);
      if (it == r.end()) continue;
      const double v = it->second;
      if ((k == "step" || k == "epoch") && std::floor(v) == v) os << static_cast<int64_t>(v);
      else os << v;
    }
    os << "\n";
  }
  write_text_atomic((fs::path(log_dir()) / "metrics.csv").string(), os.str());
  dirty_ = false;
}

}  // namespace ember::trainer
