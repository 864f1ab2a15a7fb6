// GradientReducer: averages gradients across the ranks of a data-parallel run while backward is
// still running. Parameters are packed, in reverse registration order (roughly the order backward
// reaches them), into buckets of about `bucket_bytes`; a hook on each parameter copies its gradient
// into its bucket as soon as autograd produces it, and a full bucket starts a non-blocking
// all-reduce. Buckets start strictly in index order so every rank issues the same collectives in
// the same order. finish() sends what is left (parameters this backward never reached), waits, and
// writes the averages back into .grad().
//
// Each bucket carries one flag per parameter (1 when the rank has a gradient for it), so a parameter
// no rank used keeps an undefined gradient and optimizers skip it, as in a single process; one used
// by some ranks gets the sum over ranks divided by the world size (PyTorch DDP's convention).
#pragma once
#include <memory>
#include <vector>

#include "ember/trainer/distributed.h"

namespace ember::trainer {

class GradientReducer : public std::enable_shared_from_this<GradientReducer> {
 public:
  static std::shared_ptr<GradientReducer> create(std::shared_ptr<distributed::ProcessGroup> group,
                                                 const std::vector<Tensor>& params,
                                                 int64_t bucket_bytes = 25 << 20);
  // Whether the coming backward ends an accumulation window (only then are gradients reduced).
  void arm(bool on) { armed_ = on; }
  // After backward: reduces the rest, waits, and writes averaged gradients. Disarms.
  void finish();
  // Stops reacting to backward (the hooks stay on the tensors but do nothing).
  void detach() {
    armed_ = false;
    active_ = false;
  }

 private:
  struct Bucket {
    std::vector<size_t> params;
    std::vector<int64_t> offsets;  // element offset of each parameter in the buffer
    Tensor buffer;                 // gradients, then one flag per parameter
    size_t ready = 0;
    int64_t handle = -1;
  };
  GradientReducer(std::shared_ptr<distributed::ProcessGroup> group, std::vector<Tensor> params);
  void on_grad(size_t index, const Tensor& incoming);
  void write(size_t index, const Tensor& grad);
  void launch_ready();

  std::shared_ptr<distributed::ProcessGroup> group_;
  std::vector<Tensor> params_;
  std::vector<std::pair<size_t, size_t>> where_;  // parameter -> (bucket, slot)
  std::vector<Bucket> buckets_;
  std::vector<bool> written_;
  size_t next_launch_ = 0;
  bool armed_ = false, active_ = true;
};

}  // namespace ember::trainer
