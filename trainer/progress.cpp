// ProgressBar and the model summary: see progress.h.
#include "ember/trainer/progress.h"

#include <unistd.h>
#include <cmath>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "ember/trainer/trainer.h"

namespace ember::trainer {
namespace {

std::string fixed(double v, int digits) {
  std::ostringstream os;
  if (std::fabs(v) >= 1e-3 || v == 0) os << std::fixed << std::setprecision(digits) << v;
  else os << std::scientific << std::setprecision(2) << v;
  return os.str();
}

std::string clock_text(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const int64_t s = static_cast<int64_t>(seconds + 0.5);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%lld:%02lld", static_cast<long long>(s / 60),
                static_cast<long long>(s % 60));
  return buf;
}

std::string human(int64_t n) {
  if (n < 1000) return std::to_string(n);
  const char* unit[] = {"K", "M", "B"};
  double v = static_cast<double>(n);
  int u = -1;
  while (v >= 1000 && u < 2) v /= 1000, ++u;
  std::ostringstream os;
  os << std::setprecision(3) << v << " " << unit[u];
  return os.str();
}

}  // namespace

ProgressBar::ProgressBar() : terminal_(isatty(fileno(stdout)) != 0) {}
ProgressBar::ProgressBar(bool terminal) : terminal_(terminal) {}

std::string ProgressBar::metrics_text(T& trainer) const {
  std::string out;
  // The step loss, unless the module puts its own metrics on the bar.
  if (has_loss_ && trainer.progress_bar_metrics().empty()) out += "loss=" + fixed(last_loss_, 4);
  for (auto& [k, v] : trainer.progress_bar_metrics())
    out += (out.empty() ? "" : ", ") + k + "=" + fixed(v, 4);
  return out;
}

void ProgressBar::on_train_epoch_start(T&, M&) {
  epoch_start_ = last_draw_ = std::chrono::steady_clock::now();
  done_ = 0;
}

void ProgressBar::on_train_batch_end(T& trainer, M&, const Tensor& loss, int64_t batch_idx) {
  done_ = batch_idx + 1;
  if (loss.defined()) {
    last_loss_ = loss.to(kFloat64).item<double>();
    has_loss_ = true;
  }
  if (!terminal_ || !trainer.is_global_zero()) return;
  auto now = std::chrono::steady_clock::now();
  if (std::chrono::duration<double>(now - last_draw_).count() < 0.1 && done_ < trainer.num_training_batches())
    return;
  last_draw_ = now;
  draw(trainer, false);
}

void ProgressBar::on_validation_batch_end(T& trainer, M&, const Tensor&, int64_t batch_idx) {
  if (!terminal_ || trainer.sanity_checking() || !trainer.fitting() || !trainer.is_global_zero()) return;
  std::cout << "\r\033[KEpoch " << trainer.current_epoch() << ": validating " << batch_idx + 1 << "/"
            << trainer.total_batches() << std::flush;
}

void ProgressBar::draw(T& trainer, bool final) {
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start_).count();
  const int64_t total = trainer.num_training_batches();
  const double rate = elapsed > 0 ? done_ / elapsed : 0;
  const int width = 20;
  const int filled = total > 0 ? static_cast<int>(width * done_ / total) : 0;
  std::ostringstream os;
  os << "Epoch " << trainer.current_epoch() << ": " << std::setw(3) << (total > 0 ? 100 * done_ / total : 0)
     << "%|" << std::string(filled, '#') << std::string(width - filled, ' ') << "| " << done_ << "/" << total
     << " [" << clock_text(elapsed) << "<" << clock_text(rate > 0 ? (total - done_) / rate : NAN) << ", "
     << fixed(rate, 2) << " it/s] " << metrics_text(trainer);
  std::cout << "\r\033[K" << os.str() << (final ? "\n" : "") << std::flush;
}

void ProgressBar::on_train_epoch_end(T& trainer, M&) {
  if (!trainer.is_global_zero()) return;
  if (terminal_) {
    draw(trainer, true);
    return;
  }
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start_).count();
  std::cout << "Epoch " << trainer.current_epoch() << ": " << done_ << "/" << trainer.num_training_batches()
            << " batches in " << fixed(elapsed, 1) << " s (" << fixed(elapsed > 0 ? done_ / elapsed : 0, 2)
            << " it/s) " << metrics_text(trainer) << std::endl;
}

void ProgressBar::on_validation_end(T& trainer, M&) {
  if (trainer.fitting() || !trainer.is_global_zero()) return;
  std::cout << "Validation:";
  for (auto& [k, v] : trainer.callback_metrics()) std::cout << " " << k << "=" << fixed(v, 4);
  std::cout << std::endl;
}

void ProgressBar::on_test_end(T& trainer, M&) {
  if (!trainer.is_global_zero()) return;
  std::cout << "Test:";
  for (auto& [k, v] : trainer.callback_metrics())
    if (k.rfind("test", 0) == 0) std::cout << " " << k << "=" << fixed(v, 4);
  std::cout << std::endl;
}

std::string model_summary(const nn::Module& module) {
  struct Row {
    std::string name, type, params, mode;
  };
  std::vector<Row> rows;
  for (auto& [name, child] : module.named_children())
    rows.push_back(
        {name, child->type_name(), human(child->num_parameters()), child->is_training() ? "train" : "eval"});
  size_t w[4] = {4, 4, 6, 4};
  for (auto& r : rows) {
    w[0] = std::max(w[0], r.name.size());
    w[1] = std::max(w[1], r.type.size());
    w[2] = std::max(w[2], r.params.size());
  }
  const size_t idx_w = std::to_string(rows.size()).size();
  std::ostringstream os;
  auto line = [&](const std::string& i, const Row& r) {
    os << std::left << std::setw(idx_w) << i << " | " << std::setw(w[0]) << r.name << " | " << std::setw(w[1])
       << r.type << " | " << std::setw(w[2]) << r.params << " | " << r.mode << "\n";
  };
  line("", {"Name", "Type", "Params", "Mode"});
  const std::string rule(idx_w + w[0] + w[1] + w[2] + 18, '-');
  os << rule << "\n";
  for (size_t i = 0; i < rows.size(); ++i) line(std::to_string(i), rows[i]);
  os << rule << "\n";
  const int64_t trainable = module.num_parameters(true), total = module.num_parameters();
  os << std::left << std::setw(10) << human(trainable) << "Trainable params\n"
     << std::setw(10) << human(total - trainable) << "Non-trainable params\n"
     << std::setw(10) << human(total) << "Total params\n"
     << std::setw(10) << fixed(total * 4.0 / 1e6, 3) << "Total estimated model params size (MB)\n";
  return os.str();
}

}  // namespace ember::trainer
