// Helpers shared by the op files (not installed): allocation, dim wrapping, views, and the one place
// that decides how an in-place op writes its result.
#pragma once
#include <string>

#include "ember/autograd/grad_mode.h"
#include "ember/autograd/node.h"
#include "ember/core/ops.h"
#include "ember/kernels/fused.h"

namespace ember::detail {

using autograd::FunctionNode;
using autograd::variable_list;

Shape contiguous_strides(const Shape& shape);
int64_t numel_of(const Shape& shape, const char* op);
// A new compact tensor with uninitialised data.
Tensor make_empty(Shape shape, DType dtype, Device device);
inline kernels::Backend& backend_of(const Tensor& t) { return kernels::backend_for(t.device()); }
// The fused kernels of t's backend when they have `op` for `dt`; null means: run the composed form.
inline kernels::FusedKernels* fused_of(const Tensor& t, kernels::FusedOp op, DType dt) {
  return kernels::fused_for(backend_of(t), op, dt);
}
// Wraps a (possibly negative) dim into [0, ndim); errors name the op.
int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op);
Shape wrap_dims(const Shape& dims, int64_t ndim, const char* op);
// An alias of `base`'s storage with new geometry (no autograd: the caller records the view op).
Tensor alias_with(const Tensor& base, Shape sizes, Shape strides, int64_t offset);
void check_same_device(const Tensor& a, const Tensor& b, const char* op);
// Casts to dtype, or returns t itself when it already has it (no copy, keeps autograd identity).
Tensor cast_if_needed(const Tensor& t, DType dtype);
// The integer view of a tensor: its value if it is a 1-element tensor.
std::string describe(const Tensor& t);  // "float32 [3, 4]"

// In place: writes `result` (already computed, same shape as self) into self's memory, bumps the
// version, and moves self's autograd history onto result's node. `op` names the op in errors.
Tensor& commit_inplace(Tensor& self, const Tensor& result, const char* op);
// Errors for in-place writes autograd cannot follow (a leaf that requires grad, outside no_grad).
void check_inplace(const Tensor& self, const char* op);
// The allocation-free path of self.op_(other): writes self op other into self when self is compact,
// dtypes match, no graph is recorded and other does not alias self. False when it does not apply.
bool try_binary_inplace(kernels::BinaryOp op, Tensor& self, const Tensor& other);

}  // namespace ember::detail
