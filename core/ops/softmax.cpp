// softmax and log_softmax along any dim. The fused kernel works on rows of a compact [rows, cols]
// buffer, so a dim other than the last is moved last first; a backend without it gets the composed
// form (max, subtract, exp, sum, divide). Gradients (with y the output):
//   softmax:     dx = y * (g - sum(g * y))
//   log_softmax: dx = g - exp(y) * sum(g)
#include "ember/core/autocast.h"
#include "ember/core/ops/internal.h"
#include "ember/core/trace.h"

namespace ember {
using namespace detail;

namespace {

// Softmax of each row of `rows` from the backend's primitives alone.
Tensor softmax_composed(const Tensor& rows, bool log) {
  Tensor shifted = rows - amax(rows, {-1}, true);
  Tensor e = exp(shifted);
  Tensor total = sum(e, {-1}, true);
  return log ? shifted - ember::log(total) : e / total;
}

Tensor softmax_forward(const Tensor& x, int64_t d, bool log, const char* name) {
  EMBER_CHECK(is_floating(x.dtype()), name, ": input dtype must be floating point, got ",
              dtype_name(x.dtype()));
  autograd::NoGradGuard guard;
  const DType work = compute_dtype(x.dtype());
  const int64_t last = std::max<int64_t>(x.dim() - 1, 0);
  Tensor moved = (d == last ? x : x.transpose(d, last)).to(work).contiguous();
  Tensor out;
  if (auto* fused = fused_of(x, kernels::FusedOp::Softmax, work)) {
    out = make_empty(moved.sizes(), work, x.device());
    const int64_t cols = x.dim() ? moved.size(-1) : 1;
    if (out.numel() > 0)
      fused->softmax(work, moved.data_ptr(), out.data_ptr(), out.numel() / cols, cols, log);
  } else {
    out = softmax_composed(x.dim() ? moved : moved.reshape({1}), log).reshape(moved.sizes());
  }
  if (d != last) out = out.transpose(d, last).contiguous();
  return cast_if_needed(out, x.dtype());
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) {
  if (autocast::should_raise(x)) return softmax(autocast::raise(x), dim);
  const int64_t d = wrap_dim(dim, x.dim(), "softmax");
  trace::OpScope scope;
  Tensor out = softmax_forward(x, d, false, "softmax");
  autograd::record("softmax", {x}, {out}, {out},
                   [d](FunctionNode& n, const variable_list& g) -> variable_list {
                     Tensor y = n.saved(0);
                     Tensor gy = g[0] * y;
                     return {gy - y * sum(gy, {d}, true)};
                   });
  if (scope.recording()) scope.record("softmax", {x}, {out}, {.ints = {{"dim", {d}}}});
  return out;
}

Tensor log_softmax(const Tensor& x, int64_t dim) {
  if (autocast::should_raise(x)) return log_softmax(autocast::raise(x), dim);
  const int64_t d = wrap_dim(dim, x.dim(), "log_softmax");
  trace::OpScope scope;
  Tensor out = softmax_forward(x, d, true, "log_softmax");
  autograd::record("log_softmax", {x}, {out}, {out},
                   [d](FunctionNode& n, const variable_list& g) -> variable_list {
                     return {g[0] - exp(n.saved(0)) * sum(g[0], {d}, true)};
                   });
  if (scope.recording()) scope.record("log_softmax", {x}, {out}, {.ints = {{"dim", {d}}}});
  return out;
}

}  // namespace ember
