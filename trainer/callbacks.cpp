// The built-in callbacks: see callbacks.h.
#include "ember/trainer/callbacks.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <set>
#include <utility>

#include "ember/core/atomic_file.h"
#include "ember/nn/json_read.h"
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
  EMBER_CHECK(std::sscanf(text.c_str(), "%d:%d:%d:%d", &d, &h, &m, &s) == 4, "Timer: duration \"", text,
              "\" is not DD:HH:MM:SS");
  return ((d * 24.0 + h) * 60 + m) * 60 + s;
}

}  // namespace

// ---- ModelCheckpoint ----------------------------------------------------------------------------

ModelCheckpoint::ModelCheckpoint(Options o) : o_(std::move(o)) {
  EMBER_CHECK(o_.mode == "min" || o_.mode == "max",
              "ModelCheckpoint: mode must be \"min\" or \"max\", got \"", o_.mode, "\"");
  EMBER_CHECK(o_.save_top_k >= -1, "ModelCheckpoint: save_top_k must be >= -1, got ", o_.save_top_k);
  EMBER_CHECK(o_.every_n_epochs.value_or(0) >= 0 && o_.every_n_train_steps >= 0,
              "ModelCheckpoint: every_n_epochs and every_n_train_steps must be >= 0");
  EMBER_CHECK(
      !o_.monitor.empty() || o_.save_top_k <= 1, "ModelCheckpoint(save_top_k=", o_.save_top_k,
      ", monitor=\"\") is not a valid configuration: without a monitor there is no quantity to rank the "
      "checkpoints by. Set monitor, or save_top_k to -1 (keep all), 0 or 1 (keep the latest).");
  EMBER_CHECK(o_.every_n_train_steps == 0 || o_.every_n_epochs.value_or(0) == 0,
              "ModelCheckpoint: every_n_train_steps=", o_.every_n_train_steps,
              " and every_n_epochs=", o_.every_n_epochs.value_or(0),
              " are mutually exclusive; set one of them");
  every_n_epochs_ = o_.every_n_epochs.value_or(o_.every_n_train_steps > 0 ? 0 : 1);
  if (o_.filename.empty()) o_.filename = "{epoch}-{step}";
  format_checkpoint_name({});  // a bad template is an error now, not at the first save
}

void ModelCheckpoint::setup(T& trainer, M&, const std::string& /*stage*/) {
  if (!dirpath_.empty()) return;
  dirpath_ = !o_.dirpath.empty() ? o_.dirpath : (fs::path(trainer.log_dir()) / "checkpoints").string();
}

namespace {

// One value formatted by a Python format spec, the subset that makes sense in a file name:
// [sign][#][0][width][.precision][type] with type d, e, E, f, F, g, G, n, % or none. Anything else
// (fill and alignment, grouping, s, x, ...) is an ember::Error rather than a silently dropped field.
std::string format_metric(double v, const std::string& spec, const std::string& field,
                          const std::string& filename) {
  size_t i = 0;
  std::string flags;
  while (i < spec.size() && std::string("+- #0").find(spec[i]) != std::string::npos) flags += spec[i++];
  auto digits = [&] {
    std::string d;
    while (i < spec.size() && std::isdigit(static_cast<unsigned char>(spec[i]))) d += spec[i++];
    return d;
  };
  const std::string width = digits();
  const bool dot = i < spec.size() && spec[i] == '.';
  const std::string precision = dot ? (++i, digits()) : "";
  const std::string type = spec.substr(i);
  const bool known =
      type.empty() || (type.size() == 1 && std::string("deEfFgGn%").find(type) != std::string::npos);
  EMBER_CHECK(known && width.size() <= 3 && precision.size() <= 2 && dot == !precision.empty(),
              "ModelCheckpoint: the format spec \":", spec, "\" of \"{", field, ":", spec,
              "}\" in filename \"", filename,
              "\" is not supported; use [sign][0][width][.precision] with type d, e, f, g, n or %");
  const bool integral = std::isfinite(v) && std::floor(v) == v && std::fabs(v) < 1e15;
  const std::string head = "%" + flags + width;
  char buf[128];
  if (type == "d" || ((type.empty() || type == "n") && integral && precision.empty())) {
    std::snprintf(buf, sizeof buf, (head + "lld").c_str(), static_cast<long long>(v));
  } else if (type == "%") {
    std::snprintf(buf, sizeof buf, (head + "." + (precision.empty() ? "6" : precision) + "f%%").c_str(),
                  v * 100);
  } else {
    const std::string t = type.empty() || type == "n" ? "g" : type;
    std::snprintf(buf, sizeof buf, (head + (precision.empty() ? "" : "." + precision) + t).c_str(), v);
  }
  return buf;
}

}  // namespace

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
    std::string field = t.substr(i + 1, close - i - 1), spec;
    if (auto colon = field.find(':'); colon != std::string::npos) {
      spec = field.substr(colon + 1);
      field = field.substr(0, colon);
    }
    auto it = metrics.find(field);  // a metric not logged yet formats as 0, as in Lightning
    const std::string value = format_metric(it == metrics.end() ? 0.0 : it->second, spec, field, t);
    out += (o_.auto_insert_metric_name ? field + "=" : "") + value;
    i = close + 1;
  }
  return out;
}

// Lightning's rules: nothing outside fit, in the sanity check or in fast_dev_run, and one save per
// global step (validation and the epoch's end can fall on the same step).
bool ModelCheckpoint::skip_saving(T& trainer) const {
  return trainer.options().fast_dev_run > 0 || !trainer.fitting() || trainer.sanity_checking() ||
         last_saved_step_ == trainer.global_step();
}

bool ModelCheckpoint::saves_on_train_epoch_end(T& trainer) const {
  if (o_.save_on_train_epoch_end) return *o_.save_on_train_epoch_end;
  if (trainer.options().check_val_every_n_epoch != 1) return false;
  if (trainer.num_val_batches() == 0) return true;
  const BatchLimit& interval = trainer.options().val_check_interval;
  return !interval.count && interval.fraction == 1.0;  // validation only at the epoch's end
}

void ModelCheckpoint::on_train_batch_end(T& trainer, M&, const Tensor&, int64_t) {
  if (skip_saving(trainer) || o_.every_n_train_steps <= 0 ||
      trainer.global_step() % o_.every_n_train_steps != 0)
    return;
  save(trainer, /*top_k=*/true);
}

void ModelCheckpoint::on_train_epoch_end(T& trainer, M&) {
  if (!skip_saving(trainer) && saves_on_train_epoch_end(trainer)) save_at_epoch(trainer);
}

void ModelCheckpoint::on_validation_end(T& trainer, M&) {
  if (!skip_saving(trainer) && !saves_on_train_epoch_end(trainer)) save_at_epoch(trainer);
}

void ModelCheckpoint::save_at_epoch(T& trainer) {
  save(trainer, every_n_epochs_ >= 1 && (trainer.current_epoch() + 1) % every_n_epochs_ == 0);
}

// Rank 0 decides and writes; every rank then learns the paths, the best score and whether a file was
// written (so all of them skip the same later saves).
void ModelCheckpoint::save(T& trainer, bool top_k) {
  bool wrote = false;
  if (trainer.is_global_zero()) {
    auto metrics = trainer.callback_metrics();
    metrics["epoch"] = static_cast<double>(trainer.current_epoch());
    metrics["step"] = static_cast<double>(trainer.global_step());
    create_directories_or_fail(dirpath_, "ModelCheckpoint");
    if (top_k && o_.save_top_k != 0)
      wrote = o_.monitor.empty() ? save_latest(trainer, metrics) : save_top_k(trainer, metrics);
    if (o_.save_last) {
      save_last(trainer);
      wrote = true;
    }
  }
  if (trainer.world_size() > 1) {
    best_model_path_ = trainer.broadcast(best_model_path_);
    last_model_path_ = trainer.broadcast(last_model_path_);
    Tensor info = tensor({best_model_score_.value_or(NAN), wrote ? 1.0 : 0.0}, kFloat64);
    trainer.broadcast(info);
    if (!std::isnan(info[0].item<double>())) best_model_score_ = info[0].item<double>();
    wrote = info[1].item<double>() != 0;
  }
  if (wrote) last_saved_step_ = trainer.global_step();
}

// The file name for these metrics; a name a kept checkpoint already has gets a version suffix
// (-v1, -v2, ...) unless it is `replaced`, the one this save supersedes.
std::string ModelCheckpoint::free_path(const std::map<std::string, double>& metrics,
                                       const std::string& replaced) const {
  const std::string stem = (fs::path(dirpath_) / format_checkpoint_name(metrics)).string();
  std::string path = stem + ".ckpt";
  for (int v = 1; path != replaced && fs::exists(path); ++v) path = stem + "-v" + std::to_string(v) + ".ckpt";
  return path;
}

// A superseded checkpoint is deleted only when it lies in this callback's directory and is not the
// one training resumed from: a run resumed into another directory leaves the first run's files alone.
void ModelCheckpoint::remove_replaced(T& trainer, const std::string& old_path,
                                      const std::string& new_path) const {
  if (old_path.empty() || old_path == new_path) return;
  std::error_code ec;
  const fs::path old_abs = fs::absolute(old_path, ec).lexically_normal();
  if (!trainer.ckpt_path().empty() && old_abs == fs::absolute(trainer.ckpt_path(), ec).lexically_normal())
    return;
  const fs::path dir = fs::absolute(dirpath_, ec).lexically_normal();
  if (old_abs.parent_path() != dir) return;
  fs::remove(old_abs, ec);  // a file already gone is fine
}

// No monitor: the newest checkpoint is the best; save_top_k 1 keeps only it, -1 keeps all.
bool ModelCheckpoint::save_latest(T& trainer, const std::map<std::string, double>& metrics) {
  const std::string path = free_path(metrics, o_.save_top_k == 1 ? best_model_path_ : "");
  const std::string previous = std::exchange(best_model_path_, path);  // part of the state the file holds
  trainer.save_checkpoint(path);
  if (o_.save_top_k == 1) remove_replaced(trainer, previous, path);
  return true;
}

// Lightning's top-k: the state (best and current score, the kept files) is updated before the file is
// written, so the file (and last.ckpt after it) holds the callback's state including itself.
bool ModelCheckpoint::save_top_k(T& trainer, const std::map<std::string, double>& metrics) {
  auto it = metrics.find(o_.monitor);
  EMBER_CHECK(it != metrics.end(), "ModelCheckpoint(monitor=\"", o_.monitor,
              "\") could not find the monitored "
              "key in the logged metrics: ",
              available(metrics), ". Log it with self.log(\"", o_.monitor, "\", ...) or change monitor.");
  // NaN is the worst score there is (Lightning's rule): it never displaces a real one.
  const double score = std::isnan(it->second) ? (o_.mode == "min" ? INFINITY : -INFINITY) : it->second;
  const int64_t k = o_.save_top_k == -1 ? static_cast<int64_t>(best_k_models_.size()) + 1 : o_.save_top_k;
  auto by_score = [&](const auto& a, const auto& b) { return better(a.second, b.second); };
  std::string replaced;
  if (static_cast<int64_t>(best_k_models_.size()) >= k) {  // full: only a better score gets in
    auto worst = std::max_element(best_k_models_.begin(), best_k_models_.end(), by_score);
    if (!better(score, worst->second)) return false;
    replaced = worst->first;
    best_k_models_.erase(worst);
  }
  const std::string path = free_path(metrics, replaced);
  current_score_ = score;
  best_k_models_[path] = score;
  auto best = std::min_element(best_k_models_.begin(), best_k_models_.end(), by_score);
  best_model_path_ = best->first;
  best_model_score_ = best->second;
  trainer.save_checkpoint(path);
  remove_replaced(trainer, replaced, path);
  return true;
}

void ModelCheckpoint::save_last(T& trainer) {
  const std::string path = (fs::path(dirpath_) / "last.ckpt").string();
  const std::string previous = std::exchange(last_model_path_, path);
  trainer.save_checkpoint(path);
  remove_replaced(trainer, previous, path);
}

namespace {

// JSON has no infinity (the library writes null); a NaN score is kept as +-inf, so scores are
// written as numbers when finite and as "inf" / "-inf" otherwise.
nlohmann::json score_to_json(double v) {
  if (std::isfinite(v)) return v;
  return v > 0 ? "inf" : "-inf";
}

double score_from_json(const nlohmann::json& v, const std::string& what) {
  if (v.is_number()) return v.get<double>();
  EMBER_CHECK(v.is_string() && (v == "inf" || v == "-inf"), what,
              ": a score must be a number, \"inf\" or \"-inf\", got ", v.dump().substr(0, 80));
  return v == "inf" ? INFINITY : -INFINITY;
}

}  // namespace

std::string ModelCheckpoint::state_dict() const {
  nlohmann::json best_k = nlohmann::json::object();
  for (auto& [p, s] : best_k_models_) best_k[p] = score_to_json(s);
  nlohmann::json j = {{"monitor", o_.monitor},
                      {"best_model_path", best_model_path_},
                      {"last_model_path", last_model_path_},
                      {"best_k_models", best_k},
                      {"dirpath", dirpath_},
                      {"last_saved_step", last_saved_step_}};
  if (best_model_score_) j["best_model_score"] = score_to_json(*best_model_score_);
  if (current_score_) j["current_score"] = score_to_json(*current_score_);
  return j.dump();
}

void ModelCheckpoint::load_state_dict(const std::string& text) {
  const std::string what = "checkpoint: ModelCheckpoint's saved state";
  const auto j = nn::parse_json(text, what);
  best_model_path_ = nn::json_field<std::string>(j, "best_model_path", what);
  last_model_path_ = nn::json_field<std::string>(j, "last_model_path", what);
  const auto best_k = nn::json_field<nlohmann::json>(j, "best_k_models", what);
  EMBER_CHECK(best_k.is_object(), what, ": best_k_models must map paths to scores");
  best_k_models_.clear();
  for (auto& [p, v] : best_k.items()) best_k_models_[p] = score_from_json(v, what);
  last_saved_step_ = nn::json_field<int64_t>(j, "last_saved_step", what);
  auto optional_score = [&](const char* key) -> std::optional<double> {
    if (!j.contains(key)) return std::nullopt;
    return score_from_json(j[key], what);
  };
  best_model_score_ = optional_score("best_model_score");
  current_score_ = optional_score("current_score");
  if (o_.dirpath.empty()) dirpath_ = nn::json_field<std::string>(j, "dirpath", what);
}

// ---- EarlyStopping --------------------------------------------------------------------------------

EarlyStopping::EarlyStopping(Options o) : o_(std::move(o)) {
  EMBER_CHECK(!o_.monitor.empty(), "EarlyStopping: monitor must name a logged metric");
  EMBER_CHECK(o_.mode == "min" || o_.mode == "max", "EarlyStopping: mode must be \"min\" or \"max\", got \"",
              o_.mode, "\"");
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
  if (trainer.options().fast_dev_run > 0) return;  // a smoke test stops nothing
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
  } else if (o_.stopping_threshold &&
             (o_.mode == "min" ? current < *o_.stopping_threshold : current > *o_.stopping_threshold)) {
    stop = true;
    reason_ = "Stopping threshold reached: " + o_.monitor + " = " + std::to_string(current);
  } else if (o_.divergence_threshold &&
             (o_.mode == "min" ? current > *o_.divergence_threshold : current < *o_.divergence_threshold)) {
    stop = true;
    reason_ = "Divergence threshold reached: " + o_.monitor + " = " + std::to_string(current);
  } else if (improved(current, best_score_)) {
    best_score_ = current;
    wait_count_ = 0;
  } else if (++wait_count_ >= o_.patience) {
    stop = true;
    reason_ = "Monitored metric " + o_.monitor + " did not improve in the last " +
              std::to_string(wait_count_) + " records. Best score: " + std::to_string(best_score_);
  }
  if (stop) {
    trainer.should_stop = true;
    stopped_epoch_ = trainer.current_epoch();
  }
}

std::string EarlyStopping::state_dict() const {
  return nlohmann::json{{"wait_count", wait_count_},
                        {"stopped_epoch", stopped_epoch_},
                        {"best_score", best_score_},
                        {"patience", o_.patience}}
      .dump();
}

void EarlyStopping::load_state_dict(const std::string& text) {
  const std::string what = "checkpoint: EarlyStopping's saved state";
  const auto j = nn::parse_json(text, what);
  wait_count_ = nn::json_field<int64_t>(j, "wait_count", what);
  stopped_epoch_ = nn::json_field<int64_t>(j, "stopped_epoch", what);
  // A NaN or infinite best score was written as null.
  if (j.contains("best_score") && j["best_score"].is_number()) best_score_ = j["best_score"].get<double>();
}

// ---- LearningRateMonitor -----------------------------------------------------------------------------

LearningRateMonitor::LearningRateMonitor(std::string interval) : interval_(std::move(interval)) {
  EMBER_CHECK(interval_.empty() || interval_ == "step" || interval_ == "epoch",
              "LearningRateMonitor: logging_interval must be \"step\", \"epoch\" or empty, got \"", interval_,
              "\"");
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
  const std::string what = "checkpoint: Timer's saved state";
  offset_ = nn::json_field<double>(nn::parse_json(text, what), "time_elapsed", what);
}

}  // namespace ember::trainer
