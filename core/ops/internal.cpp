// Implementation of the op helpers in internal.h.
#include "ember/core/ops/internal.h"

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

Tensor make_empty(const Shape& shape, DType dtype, Device device) {
  const int64_t nbytes = checked_nbytes(shape, itemsize(dtype), "empty");
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(static_cast<size_t>(nbytes), device);
  impl->sizes = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op) {
  const int64_t n = std::max<int64_t>(ndim, 1);  // a 0-d tensor accepts dim 0 and -1
  if (dim < -n || dim >= n)
    fail(op, ": dimension ", dim, " is out of range for a tensor with ", ndim,
         " dims (expected a dim in [", -n, ", ", n - 1, "])");
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

Tensor alias_with(const Tensor& base, const Shape& sizes, const Shape& strides, int64_t offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = base.impl()->storage;
  impl->sizes = sizes;
  impl->strides = strides;
  impl->offset = offset;
  impl->dtype = base.dtype();
  impl->is_view = true;
  return Tensor(std::move(impl));
}

void check_same_device(const Tensor& a, const Tensor& b, const char* op) {
  if (a.device() != b.device())
    fail(op, ": expected all tensors on the same device, got ", a.device().str(), " and ",
         b.device().str());
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

Tensor& commit_inplace(Tensor& self, const Tensor& result, const char* op) {
  if (result.sizes() != self.sizes())
    fail(op, ": the result of shape ", result.sizes(), " does not fit the in-place target of shape ",
         self.sizes(), " (in-place ops cannot broadcast their target)");
  if ((is_floating(result.dtype()) && !is_floating(self.dtype())) ||
      (result.dtype() != kBool && self.dtype() == kBool))
    fail(op, ": result type ", dtype_name(result.dtype()), " can't be cast to the in-place target's "
         "type ", dtype_name(self.dtype()));
  const bool tracks = autograd::GradMode::is_enabled() && result.requires_grad();
  if (tracks && self.impl()->is_view)
    fail(op, ": in-place writes into a view are not tracked by autograd in this version of ember (",
         describe(self), "); do the op out of place or on a clone");
  if (!result.is_same(self)) {
    Tensor src = result.dtype() == self.dtype() ? result : result.detach().to(self.dtype());
    backend_of(self).strided_copy(self.dtype(), src.data_ptr(), src.strides(), self.data_ptr(),
                                  self.strides(), self.sizes());
  }
  self.impl()->storage->bump_version();
  if (tracks) {
    auto& m = autograd::meta_of(self);
    m.requires_grad = true;
    m.grad_fn = result.grad_fn();
    m.output_nr = result.output_nr();
  }
  return self;
}

}  // namespace ember::detail
