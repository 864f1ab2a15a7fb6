// Loss modules: each stores its options and calls the functional form. forward(input, target).
#pragma once
#include <string>

#include "ember/nn/functional.h"
#include "ember/nn/module.h"

namespace ember::nn {

class Loss : public Module {
 public:
  Loss(const char* type_name, std::string reduction);
  virtual Tensor forward(const Tensor& input, const Tensor& target) = 0;
  Tensor operator()(const Tensor& input, const Tensor& target) { return forward(input, target); }
  std::string reduction;

 protected:
  // Class weights are buffers, as in PyTorch: they move with to() and appear in state_dict().
  Tensor optional_buffer(const std::string& name, Tensor t) {
    if (t.defined()) register_buffer(name, t);
    return t;
  }
};

class MSELoss : public Loss {
 public:
  explicit MSELoss(std::string reduction = "mean") : Loss("MSELoss", std::move(reduction)) {}
  Tensor forward(const Tensor& i, const Tensor& t) override { return functional::mse_loss(i, t, reduction); }
};

class L1Loss : public Loss {
 public:
  explicit L1Loss(std::string reduction = "mean") : Loss("L1Loss", std::move(reduction)) {}
  Tensor forward(const Tensor& i, const Tensor& t) override { return functional::l1_loss(i, t, reduction); }
};

class SmoothL1Loss : public Loss {
 public:
  explicit SmoothL1Loss(std::string reduction = "mean", double beta = 1.0)
      : Loss("SmoothL1Loss", std::move(reduction)), beta(beta) {}
  Tensor forward(const Tensor& i, const Tensor& t) override {
    return functional::smooth_l1_loss(i, t, reduction, beta);
  }
  double beta;
};

class HuberLoss : public Loss {
 public:
  explicit HuberLoss(std::string reduction = "mean", double delta = 1.0)
      : Loss("HuberLoss", std::move(reduction)), delta(delta) {}
  Tensor forward(const Tensor& i, const Tensor& t) override {
    return functional::huber_loss(i, t, reduction, delta);
  }
  double delta;
};

class BCELoss : public Loss {
 public:
  explicit BCELoss(Tensor weight = {}, std::string reduction = "mean")
      : Loss("BCELoss", std::move(reduction)), weight(optional_buffer("weight", std::move(weight))) {}
  Tensor forward(const Tensor& i, const Tensor& t) override {
    return functional::binary_cross_entropy(i, t, weight, reduction);
  }
  Tensor weight;
};

class BCEWithLogitsLoss : public Loss {
 public:
  explicit BCEWithLogitsLoss(Tensor weight = {}, std::string reduction = "mean", Tensor pos_weight = {})
      : Loss("BCEWithLogitsLoss", std::move(reduction)),
        weight(optional_buffer("weight", std::move(weight))),
        pos_weight(optional_buffer("pos_weight", std::move(pos_weight))) {}
  Tensor forward(const Tensor& i, const Tensor& t) override {
    return functional::binary_cross_entropy_with_logits(i, t, weight, reduction, pos_weight);
  }
  Tensor weight, pos_weight;
};

class KLDivLoss : public Loss {
 public:
  explicit KLDivLoss(std::string reduction = "mean", bool log_target = false)
      : Loss("KLDivLoss", std::move(reduction)), log_target(log_target) {}
  Tensor forward(const Tensor& i, const Tensor& t) override {
    return functional::kl_div(i, t, reduction, log_target);
  }
  bool log_target;
};

class NLLLoss : public Loss {
 public:
  explicit NLLLoss(Tensor weight = {}, int64_t ignore_index = -100, std::string reduction = "mean")
      : Loss("NLLLoss", std::move(reduction)),
        weight(optional_buffer("weight", std::move(weight))),
        ignore_index(ignore_index) {}
  Tensor forward(const Tensor& i, const Tensor& t) override {
    return functional::nll_loss(i, t, weight, ignore_index, reduction);
  }
  Tensor weight;
  int64_t ignore_index;
};

class CrossEntropyLoss : public Loss {
 public:
  explicit CrossEntropyLoss(Tensor weight = {}, int64_t ignore_index = -100, std::string reduction = "mean",
                            double label_smoothing = 0.0)
      : Loss("CrossEntropyLoss", std::move(reduction)),
        weight(optional_buffer("weight", std::move(weight))),
        ignore_index(ignore_index),
        label_smoothing(label_smoothing) {}
  Tensor forward(const Tensor& i, const Tensor& t) override {
    return functional::cross_entropy(i, t, weight, ignore_index, reduction, label_smoothing);
  }
  Tensor weight;
  int64_t ignore_index;
  double label_smoothing;
};

}  // namespace ember::nn
