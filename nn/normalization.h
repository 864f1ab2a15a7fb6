// Normalisation layers: LayerNorm, GroupNorm, BatchNorm1d/2d, with PyTorch's options, buffers and
// defaults (weight 1, bias 0; BatchNorm keeps running_mean 0, running_var 1 and
// num_batches_tracked, updates them in training with the unbiased batch variance, and uses them in
// eval).
#pragma once
#include <functional>
#include <optional>

#include "ember/nn/module.h"

namespace ember::nn {

class LayerNorm : public Module {
 public:
  LayerNorm(Shape normalized_shape, double eps = 1e-5, bool elementwise_affine = true, bool bias = true);
  explicit LayerNorm(int64_t size, double eps = 1e-5) : LayerNorm(Shape{size}, eps) {}
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  Shape normalized_shape;
  double eps;
  bool elementwise_affine;
  Tensor weight, bias;
};

class GroupNorm : public Module {
 public:
  GroupNorm(int64_t num_groups, int64_t num_channels, double eps = 1e-5, bool affine = true);
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  int64_t num_groups, num_channels;
  double eps;
  bool affine;
  Tensor weight, bias;
};

// Shared by BatchNorm1d and BatchNorm2d; they differ only in the input ranks they accept.
class BatchNorm : public Module {
 public:
  // momentum nullopt: running stats are a cumulative average (factor 1 / num_batches_tracked).
  BatchNorm(const char* type_name, int64_t num_features, double eps, std::optional<double> momentum,
            bool affine, bool track_running_stats);
  Tensor forward(const Tensor& x) override;
  void reset_running_stats();
  std::string extra_repr() const override;
  int64_t num_features;
  double eps;
  std::optional<double> momentum;
  bool affine, track_running_stats;
  Tensor weight, bias, running_mean, running_var, num_batches_tracked;
  // Synchronised batch statistics (SyncBatchNorm): when set, training-mode statistics are taken
  // over the per-channel [sums, sums of squares, count] after passing them through this function,
  // which sums them over the processes of a data-parallel run (differentiably). nn knows nothing of
  // processes; trainer::convert_sync_batchnorm sets it.
  std::function<Tensor(const Tensor&)> reduce_stats;

 protected:
  virtual void check_input(const Tensor& x) const = 0;

 private:
  Tensor forward_synced(const Tensor& x);
};

class BatchNorm1d : public BatchNorm {
 public:
  explicit BatchNorm1d(int64_t num_features, double eps = 1e-5, std::optional<double> momentum = 0.1,
                       bool affine = true, bool track_running_stats = true)
      : BatchNorm("BatchNorm1d", num_features, eps, momentum, affine, track_running_stats) {}

 protected:
  void check_input(const Tensor& x) const override;
};

class BatchNorm2d : public BatchNorm {
 public:
  explicit BatchNorm2d(int64_t num_features, double eps = 1e-5, std::optional<double> momentum = 0.1,
                       bool affine = true, bool track_running_stats = true)
      : BatchNorm("BatchNorm2d", num_features, eps, momentum, affine, track_running_stats) {}

 protected:
  void check_input(const Tensor& x) const override;
};

}  // namespace ember::nn
