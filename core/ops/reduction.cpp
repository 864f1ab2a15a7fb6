// Reductions and scans. Every reduction is brought to the kernel layout [outer, r, inner] (r = the
// reduced elements): directly when the reduced dims are adjacent in a compact tensor, otherwise by
// moving them last and copying once. Gradients broadcast the output gradient back over the reduced
// dims; max/min send it to the winning positions.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "ember/core/ops/internal.h"
#include "ember/core/trace.h"

namespace ember {
using namespace detail;
using kernels::ReduceOp;

namespace {

struct Layout {
  Tensor in;  // compact input in the order the kernel reads it
  int64_t outer = 1, r = 1, inner = 1;
  Shape kept_shape;  // output shape with keepdim=true
  Shape out_shape;   // output shape with keepdim=false
};

Layout layout_for(const Tensor& x, const Shape& dims_in, const char* op) {
  Layout L;
  Shape dims = dims_in;
  if (dims.empty())  // "all dims"
    for (int64_t d = 0; d < x.dim(); ++d) dims.push_back(d);
  dims = wrap_dims(dims, x.dim(), op);
  std::sort(dims.begin(), dims.end());
  std::vector<bool> reduced(std::max<int64_t>(x.dim(), 1), false);
  for (auto d : dims) reduced[d] = true;
  for (int64_t d = 0; d < x.dim(); ++d) {
    L.kept_shape.push_back(reduced[d] ? 1 : x.size(d));
    if (!reduced[d]) L.out_shape.push_back(x.size(d));
  }
  autograd::NoGradGuard guard;
  const bool adjacent = dims.empty() || dims.back() - dims.front() + 1 == static_cast<int64_t>(dims.size());
  if (adjacent && x.is_contiguous()) {
    L.in = x;
    const int64_t first = dims.empty() ? x.dim() : dims.front();
    const int64_t last = dims.empty() ? x.dim() - 1 : dims.back();
    for (int64_t d = 0; d < x.dim(); ++d) {
      if (d < first) L.outer *= x.size(d);
      else if (d <= last) L.r *= x.size(d);
      else L.inner *= x.size(d);
    }
    return L;
  }
  Shape order;
  for (int64_t d = 0; d < x.dim(); ++d)
    if (!reduced[d]) {
      order.push_back(d);
      L.outer *= x.size(d);
    }
  for (auto d : dims) {
    order.push_back(d);
    L.r *= x.size(d);
  }
  L.in = x.permute(order).contiguous();
  return L;
}

Tensor reduce_kernel(ReduceOp op, const Layout& L, DType out_dtype, Device device, const char* name) {
  const bool arg = op == ReduceOp::ArgMax || op == ReduceOp::ArgMin;
  if ((op == ReduceOp::Max || op == ReduceOp::Min || arg) && L.r == 0)
    fail(name, ": cannot reduce over an empty dimension (the input has 0 elements there)");
  Tensor out = make_empty({L.outer * L.inner}, arg ? kInt64 : out_dtype, device);
  if (L.outer * L.inner > 0)
    kernels::backend_for(device).reduce(op, L.in.dtype(), L.in.data_ptr(), out.data_ptr(), L.outer, L.r,
                                        L.inner);
  return out;
}

// Runs the reduction in the dtype the kernel needs and returns it shaped per keepdim.
Tensor reduce_values(ReduceOp op, const Tensor& x, const Shape& dims, bool keepdim, DType acc,
                     const char* name) {
  autograd::NoGradGuard guard;
  Tensor xc = cast_if_needed(x, acc);
  Layout L = layout_for(xc, dims, name);
  Tensor out = reduce_kernel(op, L, acc, x.device(), name);
  return out.view(keepdim ? L.kept_shape : L.out_shape);
}

// g (shaped like the reduction's output) broadcast back to `in_shape`.
Tensor grad_to_input(const Tensor& g, const Shape& in_shape, const Shape& dims, bool keepdim) {
  Tensor gk = g;
  if (!keepdim) {
    Shape all = dims;
    if (all.empty())
      for (int64_t d = 0; d < static_cast<int64_t>(in_shape.size()); ++d) all.push_back(d);
    all = wrap_dims(all, in_shape.size(), "sum");
    std::sort(all.begin(), all.end());
    for (auto d : all) gk = gk.unsqueeze(d);
  }
  return gk.expand(in_shape);
}

DType sum_dtype(DType t) { return is_floating(t) ? compute_dtype(t) : kInt64; }

}  // namespace

Tensor sum(const Tensor& x, const Shape& dims, bool keepdim) {
  trace::OpScope scope;
  const DType acc = sum_dtype(x.dtype());
  Tensor out = reduce_values(ReduceOp::Sum, x, dims, keepdim, acc, "sum");
  if (is_half(x.dtype())) {
    autograd::NoGradGuard g;
    out = out.to(x.dtype());
  }
  Shape in_shape = x.sizes();
  autograd::record("sum", {x}, {out}, {},
                   [in_shape, dims, keepdim](FunctionNode&, const variable_list& g) -> variable_list {
                     return {grad_to_input(g[0], in_shape, dims, keepdim)};
                   });
  if (scope.recording())
    scope.record("sum", {x}, {out},
                 {.ints = {{"dims", wrap_dims(dims, x.dim(), "sum")}, {"keepdim", {keepdim}}}});
  return out;
}

Tensor sum(const Tensor& x) { return sum(x, {}, false); }

Tensor mean(const Tensor& x, const Shape& dims, bool keepdim) {
  EMBER_CHECK(is_floating(x.dtype()), "mean: input dtype must be floating point, got ", dtype_name(x.dtype()),
              "; convert with .to(kFloat32) first");
  int64_t count = 1;
  if (dims.empty()) count = x.numel();
  else
    for (auto d : wrap_dims(dims, x.dim(), "mean")) count *= x.size(d);
  trace::OpScope scope;
  Tensor out = sum(x, dims, keepdim) / static_cast<double>(count);
  if (scope.recording())
    scope.record("mean", {x}, {out},
                 {.ints = {{"dims", wrap_dims(dims, x.dim(), "mean")}, {"keepdim", {keepdim}}}});
  return out;
}

Tensor mean(const Tensor& x) { return mean(x, {}, false); }

Tensor prod(const Tensor& x, int64_t dim, bool keepdim) {
  const int64_t d = wrap_dim(dim, x.dim(), "prod");
  const DType acc = sum_dtype(x.dtype());
  Tensor out = reduce_values(ReduceOp::Prod, x, {d}, keepdim, acc, "prod");
  autograd::record("prod", {x}, {out}, {x, out},
                   [d, keepdim](FunctionNode& n, const variable_list& g) -> variable_list {
                     Tensor x = n.saved(0), out = n.saved(1);
                     Tensor gk = keepdim ? g[0] : g[0].unsqueeze(d);
                     Tensor ok = keepdim ? out : out.unsqueeze(d);
                     // Zeros need care: with one zero in a slice, its gradient is the product of
                     // the others; with two or more, every gradient in the slice is zero.
                     Tensor is_zero = x == 0;
                     Tensor zeros_in_slice = sum(is_zero.to(kInt64), {d}, true);
                     Tensor others = prod(where(is_zero, ones_like(x), x), d, true);
                     Tensor at_zero = where(zeros_in_slice == 1, others, zeros_like(others));
                     Tensor safe_x = where(is_zero, ones_like(x), x);
                     return {gk * where(is_zero, at_zero.expand_as(x), ok / safe_x)};
                   });
  return out;
}

Tensor prod(const Tensor& x) { return prod(x.reshape({-1}), 0, false); }

namespace {

// max()/min()/amax/amin: the gradient is shared evenly by all positions that hold the extreme.
Tensor extreme(const Tensor& x, const Shape& dims, bool keepdim, bool is_max, const char* name) {
  trace::OpScope scope;
  Tensor out =
      reduce_values(is_max ? ReduceOp::Max : ReduceOp::Min, x, dims, keepdim, compute_dtype(x.dtype()), name);
  if (is_half(x.dtype())) {
    autograd::NoGradGuard g;
    out = out.to(x.dtype());
  }
  Shape in_shape = x.sizes();
  autograd::record(name, {x}, {out}, {x, out},
                   [dims, keepdim, in_shape](FunctionNode& n, const variable_list& g) -> variable_list {
                     Tensor x = n.saved(0);
                     Tensor ext = grad_to_input(n.saved(1), in_shape, dims, keepdim);
                     Tensor mask = (x == ext).to(g[0].dtype());
                     Tensor count = grad_to_input(sum(mask, dims, keepdim), in_shape, dims, keepdim);
                     return {grad_to_input(g[0], in_shape, dims, keepdim) * mask / count};
                   });
  if (scope.recording())
    scope.record(is_max ? "amax" : "amin", {x}, {out},
                 {.ints = {{"dims", wrap_dims(dims, x.dim(), name)}, {"keepdim", {keepdim}}}});
  return out;
}

// The index of the extreme along d, reported to a tracer as one op.
Tensor arg_extreme(const Tensor& x, int64_t d, bool keepdim, bool is_max) {
  trace::OpScope scope;
  Tensor idx = reduce_values(is_max ? ReduceOp::ArgMax : ReduceOp::ArgMin, x, {d}, true,
                             compute_dtype(x.dtype()), is_max ? "argmax" : "argmin");
  if (!keepdim) idx = idx.squeeze(d);
  if (scope.recording())
    scope.record(is_max ? "argmax" : "argmin", {x}, {idx}, {.ints = {{"dim", {d}}, {"keepdim", {keepdim}}}});
  return idx;
}

std::pair<Tensor, Tensor> extreme_dim(const Tensor& x, int64_t dim, bool keepdim, bool is_max,
                                      const char* name) {
  const int64_t d = wrap_dim(dim, x.dim(), name);
  // Traced as two ops (values, then indices), the way ONNX computes them.
  if (trace::recording()) return {extreme(x, {d}, keepdim, is_max, name), arg_extreme(x, d, keepdim, is_max)};
  Tensor idx = reduce_values(is_max ? ReduceOp::ArgMax : ReduceOp::ArgMin, x, {d}, true,
                             compute_dtype(x.dtype()), name);
  if (x.dim() == 0) return {x, zeros({}, kInt64)};
  Tensor values = gather(x, d, idx);  // differentiable: the gradient lands on the winners
  if (!keepdim) return {values.squeeze(d), idx.squeeze(d)};
  return {values, idx};
}

}  // namespace

Tensor max(const Tensor& x) { return extreme(x, {}, false, true, "max"); }
Tensor min(const Tensor& x) { return extreme(x, {}, false, false, "min"); }
Tensor amax(const Tensor& x, const Shape& dims, bool keepdim) {
  return extreme(x, dims, keepdim, true, "amax");
}
Tensor amin(const Tensor& x, const Shape& dims, bool keepdim) {
  return extreme(x, dims, keepdim, false, "amin");
}
std::pair<Tensor, Tensor> max(const Tensor& x, int64_t dim, bool keepdim) {
  return extreme_dim(x, dim, keepdim, true, "max");
}
std::pair<Tensor, Tensor> min(const Tensor& x, int64_t dim, bool keepdim) {
  return extreme_dim(x, dim, keepdim, false, "min");
}

Tensor argmax(const Tensor& x, std::optional<int64_t> dim, bool keepdim) {
  if (dim && trace::recording()) return arg_extreme(x, wrap_dim(*dim, x.dim(), "argmax"), keepdim, true);
  if (!dim)
    return reduce_values(ReduceOp::ArgMax, x.reshape({-1}), {0}, false, compute_dtype(x.dtype()), "argmax");
  return extreme_dim(x, *dim, keepdim, true, "argmax").second;
}

Tensor argmin(const Tensor& x, std::optional<int64_t> dim, bool keepdim) {
  if (dim && trace::recording()) return arg_extreme(x, wrap_dim(*dim, x.dim(), "argmin"), keepdim, false);
  if (!dim)
    return reduce_values(ReduceOp::ArgMin, x.reshape({-1}), {0}, false, compute_dtype(x.dtype()), "argmin");
  return extreme_dim(x, *dim, keepdim, false, "argmin").second;
}

Tensor var(const Tensor& x, std::optional<Shape> dims, int64_t correction, bool keepdim) {
  EMBER_CHECK(is_floating(x.dtype()), "var: input dtype must be floating point, got ", dtype_name(x.dtype()));
  Shape ds = dims.value_or(Shape{});
  int64_t count = 1;
  if (ds.empty()) count = x.numel();
  else
    for (auto d : wrap_dims(ds, x.dim(), "var")) count *= x.size(d);
  Tensor centered = x - mean(x, ds, true);
  // With count <= correction the estimate is undefined; PyTorch returns nan (or inf) there too.
  const double denom = static_cast<double>(std::max<int64_t>(count - correction, 0));
  return sum(centered * centered, ds, keepdim) / denom;
}

Tensor std(const Tensor& x, std::optional<Shape> dims, int64_t correction, bool keepdim) {
  return sqrt(var(x, dims, correction, keepdim));
}

Tensor norm(const Tensor& x, double p, std::optional<Shape> dims, bool keepdim) {
  EMBER_CHECK(is_floating(x.dtype()), "norm: input dtype must be floating point, got ",
              dtype_name(x.dtype()));
  Shape ds = dims.value_or(Shape{});
  if (std::isinf(p)) return p > 0 ? amax(abs(x), ds, keepdim) : amin(abs(x), ds, keepdim);
  if (p == 1) return sum(abs(x), ds, keepdim);
  if (p == 0) return sum((x != 0).to(x.dtype()), ds, keepdim);
  Tensor out;
  {
    autograd::NoGradGuard guard;
    out = p == 2 ? sqrt(sum(x * x, ds, keepdim)) : pow(sum(pow(abs(x), p), ds, keepdim), 1.0 / p);
  }
  Shape in_shape = x.sizes();
  autograd::record("norm", {x}, {out}, {x, out},
                   [p, ds, keepdim, in_shape](FunctionNode& n, const variable_list& g) -> variable_list {
                     Tensor x = n.saved(0);
                     Tensor nrm = grad_to_input(n.saved(1), in_shape, ds, keepdim);
                     Tensor gk = grad_to_input(g[0], in_shape, ds, keepdim);
                     // d||x||_p/dx = sign(x)|x|^(p-1) / ||x||^(p-1); defined as 0 at x = 0.
                     Tensor num = p == 2 ? x : sign(x) * pow(abs(x), p - 1);
                     Tensor den = p == 2 ? nrm : pow(nrm, p - 1);
                     Tensor safe = where(den == 0, ones_like(den), den);
                     return {where(den == 0, zeros_like(gk), gk * num / safe)};
                   });
  return out;
}

Tensor logsumexp(const Tensor& x, const Shape& dims, bool keepdim) {
  Tensor m;
  {
    autograd::NoGradGuard guard;
    m = amax(x, dims, true);
    m = where(abs(m) == INFINITY, zeros_like(m), m);  // all -inf rows give -inf, not nan
  }
  Tensor out = log(sum(exp(x - m), dims, true)) + m;
  if (keepdim) return out;
  Shape ds = dims.empty() ? Shape{} : wrap_dims(dims, x.dim(), "logsumexp");
  if (ds.empty())
    for (int64_t d = 0; d < x.dim(); ++d) ds.push_back(d);
  std::sort(ds.rbegin(), ds.rend());
  for (auto d : ds) out = out.squeeze(d);
  return out;
}

Tensor cumsum(const Tensor& x, int64_t dim) {
  const int64_t d = wrap_dim(dim, x.dim(), "cumsum");
  const DType acc = sum_dtype(x.dtype());
  Tensor out;
  {
    autograd::NoGradGuard guard;
    Tensor xc = cast_if_needed(x, acc).contiguous();
    out = make_empty(x.sizes(), acc, x.device());
    int64_t outer = 1, inner = 1;
    for (int64_t i = 0; i < x.dim(); ++i) {
      if (i < d) outer *= x.size(i);
      if (i > d) inner *= x.size(i);
    }
    if (out.numel() > 0)
      backend_of(x).cumsum(acc, xc.data_ptr(), out.data_ptr(), outer, x.dim() ? x.size(d) : 1, inner);
  }
  autograd::record("cumsum", {x}, {out}, {}, [d](FunctionNode&, const variable_list& g) -> variable_list {
    // Reverse cumulative sum: total - prefix + self.
    return {sum(g[0], {d}, true) - cumsum(g[0], d) + g[0]};
  });
  return out;
}

Tensor sum_to(const Tensor& x, const Shape& shape) {
  if (x.sizes() == shape) return x;
  const int64_t lead = x.dim() - static_cast<int64_t>(shape.size());
  EMBER_CHECK(lead >= 0, "sum_to: cannot sum shape ", x.sizes(), " to the larger shape ", shape);
  Shape dims;
  for (int64_t d = 0; d < x.dim(); ++d)
    if (d < lead || (shape[d - lead] == 1 && x.size(d) != 1)) dims.push_back(d);
  Tensor r = dims.empty() ? x : sum(x, dims, true);
  return r.reshape(shape);
}

}  // namespace ember
