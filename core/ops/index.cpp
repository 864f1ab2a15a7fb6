// Index ops: gather/scatter along a dim, index_select/index_add, masks, sort/topk, embedding and
// one_hot. Indices are int64 and checked against the dim size before any kernel runs, so a bad index
// is an ember::Error, never an out-of-bounds access. The gradients pair up: index_select <->
// index_add, gather <-> scatter_add.
#include <algorithm>
#include <numeric>

#include "ember/core/ops/internal.h"
#include "ember/core/trace.h"

namespace ember {
using namespace detail;

namespace {

void check_index_tensor(const Tensor& index, int64_t size, const char* op, const Shape& self_shape,
                        int64_t dim) {
  EMBER_CHECK(index.dtype() == kInt64 || index.dtype() == kInt32, op,
              ": indices must be an int64 (or int32) tensor, got ", dtype_name(index.dtype()));
  if (index.numel() == 0) return;
  int64_t lo = 0, hi = 0;
  if (index.is_cpu() && index.is_contiguous()) {
    // Host memory: one pass, no reduction ops (a token's embedding lookup is a few indices).
    auto bounds = [&](const auto* p) {
      lo = hi = p[0];
      for (int64_t i = 1; i < index.numel(); ++i)
        lo = std::min<int64_t>(lo, p[i]), hi = std::max<int64_t>(hi, p[i]);
    };
    if (index.dtype() == kInt64) bounds(index.data_ptr<int64_t>());
    else bounds(index.data_ptr<int32_t>());
  } else {
    autograd::NoGradGuard guard;
    Tensor i64 = index.to(kInt64);
    lo = min(i64).item<int64_t>(), hi = max(i64).item<int64_t>();
  }
  if (lo < 0 || hi >= size)
    fail(op, ": index ", lo < 0 ? lo : hi, " is out of bounds for dim ", dim, " with size ", size,
         " (tensor shape ", self_shape, ")");
}

// outer = product of sizes before dim, inner = product after.
std::pair<int64_t, int64_t> outer_inner(const Shape& s, int64_t dim) {
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < static_cast<int64_t>(s.size()); ++i) {
    if (i < dim) outer *= s[i];
    if (i > dim) inner *= s[i];
  }
  return {outer, inner};
}

}  // namespace

namespace {

// index_select whose errors name `op`: embedding is one, and its users should read "embedding".
Tensor index_select_as(const Tensor& x, int64_t dim, const Tensor& index, const char* op) {
  const int64_t d = wrap_dim(dim, x.dim(), op);
  EMBER_CHECK(index.dim() <= 1, op, ": index must be 0-D or 1-D, got shape ", index.sizes());
  check_index_tensor(index, x.dim() ? x.size(d) : 1, op, x.sizes(), d);
  Tensor out;
  {
    autograd::NoGradGuard guard;
    Tensor idx = index.to(x.device(), kInt64).contiguous().reshape({-1});
    Tensor xc = x.contiguous();
    Shape shape = x.sizes();
    if (x.dim()) shape[d] = idx.numel();
    out = make_empty(shape, x.dtype(), x.device());
    auto [outer, inner] = outer_inner(x.sizes(), d);
    if (out.numel() > 0)
      backend_of(x).index_select(x.dtype(), xc.data_ptr(), x.dim() ? x.size(d) : 1,
                                 static_cast<int64_t*>(idx.data_ptr()), idx.numel(), out.data_ptr(), outer,
                                 inner);
  }
  Shape in_shape = x.sizes();
  autograd::record("index_select", {x}, {out}, {index},
                   [d, in_shape](FunctionNode& n, const variable_list& g) -> variable_list {
                     Tensor z = zeros(in_shape, TensorOptions(g[0].dtype()).set_device(g[0].device()));
                     return {index_add(z, d, n.saved(0).reshape({-1}), g[0])};
                   });
  return out;
}

}  // namespace

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
  if (trace::recording())
    return trace::traced("index_select", {x, index},
                         {.ints = {{"dim", {wrap_dim(dim, x.dim(), "index_select")}}}},
                         [&] { return index_select(x, dim, index); });
  return index_select_as(x, dim, index, "index_select");
}

Tensor index_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& source, Scalar alpha) {
  const int64_t d = wrap_dim(dim, x.dim(), "index_add");
  EMBER_CHECK(index.dim() <= 1, "index_add: index must be 1-D, got shape ", index.sizes());
  Shape expect = x.sizes();
  if (x.dim()) expect[d] = index.numel();
  EMBER_CHECK(source.sizes() == expect || (x.dim() == 0 && source.numel() == 1),
              "index_add: source of shape ", source.sizes(), " does not match the expected shape ", expect,
              " (self ", x.sizes(), ", ", index.numel(), " indices along dim ", d, ")");
  check_index_tensor(index, x.dim() ? x.size(d) : 1, "index_add", x.sizes(), d);
  Tensor out;
  {
    autograd::NoGradGuard guard;
    out = x.clone();
    Tensor idx = index.to(x.device(), kInt64).contiguous().reshape({-1});
    Tensor src = source.to(x.dtype()).contiguous();
    auto [outer, inner] = outer_inner(x.sizes(), d);
    if (src.numel() > 0)
      backend_of(x).index_add(x.dtype(), out.data_ptr(), x.dim() ? x.size(d) : 1,
                              static_cast<int64_t*>(idx.data_ptr()), idx.numel(), src.data_ptr(), outer,
                              inner, alpha.to_double());
  }
  const double a = alpha.to_double();
  autograd::record("index_add", {x, source}, {out}, {index},
                   [d, a](FunctionNode& n, const variable_list& g) -> variable_list {
                     Tensor gs;
                     if (n.needs_input_grad(1)) gs = index_select(g[0], d, n.saved(0).reshape({-1})) * a;
                     return {g[0], gs};
                   });
  return out;
}

Tensor gather(const Tensor& x, int64_t dim, const Tensor& index) {
  if (trace::recording())
    return trace::traced("gather", {x, index}, {.ints = {{"dim", {wrap_dim(dim, x.dim(), "gather")}}}},
                         [&] { return gather(x, dim, index); });
  const int64_t d = wrap_dim(dim, x.dim(), "gather");
  EMBER_CHECK(index.dim() == x.dim(), "gather: index has ", index.dim(), " dims but the input has ", x.dim(),
              " (shapes ", index.sizes(), " and ", x.sizes(), ")");
  for (int64_t i = 0; i < x.dim(); ++i)
    EMBER_CHECK(i == d || index.size(i) <= x.size(i), "gather: index shape ", index.sizes(),
                " is larger than input shape ", x.sizes(), " at dim ", i);
  check_index_tensor(index, x.dim() ? x.size(d) : 1, "gather", x.sizes(), d);
  Tensor out;
  {
    autograd::NoGradGuard guard;
    // Cut the input down to the index's extent on the other dims, then read it as [outer, n, inner].
    Tensor xs = x;
    for (int64_t i = 0; i < x.dim(); ++i)
      if (i != d) xs = xs.narrow(i, 0, index.size(i));
    xs = xs.contiguous();
    Tensor idx = index.to(x.device(), kInt64).contiguous();
    out = make_empty(index.sizes(), x.dtype(), x.device());
    auto [outer, inner] = outer_inner(index.sizes(), d);
    if (out.numel() > 0)
      backend_of(x).gather(x.dtype(), xs.data_ptr(), x.dim() ? x.size(d) : 1,
                           static_cast<int64_t*>(idx.data_ptr()), out.data_ptr(), outer,
                           index.dim() ? index.size(d) : 1, inner);
  }
  Shape in_shape = x.sizes();
  autograd::record("gather", {x}, {out}, {index},
                   [d, in_shape](FunctionNode& n, const variable_list& g) -> variable_list {
                     Tensor z = zeros(in_shape, TensorOptions(g[0].dtype()).set_device(g[0].device()));
                     return {scatter_add(z, d, n.saved(0), g[0])};
                   });
  return out;
}

namespace {

Tensor scatter_impl(const Tensor& x, int64_t d, const Tensor& index, const Tensor& src, bool accumulate,
                    const char* name) {
  EMBER_CHECK(index.dim() == x.dim() && src.dim() == x.dim(), name,
              ": self, index and src must have the same number of dims, got shapes ", x.sizes(), ", ",
              index.sizes(), ", ", src.sizes());
  for (int64_t i = 0; i < x.dim(); ++i) {
    EMBER_CHECK(index.size(i) <= src.size(i), name, ": index shape ", index.sizes(),
                " is larger than src shape ", src.sizes(), " at dim ", i);
    EMBER_CHECK(i == d || index.size(i) <= x.size(i), name, ": index shape ", index.sizes(),
                " is larger than self shape ", x.sizes(), " at dim ", i);
  }
  check_index_tensor(index, x.dim() ? x.size(d) : 1, name, x.sizes(), d);
  autograd::NoGradGuard guard;
  // Work on a compact tensor whose non-dim extents equal the index's, then write it back.
  Tensor out = x.clone();
  Tensor region = out;
  for (int64_t i = 0; i < x.dim(); ++i)
    if (i != d) region = region.narrow(i, 0, index.size(i));
  Tensor work = region.contiguous();
  Tensor s = src;
  for (int64_t i = 0; i < x.dim(); ++i) s = s.narrow(i, 0, index.size(i));
  s = s.to(x.device(), x.dtype()).contiguous();
  Tensor idx = index.to(x.device(), kInt64).contiguous();
  auto [outer, inner] = outer_inner(index.sizes(), d);
  if (idx.numel() > 0)
    backend_of(x).scatter(x.dtype(), work.data_ptr(), x.dim() ? x.size(d) : 1,
                          static_cast<int64_t*>(idx.data_ptr()), s.data_ptr(), outer,
                          index.dim() ? index.size(d) : 1, inner, accumulate);
  if (!work.is_same(region))
    backend_of(x).strided_copy(x.dtype(), work.data_ptr(), work.strides(), region.data_ptr(),
                               region.strides(), region.sizes());
  return out;
}

}  // namespace

Tensor scatter(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src) {
  const int64_t d = wrap_dim(dim, x.dim(), "scatter");
  Tensor out = scatter_impl(x, d, index, src, false, "scatter");
  autograd::record("scatter", {x, src}, {out}, {index},
                   [d](FunctionNode& n, const variable_list& g) -> variable_list {
                     Tensor idx = n.saved(0);
                     Tensor gx, gs;
                     // Overwritten positions get no gradient in self; src gets what was read there.
                     if (n.needs_input_grad(0)) gx = scatter(g[0], d, idx, 0.0);
                     if (n.needs_input_grad(1)) gs = gather(g[0], d, idx);
                     return {gx, gs};
                   });
  return out;
}

Tensor scatter(const Tensor& x, int64_t dim, const Tensor& index, Scalar value) {
  Tensor src = full(index.sizes(), value, TensorOptions(x.dtype()).set_device(x.device()));
  const int64_t d = wrap_dim(dim, x.dim(), "scatter");
  Tensor out = scatter_impl(x, d, index, src, false, "scatter");
  autograd::record("scatter", {x}, {out}, {index},
                   [d](FunctionNode& n, const variable_list& g) -> variable_list {
                     return {scatter(g[0], d, n.saved(0), 0.0)};
                   });
  return out;
}

Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src) {
  const int64_t d = wrap_dim(dim, x.dim(), "scatter_add");
  Tensor out = scatter_impl(x, d, index, src, true, "scatter_add");
  autograd::record("scatter_add", {x, src}, {out}, {index},
                   [d](FunctionNode& n, const variable_list& g) -> variable_list {
                     Tensor gs;
                     if (n.needs_input_grad(1)) gs = gather(g[0], d, n.saved(0));
                     return {g[0], gs};
                   });
  return out;
}

Tensor nonzero(const Tensor& x) {
  autograd::NoGradGuard guard;
  Tensor mask = (x.dtype() == kBool ? x : x != 0).contiguous();
  auto& be = backend_of(x);
  const int64_t count = be.nonzero(mask.data_ptr(), mask.numel(), nullptr);
  Tensor flat = make_empty({count}, kInt64, x.device());
  if (count) be.nonzero(mask.data_ptr(), mask.numel(), static_cast<int64_t*>(flat.data_ptr()));
  if (x.dim() == 0) return make_empty({count, 0}, kInt64, x.device());
  // Flat positions to coordinates, one column per dim, last dim first.
  std::vector<Tensor> cols(x.dim());
  Tensor rem = flat;
  for (int64_t d = x.dim() - 1; d >= 0; --d) {
    Tensor q = floor_divide(rem, x.size(d));
    cols[d] = rem - q * x.size(d);
    rem = q;
  }
  return stack(cols, 1);
}

Tensor masked_select(const Tensor& x, const Tensor& mask) {
  EMBER_CHECK(mask.dtype() == kBool, "masked_select: mask must be a bool tensor, got ",
              dtype_name(mask.dtype()));
  const Shape shape = broadcast_shapes(x.sizes(), mask.sizes(), "masked_select");
  Tensor m = mask.expand(shape).contiguous();
  Tensor positions;
  {
    autograd::NoGradGuard guard;
    auto& be = backend_of(x);
    const int64_t count = be.nonzero(m.data_ptr(), m.numel(), nullptr);
    positions = make_empty({count}, kInt64, x.device());
    if (count) be.nonzero(m.data_ptr(), m.numel(), static_cast<int64_t*>(positions.data_ptr()));
  }
  return index_select(x.expand(shape).reshape({-1}), 0, positions);
}

Tensor embedding(const Tensor& weight, const Tensor& indices) {
  if (trace::recording())
    return trace::traced("embedding", {weight, indices}, {}, [&] { return embedding(weight, indices); });
  EMBER_CHECK(weight.dim() == 2, "embedding: weight must be 2-D [num_embeddings, dim], got ", weight.sizes());
  Shape shape = indices.sizes();
  shape.push_back(weight.size(1));
  return index_select_as(weight, 0, indices.reshape({-1}), "embedding").view(shape);
}

Tensor one_hot(const Tensor& indices, int64_t num_classes) {
  EMBER_CHECK(indices.dtype() == kInt64, "one_hot: indices must be int64, got ", dtype_name(indices.dtype()));
  autograd::NoGradGuard guard;
  if (num_classes < 0) {
    EMBER_CHECK(indices.numel() > 0, "one_hot: cannot infer num_classes from an empty tensor");
    num_classes = max(indices).item<int64_t>() + 1;
  }
  if (indices.numel() > 0) {
    EMBER_CHECK(min(indices).item<int64_t>() >= 0, "one_hot: class values must be non-negative");
    EMBER_CHECK(max(indices).item<int64_t>() < num_classes, "one_hot: class value ",
                max(indices).item<int64_t>(), " is not below num_classes ", num_classes);
  }
  Tensor classes = arange(num_classes, TensorOptions(kInt64).set_device(indices.device()));
  return eq(indices.unsqueeze(-1), classes).to(kInt64);
}

std::pair<Tensor, Tensor> sort(const Tensor& x, int64_t dim, bool descending) {
  const int64_t d = wrap_dim(dim, x.dim(), "sort");
  if (x.dim() == 0) return {x, zeros({}, kInt64)};
  Tensor idx;
  {
    autograd::NoGradGuard guard;
    const int64_t last = x.dim() - 1;
    Tensor moved = (d == last ? x : x.transpose(d, last)).to(compute_dtype(x.dtype())).contiguous();
    idx = make_empty(moved.sizes(), kInt64, x.device());
    const int64_t cols = moved.size(-1);
    if (idx.numel() > 0)
      backend_of(x).sort(moved.dtype(), moved.data_ptr(), static_cast<int64_t*>(idx.data_ptr()),
                         idx.numel() / cols, cols, descending);
    if (d != last) idx = idx.transpose(d, last).contiguous();
  }
  return {gather(x, d, idx), idx};  // values through gather: the gradient follows the indices
}

Tensor argsort(const Tensor& x, int64_t dim, bool descending) { return sort(x, dim, descending).second; }

std::pair<Tensor, Tensor> topk(const Tensor& x, int64_t k, int64_t dim, bool largest, bool sorted) {
  const int64_t d = wrap_dim(dim, x.dim(), "topk");
  const int64_t n = x.dim() ? x.size(d) : 1;
  EMBER_CHECK(k >= 0 && k <= n, "topk: k (", k, ") is out of range for dim ", d, " of size ", n, " (shape ",
              x.sizes(), ")");
  (void)sorted;  // results are always sorted, which satisfies both settings
  Tensor idx = sort(x, d, largest).second.narrow(d, 0, k);
  return {gather(x, d, idx), idx};
}

}  // namespace ember
