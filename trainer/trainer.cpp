// Trainer: the fit / validate / test / predict loops. Read top to bottom it is Lightning's
// pseudocode made concrete: fit_impl sets up and runs epochs, run_train_epoch runs batches and the
// validation inside an epoch, train_batch is one batch of automatic (or manual) optimization,
// run_eval_loop is validation/test. Logging, checkpoints and module glue follow.
#include "ember/trainer/trainer.h"

#include <cmath>
#include <filesystem>
#include <iostream>
#include <set>
#include <sstream>

#include "ember/autograd/engine.h"
#include "ember/autograd/grad_mode.h"
#include "ember/core/generator.h"
#include "ember/kernels/cuda/cuda_backend.h"
#include "ember/optim/clip_grad.h"
#include "ember/trainer/callbacks.h"
#include "ember/trainer/checkpoint.h"
#include "ember/trainer/progress.h"
#include "ember/trainer/sync_batch_norm.h"

namespace ember::trainer {
namespace fs = std::filesystem;

// Calls a hook on every callback (in order) and then on the module, with logging defaults for it.
#define EMBER_HOOK(name, ...)                                                          \
  do {                                                                                 \
    set_fx(#name);                                                                     \
    for (auto& cb_ : callbacks_) cb_->name(*this, *module_ __VA_OPT__(, ) __VA_ARGS__); \
    module_->name(__VA_ARGS__);                                                        \
  } while (0)

struct Trainer::Metric {
  bool on_step = false, on_epoch = false, prog_bar = false, logger = true;
  std::string reduce = "mean";
  double sum = 0, weight = 0, max = -INFINITY, min = INFINITY;
  bool has_epoch_values = false;
  double epoch_value() const {
    if (reduce == "sum") return sum;
    if (reduce == "max") return max;
    if (reduce == "min") return min;
    return weight > 0 ? sum / weight : NAN;
  }
};

void seed_everything(uint64_t seed) { manual_seed(seed); }  // every device's generator

int64_t BatchLimit::resolve(int64_t total, const char* what) const {
  if (count) {
    EMBER_CHECK(*count >= 0, "Trainer: ", what, " must be >= 0, got ", *count);
    return std::min(*count, total);
  }
  EMBER_CHECK(fraction >= 0 && fraction <= 1, "Trainer: ", what, " as a fraction must be in [0, 1], got ", fraction);
  const int64_t n = static_cast<int64_t>(std::floor(total * fraction));
  return fraction > 0 && n == 0 && total > 0 ? 1 : n;
}

namespace {

double parse_duration(const std::string& text) {
  if (text.empty()) return -1;
  std::vector<double> parts;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ':')) {
    try {
      parts.push_back(std::stod(item));
    } catch (...) {
      EMBER_CHECK(false, "Trainer: max_time \"", text, "\" is not DD:HH:MM:SS");
    }
  }
  EMBER_CHECK(parts.size() == 4, "Trainer: max_time \"", text, "\" is not DD:HH:MM:SS");
  return ((parts[0] * 24 + parts[1]) * 60 + parts[2]) * 60 + parts[3];
}

std::string join_names(const std::vector<std::string>& names) {
  std::string out;
  for (auto& n : names) out += (out.empty() ? "\"" : ", \"") + n + "\"";
  return out;
}

std::string shapes_of(const std::vector<Tensor>& ts) {
  std::ostringstream os;
  for (size_t i = 0; i < ts.size(); ++i) os << (i ? ", " : "") << shape_str(ts[i].sizes());
  return os.str();
}

}  // namespace

Trainer::Trainer(TrainerOptions options) : o_(std::move(options)) {
  EMBER_CHECK(o_.accumulate_grad_batches >= 1, "Trainer: accumulate_grad_batches must be >= 1, got ",
              o_.accumulate_grad_batches);
  EMBER_CHECK(o_.gradient_clip_algorithm == "norm" || o_.gradient_clip_algorithm == "value",
              "Trainer: gradient_clip_algorithm must be \"norm\" or \"value\", got \"",
              o_.gradient_clip_algorithm, "\"");
  EMBER_CHECK(o_.accelerator == "auto" || o_.accelerator == "cpu" || o_.accelerator == "cuda",
              "Trainer: accelerator must be \"auto\", \"cpu\" or \"cuda\", got \"", o_.accelerator, "\"");
  EMBER_CHECK(o_.accelerator != "cuda" || cuda::is_available(), "Trainer: accelerator=\"cuda\" but no CUDA "
              "device is available: ", cuda::unavailable_reason(), "; use \"cpu\" or \"auto\"");
  if (o_.accelerator == "cuda" || (o_.accelerator == "auto" && cuda::is_available())) device_ = Device::cuda(0);
  if (o_.precision == "bf16-mixed") {
    autocast_dtype_ = kBFloat16;
  } else if (o_.precision == "16-mixed") {
    autocast_dtype_ = kFloat16;
    scaler_ = std::make_unique<optim::GradScaler>();
  } else {
    EMBER_CHECK(o_.precision == "32-true" || o_.precision == "32", "Trainer: precision must be \"32-true\", "
                "\"bf16-mixed\" or \"16-mixed\", got \"", o_.precision, "\"");
  }
  EMBER_CHECK(o_.strategy == "auto" || o_.strategy == "ddp" || o_.strategy == "single",
              "Trainer: strategy must be \"auto\", \"ddp\" or \"single\", got \"", o_.strategy, "\"");
  EMBER_CHECK(o_.strategy != "ddp" || distributed::available(), "Trainer: strategy \"ddp\" needs ember::distributed, "
              "and this ember was built without MPI (EMBER_WITH_MPI=OFF): install libopenmpi-dev and rebuild");
  if (o_.strategy != "single" && distributed::launched_with_several_ranks()) {
    group_ = distributed::world();
    EMBER_CHECK(group_ != nullptr, "Trainer: launched with several ranks but this ember was built without MPI");
    if (device_.is_cuda()) group_ = distributed::with_device_collectives(group_);
    group_->set_timeout(o_.ddp_timeout);
  }
  EMBER_CHECK(o_.devices == 1 || (group_ && group_->size() == o_.devices), "Trainer: devices=", o_.devices,
              " needs that many processes: launch with `mpirun -np ", o_.devices, " ./your_program` (this process "
              "is one of ", world_size(), ")");
  EMBER_CHECK(o_.log_every_n_steps >= 1, "Trainer: log_every_n_steps must be >= 1");
  EMBER_CHECK(o_.check_val_every_n_epoch >= 1, "Trainer: check_val_every_n_epoch must be >= 1");
  if (o_.seed) seed_everything(*o_.seed);
  max_time_seconds_ = parse_duration(o_.max_time);
  accumulate_ = o_.accumulate_grad_batches;
  const bool dev_run = o_.fast_dev_run > 0;
  if (dev_run) {
    o_.max_epochs = 1;
    o_.max_steps = o_.fast_dev_run;
    o_.limit_train_batches = o_.limit_val_batches = o_.limit_test_batches = o_.limit_predict_batches =
        BatchLimit(o_.fast_dev_run);
    o_.num_sanity_val_steps = 0;
    o_.val_check_interval = 1.0;
  }
  const bool overfit = o_.overfit_batches.count ? *o_.overfit_batches.count > 0 : o_.overfit_batches.fraction > 0;
  if (overfit) {
    o_.limit_train_batches = o_.limit_val_batches = o_.overfit_batches;
    o_.num_sanity_val_steps = 0;
  }
  callbacks_ = o_.callbacks;
  if (o_.logger && !dev_run) {
    loggers_ = o_.loggers;
    if (loggers_.empty()) loggers_.push_back(std::make_shared<CSVLogger>());
    for (auto& l : loggers_) l->set_default_save_dir(o_.default_root_dir);
  }
  if (o_.enable_checkpointing && !dev_run && !find_callback<ModelCheckpoint>())
    callbacks_.push_back(std::make_shared<ModelCheckpoint>());
  if (dev_run) {  // fast_dev_run writes nothing
    std::erase_if(callbacks_, [](auto& c) { return std::dynamic_pointer_cast<ModelCheckpoint>(c) != nullptr; });
  }
  if (o_.enable_progress_bar && !find_callback<ProgressBar>())
    callbacks_.push_back(std::make_shared<ProgressBar>());
}

Trainer::~Trainer() = default;

std::string Trainer::log_dir() {
  if (!is_global_zero()) return o_.default_root_dir;  // only rank 0 writes logs (and picks versions)
  for (auto& l : loggers_) {
    const std::string d = l->log_dir();
    if (!d.empty()) return d;
  }
  return o_.default_root_dir;
}

double Trainer::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time_).count();
}

bool Trainer::time_is_up() const { return max_time_seconds_ >= 0 && elapsed_seconds() >= max_time_seconds_; }

int64_t Trainer::estimated_stepping_batches() const {
  const int64_t per_epoch = (num_training_batches_ + accumulate_ - 1) / accumulate_;
  if (max_epochs_ < 0) return o_.max_steps;
  const int64_t total = per_epoch * max_epochs_;
  return o_.max_steps >= 0 ? std::min(total, o_.max_steps) : total;
}

void Trainer::set_accumulate_grad_batches(int64_t n) {
  EMBER_CHECK(n >= 1, "Trainer: accumulate_grad_batches must be >= 1, got ", n);
  accumulate_ = n;
}

// An exception escaped a loop: the on_exception hooks run, and in a data-parallel run every rank
// is ended (the others would wait for this one in their next collective), saying why.
void Trainer::on_failure(const std::exception& e) {
  for (auto& cb : callbacks_) cb->on_exception(*this, *module_, e);
  module_->on_exception(e);
  if (group_) group_->abort(std::string("failed: ") + e.what());
  detach();
}

// ---- set-up ---------------------------------------------------------------------------------------

void Trainer::attach(LightningModuleBase& module) {
  module_ = &module;
  // Every LightningModule in the tree, at any depth, logs through this trainer.
  module.apply([this](nn::Module& m) {
    if (auto* lm = dynamic_cast<LightningModuleBase*>(&m)) lm->attach_trainer(this);
  });
  running_ = true;
}

void Trainer::detach() { running_ = false; }

void Trainer::configure_optimizers() {
  set_fx("configure_optimizers");
  Optimizers result = module_->configure_optimizers();
  optimizers_ = result.optimizers();
  schedulers_ = result.schedulers();
  for (auto& s : schedulers_) {
    EMBER_CHECK(s.scheduler.defined(), "configure_optimizers: an lr_scheduler config has no scheduler");
    EMBER_CHECK(s.interval == "epoch" || s.interval == "step", "configure_optimizers: lr_scheduler interval must be "
                "\"epoch\" or \"step\", got \"", s.interval, "\"");
    EMBER_CHECK(s.frequency >= 1, "configure_optimizers: lr_scheduler frequency must be >= 1");
  }
  if (!module_->automatic_optimization() || optimizers_.size() < 2) return;
  // Automatic optimization with several optimizers: one backward, each steps its own parameters,
  // so a parameter in two optimizers would be updated twice.
  std::map<const TensorImpl*, size_t> owner;
  std::map<const TensorImpl*, std::string> names;
  for (auto& [n, p] : module_->named_parameters()) names[p.impl()] = n;
  std::vector<std::string> shared;
  std::set<size_t> involved;
  for (size_t i = 0; i < optimizers_.size(); ++i)
    for (auto& g : optimizers_[i]->param_groups())
      for (auto& p : g.params) {
        auto [it, fresh] = owner.emplace(p.impl(), i);
        if (!fresh && it->second != i) {
          auto n = names.find(p.impl());
          std::ostringstream os;
          os << (n != names.end() ? n->second : "<unregistered>") << " (optimizers " << it->second << " and " << i << ")";
          shared.push_back(os.str());
        }
      }
  EMBER_CHECK(shared.empty(), "configure_optimizers: with automatic optimization every parameter must belong to "
              "one optimizer (one backward, each optimizer steps its own parameters), but these are shared: ",
              join_names(shared), ". Give the optimizers disjoint parameter sets, or use manual optimization "
              "(automatic_optimization(false)).");
}

// After the first backward: tensors that received gradients without being registered parameters
// (layers kept in a std::vector instead of a ModuleList) and trainable parameters no optimizer holds.
void Trainer::check_registration(const Tensor& loss) {
  if (registration_checked_) return;
  registration_checked_ = true;
  std::set<const TensorImpl*> registered, optimized;
  for (auto& p : module_->parameters()) registered.insert(p.impl());
  for (auto& opt : optimizers_)
    for (auto& g : opt->param_groups())
      for (auto& p : g.params) optimized.insert(p.impl());
  std::vector<Tensor> stray;
  for (auto& leaf : autograd::graph_leaves(loss))
    if (leaf.requires_grad() && !registered.count(leaf.impl())) stray.push_back(leaf);
  if (!stray.empty()) {
    std::ostringstream os;
    os << "ember: " << stray.size() << " tensor(s) received gradients but are not registered parameters of "
       << module_->type_name() << " (shapes " << shapes_of(stray) << "). parameters() does not return them, so "
       << "no optimizer updates them"
       << " and checkpoints do not save them. Keep sub-modules in nn::ModuleList / nn::ModuleDict (or "
       << "register_module / register_parameter) instead of a std::vector or std::map.";
    warn(os.str());
  }
  if (optimizers_.empty()) return;
  std::vector<std::string> idle;
  for (auto& [n, p] : module_->named_parameters())
    if (p.requires_grad() && !optimized.count(p.impl())) idle.push_back(n);
  if (!idle.empty())
    warn("ember: trainable parameters that no optimizer holds (they get gradients but never change): " +
         join_names(idle) + ". Add them to an optimizer in configure_optimizers, or freeze them.");
}

void Trainer::warn(const std::string& message) {
  std::cerr << message << "\n";
  warnings_.push_back(message);
  if (is_global_zero())
    for (auto& l : loggers_) l->log_warning(message);
}

// ---- fit ------------------------------------------------------------------------------------------

void Trainer::fit_impl(LightningModuleBase& module, std::unique_ptr<BatchStream> train,
                       std::unique_ptr<BatchStream> val, const std::string& ckpt_path) {
  start_time_ = std::chrono::steady_clock::now();
  attach(module);
  stage_ = Stage::Train;
  should_stop = false;
  fitting_ = true;
  try {
    const int64_t max_epochs = o_.max_epochs ? *o_.max_epochs : (o_.max_steps >= 0 ? -1 : 1000);
    EMBER_HOOK(setup, "fit");
    place(*train, val.get());
    if (group_ && o_.sync_batchnorm) convert_sync_batchnorm(*module_, group_);
    if (group_) setup_ddp(*train, val.get());  // before counting batches: each rank has its share
    num_training_batches_ = o_.limit_train_batches.resolve(train->size(), "limit_train_batches");
    num_val_batches_ = val ? o_.limit_val_batches.resolve(val->size(), "limit_val_batches") : 0;
    const bool overfit = o_.overfit_batches.count ? *o_.overfit_batches.count > 0 : o_.overfit_batches.fraction > 0;
    BatchStream* val_stream = val.get();
    if (overfit) {  // validate on the very batches it trains on
      val_stream = train.get();
      num_val_batches_ = num_training_batches_;
    }
    max_epochs_ = max_epochs;
    configure_optimizers();  // may ask estimated_stepping_batches()
    if (is_global_zero())
      for (auto& l : loggers_) l->log_hyperparams(module_->hparams());
    if (!ckpt_path.empty()) restore(ckpt_path, /*full=*/true);
    if (o_.enable_model_summary && is_global_zero()) std::cout << model_summary(*module_);
    EMBER_HOOK(on_fit_start);
    if (val_stream && o_.num_sanity_val_steps != 0 && num_val_batches_ > 0 && val_enabled_) {
      sanity_checking_ = true;
      for (auto& cb : callbacks_) cb->on_sanity_check_start(*this, *module_);
      const int64_t n = o_.num_sanity_val_steps < 0 ? num_val_batches_ : std::min(o_.num_sanity_val_steps, num_val_batches_);
      run_eval_loop(*val_stream, Stage::Validate, n, /*sanity=*/true);
      for (auto& cb : callbacks_) cb->on_sanity_check_end(*this, *module_);
      sanity_checking_ = false;
    }
    EMBER_HOOK(on_train_start);
    // max_time is checked after every batch (like Lightning's Timer), so a run makes at least one step.
    while (!(max_epochs >= 0 && epoch_ >= max_epochs) && !past_max_steps()) {
      if (should_stop && epoch_ >= o_.min_epochs) break;
      run_train_epoch(*train, val_stream);
      if (should_stop && epoch_ < o_.min_epochs) should_stop = false;  // min_epochs wins
    }
    EMBER_HOOK(on_train_end);
    EMBER_HOOK(on_fit_end);
    EMBER_HOOK(teardown, "fit");
    for (auto& l : loggers_) l->finalize("success");
  } catch (const std::exception& e) {
    for (auto& l : loggers_) l->finalize("failed");
    sanity_checking_ = false;
    fitting_ = false;
    on_failure(e);
    throw;
  }
  fitting_ = false;
  if (reducer_) reducer_->detach();
  reducer_.reset();
  detach();
}

void Trainer::run_train_epoch(BatchStream& train, BatchStream* val) {
  module_->train();
  stage_ = Stage::Train;
  reset_metrics(Stage::Train);
  const int64_t skip = resume_skip_;
  resume_skip_ = 0;
  train.begin(epoch_, skip);
  total_batches_ = num_training_batches_;
  EMBER_HOOK(on_train_epoch_start);
  const bool validate_epoch = val && val_enabled_ && num_val_batches_ > 0 &&
                              (epoch_ + 1) % o_.check_val_every_n_epoch == 0;
  int64_t val_every = num_training_batches_;
  if (o_.val_check_interval.count) val_every = *o_.val_check_interval.count;
  else val_every = std::max<int64_t>(1, static_cast<int64_t>(num_training_batches_ * o_.val_check_interval.fraction));
  for (int64_t batch_idx = skip; batch_idx < num_training_batches_ && train.next(); ++batch_idx) {
    batch_idx_ = batch_idx;
    if (!train_batch(train, batch_idx)) break;
    const bool last = batch_idx + 1 == num_training_batches_;
    if (validate_epoch && !last && (batch_idx + 1) % val_every == 0) {
      run_eval_loop(*val, Stage::Validate, num_val_batches_, false);
      module_->train();
      stage_ = Stage::Train;
    }
    // Every rank must stop at the same batch, or the others would wait in a collective forever.
    if (any_rank(past_max_steps() || should_stop || time_is_up())) {
      should_stop = true;
      break;
    }
  }
  if (module_->automatic_optimization()) step_schedulers("epoch", /*plateau=*/false);
  if (validate_epoch && val_enabled_) {
    run_eval_loop(*val, Stage::Validate, num_val_batches_, false);
    module_->train();
    stage_ = Stage::Train;
  }
  if (module_->automatic_optimization()) step_schedulers("epoch", /*plateau=*/true);
  epoch_finished_ = true;
  finish_epoch_metrics(Stage::Train, /*send=*/false);
  EMBER_HOOK(on_train_epoch_end);
  finish_epoch_metrics(Stage::Train, /*send=*/true);
  for (auto& l : loggers_) l->save();
  should_stop = any_rank(should_stop);
  ++epoch_;
  epoch_batches_done_ = 0;
  epoch_finished_ = false;
}

// One batch: hooks, the step, and (automatic optimization) zero_grad / backward / optimizer step.
bool Trainer::train_batch(BatchStream& train, int64_t batch_idx) {
  current_batch_size_ = train.batch_size();
  set_fx("on_train_batch_start");
  for (auto& cb : callbacks_) cb->on_train_batch_start(*this, *module_, batch_idx);
  if (module_->on_train_batch_start(batch_idx) == -1) return false;
  pending_step_metrics_.clear();
  set_fx("training_step");
  Tensor loss;
  {
    std::optional<AutocastGuard> autocast;
    enter_autocast(autocast);
    loss = train.run(Stage::Train, batch_idx);
  }
  if (module_->automatic_optimization() && loss.defined()) {
    EMBER_CHECK(loss.numel() == 1, module_->type_name(), ".training_step: the loss must be a scalar, got shape ",
                loss.sizes());
    automatic_step(loss);
  }
  const Tensor out = loss.defined() ? loss.detach() : loss;
  epoch_batches_done_ = batch_idx + 1;  // a checkpoint taken in the hook resumes after this batch
  ++batches_stepped_;
  EMBER_HOOK(on_train_batch_end, out, batch_idx);
  if (batches_stepped_ % o_.log_every_n_steps == 0 || should_stop) log_step_metrics();
  return true;
}

bool Trainer::window_start() const { return batch_idx_ % accumulate_ == 0; }

bool Trainer::window_end() const {
  return (batch_idx_ + 1) % accumulate_ == 0 || batch_idx_ + 1 == num_training_batches_;
}

void Trainer::automatic_step(const Tensor& loss) {
  if (optimizers_.empty()) return;  // fit without optimizers runs the steps only
  if (window_start())
    for (auto& opt : optimizers_) {
      EMBER_HOOK(on_before_zero_grad, *opt);
      opt->zero_grad();
    }
  backward(loss);
  if (!window_end()) return;
  for (size_t i = 0; i < optimizers_.size(); ++i) step_one(i);
  ++global_step_;
  step_schedulers("step", /*plateau=*/false);
}

// Mixed precision: the module's steps run under autocast (backward and optimizer steps do not).
void Trainer::enter_autocast(std::optional<AutocastGuard>& scope) const {
  if (autocast_dtype_) scope.emplace(device_.type, *autocast_dtype_);
}

void Trainer::backward(const Tensor& loss) {
  check_registration(loss);
  // Accumulated gradients are the mean over the window, as if the batches were one; "16-mixed"
  // multiplies by the GradScaler's scale (step_one divides it out again).
  Tensor scaled = accumulate_ > 1 ? loss / static_cast<double>(accumulate_) : loss;
  if (scaler_) scaled = scaler_->scale(scaled);
  EMBER_HOOK(on_before_backward, scaled);
  if (reducer_) reducer_->arm(window_end());  // gradients travel during backward at window ends
  scaled.backward();
  if (reducer_) reducer_->finish();
  EMBER_HOOK(on_after_backward);
}

void Trainer::step_one(size_t index) {
  optim::Optimizer& opt = *optimizers_[index];
  if (scaler_) scaler_->unscale_(opt);  // hooks and clipping see the true gradients
  EMBER_HOOK(on_before_optimizer_step, opt);
  if (o_.gradient_clip_val && *o_.gradient_clip_val > 0) {
    std::vector<Tensor> params;
    for (auto& g : opt.param_groups()) params.insert(params.end(), g.params.begin(), g.params.end());
    if (o_.gradient_clip_algorithm == "norm") nn::utils::clip_grad_norm_(params, *o_.gradient_clip_val);
    else nn::utils::clip_grad_value_(params, *o_.gradient_clip_val);
  }
  if (scaler_) {
    scaler_->step(opt);  // skipped when a gradient is inf/NaN; the scale then backs off
    scaler_->update();
  } else {
    opt.step();
  }
}

// Manual optimization: the module drives, the Trainer keeps accumulation, clipping and counters.
void Trainer::manual_backward(LightningModuleBase&, const Tensor& loss) {
  EMBER_CHECK(running_, "manual_backward: the module is not being trained by a Trainer");
  backward(loss);
}

void Trainer::optimizer_zero_grad(size_t index) {
  EMBER_CHECK(index < optimizers_.size(), "optimizers(): index ", index, " out of range");
  if (!window_start()) return;
  EMBER_HOOK(on_before_zero_grad, *optimizers_[index]);
  optimizers_[index]->zero_grad();
}

void Trainer::optimizer_step(size_t index) {
  EMBER_CHECK(index < optimizers_.size(), "optimizers(): index ", index, " out of range");
  if (!window_end()) return;
  step_one(index);
  if (index == 0) ++global_step_;  // global_step counts the first optimizer's steps
}

void Trainer::step_schedulers(const std::string& interval, bool plateau) {
  for (auto& cfg : schedulers_) {
    if (cfg.interval != interval || cfg.scheduler.needs_metric() != plateau) continue;
    const int64_t counter = interval == "step" ? global_step_ : epoch_ + 1;
    if (counter % cfg.frequency != 0) continue;
    if (!plateau) {
      cfg.scheduler.step();
      continue;
    }
    auto it = callback_metrics_.find(cfg.monitor);
    if (it == callback_metrics_.end()) {
      std::vector<std::string> have;
      for (auto& [k, v] : callback_metrics_) have.push_back(k);
      const std::string msg = "ReduceLROnPlateau conditioned on metric \"" + cfg.monitor +
                              "\" which is not available. Available metrics are: [" + join_names(have) +
                              "]. Set the scheduler config's monitor to one of them.";
      EMBER_CHECK(!cfg.strict, msg);
      warn("ember: " + msg + " (strict=false: the scheduler was not stepped)");
      continue;
    }
    cfg.scheduler.step(it->second);
  }
}

// ---- validation / test / predict --------------------------------------------------------------------

void Trainer::eval_hook(Stage stage, const char* when, int64_t batch_idx, const Tensor* out) {
  const std::string w = when;
  if (stage == Stage::Validate) {
    if (w == "start") EMBER_HOOK(on_validation_start);
    else if (w == "epoch_start") EMBER_HOOK(on_validation_epoch_start);
    else if (w == "batch_start") EMBER_HOOK(on_validation_batch_start, batch_idx);
    else if (w == "batch_end") EMBER_HOOK(on_validation_batch_end, *out, batch_idx);
    else if (w == "epoch_end") EMBER_HOOK(on_validation_epoch_end);
    else EMBER_HOOK(on_validation_end);
  } else if (stage == Stage::Test) {
    if (w == "start") EMBER_HOOK(on_test_start);
    else if (w == "epoch_start") EMBER_HOOK(on_test_epoch_start);
    else if (w == "batch_start") EMBER_HOOK(on_test_batch_start, batch_idx);
    else if (w == "batch_end") EMBER_HOOK(on_test_batch_end, *out, batch_idx);
    else if (w == "epoch_end") EMBER_HOOK(on_test_epoch_end);
    else EMBER_HOOK(on_test_end);
  } else {
    if (w == "start") EMBER_HOOK(on_predict_start);
    else if (w == "epoch_start") EMBER_HOOK(on_predict_epoch_start);
    else if (w == "batch_start") EMBER_HOOK(on_predict_batch_start, batch_idx);
    else if (w == "batch_end") EMBER_HOOK(on_predict_batch_end, *out, batch_idx);
    else if (w == "epoch_end") EMBER_HOOK(on_predict_epoch_end);
    else EMBER_HOOK(on_predict_end);
  }
}

// Returns false when the module has no step for this stage.
bool Trainer::run_eval_loop(BatchStream& loader, Stage stage, int64_t max_batches, bool sanity,
                            std::vector<Tensor>* outputs) {
  const bool was_training = module_->is_training();
  const Stage outer = stage_;
  const int64_t outer_idx = batch_idx_, outer_total = total_batches_;
  module_->eval();
  autograd::NoGradGuard no_grad;
  stage_ = stage;
  if (!sanity) reset_metrics(stage);
  total_batches_ = max_batches;
  eval_hook(stage, "start");
  eval_hook(stage, "epoch_start");
  loader.begin(0, 0);
  bool implemented = true;
  for (int64_t i = 0; i < max_batches && loader.next(); ++i) {
    batch_idx_ = i;
    current_batch_size_ = loader.batch_size();
    eval_hook(stage, "batch_start", i);
    set_fx(stage == Stage::Validate ? "validation_step" : stage == Stage::Test ? "test_step" : "predict_step");
    Tensor out;
    try {
      std::optional<AutocastGuard> autocast;
      enter_autocast(autocast);
      out = loader.run(stage, i);
    } catch (const detail::StepNotOverridden&) {
      implemented = false;
      break;
    }
    if (outputs) outputs->push_back(out);
    eval_hook(stage, "batch_end", i, &out);
  }
  if (implemented) {
    eval_hook(stage, "epoch_end");
    if (!sanity && stage != Stage::Predict) finish_epoch_metrics(stage, /*send=*/true);
    eval_hook(stage, "end");
  }
  if (was_training) module_->train();
  stage_ = outer;
  batch_idx_ = outer_idx;
  total_batches_ = outer_total;
  if (!implemented && stage == Stage::Validate) val_enabled_ = false;  // no validation_step: skip it
  return implemented;
}

std::map<std::string, double> Trainer::evaluate_impl(LightningModuleBase& module, std::unique_ptr<BatchStream> loader,
                                                     Stage stage, const std::string& ckpt_path) {
  const char* name = stage == Stage::Validate ? "validate" : "test";
  attach(module);
  start_time_ = std::chrono::steady_clock::now();
  std::map<std::string, double> results;
  try {
    EMBER_HOOK(setup, name);
    place(*loader, nullptr);
    if (!ckpt_path.empty()) restore(ckpt_path, /*full=*/false);
    if (group_) loader->distribute(global_rank(), world_size(), false);
    const BatchLimit& limit = stage == Stage::Validate ? o_.limit_val_batches : o_.limit_test_batches;
    const int64_t n = limit.resolve(loader->size(), stage == Stage::Validate ? "limit_val_batches" : "limit_test_batches");
    const bool saved_val = val_enabled_;
    val_enabled_ = true;
    const bool ok = run_eval_loop(*loader, stage, n, false);
    val_enabled_ = saved_val;
    EMBER_CHECK(ok, "Trainer.", name, ": ", module.type_name(), " does not override ",
                stage == Stage::Validate ? "validation_step" : "test_step");
    for (auto& [k, m] : metrics_[static_cast<int>(stage)])
      if (m->on_epoch) results[m->on_step ? k + "_epoch" : k] = m->epoch_value();
    EMBER_HOOK(teardown, name);
    for (auto& l : loggers_) l->save();
  } catch (const std::exception& e) {
    on_failure(e);
    throw;
  }
  detach();
  return results;
}

std::vector<Tensor> Trainer::predict_impl(LightningModuleBase& module, std::unique_ptr<BatchStream> loader,
                                          const std::string& ckpt_path) {
  attach(module);
  std::vector<Tensor> outputs;
  try {
    EMBER_HOOK(setup, "predict");
    place(*loader, nullptr);
    if (!ckpt_path.empty()) restore(ckpt_path, /*full=*/false);
    if (group_) loader->distribute(global_rank(), world_size(), false);
    const int64_t n = o_.limit_predict_batches.resolve(loader->size(), "limit_predict_batches");
    run_eval_loop(*loader, Stage::Predict, n, false, &outputs);
    EMBER_HOOK(teardown, "predict");
  } catch (const std::exception& e) {
    on_failure(e);
    throw;
  }
  detach();
  return outputs;
}

// ---- logging ----------------------------------------------------------------------------------------

void Trainer::set_fx(const std::string& fx) {
  // Lightning's defaults: per step inside the training batch, per epoch everywhere else.
  default_on_step_ = stage_ == Stage::Train &&
                     (fx == "training_step" || fx.find("train_batch") != std::string::npos ||
                      fx.find("backward") != std::string::npos || fx.find("optimizer") != std::string::npos ||
                      fx.find("zero_grad") != std::string::npos);
  default_on_epoch_ = !default_on_step_;
}

void Trainer::reset_metrics(Stage stage) { metrics_[static_cast<int>(stage)].clear(); }

void Trainer::log(const std::string& name, double value, const LogOptions& opt) {
  EMBER_CHECK(opt.reduce_fx == "mean" || opt.reduce_fx == "sum" || opt.reduce_fx == "max" || opt.reduce_fx == "min",
              "log(\"", name, "\"): reduce_fx must be \"mean\", \"sum\", \"max\" or \"min\", got \"", opt.reduce_fx, "\"");
  if (sanity_checking_ || !running_) return;  // Lightning discards what the sanity check logs
  if (group_ && opt.sync_dist) {
    Tensor v = tensor({value}, kFloat64);
    const auto op = opt.reduce_fx == "sum" ? distributed::ReduceOp::Sum
                    : opt.reduce_fx == "max" ? distributed::ReduceOp::Max
                    : opt.reduce_fx == "min" ? distributed::ReduceOp::Min : distributed::ReduceOp::Mean;
    group_->all_reduce(v, op);
    value = v.item<double>();
  }
  const bool on_step = opt.on_step.value_or(default_on_step_);
  const bool on_epoch = opt.on_epoch.value_or(default_on_epoch_);
  auto& slot = metrics_[static_cast<int>(stage_)][name];
  if (!slot) slot = std::make_unique<Metric>();
  Metric& m = *slot;
  m.on_step = on_step;
  m.on_epoch = on_epoch;
  m.prog_bar = opt.prog_bar;
  m.logger = opt.logger;
  m.reduce = opt.reduce_fx;
  if (on_step) {
    const std::string key = on_epoch ? name + "_step" : name;
    callback_metrics_[name] = value;
    callback_metrics_[key] = value;
    if (opt.logger) {
      if (stage_ == Stage::Train) pending_step_metrics_[key] = value;
      else send_to_loggers({{key, value}}, batches_stepped_);
      logged_metrics_[key] = value;
    }
    if (opt.prog_bar) progress_bar_metrics_[key] = value;
  }
  if (on_epoch) {
    const double w = static_cast<double>(opt.batch_size.value_or(current_batch_size_));
    m.sum += m.reduce == "mean" ? value * w : value;
    m.weight += w;
    m.max = std::max(m.max, value);
    m.min = std::min(m.min, value);
    m.has_epoch_values = true;
  }
}

void Trainer::log_step_metrics() {
  if (pending_step_metrics_.empty()) return;
  auto metrics = pending_step_metrics_;
  metrics["epoch"] = static_cast<double>(epoch_);
  send_to_loggers(metrics, batches_stepped_ - 1);
  pending_step_metrics_.clear();
}

void Trainer::finish_epoch_metrics(Stage stage, bool send) {
  std::map<std::string, double> out;
  for (auto& [name, m] : metrics_[static_cast<int>(stage)]) {
    if (!m->on_epoch || !m->has_epoch_values) continue;
    const double v = m->epoch_value();
    const std::string key = m->on_step ? name + "_epoch" : name;
    callback_metrics_[name] = v;
    callback_metrics_[key] = v;
    if (m->prog_bar) progress_bar_metrics_[key] = v;
    if (m->logger) {
      out[key] = v;
      logged_metrics_[key] = v;
    }
  }
  if (!send || out.empty()) return;
  out["epoch"] = static_cast<double>(epoch_);
  send_to_loggers(out, std::max<int64_t>(batches_stepped_ - 1, 0));
}

void Trainer::send_to_loggers(const std::map<std::string, double>& metrics, int64_t step) {
  if (!is_global_zero()) return;
  for (auto& l : loggers_) l->log_metrics(metrics, step);
}

// The module's parameters and buffers move to the accelerator (keeping their identity, so
// optimizers made later hold them), and batches follow as they are fetched.
void Trainer::place(BatchStream& first, BatchStream* second) {
  module_->to(device_);
  first.set_device(device_);
  if (second) second->set_device(device_);
}

// ---- data parallelism ---------------------------------------------------------------------------------

// Every rank starts from rank 0's weights, gets its share of the data, and averages gradients.
void Trainer::setup_ddp(BatchStream& train, BatchStream* val) {
  {
    autograd::NoGradGuard no_grad;
    for (auto& [name, t] : module_->state_dict()) {
      Tensor buffer = t.contiguous();
      group_->broadcast(buffer, 0);
      if (buffer.data_ptr() != t.data_ptr()) const_cast<Tensor&>(t).copy_(buffer);
    }
  }
  reducer_ = GradientReducer::create(group_, module_->parameters(), o_.ddp_bucket_mb << 20);
  train.distribute(global_rank(), world_size(), true);
  if (val) {
    const int64_t repeated = val->distribute(global_rank(), world_size(), false);
    if (repeated > 0 && is_global_zero())
      warn("ember: the validation data does not split evenly over " + std::to_string(world_size()) + " ranks; " +
           std::to_string(repeated) + " example(s) or batch(es) are repeated to give every rank the same number, "
           "so validation metrics can differ slightly from one process's.");
  }
}

bool Trainer::any_rank(bool flag) {
  if (!group_) return flag;
  Tensor v = tensor({static_cast<int64_t>(flag)}, kInt64);
  group_->all_reduce(v, distributed::ReduceOp::Max);
  return v.item<int64_t>() != 0;
}

Tensor Trainer::all_gather(const Tensor& t) { return group_ ? group_->all_gather(t) : t.unsqueeze(0); }

void Trainer::broadcast(Tensor& t, int src) {
  if (!group_) return;
  Tensor buffer = t.contiguous();
  group_->broadcast(buffer, src);
  if (buffer.data_ptr() != t.data_ptr()) t.copy_(buffer);
}

std::string Trainer::broadcast(const std::string& text, int src) {
  if (!group_) return text;
  Tensor length = tensor({static_cast<int64_t>(text.size())}, kInt64);
  group_->broadcast(length, src);
  std::vector<int64_t> chars(text.begin(), text.end());
  chars.resize(length.item<int64_t>());
  Tensor t = tensor(chars, {static_cast<int64_t>(chars.size())});
  if (!chars.empty()) group_->broadcast(t, src);
  std::string out(static_cast<size_t>(t.numel()), '\0');
  for (int64_t i = 0; i < t.numel(); ++i) out[i] = static_cast<char>(t.data_ptr<int64_t>()[i]);
  return out;
}

void Trainer::barrier() {
  if (group_) group_->barrier();
}

// ---- checkpoints --------------------------------------------------------------------------------------

void Trainer::save_checkpoint(const std::string& path) {
  EMBER_CHECK(module_, "Trainer.save_checkpoint: no module is attached (call it during or after fit)");
  if (!is_global_zero()) return;
  CheckpointContents c;
  c.epoch = epoch_;
  c.global_step = global_step_;
  c.batches_stepped = batches_stepped_;
  c.epoch_batches_done = epoch_batches_done_;
  c.epoch_finished = epoch_finished_;
  c.module_type = module_->type_name();
  c.hparams = module_->hparams();
  c.state_dict = module_->state_dict();
  for (auto& opt : optimizers_) c.optimizers.push_back(opt->state_dict());
  for (auto& s : schedulers_) c.schedulers.push_back(s.scheduler.state_json());
  for (auto& cb : callbacks_) {
    const std::string s = cb->state_dict();
    if (!s.empty()) c.callbacks[cb->state_key()] = s;
  }
  c.rng = Generator::for_device(Device::cpu()).get_state();
  c.rng_cuda = Generator::for_device(Device::cuda(0)).get_state();
  if (scaler_) c.grad_scaler = scaler_->state_dict();
  for (auto& cb : callbacks_) cb->on_save_checkpoint(*this, *module_, c.extras);
  module_->on_save_checkpoint(c.extras);
  write_checkpoint(path, c);
}

void Trainer::restore(const std::string& path, bool full) {
  CheckpointContents c = read_checkpoint(path);
  module_->load_state_dict(c.state_dict, /*strict=*/true);
  for (auto& cb : callbacks_) cb->on_load_checkpoint(*this, *module_, c.extras);
  module_->on_load_checkpoint(c.extras);
  if (!full) return;
  EMBER_CHECK(c.optimizers.size() == optimizers_.size(), "Trainer: the checkpoint ", path, " holds ",
              c.optimizers.size(), " optimizer state(s) but configure_optimizers returned ", optimizers_.size());
  for (size_t i = 0; i < optimizers_.size(); ++i) optimizers_[i]->load_state_dict(c.optimizers[i]);
  EMBER_CHECK(c.schedulers.size() == schedulers_.size(), "Trainer: the checkpoint ", path, " holds ",
              c.schedulers.size(), " scheduler state(s) but configure_optimizers returned ", schedulers_.size());
  for (size_t i = 0; i < schedulers_.size(); ++i) schedulers_[i].scheduler.load_state_json(c.schedulers[i]);
  if (scaler_ && !c.grad_scaler.empty()) scaler_->load_state_dict(c.grad_scaler);
  for (auto& cb : callbacks_) {
    auto it = c.callbacks.find(cb->state_key());
    if (it != c.callbacks.end()) cb->load_state_dict(it->second);
  }
  global_step_ = c.global_step;
  batches_stepped_ = c.batches_stepped;
  if (c.epoch_finished) {
    epoch_ = c.epoch + 1;
    resume_skip_ = 0;
  } else {
    epoch_ = c.epoch;
    resume_skip_ = c.epoch_batches_done;
  }
  epoch_batches_done_ = resume_skip_;
  Generator::for_device(Device::cpu()).set_state(c.rng);
  Generator::for_device(Device::cuda(0)).set_state(c.rng_cuda);
}

HParams checkpoint_hparams(const std::string& path) { return read_checkpoint(path).hparams; }

void load_checkpoint_weights(nn::Module& module, const std::string& path, bool strict) {
  module.load_state_dict(read_checkpoint(path).state_dict, strict);
}

// ---- LightningModule glue -----------------------------------------------------------------------------

void LightningOptimizer::zero_grad() { trainer_->optimizer_zero_grad(index_); }
void LightningOptimizer::step() { trainer_->optimizer_step(index_); }
optim::Optimizer& LightningOptimizer::optimizer() const { return *trainer_->optimizers().at(index_); }

Trainer& LightningModuleBase::trainer() const {
  EMBER_CHECK(trainer_, type_name(), ": not attached to a Trainer (trainer() is available during fit/validate/test/predict)");
  return *trainer_;
}

void LightningModuleBase::log(const std::string& name, const Tensor& value, const LogOptions& options) {
  EMBER_CHECK(value.defined() && value.numel() == 1, "log(\"", name, "\"): expected a one-element tensor, got ",
              value.defined() ? value.sizes() : Shape{});
  log(name, value.detach().to(kFloat64).item<double>(), options);
}

void LightningModuleBase::log(const std::string& name, double value, const LogOptions& options) {
  if (!trainer_) return;  // a module used outside a Trainer logs nowhere, like Lightning's
  trainer_->log(name, value, options);
}

void LightningModuleBase::log_dict(const std::map<std::string, Tensor>& values, const LogOptions& options) {
  for (auto& [k, v] : values) log(k, v, options);
}

void LightningModuleBase::log_dict(const std::map<std::string, double>& values, const LogOptions& options) {
  for (auto& [k, v] : values) log(k, v, options);
}

std::vector<LightningOptimizer> LightningModuleBase::optimizers() const {
  std::vector<LightningOptimizer> out;
  for (size_t i = 0; i < trainer().optimizers().size(); ++i) out.emplace_back(trainer_, i);
  return out;
}

std::vector<Scheduler> LightningModuleBase::lr_schedulers() const {
  std::vector<Scheduler> out;
  for (auto& c : trainer().lr_scheduler_configs()) out.push_back(c.scheduler);
  return out;
}

void LightningModuleBase::manual_backward(const Tensor& loss) { trainer().manual_backward(*this, loss); }

void LightningModuleBase::toggle_optimizer(const LightningOptimizer& optimizer) {
  std::set<const TensorImpl*> mine;
  for (auto& g : optimizer.optimizer().param_groups())
    for (auto& p : g.params) mine.insert(p.impl());
  toggled_requires_grad_.clear();
  for (auto& p : parameters()) {
    toggled_requires_grad_[p.impl()] = p.requires_grad();
    if (!mine.count(p.impl())) const_cast<Tensor&>(p).requires_grad_(false);
  }
}

void LightningModuleBase::untoggle_optimizer(const LightningOptimizer&) {
  for (auto& p : parameters()) {
    auto it = toggled_requires_grad_.find(p.impl());
    if (it != toggled_requires_grad_.end()) const_cast<Tensor&>(p).requires_grad_(it->second);
  }
  toggled_requires_grad_.clear();
}

void LightningModuleBase::freeze() {
  for (auto& p : parameters()) const_cast<Tensor&>(p).requires_grad_(false);
  eval();
}

void LightningModuleBase::unfreeze() {
  for (auto& p : parameters()) const_cast<Tensor&>(p).requires_grad_(true);
  train();
}

int64_t LightningModuleBase::current_epoch() const { return trainer_ ? trainer_->current_epoch() : 0; }
int64_t LightningModuleBase::global_step() const { return trainer_ ? trainer_->global_step() : 0; }
Device LightningModuleBase::device() const {
  auto ps = parameters();
  return ps.empty() ? Device::cpu() : ps[0].device();
}
Tensor LightningModuleBase::all_gather(const Tensor& t) const {
  return trainer_ ? trainer_->all_gather(t) : t.unsqueeze(0);
}
void LightningModuleBase::broadcast(Tensor& t, int src) const {
  if (trainer_) trainer_->broadcast(t, src);
}
void LightningModuleBase::barrier() const {
  if (trainer_) trainer_->barrier();
}
int LightningModuleBase::global_rank() const { return trainer_ ? trainer_->global_rank() : 0; }
int LightningModuleBase::local_rank() const { return trainer_ ? trainer_->local_rank() : 0; }

}  // namespace ember::trainer
