// The optimizers, with PyTorch's options and defaults. Each update is one fused pass per parameter
// where the backend has the kernel (core/fused_ops.h; kernels/optimizer_update.h has the formulas).
//   SGD      momentum, dampening, nesterov, weight_decay, maximize
//   Adam     betas, eps, weight_decay (L2, added to the gradient), amsgrad, maximize
//   AdamW    the same with decoupled weight decay (default 1e-2)
//   RMSprop  alpha, eps, weight_decay, momentum, centered, maximize
//   Adagrad  lr_decay, weight_decay, initial_accumulator_value, eps, maximize
#pragma once
#include "ember/core/fused_ops.h"
#include "ember/optim/optimizer.h"

namespace ember::optim {

struct SGDOptions {
  double lr = 1e-3, momentum = 0, dampening = 0, weight_decay = 0;
  bool nesterov = false, maximize = false;
  GroupOptions group_options() const;  // checks the values
};

struct AdamOptions {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0;
  bool amsgrad = false, maximize = false;
  GroupOptions group_options() const;  // checks the values
};

// Adam's settings with PyTorch's AdamW default weight decay (0.01, decoupled from the gradient). Its
// own aggregate, so designated initialisers work: AdamWOptions{.lr = 3e-3, .beta2 = 0.95}.
struct AdamWOptions {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 1e-2;
  bool amsgrad = false, maximize = false;
  GroupOptions group_options() const;  // checks the values
};

struct RMSpropOptions {
  double lr = 1e-2, alpha = 0.99, eps = 1e-8, weight_decay = 0, momentum = 0;
  bool centered = false, maximize = false;
  GroupOptions group_options() const;  // checks the values
};

struct AdagradOptions {
  double lr = 1e-2, lr_decay = 0, weight_decay = 0, initial_accumulator_value = 0, eps = 1e-10;
  bool maximize = false;
  GroupOptions group_options() const;  // checks the values
};

// Shared by the concrete optimizers: builds the fused update of each parameter and queues it; at the
// end of step() the queue goes to fused::optimizer_update in runs of parameters with the same device,
// dtype and update spec (usually a whole param group), one call per run.
class FusedOptimizer : public Optimizer {
 public:
  FusedOptimizer(std::vector<ParamGroup> groups, GroupOptions defaults, std::string name,
                 fused::OptimizerKind kind);

 protected:
  void update(ParamGroup& group, Tensor& param, std::map<std::string, Tensor>& state) override;
  void flush() override;
  void drop_queued() override { pending_.clear(); }
  fused::OptimizerKind kind_;

 private:
  struct Pending {
    fused::OptimizerUpdate spec;
    Tensor param, work, grad, s0, s1, s2;  // work: param itself, or a compact copy written back after
  };
  std::vector<Pending> pending_;
};

class SGD : public FusedOptimizer {
 public:
  SGD(std::vector<ParamGroup> groups, SGDOptions o = {});
  SGD(const std::vector<Tensor>& params, SGDOptions o = {}) : SGD(single_group(params), o) {}
};

class Adam : public FusedOptimizer {
 public:
  Adam(std::vector<ParamGroup> groups, AdamOptions o = {});
  Adam(const std::vector<Tensor>& params, AdamOptions o = {}) : Adam(single_group(params), o) {}
};

class AdamW : public FusedOptimizer {
 public:
  AdamW(std::vector<ParamGroup> groups, AdamWOptions o = {});
  AdamW(const std::vector<Tensor>& params, AdamWOptions o = {}) : AdamW(single_group(params), o) {}
};

class RMSprop : public FusedOptimizer {
 public:
  RMSprop(std::vector<ParamGroup> groups, RMSpropOptions o = {});
  RMSprop(const std::vector<Tensor>& params, RMSpropOptions o = {}) : RMSprop(single_group(params), o) {}
};

class Adagrad : public FusedOptimizer {
 public:
  Adagrad(std::vector<ParamGroup> groups, AdagradOptions o = {});
  Adagrad(const std::vector<Tensor>& params, AdagradOptions o = {}) : Adagrad(single_group(params), o) {}
};

}  // namespace ember::optim
