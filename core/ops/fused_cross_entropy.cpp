// Per-row cross-entropy with class indices, fused or composed (see core/fused_ops.h). The fused
// forward makes one pass per row (logsumexp and the picked logit; the log-probabilities are never
// stored) and the backward one more, d loss_i / d x_i = (softmax(x_i) - onehot(t_i)) * w_i, from the
// saved logsumexp.
#include "ember/autograd/engine.h"
#include "ember/core/fused_ops.h"
#include "ember/core/ops/internal.h"

namespace ember::fused {
using namespace detail;

Tensor cross_entropy_composed(const Tensor& logits, const Tensor& target, const Tensor& row_weight) {
  return neg(gather(log_softmax(logits, 1), 1, target.unsqueeze(1)).squeeze(1)) * row_weight;
}

namespace {

// The composed gradient, differentiable in x (create_graph).
Tensor cross_entropy_grad_composed(const Tensor& x, const Tensor& t, const Tensor& w,
                                   const Tensor& grad_loss) {
  Tensor coef = (grad_loss * w).unsqueeze(1);
  return scatter_add(softmax(x, 1) * coef, 1, t.unsqueeze(1), neg(coef));
}

}  // namespace

Tensor cross_entropy(const Tensor& logits, const Tensor& target, const Tensor& row_weight) {
  auto* fused = fused_of(logits, kernels::FusedOp::CrossEntropy, logits.dtype());
  if (!fused) return cross_entropy_composed(logits, target, row_weight);
  const int64_t rows = logits.size(0), classes = logits.size(1);
  Tensor x = logits.contiguous(), t = target.contiguous(), w = row_weight.contiguous();
  Tensor loss = empty({rows}, logits.options()), lse = empty({rows}, logits.options());
  fused->cross_entropy_forward(x.dtype(), x.data_ptr(), static_cast<const int64_t*>(t.data_ptr()),
                               w.data_ptr(), rows, classes, loss.data_ptr(), lse.data_ptr());
  autograd::record("cross_entropy", {logits}, {loss}, {x, lse, t, w},
                   [rows, classes](FunctionNode& n, const variable_list& g) -> variable_list {
                     Tensor x = n.saved(0), lse = n.saved(1), t = n.saved(2), w = n.saved(3);
                     auto* fused = fused_of(x, kernels::FusedOp::CrossEntropy, x.dtype());
                     if (autograd::GradMode::is_enabled() || !fused)
                       return {cross_entropy_grad_composed(x, t, w, g[0])};
                     Tensor go = g[0].contiguous();
                     Tensor grad = empty({rows, classes}, x.options());
                     fused->cross_entropy_backward(
                         x.dtype(), x.data_ptr(), static_cast<const int64_t*>(t.data_ptr()), w.data_ptr(),
                         lse.data_ptr(), go.data_ptr(), rows, classes, grad.data_ptr());
                     return {grad};
                   });
  return loss;
}

}  // namespace ember::fused
