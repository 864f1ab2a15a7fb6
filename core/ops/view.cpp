// View ops: new sizes/strides/offset over the same storage, no data moved. The gradient of a view is
// the incoming gradient mapped back: reshaped, permuted back, or written into zeros at the viewed
// positions (slice, select, diagonal), which `embed` does as a differentiable op of its own.
#include <numeric>

#include "ember/core/ops/internal.h"
#include "ember/core/shape_check.h"
#include "ember/core/trace.h"

namespace ember {
using namespace detail;

namespace {

using ViewFn = std::function<Tensor(const Tensor&)>;

// zeros(shape) with view_fn(zeros) replaced by g. Its own gradient is view_fn(grad): embedding
// and viewing are adjoint, which keeps double backward through views working.
Tensor embed(const Tensor& g, const Shape& shape, ViewFn view_fn) {
  Tensor out = zeros(shape, TensorOptions(g.dtype()).set_device(g.device()));
  {
    Tensor target = view_fn(out.detach());
    backend_of(out).strided_copy(g.dtype(), g.contiguous().data_ptr(), contiguous_strides(g.sizes()),
                                 target.data_ptr(), target.strides(), target.sizes());
  }
  autograd::record(
      "embed", {g}, {out}, {},
      [view_fn](FunctionNode&, const variable_list& gr) -> variable_list { return {view_fn(gr[0])}; });
  return out;
}

// Records a view whose backward embeds the gradient back into the input's shape.
// Views are the most frequent ops of all: without a graph to record or a tracer to tell, they keep
// no backward formula (so copy no shape and build no std::function).
template <class F>
Tensor record_embedding_view(const Tensor& x, Tensor out, const char* name, F&& view_fn_) {
  if (!autograd::records_or_traces(&x, &x + 1)) return out;
  Shape in_shape = x.sizes();
  ViewFn view_fn(std::forward<F>(view_fn_));
  autograd::record(name, {x}, {out}, {},
                   [in_shape, view_fn](FunctionNode&, const variable_list& g) -> variable_list {
                     return {embed(g[0], in_shape, view_fn)};
                   });
  return out;
}

Tensor record_reshape_view(const Tensor& x, Tensor out, const char* name) {
  if (!autograd::records_or_traces(&x, &x + 1)) return out;
  trace::OpScope scope;
  Shape in_shape = x.sizes();
  autograd::record(name, {x}, {out}, {}, [in_shape](FunctionNode&, const variable_list& g) -> variable_list {
    return {g[0].reshape(in_shape)};
  });
  if (scope.recording()) scope.record("reshape", {x}, {out}, {.ints = {{"shape", out.sizes()}}});
  return out;
}

// Strides for viewing a tensor with `strides` as `shape` without copying, if possible (the
// algorithm of PyTorch's computeStride: split and merge runs of dims that are contiguous).
std::optional<Shape> view_strides(const Shape& old_shape, const Shape& old_strides, const Shape& shape) {
  if (old_shape.empty()) return Shape(shape.size(), 1);
  const int64_t numel = numel_of(old_shape, "view");
  if (numel == 0) return contiguous_strides(shape);
  Shape new_strides(shape.size());
  int64_t view_d = static_cast<int64_t>(shape.size()) - 1;
  int64_t chunk_base_stride = old_strides.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t d = static_cast<int64_t>(old_shape.size()) - 1; d >= 0; --d) {
    tensor_numel *= old_shape[d];
    if (d == 0 || (old_shape[d - 1] != 1 && old_strides[d - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || shape[view_d] == 1)) {
        new_strides[view_d] = view_numel * chunk_base_stride;
        view_numel *= shape[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel) return std::nullopt;
      if (d > 0) {
        chunk_base_stride = old_strides[d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  if (view_d != -1) return std::nullopt;
  return new_strides;
}

// Resolves a single -1 in a requested shape.
Shape infer_shape(const Shape& requested, int64_t numel, const char* op, const Shape& from) {
  Shape shape = requested;
  int64_t known = 1, infer_at = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      EMBER_CHECK(infer_at < 0, op, ": only one dimension can be -1, got ", requested);
      infer_at = static_cast<int64_t>(i);
    } else {
      EMBER_CHECK(shape[i] >= 0, op, ": invalid size ", shape[i], " in shape ", requested);
      EMBER_CHECK(!__builtin_mul_overflow(known, shape[i], &known), op, ": shape ", requested,
                  " has more elements than int64 can count");
    }
  }
  if (infer_at >= 0) {
    EMBER_CHECK(known != 0 && numel % known == 0, op, ": shape ", requested,
                " is invalid for an input of shape ", from, " (", numel, " elements)");
    shape[infer_at] = numel / known;
  } else {
    EMBER_CHECK(known == numel, op, ": shape ", requested, " is invalid for an input of shape ", from, " (",
                numel, " elements)");
  }
  return shape;
}

}  // namespace

Tensor view(const Tensor& x, const Shape& requested) {
  Shape shape = infer_shape(requested, x.numel(), "view", x.sizes());
  auto st = view_strides(x.sizes(), x.strides(), shape);
  EMBER_CHECK(st.has_value(), "view: a tensor of shape ", x.sizes(), " and strides ", x.strides(),
              " cannot be viewed as ", shape, " without a copy; use reshape() instead");
  return record_reshape_view(x, alias_with(x, std::move(shape), std::move(*st), x.storage_offset()), "view");
}

Tensor reshape(const Tensor& x, const Shape& requested) {
  Shape shape = infer_shape(requested, x.numel(), "reshape", x.sizes());
  if (auto st = view_strides(x.sizes(), x.strides(), shape))
    return record_reshape_view(x, alias_with(x, std::move(shape), std::move(*st), x.storage_offset()),
                               "view");
  return view(x.contiguous(), shape);
}

Tensor flatten(const Tensor& x, int64_t start_dim, int64_t end_dim) {
  if (x.dim() == 0) return x.reshape({1});
  const int64_t s = wrap_dim(start_dim, x.dim(), "flatten"), e = wrap_dim(end_dim, x.dim(), "flatten");
  EMBER_CHECK(s <= e, "flatten: start_dim ", start_dim, " comes after end_dim ", end_dim);
  Shape shape(x.sizes().begin(), x.sizes().begin() + s);
  int64_t merged = 1;
  for (int64_t d = s; d <= e; ++d) merged *= x.size(d);
  shape.push_back(merged);
  shape.insert(shape.end(), x.sizes().begin() + e + 1, x.sizes().end());
  return x.reshape(shape);
}

Tensor permute(const Tensor& x, const Shape& dims) {
  EMBER_CHECK(static_cast<int64_t>(dims.size()) == x.dim(), "permute: got ", dims.size(), " dims ", dims,
              " for a tensor with ", x.dim(), " dims");
  Shape d = wrap_dims(dims, x.dim(), "permute");
  Shape sizes(d.size()), strides(d.size()), inverse(d.size());
  for (size_t i = 0; i < d.size(); ++i) {
    sizes[i] = x.size(d[i]);
    strides[i] = x.stride(d[i]);
    inverse[d[i]] = static_cast<int64_t>(i);
  }
  trace::OpScope scope;
  Tensor out = alias_with(x, std::move(sizes), std::move(strides), x.storage_offset());
  autograd::record("permute", {x}, {out}, {},
                   [inverse = std::move(inverse)](FunctionNode&, const variable_list& g) -> variable_list {
                     return {g[0].permute(inverse)};
                   });
  if (scope.recording()) scope.record("permute", {x}, {out}, {.ints = {{"perm", d}}});
  return out;
}

Tensor transpose(const Tensor& x, int64_t dim0, int64_t dim1) {
  if (x.dim() == 0) return x;
  const int64_t a = wrap_dim(dim0, x.dim(), "transpose"), b = wrap_dim(dim1, x.dim(), "transpose");
  Shape dims(x.dim());
  std::iota(dims.begin(), dims.end(), int64_t{0});
  std::swap(dims[a], dims[b]);
  return permute(x, dims);
}

Tensor squeeze(const Tensor& x, std::optional<int64_t> dim) {
  Shape shape;
  if (dim) {
    const int64_t d = wrap_dim(*dim, x.dim(), "squeeze");
    for (int64_t i = 0; i < x.dim(); ++i)
      if (i != d || x.size(i) != 1) shape.push_back(x.size(i));
  } else {
    for (auto s : x.sizes())
      if (s != 1) shape.push_back(s);
  }
  return view(x, shape);
}

Tensor unsqueeze(const Tensor& x, int64_t dim) {
  const int64_t d = wrap_dim(dim, x.dim() + 1, "unsqueeze");
  Shape sizes = x.sizes(), strides = x.strides();
  const int64_t st = d < x.dim() ? x.stride(d) * x.size(d) : 1;
  sizes.insert(sizes.begin() + d, 1);
  strides.insert(strides.begin() + d, st);
  return record_reshape_view(x, alias_with(x, std::move(sizes), std::move(strides), x.storage_offset()),
                             "unsqueeze");
}

Tensor expand(const Tensor& x, const Shape& target) {
  EMBER_CHECK(static_cast<int64_t>(target.size()) >= x.dim(), "expand: the target shape ", target,
              " has fewer dims than the tensor's shape ", x.sizes());
  const size_t lead = target.size() - x.sizes().size();
  Shape sizes(target.size()), strides(target.size());
  for (size_t i = 0; i < target.size(); ++i) {
    if (i < lead) {
      EMBER_CHECK(target[i] >= 0, "expand: the new leading size ", target[i], " must be >= 0");
      sizes[i] = target[i];
      strides[i] = 0;
      continue;
    }
    const int64_t have = x.sizes()[i - lead];
    const int64_t want = target[i] == -1 ? have : target[i];
    EMBER_CHECK(have == want || have == 1, "expand: the expanded size (", want,
                ") must match the existing size (", have, ") at dim ", i, "; shapes: tensor ", x.sizes(),
                ", target ", target);
    sizes[i] = want;
    strides[i] = have == want ? x.strides()[i - lead] : 0;
  }
  checked_numel(sizes, "expand");
  trace::OpScope scope;
  Tensor out = alias_with(x, std::move(sizes), std::move(strides), x.storage_offset());
  // Broadcasting's gradient is a sum back to the input shape, which FunctionNode does itself.
  autograd::record("expand", {x}, {out}, {},
                   [](FunctionNode&, const variable_list& g) -> variable_list { return {g[0]}; });
  if (scope.recording()) scope.record("expand", {x}, {out}, {.ints = {{"shape", out.sizes()}}});
  return out;
}

Tensor slice(const Tensor& x, int64_t dim, std::optional<int64_t> start_, std::optional<int64_t> end_,
             int64_t step) {
  EMBER_CHECK(x.dim() > 0, "slice: cannot slice a 0-d tensor");
  const int64_t d = wrap_dim(dim, x.dim(), "slice");
  EMBER_CHECK(step > 0, "slice: step must be positive, got ", step);
  const int64_t n = x.size(d);
  int64_t start = start_.value_or(0), end = end_.value_or(n);
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, start, n);
  Shape sizes = x.sizes(), strides = x.strides();
  sizes[d] = (end - start + step - 1) / step;
  strides[d] *= step;
  Tensor out = alias_with(x, std::move(sizes), std::move(strides), x.storage_offset() + start * x.stride(d));
  trace::OpScope scope;
  record_embedding_view(x, out, "slice",
                        [d, start, end, step](const Tensor& t) { return slice(t, d, start, end, step); });
  if (scope.recording())
    scope.record("slice", {x}, {out},
                 {.ints = {{"dim", {d}}, {"start", {start}}, {"end", {end}}, {"step", {step}}}});
  return out;
}

Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length) {
  const int64_t d = wrap_dim(dim, x.dim(), "narrow");
  const int64_t n = x.size(d);
  if (start < 0) start += n;
  EMBER_CHECK(start >= 0 && length >= 0 && start + length <= n, "narrow: start ", start, " + length ", length,
              " exceeds dim ", d, " of size ", n, " (shape ", x.sizes(), ")");
  return slice(x, d, start, start + length, 1);
}

Tensor select(const Tensor& x, int64_t dim, int64_t index) {
  EMBER_CHECK(x.dim() > 0, "select: cannot select from a 0-d tensor");
  const int64_t d = wrap_dim(dim, x.dim(), "select");
  const int64_t n = x.size(d);
  EMBER_CHECK(index >= -n && index < n, "select: index ", index, " is out of bounds for dim ", d,
              " with size ", n, " (shape ", x.sizes(), ")");
  if (index < 0) index += n;
  Shape sizes = x.sizes(), strides = x.strides();
  sizes.erase(sizes.begin() + d);
  strides.erase(strides.begin() + d);
  Tensor out = alias_with(x, std::move(sizes), std::move(strides), x.storage_offset() + index * x.stride(d));
  trace::OpScope scope;
  record_embedding_view(x, out, "select", [d, index](const Tensor& t) { return select(t, d, index); });
  if (scope.recording()) scope.record("select", {x}, {out}, {.ints = {{"dim", {d}}, {"index", {index}}}});
  return out;
}

Tensor diagonal(const Tensor& x, int64_t offset, int64_t dim1, int64_t dim2) {
  const int64_t a = wrap_dim(dim1, x.dim(), "diagonal"), b = wrap_dim(dim2, x.dim(), "diagonal");
  EMBER_CHECK(a != b, "diagonal: dim1 and dim2 must differ, both are ", a);
  int64_t len, start = x.storage_offset();
  if (offset >= 0) {
    len = std::max<int64_t>(0, std::min(x.size(a), x.size(b) - offset));
    if (len > 0) start += offset * x.stride(b);
  } else {
    len = std::max<int64_t>(0, std::min(x.size(a) + offset, x.size(b)));
    if (len > 0) start -= offset * x.stride(a);
  }
  Shape sizes, strides;
  for (int64_t i = 0; i < x.dim(); ++i)
    if (i != a && i != b) {
      sizes.push_back(x.size(i));
      strides.push_back(x.stride(i));
    }
  sizes.push_back(len);
  strides.push_back(x.stride(a) + x.stride(b));
  Tensor out = alias_with(x, std::move(sizes), std::move(strides), start);
  return record_embedding_view(x, out, "diagonal",
                               [offset, a, b](const Tensor& t) { return diagonal(t, offset, a, b); });
}

Tensor as_strided(const Tensor& x, const Shape& sizes, const Shape& strides,
                  std::optional<int64_t> storage_offset) {
  EMBER_CHECK(sizes.size() == strides.size(), "as_strided: ", sizes.size(), " sizes but ", strides.size(),
              " strides");
  const int64_t off = storage_offset.value_or(x.storage_offset());
  EMBER_CHECK(off >= 0, "as_strided: negative storage offset ", off);
  for (size_t i = 0; i < sizes.size(); ++i)
    EMBER_CHECK(sizes[i] >= 0 && strides[i] >= 0, "as_strided: negative size or stride in ", sizes, " / ",
                strides);
  const int64_t capacity = static_cast<int64_t>(x.impl()->storage->nbytes() / x.element_size());
  if (checked_numel(sizes, "as_strided") > 0) {
    // The furthest element the view reaches; a sum that overflows is as out of range as a large one.
    int64_t last = off;
    bool overflow = false;
    for (size_t i = 0; i < sizes.size(); ++i) {
      int64_t step = 0;
      overflow = overflow || __builtin_mul_overflow(sizes[i] - 1, strides[i], &step) ||
                 __builtin_add_overflow(last, step, &last);
    }
    EMBER_CHECK(!overflow && last < capacity, "as_strided: sizes ", sizes, " strides ", strides, " offset ",
                off, " reach beyond a storage of ", capacity, " elements");
  }
  Tensor out = alias_with(x, sizes, strides, off);
  // The gradient view is taken relative to a compact copy of x, so it is exact when x is compact
  // and the view does not overlap itself (the common uses: sliding windows are not differentiated).
  const int64_t rel = off - x.storage_offset();
  return record_embedding_view(x, out, "as_strided", [sizes, strides, rel](const Tensor& t) {
    return as_strided(t, sizes, strides, t.storage_offset() + rel);
  });
}

Tensor contiguous(const Tensor& x) {
  if (x.is_contiguous()) return x;
  Tensor out = make_empty(x.sizes(), x.dtype(), x.device());
  backend_of(x).strided_copy(x.dtype(), x.data_ptr(), x.strides(), out.data_ptr(), out.strides(), x.sizes());
  autograd::record("contiguous", {x}, {out}, {},
                   [](FunctionNode&, const variable_list& g) -> variable_list { return {g[0]}; });
  return out;
}

std::vector<Tensor> unbind(const Tensor& x, int64_t dim) {
  const int64_t d = wrap_dim(dim, x.dim(), "unbind");
  std::vector<Tensor> out;
  for (int64_t i = 0; i < x.size(d); ++i) out.push_back(select(x, d, i));
  return out;
}

std::vector<Tensor> split(const Tensor& x, const Shape& split_sizes, int64_t dim) {
  const int64_t d = wrap_dim(dim, x.dim(), "split");
  int64_t total = 0;
  for (auto s : split_sizes) total += s;
  EMBER_CHECK(total == x.size(d), "split: sizes ", split_sizes, " add up to ", total, " but dim ", d,
              " has size ", x.size(d));
  std::vector<Tensor> out;
  int64_t start = 0;
  for (auto s : split_sizes) {
    out.push_back(narrow(x, d, start, s));
    start += s;
  }
  return out;
}

std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim) {
  EMBER_CHECK(chunks > 0, "chunk: number of chunks must be positive, got ", chunks);
  const int64_t d = wrap_dim(dim, x.dim(), "chunk");
  const int64_t each = (x.size(d) + chunks - 1) / chunks;
  return x.split(std::max<int64_t>(each, 1), d);
}

}  // namespace ember
