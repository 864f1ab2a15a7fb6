// Data parallelism: the distributed sampler and SyncBatchNorm set-up, and the collectives a module or
// callback may call through the Trainer (any_rank, all_gather, broadcast, barrier).
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
      warn("ember: the validation data does not split evenly over " + std::to_string(world_size()) +
           " ranks; " + std::to_string(repeated) +
           " example(s) or batch(es) are repeated to give every rank the same number, "
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

}  // namespace ember::trainer
