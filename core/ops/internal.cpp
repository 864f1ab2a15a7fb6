// Implementation of the op helpers in internal.h.
#include "ember/core/ops/internal.h"
#include "ember/core/trace.h"

#include "ember/core/shape_check.h"

namespace ember::detail {

Shape contiguous_strides(const Shape& shape) {
  Shape strides(shape.size());
  int64_t step = 1;
  for (size_t d = shape.size(); d-- > 0;) {
    strides[d] = step;
    step *= std::max<int64_t>(shape[d], 1);
  }
  return strides;
}

int64_t numel_of(const Shape& shape, const char* op) { return checked_numel(shape, op); }

Tensor make_empty(Shape shape, DType dtype, Device device) {
  const int64_t nbytes = checked_nbytes(shape, itemsize(dtype), "empty");
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(static_cast<size_t>(nbytes), device);
  impl->strides = contiguous_strides(shape);
  impl->sizes = std::move(shape);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op) {
  const int64_t n = std::max<int64_t>(ndim, 1);  // a 0-d tensor accepts dim 0 and -1
  if (dim < -n || dim >= n)
    fail(op, ": dimension ", dim, " is out of range for a tensor with ", ndim, " dims (expected a dim in [",
         -n, ", ", n - 1, "])");
  return dim < 0 ? dim + n : dim;
}

Shape wrap_dims(const Shape& dims, int64_t ndim, const char* op) {
  Shape out;
  for (auto d : dims) {
    int64_t w = wrap_dim(d, ndim, op);
    for (auto o : out) EMBER_CHECK(o != w, op, ": dim ", w, " appears more than once in ", dims);
    out.push_back(w);
  }
  return out;
}

Tensor alias_with(const Tensor& base, Shape sizes, Shape strides, int64_t offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = base.impl()->storage;
  impl->sizes = std::move(sizes);
  impl->strides = std::move(strides);
  impl->offset = offset;
  impl->dtype = base.dtype();
  impl->is_view = true;
  impl->view_base = base.impl()->view_base ? base.impl()->view_base : base.impl_ptr();
  return Tensor(std::move(impl));
}

void check_same_device(const Tensor& a, const Tensor& b, const char* op) {
  if (a.device() != b.device())
    fail(op, ": expected all tensors on the same device, got ", a.device().str(), " and ", b.device().str());
}

Tensor cast_if_needed(const Tensor& t, DType dtype) { return t.dtype() == dtype ? t : t.to(dtype); }

std::string describe(const Tensor& t) {
  return std::string(dtype_name(t.dtype())) + " " + shape_str(t.sizes());
}

void check_inplace(const Tensor& self, const char* op) {
  if (!autograd::GradMode::is_enabled()) return;
  if (self.requires_grad() && self.is_leaf())
    fail(op, ": a leaf tensor that requires grad (", describe(self),
         ") is used in an in-place operation; wrap the update in NoGradGuard or work on a clone");
}

namespace {

// The gradient paths of an in-place write `self <- result` when autograd must see it.
//
// Into a tensor that owns its storage: self's history becomes result's (or, when result is a
// constant, a node that passes nothing back to self's old value).
//
// Into a view (PyTorch's CopySlices): the owner `base` changed in the view's region, so base gets a
// node whose backward sends the gradient outside the region to base's old history and the region's
// part to result; the view's own history becomes "a view of the new base".
void rebind_history(Tensor& self, const Tensor& result) {
  auto& m = autograd::meta_of(self);
  m.requires_grad = true;
  m.grad_fn = result.grad_fn();
  m.output_nr = result.output_nr();
}

void record_overwrite(Tensor& self, const char* op) {
  autograd::record(op, {self}, {self}, {},
                   [](FunctionNode&, const variable_list& g) -> variable_list { return {zeros_like(g[0])}; });
}

void record_copy_slices(Tensor& self, Tensor base, const Tensor& result) {
  const Shape sizes = self.sizes(), strides = self.strides();
  const int64_t rel = self.storage_offset() - base.storage_offset();
  Tensor outside;  // 1 outside the view's region, 0 inside: what base's old value still decides
  {
    autograd::NoGradGuard guard;
    outside = ones(base.sizes(), TensorOptions(base.dtype()).set_device(base.device()));
    outside.as_strided(sizes, strides, outside.storage_offset() + rel).fill_(0);
  }
  autograd::record("copy_slices", {base, result}, {base}, {outside},
                   [sizes, strides, rel](FunctionNode& n, const variable_list& g) -> variable_list {
                     Tensor gc = g[0].contiguous();
                     return {gc * n.saved(0), gc.as_strided(sizes, strides, gc.storage_offset() + rel)};
                   });
  Tensor fresh = base.as_strided(sizes, strides, self.storage_offset());
  rebind_history(self, fresh);
}

}  // namespace

Tensor& commit_inplace(Tensor& self, const Tensor& result, const char* op) {
  trace::OpScope scope;
  if (result.sizes() != self.sizes())
    fail(op, ": the result of shape ", result.sizes(), " does not fit the in-place target of shape ",
         self.sizes(), " (in-place ops cannot broadcast their target)");
  if ((is_floating(result.dtype()) && !is_floating(self.dtype())) ||
      (result.dtype() != kBool && self.dtype() == kBool))
    fail(op, ": result type ", dtype_name(result.dtype()),
         " can't be cast to the in-place target's "
         "type ",
         dtype_name(self.dtype()));
  Tensor base = self.impl()->is_view && self.impl()->view_base ? Tensor(self.impl()->view_base) : Tensor();
  const bool grad_mode = autograd::GradMode::is_enabled() && is_floating(self.dtype());
  const bool into_view = grad_mode && base.defined() && (result.requires_grad() || base.requires_grad());
  // Checked before anything is written, so a refused op leaves the tensor as it was.
  if (into_view && base.requires_grad() && base.is_leaf())
    fail(op, ": a view of a leaf tensor that requires grad (", describe(base),
         ") is used in an in-place operation; wrap the update in NoGradGuard or work on a clone");
  if (into_view && !base.is_contiguous())
    fail(op, ": in-place writes into a view of a non-compact tensor are not tracked by autograd (",
         describe(self), "); do the op out of place or on a clone");
  if (!result.is_same(self)) {
    Tensor src = result.dtype() == self.dtype() ? result : result.detach().to(self.dtype());
    backend_of(self).strided_copy(self.dtype(), src.data_ptr(), src.strides(), self.data_ptr(),
                                  self.strides(), self.sizes());
  }
  self.impl()->storage->bump_version();
  if (into_view) {
    record_copy_slices(self, base, result);
  } else if (grad_mode && result.requires_grad()) {
    rebind_history(self, result);
  } else if (grad_mode && self.requires_grad() && !self.is_leaf()) {
    record_overwrite(self, op);
  }
  if (scope.recording()) scope.record_inplace(self, result);
  return self;
}

}  // namespace ember::detail
