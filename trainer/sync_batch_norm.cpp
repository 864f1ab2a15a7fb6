// SyncBatchNorm: see sync_batch_norm.h.
#include "ember/trainer/sync_batch_norm.h"

#include "ember/autograd/function.h"
#include "ember/nn/normalization.h"

namespace ember::trainer {
namespace {

struct AllReduceSum : autograd::Function<AllReduceSum> {
  static Tensor forward(autograd::AutogradContext* ctx, const Tensor& x,
                        std::shared_ptr<distributed::ProcessGroup> group) {
    Tensor out = x.contiguous().clone();
    group->all_reduce(out, distributed::ReduceOp::Sum);
    ctx->saved_data["group"] = group;
    return out;
  }
  static autograd::variable_list backward(autograd::AutogradContext* ctx, autograd::variable_list g) {
    auto group = std::any_cast<std::shared_ptr<distributed::ProcessGroup>>(ctx->saved_data["group"]);
    Tensor grad = g[0].contiguous().clone();
    group->all_reduce(grad, distributed::ReduceOp::Sum);
    return {grad};
  }
};

}  // namespace

Tensor all_reduce_sum(const Tensor& x, const std::shared_ptr<distributed::ProcessGroup>& group) {
  return AllReduceSum::apply(x, group);
}

int convert_sync_batchnorm(nn::Module& root, std::shared_ptr<distributed::ProcessGroup> group) {
  int converted = 0;
  root.apply([&](nn::Module& m) {
    if (auto* bn = dynamic_cast<nn::BatchNorm*>(&m)) {
      bn->reduce_stats = [group](const Tensor& stats) { return all_reduce_sum(stats, group); };
      ++converted;
    }
  });
  return converted;
}

}  // namespace ember::trainer
