// Joining and triangular masks: cat, stack, tril, triu.
#include "ember/core/ops/internal.h"
#include "ember/core/trace.h"

namespace ember {
using namespace detail;

Tensor cat(const std::vector<Tensor>& tensors, int64_t dim) {
  EMBER_CHECK(!tensors.empty(), "cat: expected a non-empty list of tensors");
  // PyTorch skips 1-D empty tensors (legacy behaviour people rely on when building up lists).
  std::vector<Tensor> parts;
  for (const auto& t : tensors)
    if (!(t.dim() == 1 && t.numel() == 0)) parts.push_back(t);
  if (parts.empty()) return tensors[0].clone();
  const Tensor& ref = parts[0];
  EMBER_CHECK(ref.dim() > 0, "cat: zero-dimensional tensors cannot be concatenated; use stack");
  const int64_t d = wrap_dim(dim, ref.dim(), "cat");
  DType dt = ref.dtype();
  Shape shape = ref.sizes();
  shape[d] = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    const Tensor& t = parts[i];
    check_same_device(ref, t, "cat");
    EMBER_CHECK(t.dim() == ref.dim(), "cat: tensor ", i, " has shape ", t.sizes(), " but tensor 0 has shape ",
                ref.sizes(), " (different number of dims)");
    for (int64_t j = 0; j < ref.dim(); ++j)
      EMBER_CHECK(j == d || t.size(j) == ref.size(j), "cat: sizes must match except in dim ", d,
                  "; tensor 0 has shape ", ref.sizes(), ", tensor ", i, " has shape ", t.sizes());
    shape[d] += t.size(d);
    dt = promote_types(dt, t.dtype());
  }
  trace::OpScope scope;
  Tensor out = make_empty(shape, dt, ref.device());
  std::vector<int64_t> lengths;
  {
    autograd::NoGradGuard guard;
    int64_t offset = 0;
    for (const auto& t : parts) {
      Tensor src = cast_if_needed(t, dt);
      Tensor dst = out.narrow(d, offset, t.size(d));
      if (src.numel() > 0)
        backend_of(out).strided_copy(dt, src.data_ptr(), src.strides(), dst.data_ptr(), dst.strides(),
                                     dst.sizes());
      offset += t.size(d);
      lengths.push_back(t.size(d));
    }
  }
  autograd::record("cat", parts, {out}, {},
                   [d, lengths](FunctionNode& n, const variable_list& g) -> variable_list {
                     variable_list grads;
                     int64_t offset = 0;
                     for (size_t i = 0; i < lengths.size(); ++i) {
                       grads.push_back(n.needs_input_grad(i) ? g[0].narrow(d, offset, lengths[i]) : Tensor());
                       offset += lengths[i];
                     }
                     return grads;
                   });
  if (scope.recording()) scope.record("cat", parts, {out}, {.ints = {{"dim", {d}}}});
  return out;
}

Tensor stack(const std::vector<Tensor>& tensors, int64_t dim) {
  EMBER_CHECK(!tensors.empty(), "stack: expected a non-empty list of tensors");
  const int64_t d = wrap_dim(dim, tensors[0].dim() + 1, "stack");
  std::vector<Tensor> parts;
  for (size_t i = 0; i < tensors.size(); ++i) {
    EMBER_CHECK(tensors[i].sizes() == tensors[0].sizes(),
                "stack: expects each tensor to be the same "
                "shape, but tensor 0 has shape ",
                tensors[0].sizes(), " and tensor ", i, " has shape ", tensors[i].sizes());
    parts.push_back(tensors[i].unsqueeze(d));
  }
  return cat(parts, d);
}

namespace {
// Keeps x where (col - row) is within the band, zero elsewhere; as a `where` it is differentiable.
Tensor triangle(const Tensor& x, int64_t diagonal, bool lower, const char* name) {
  EMBER_CHECK(x.dim() >= 2, name, ": expected a tensor with at least 2 dims, got shape ", x.sizes());
  TensorOptions opts = TensorOptions(kInt64).set_device(x.device());
  Tensor rows = arange(x.size(-2), opts).unsqueeze(1);
  Tensor cols = arange(x.size(-1), opts).unsqueeze(0);
  Tensor offset = cols - rows;
  Tensor keep = lower ? offset <= diagonal : offset >= diagonal;
  return where(keep, x, zeros({}, TensorOptions(x.dtype()).set_device(x.device())));
}
}  // namespace

Tensor tril(const Tensor& x, int64_t diagonal) {
  if (trace::recording())
    return trace::traced("tril", {x}, {.ints = {{"diagonal", {diagonal}}}},
                         [&] { return tril(x, diagonal); });
  return triangle(x, diagonal, true, "tril");
}
Tensor triu(const Tensor& x, int64_t diagonal) {
  if (trace::recording())
    return trace::traced("triu", {x}, {.ints = {{"diagonal", {diagonal}}}},
                         [&] { return triu(x, diagonal); });
  return triangle(x, diagonal, false, "triu");
}

}  // namespace ember
