// The Trainer: construction (options checked, strategy and precision chosen), its state, and set-up
// of a run (attaching the module, configure_optimizers, the unregistered-parameter check). The loops
// and connectors are in the files named in trainer_impl.h, one per seam of Lightning's own.
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
#include "ember/trainer/trainer_impl.h"

namespace ember::trainer {
using detail::join_names;
using detail::shapes_of;

void seed_everything(uint64_t seed) { manual_seed(seed); }  // every device's generator

int64_t BatchLimit::resolve(int64_t total, const char* what) const {
  if (count) {
    EMBER_CHECK(*count >= 0, "Trainer: ", what, " must be >= 0, got ", *count);
    return std::min(*count, total);
  }
  EMBER_CHECK(fraction >= 0 && fraction <= 1, "Trainer: ", what, " as a fraction must be in [0, 1], got ",
              fraction);
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

}  // namespace

Trainer::Trainer(TrainerOptions options) : o_(std::move(options)) {
  EMBER_CHECK(o_.accumulate_grad_batches >= 1, "Trainer: accumulate_grad_batches must be >= 1, got ",
              o_.accumulate_grad_batches);
  EMBER_CHECK(o_.gradient_clip_algorithm == "norm" || o_.gradient_clip_algorithm == "value",
              "Trainer: gradient_clip_algorithm must be \"norm\" or \"value\", got \"",
              o_.gradient_clip_algorithm, "\"");
  EMBER_CHECK(o_.accelerator == "auto" || o_.accelerator == "cpu" || o_.accelerator == "cuda",
              "Trainer: accelerator must be \"auto\", \"cpu\" or \"cuda\", got \"", o_.accelerator, "\"");
  EMBER_CHECK(o_.accelerator != "cuda" || cuda::is_available(),
              "Trainer: accelerator=\"cuda\" but no CUDA "
              "device is available: ",
              cuda::unavailable_reason(), "; use \"cpu\" or \"auto\"");
  if (o_.accelerator == "cuda" || (o_.accelerator == "auto" && cuda::is_available()))
    device_ = Device::cuda(0);
  if (o_.precision == "bf16-mixed") {
    autocast_dtype_ = kBFloat16;
  } else if (o_.precision == "16-mixed") {
    autocast_dtype_ = kFloat16;
    scaler_ = std::make_unique<optim::GradScaler>();
  } else {
    EMBER_CHECK(o_.precision == "32-true" || o_.precision == "32",
                "Trainer: precision must be \"32-true\", "
                "\"bf16-mixed\" or \"16-mixed\", got \"",
                o_.precision, "\"");
  }
  EMBER_CHECK(o_.strategy == "auto" || o_.strategy == "ddp" || o_.strategy == "single",
              "Trainer: strategy must be \"auto\", \"ddp\" or \"single\", got \"", o_.strategy, "\"");
  EMBER_CHECK(
      o_.strategy != "ddp" || distributed::available(),
      "Trainer: strategy \"ddp\" needs ember::distributed, "
      "and this ember was built without MPI (EMBER_WITH_MPI=OFF): install libopenmpi-dev and rebuild");
  if (o_.strategy != "single" && distributed::launched_with_several_ranks()) {
    group_ = distributed::world();
    EMBER_CHECK(group_ != nullptr,
                "Trainer: launched with several ranks but this ember was built without MPI");
    if (device_.is_cuda()) group_ = distributed::with_device_collectives(group_);
    group_->set_timeout(o_.ddp_timeout);
  }
  EMBER_CHECK(o_.devices == 1 || (group_ && group_->size() == o_.devices), "Trainer: devices=", o_.devices,
              " needs that many processes: launch with `mpirun -np ", o_.devices,
              " ./your_program` (this process "
              "is one of ",
              world_size(), ")");
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
  const bool overfit =
      o_.overfit_batches.count ? *o_.overfit_batches.count > 0 : o_.overfit_batches.fraction > 0;
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
  // fast_dev_run writes nothing: no default ModelCheckpoint, and a given one (like EarlyStopping) stays idle.
  if (o_.enable_checkpointing && !dev_run && !find_callback<ModelCheckpoint>())
    callbacks_.push_back(std::make_shared<ModelCheckpoint>());
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
    EMBER_CHECK(s.interval == "epoch" || s.interval == "step",
                "configure_optimizers: lr_scheduler interval must be "
                "\"epoch\" or \"step\", got \"",
                s.interval, "\"");
    EMBER_CHECK(s.frequency >= 1, "configure_optimizers: lr_scheduler frequency must be >= 1");
    EMBER_CHECK(!s.scheduler.needs_metric() || !s.monitor.empty(),
                "configure_optimizers: a ReduceLROnPlateau "
                "scheduler needs the metric it follows: set its LRSchedulerConfig's monitor, for example "
                "{.scheduler = plateau, .monitor = \"val_loss\"}");
  }
  if (optimizers_.empty())
    warn("ember: " + module_->type_name() +
         ".configure_optimizers returned no optimizer: this fit runs the "
         "training steps without one");
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
          os << (n != names.end() ? n->second : "<unregistered>") << " (optimizers " << it->second << " and "
             << i << ")";
          shared.push_back(os.str());
        }
      }
  EMBER_CHECK(shared.empty(),
              "configure_optimizers: with automatic optimization every parameter must belong to "
              "one optimizer (one backward, each optimizer steps its own parameters), but these are shared: ",
              join_names(shared),
              ". Give the optimizers disjoint parameter sets, or use manual optimization "
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
       << module_->type_name() << " (shapes " << shapes_of(stray)
       << "). parameters() does not return them, so "
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

}  // namespace ember::trainer
