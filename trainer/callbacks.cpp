// The built-in callbacks: see callbacks.h.
#include "ember/trainer/callbacks.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "ember/trainer/trainer.h"

namespace ember::trainer {
namespace fs = std::filesystem;
namespace {

std::string available(const std::map<std::string, double>& metrics) {
  std::string out;
  for (auto& [k, v] : metrics) out += (out.empty() ? "" : ", ") + k;
  return out.empty() ? "none" : out;
}

double seconds_now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double parse_hms(const std::string& text) {
  int d = 0, h = 0, m = 0, s = 0;
  EMBER_CHECK(std::sscanf(text.c_str(), "%d:%d:%d:%d", &d, &h, &m, &s) == 4,
              "Timer: duration \"", text, "\" is not DD:HH:MM:SS");
  return ((d * 24.0 + h) * 60 + m) * 60 + s;
}

}  // namespace

// ---- ModelCheckpoint ----------------------------------------------------------------------------

ModelCheckpoint::ModelCheckpoint(Options o) : o_(std::move(o)) {
  EMBER_CHECK(o_.mode == "min" || o_.mode == "max", "ModelCheckpoint: mode must be \"min\" or \"max\", got \"", o_.mode, "\"");
  EMBER_CHECK(o_.save_top_k >= -1, "ModelCheckpoint: save_top_k must be >= -1, got ", o_.save_top_k);
  EMBER_CHECK(o_.every_n_epochs >= 0 && o_.every_n_train_steps >= 0,
              "ModelCheckpoint: every_n_epochs and every_n_train_steps must be >= 0");
  if (o_.filename.empty()) o_.filename = "{epoch}-{step}";
}

void ModelCheckpoint::setup(T& trainer, M&, const std::string& stage) {
  if (!dirpath_.empty()) return;
  dirpath_ = !o_.dirpath.empty() ? o_.dirpath : (fs::path(trainer.log_dir()) / "checkpoints").string();
}

std::string ModelCheckpoint::format_checkpoint_name(const std::map<std::string, double>& metrics) const {
  std::string out;
  const std::string& t = o_.filename;
  for (size_t i = 0; i < t.size();) {
    if (t[i] != '{') {
      out += t[i++];
      continue;
    }
    const size_t close = t.find('}', i);
    EMBER_CHECK(close != std::string::npos, "ModelCheckpoint: unbalanced '{' in filename \"", t, "\"");
    std::string field = t.substr(i + 1, close - i - 1), fmt;
    if (auto colon = field.find(':'); colon != std::string::npos) {
      fmt = field.substr(colon + 1);
      field = field.substr(0, colon);
    }
    auto it = metrics.find(field);
    const double v = it == metrics.end() ? 0.0 : it->second;
    char buf[64];
    if (fmt.empty()) {
      if (std::floor(v) == v && std::fabs(v) < 1e15) std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(v));
      else std::snprintf(buf, sizeof buf, "%.6g", v);
    } else if (fmt.back() == 'd') {
      std::snprintf(buf, sizeof buf, ("%" + fmt.substr(0, fmt.size() - 1) + "lld").c_str(), static_cast<long long>(v));
    } else {
      std::snprintf(buf, sizeof buf, ("%" + fmt).c_str(), v);
    }
    out += (o_.auto_insert_metric_name ? field + "=" : "") + buf;
    i = close + 1;
  }
  return out;
}

void ModelCheckpoint::on_train_batch_end(T& trainer, M&, const Tensor&, int64_t) {
  if (o_.every_n_train_steps <= 0 || trainer.global_step() == last_saved_step_) return;
  if (trainer.global_step() % o_.every_n_train_steps == 0) save(trainer);
}

void ModelCheckpoint::on_train_epoch_end(T& trainer, M&) {
  if (o_.every_n_train_steps > 0 || o_.every_n_epochs == 0) return;
  if ((trainer.current_epoch() + 1) % o_.every_n_epochs == 0) save(trainer);
}

void ModelCheckpoint::save(T& trainer) {
  if (trainer.sanity_checking()) return;
  last_saved_step_ = trainer.global_step();
  if (trainer.is_global_zero()) save_on_rank_zero(trainer);
  if (trainer.world_size() == 1) return;
  // Every rank learns where rank 0 saved (load_from_checkpoint(best_model_path()) works anywhere).
  best_model_path_ = trainer.broadcast(best_model_path_);
  last_model_path_ = trainer.broadcast(last_model_path_);
  Tensor score = tensor({best_model_score_.value_or(NAN)}, kFloat64);
  trainer.broadcast(score);
  if (!std::isnan(score.item<double>())) best_model_score_ = score.item<double>();
}

void ModelCheckpoint::save_on_rank_zero(T& trainer) {
  auto metrics = trainer.callback_metrics();
  metrics["epoch"] = static_cast<double>(trainer.current_epoch());
  metrics["step"] = static_cast<double>(trainer.global_step());
  fs::create_directories(dirpath_);
  if (o_.save_top_k != 0) {
    double score = static_cast<double>(trainer.global_step());  // without a monitor, newest is best
    if (!o_.monitor.empty()) {
      auto it = metrics.find(o_.monitor);
      EMBER_CHECK(it != metrics.end(), "ModelCheckpoint(monitor=\"", o_.monitor, "\") could not find the monitored "
                  "key in the logged metrics: ", available(metrics), ". Log it with self.log(\"", o_.monitor,
                  "\", ...) or change monitor.");
      score = it->second;
    }
    const std::string path = (fs::path(dirpath_) / (format_checkpoint_name(metrics) + ".ckpt")).string();
    const bool monitored = !o_.monitor.empty();
    auto cmp = [&](double a, double b) { return monitored ? better(a, b) : a > b; };
    bool keep = o_.save_top_k == -1 || static_cast<int64_t>(best_k_models_.size()) < o_.save_top_k ||
                best_k_models_.count(path);
    std::string worst;
    if (!keep) {
      for (auto& [p, s] : best_k_models_)
        if (worst.empty() || cmp(best_k_models_[worst], s)) worst = p;
      keep = std::isfinite(score) && cmp(score, best_k_models_[worst]);
    }
    if (keep) {
      trainer.save_checkpoint(path);
      if (!worst.empty()) {
        best_k_models_.erase(worst);
        if (worst != path) fs::remove(worst);
      }
      best_k_models_[path] = score;
      for (auto& [p, s] : best_k_models_)
        if (best_model_path_.empty() || !best_k_models_.count(best_model_path_) || cmp(s, best_k_models_[best_model_path_]))
          best_model_path_ = p;
      best_model_score_ = best_k_models_[best_model_path_];
    }
  }
  if (o_.save_last) {
    last_model_path_ = (fs::path(dirpath_) / "last.ckpt").string();
    trainer.save_checkpoint(last_model_path_);
  }
}

std::string ModelCheckpoint::state_dict() const {
  nlohmann::json j = {{"monitor", o_.monitor}, {"best_model_path", best_model_path_},
                      {"last_model_path", last_model_path_}, {"best_k_models", best_k_models_},
                      {"dirpath", dirpath_}, {"last_saved_step", last_saved_step_}};
  if (best_model_score_) j["best_model_score"] = *best_model_score_;
  return j.dump();
}

void ModelCheckpoint::load_state_dict(const std::string& text) {
  const auto j = nlohmann::json::parse(text);
  best_model_path_ = j.at("best_model_path").get<std::string>();
  last_model_path_ = j.at("last_model_path").get<std::string>();
  best_k_models_ = j.at("best_k_models").get<std::map<std::string, double>>();
  last_saved_step_ = j.at("last_saved_step").get<int64_t>();
  if (j.contains("best_model_score")) best_model_score_ = j["best_model_score"].get<double>();
  if (o_.dirpath.empty()) dirpath_ = j.at("dirpath").get<std::string>();
}

// ---- EarlyStopping --------------------------------------------------------------------------------

EarlyStopping::EarlyStopping(Options o) : o_(std::move(o)) {
  EMBER_CHECK(!o_.monitor.empty(), "EarlyStopping: monitor must name a logged metric");
  EMBER_CHECK(o_.mode == "min" || o_.mode == "max", "EarlyStopping: mode must be \"min\" or \"max\", got \"", o_.mode, "\"");
  best_score_ = o_.mode == "min" ? INFINITY : -INFINITY;
}

bool EarlyStopping::improved(double current, double reference) const {
  // min_delta is the margin an improvement must beat (subtracted in "min" mode, added in "max").
  return o_.mode == "min" ? current + std::fabs(o_.min_delta) < reference
                          : current - std::fabs(o_.min_delta) > reference;
}

void EarlyStopping::on_validation_end(T& trainer, M&) {
  if (!o_.check_on_train_epoch_end && !trainer.sanity_checking() && trainer.stage() == Stage::Validate &&
      trainer.lightning_module() && trainer.num_training_batches() > 0)
    check(trainer);
}

void EarlyStopping::on_train_epoch_end(T& trainer, M&) {
  if (o_.check_on_train_epoch_end || trainer.num_val_batches() == 0) check(trainer);
}

void EarlyStopping::check(T& trainer) {
  const auto& metrics = trainer.callback_metrics();
  auto it = metrics.find(o_.monitor);
  if (it == metrics.end()) {
    const std::string msg = "EarlyStopping conditioned on metric \"" + o_.monitor +
                            "\" which is not available. Available metrics are: " + available(metrics);
    EMBER_CHECK(!o_.strict, msg);
    trainer.warn("ember: " + msg);
    return;
  }
  const double current = it->second;
  bool stop = false;
  if (o_.check_finite && !std::isfinite(current)) {
    stop = true;
    reason_ = "Monitored metric " + o_.monitor + " is not finite";
  } else if (o_.stopping_threshold && (o_.mode == "min" ? current < *o_.stopping_threshold : current > *o_.stopping_threshold)) {
    stop = true;
    reason_ = "Stopping threshold reached: " + o_.monitor + " = " + std::to_string(current);
  } else if (o_.divergence_threshold && (o_.mode == "min" ? current > *o_.divergence_threshold : current < *o_.divergence_threshold)) {
    stop = true;
    reason_ = "Divergence threshold reached: " + o_.monitor + " = " + std::to_string(current);
  } else if (improved(current, best_score_)) {
    best_score_ = current;
    wait_count_ = 0;
  } else if (++wait_count_ >= o_.patience) {
    stop = true;
    reason_ = "Monitored metric " + o_.monitor + " did not improve in the last " + std::to_string(wait_count_) +
              " records. Best score: " + std::to_string(best_score_);
  }
  if (stop) {
    trainer.should_stop = true;
    stopped_epoch_ = trainer.current_epoch();
  }
}

std::string EarlyStopping::state_dict() const {
  return nlohmann::json{{"wait_count", wait_count_}, {"stopped_epoch", stopped_epoch_}, {"best_score", best_score_},
                        {"patience", o_.patience}}.dump();
}

void EarlyStopping::load_state_dict(const std::string& text) {
  const auto j = nlohmann::json::parse(text);
  wait_count_ = j.at("wait_count").get<int64_t>();
  stopped_epoch_ = j.at("stopped_epoch").get<int64_t>();
  best_score_ = j.at("best_score").is_number() ? j.at("best_score").get<double>() : best_score_;
}

// ---- LearningRateMonitor -----------------------------------------------------------------------------

LearningRateMonitor::LearningRateMonitor(std::string interval) : interval_(std::move(interval)) {
  EMBER_CHECK(interval_.empty() || interval_ == "step" || interval_ == "epoch",
              "LearningRateMonitor: logging_interval must be \"step\", \"epoch\" or empty, got \"", interval_, "\"");
}

void LearningRateMonitor::on_train_batch_start(T& trainer, M&, int64_t) { record(trainer, "step"); }
void LearningRateMonitor::on_train_epoch_start(T& trainer, M&) { record(trainer, "epoch"); }

void LearningRateMonitor::record(T& trainer, const std::string& when) {
  bool any_step_scheduler = false;
  for (auto& c : trainer.lr_scheduler_configs()) any_step_scheduler |= c.interval == "step";
  const std::string interval = !interval_.empty() ? interval_ : (any_step_scheduler ? "step" : "epoch");
  if (interval != when) return;
  std::map<std::string, double> out;
  std::map<std::string, int> seen;
  for (auto& opt : trainer.optimizers()) {
    std::string key = "lr-" + opt->name();
    for (auto& c : trainer.lr_scheduler_configs())
      if (!c.name.empty() && c.scheduler.optimizer() == opt.get()) key = c.name;
    if (int n = seen[key]++; n > 0) key += "-" + std::to_string(n);
    const auto& groups = opt->param_groups();
    for (size_t g = 0; g < groups.size(); ++g)
      out[groups.size() > 1 ? key + "/pg" + std::to_string(g + 1) : key] = groups[g].lr();
  }
  last_ = out;
  if (!trainer.is_global_zero()) return;
  for (auto& l : trainer.loggers()) l->log_metrics(out, trainer.global_step());
}

// ---- GradientAccumulationScheduler ----------------------------------------------------------------------

GradientAccumulationScheduler::GradientAccumulationScheduler(std::map<int64_t, int64_t> scheduling)
    : scheduling_(std::move(scheduling)) {
  EMBER_CHECK(!scheduling_.empty(), "GradientAccumulationScheduler: empty scheduling");
  for (auto& [epoch, factor] : scheduling_)
    EMBER_CHECK(epoch >= 0 && factor >= 1, "GradientAccumulationScheduler: epoch ", epoch, " -> ", factor,
                " is invalid (epochs >= 0, factors >= 1)");
}

int64_t GradientAccumulationScheduler::factor(int64_t epoch) const {
  int64_t f = 1;
  for (auto& [e, v] : scheduling_)
    if (e <= epoch) f = v;
  return f;
}

void GradientAccumulationScheduler::on_train_epoch_start(T& trainer, M&) {
  trainer.set_accumulate_grad_batches(factor(trainer.current_epoch()));
}

// ---- Timer ---------------------------------------------------------------------------------------------

Timer::Timer(std::string duration, std::string interval) : Timer(parse_hms(duration), std::move(interval)) {}

Timer::Timer(double seconds, std::string interval) : seconds_(seconds), interval_(std::move(interval)) {
  EMBER_CHECK(interval_ == "step" || interval_ == "epoch", "Timer: interval must be \"step\" or \"epoch\"");
}

double Timer::time_elapsed() const {
  if (!start_) return offset_;
  return offset_ + (end_ ? *end_ : seconds_now()) - *start_;
}

void Timer::on_train_start(T&, M&) {
  start_ = seconds_now();
  end_.reset();
}
void Timer::on_train_end(T&, M&) { end_ = seconds_now(); }
void Timer::on_train_batch_end(T& trainer, M&, const Tensor&, int64_t) {
  if (interval_ == "step") check(trainer);
}
void Timer::on_train_epoch_end(T& trainer, M&) {
  if (interval_ == "epoch") check(trainer);
}
void Timer::check(T& trainer) {
  if (time_elapsed() >= seconds_) trainer.should_stop = true;
}
std::string Timer::state_dict() const { return nlohmann::json{{"time_elapsed", time_elapsed()}}.dump(); }
void Timer::load_state_dict(const std::string& text) {
  offset_ = nlohmann::json::parse(text).at("time_elapsed").get<double>();
}

}  // namespace ember::trainer
