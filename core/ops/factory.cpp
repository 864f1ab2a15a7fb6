// Tensor creation: filled, ranges, from host data, from a blob, *_like.
#include <cmath>
#include <cstring>

#include "ember/core/ops/internal.h"
#include "ember/core/shape_check.h"
#include "ember/core/trace.h"
#include "ember/kernels/dispatch.h"

namespace ember {
using namespace detail;

static Tensor finish(Tensor t, const TensorOptions& opts) {
  if (opts.requires_grad) t.requires_grad_(true);
  return t;
}

Tensor empty(const Shape& shape, TensorOptions opts) {
  return finish(make_empty(shape, opts.dtype, opts.device), opts);
}

Tensor full(const Shape& shape, Scalar value, std::optional<TensorOptions> opts) {
  if (trace::recording())
    return trace::traced("full", {}, {.ints = {{"shape", shape}}, .floats = {{"value", value.to_double()}}},
                         [&] { return full(shape, value, opts); });
  TensorOptions o = opts.value_or(TensorOptions(value.default_dtype()));
  Tensor t = make_empty(shape, o.dtype, o.device);
  backend_of(t).fill(o.dtype, t.data_ptr(), t.numel(), value);
  return finish(t, o);
}

Tensor zeros(const Shape& shape, TensorOptions opts) { return full(shape, 0, opts); }
Tensor ones(const Shape& shape, TensorOptions opts) { return full(shape, 1, opts); }

Tensor scalar_tensor(Scalar value, std::optional<TensorOptions> opts) { return full({}, value, opts); }

Tensor eye(int64_t n, std::optional<int64_t> m, TensorOptions opts) {
  const int64_t cols = m.value_or(n);
  EMBER_CHECK(n >= 0 && cols >= 0, "eye: sizes must be non-negative, got ", n, " x ", cols);
  Tensor t = zeros({n, cols}, TensorOptions(opts.dtype).set_device(opts.device));
  const int64_t k = std::min(n, cols);
  if (k > 0) {
    Tensor diag = t.diagonal();
    Tensor one = ones({k}, TensorOptions(opts.dtype).set_device(opts.device));
    backend_of(t).strided_copy(opts.dtype, one.data_ptr(), one.strides(), diag.data_ptr(), diag.strides(),
                               diag.sizes());
  }
  return finish(t, opts);
}

Tensor arange(Scalar end, std::optional<TensorOptions> opts) { return arange(0, end, 1, opts); }

Tensor arange(Scalar start, Scalar end, Scalar step, std::optional<TensorOptions> opts) {
  const bool floating = start.is_floating() || end.is_floating() || step.is_floating();
  if (trace::recording() && !floating)  // integer ranges follow sizes: their bounds may be symbolic
    return trace::traced(
        "arange", {},
        {.ints = {{"start", {start.to_int()}}, {"end", {end.to_int()}}, {"step", {step.to_int()}}}},
        [&] { return arange(start, end, step, opts); });
  TensorOptions o = opts.value_or(TensorOptions(floating ? kFloat32 : kInt64));
  const double s = start.to_double(), e = end.to_double(), st = step.to_double();
  EMBER_CHECK(st != 0, "arange: step must be non-zero");
  EMBER_CHECK((e - s) / st >= 0 || s == e, "arange: the range [", s, ", ", e,
              ") is empty in the direction of step ", st);
  const double count = std::ceil((e - s) / st);
  EMBER_CHECK(std::isfinite(s) && std::isfinite(e) && count < 1e15, "arange: the range [", s, ", ", e,
              ") with step ", st, " has ", count, " elements; that is not a tensor ember can make");
  const int64_t n = std::max<int64_t>(0, static_cast<int64_t>(count));
  // Values are computed in double on the host so integer and float ranges are exact (memory from
  // the allocator, whose failure is an ember::Error).
  Tensor v = make_empty({n}, kFloat64, Device::cpu());
  double* p = v.data_ptr<double>();
  for (int64_t i = 0; i < n; ++i) p[i] = s + st * static_cast<double>(i);
  return finish(v.to(o.device, o.dtype), o);
}

Tensor linspace(double start, double end, int64_t steps, TensorOptions opts) {
  EMBER_CHECK(steps >= 0, "linspace: number of steps must be non-negative, got ", steps);
  Tensor v = make_empty({steps}, kFloat64, Device::cpu());
  double* p = v.data_ptr<double>();
  const double step = steps > 1 ? (end - start) / static_cast<double>(steps - 1) : 0;
  // Fill from both ends so the last value is exactly `end`, as PyTorch does.
  for (int64_t i = 0; i < steps; ++i)
    p[i] = i < steps / 2 ? start + step * static_cast<double>(i)
                         : end - step * static_cast<double>(steps - 1 - i);
  return finish(v.to(opts.device, opts.dtype), opts);
}

static TensorOptions like(const Tensor& t, const std::optional<TensorOptions>& opts) {
  return opts.value_or(TensorOptions(t.dtype()).set_device(t.device()));
}
Tensor empty_like(const Tensor& t, std::optional<TensorOptions> o) { return empty(t.sizes(), like(t, o)); }
Tensor zeros_like(const Tensor& t, std::optional<TensorOptions> o) { return zeros(t.sizes(), like(t, o)); }
Tensor ones_like(const Tensor& t, std::optional<TensorOptions> o) { return ones(t.sizes(), like(t, o)); }
Tensor full_like(const Tensor& t, Scalar v, std::optional<TensorOptions> o) {
  return full(t.sizes(), v, like(t, o));
}

template <class T>
Tensor tensor(const std::vector<T>& values, const Shape& shape, std::optional<TensorOptions> opts) {
  const int64_t n = numel_of(shape, "tensor");
  EMBER_CHECK(static_cast<int64_t>(values.size()) == n, "tensor: ", values.size(),
              " values do not fill shape ", shape, " (", n, " elements)");
  TensorOptions o = opts.value_or(TensorOptions(dtype_of<T>()));
  // Build on the host in T, then cast and move to the target device.
  Tensor host = make_empty(shape, dtype_of<T>(), Device::cpu());
  if (n) std::memcpy(host.data_ptr(), values.data(), sizeof(T) * n);
  Tensor t = host.to(o.device, o.dtype);
  return finish(t, o);
}
template Tensor tensor(const std::vector<float>&, const Shape&, std::optional<TensorOptions>);
template Tensor tensor(const std::vector<double>&, const Shape&, std::optional<TensorOptions>);
template Tensor tensor(const std::vector<int64_t>&, const Shape&, std::optional<TensorOptions>);
template Tensor tensor(const std::vector<int32_t>&, const Shape&, std::optional<TensorOptions>);

template <>
Tensor tensor(const std::vector<bool>& values, const Shape& shape, std::optional<TensorOptions> opts) {
  std::vector<int64_t> v(values.begin(), values.end());
  return tensor(v, shape, opts.value_or(TensorOptions(kBool)));
}

Tensor tensor(std::initializer_list<double> v, std::optional<TensorOptions> o) {
  return tensor(std::vector<double>(v), {static_cast<int64_t>(v.size())},
                o.value_or(TensorOptions(kFloat32)));
}
Tensor tensor(std::initializer_list<float> v, std::optional<TensorOptions> o) {
  return tensor(std::vector<float>(v), {static_cast<int64_t>(v.size())}, o);
}
Tensor tensor(std::initializer_list<int64_t> v, std::optional<TensorOptions> o) {
  return tensor(std::vector<int64_t>(v), {static_cast<int64_t>(v.size())}, o);
}
Tensor tensor(std::initializer_list<int> v, std::optional<TensorOptions> o) {
  return tensor(std::vector<int64_t>(v.begin(), v.end()), {static_cast<int64_t>(v.size())}, o);
}
Tensor tensor(std::initializer_list<bool> v, std::optional<TensorOptions> o) {
  return tensor(std::vector<bool>(v), {static_cast<int64_t>(v.size())}, o);
}

template <class T>
static Tensor from_rows(std::initializer_list<std::initializer_list<T>> rows, std::optional<TensorOptions> o,
                        DType deflt) {
  std::vector<T> flat;
  const int64_t cols = rows.size() ? static_cast<int64_t>(rows.begin()->size()) : 0;
  for (const auto& r : rows) {
    EMBER_CHECK(static_cast<int64_t>(r.size()) == cols, "tensor: rows have different lengths (", cols,
                " and ", r.size(), ")");
    flat.insert(flat.end(), r.begin(), r.end());
  }
  return tensor(flat, {static_cast<int64_t>(rows.size()), cols}, o.value_or(TensorOptions(deflt)));
}
Tensor tensor(std::initializer_list<std::initializer_list<double>> rows, std::optional<TensorOptions> o) {
  return from_rows(rows, o, kFloat32);
}
Tensor tensor(std::initializer_list<std::initializer_list<int64_t>> rows, std::optional<TensorOptions> o) {
  return from_rows(rows, o, kInt64);
}
template <class T>
static Tensor stack_rows(std::initializer_list<std::initializer_list<T>> rows,
                         std::optional<TensorOptions> o) {
  std::vector<Tensor> parts;
  for (const auto& r : rows) parts.push_back(tensor(r, o));
  EMBER_CHECK(!parts.empty(), "tensor: empty nested list");
  return stack(parts, 0);
}
Tensor tensor(std::initializer_list<std::initializer_list<int>> rows, std::optional<TensorOptions> o) {
  return stack_rows(rows, o);
}
Tensor tensor(std::initializer_list<std::initializer_list<bool>> rows, std::optional<TensorOptions> o) {
  return stack_rows(rows, o);
}
Tensor tensor(std::initializer_list<std::initializer_list<std::initializer_list<double>>> planes,
              std::optional<TensorOptions> o) {
  std::vector<Tensor> parts;
  for (const auto& p : planes) parts.push_back(from_rows(p, o, kFloat32));
  EMBER_CHECK(!parts.empty(), "tensor: empty nested list");
  return stack(parts, 0);
}

Tensor from_blob(void* data, const Shape& shape, DType dtype, std::function<void(void*)> deleter,
                 std::optional<Shape> strides) {
  Shape st = strides.value_or(contiguous_strides(shape));
  EMBER_CHECK(st.size() == shape.size(), "from_blob: ", st.size(), " strides for shape ", shape);
  int64_t extent = checked_numel(shape, "from_blob") == 0 ? 0 : 1;  // one past the furthest element
  for (size_t d = 0; d < shape.size() && extent; ++d) {
    EMBER_CHECK(st[d] >= 0, "from_blob: negative stride in ", st);
    int64_t step = 0;
    EMBER_CHECK(
        !__builtin_mul_overflow(shape[d] - 1, st[d], &step) && !__builtin_add_overflow(extent, step, &extent),
        "from_blob: shape ", shape, " with strides ", st, " reaches beyond what int64 can count");
  }
  int64_t nbytes = 0;
  EMBER_CHECK(!__builtin_mul_overflow(extent, static_cast<int64_t>(itemsize(dtype)), &nbytes),
              "from_blob: shape ", shape, " needs more bytes than int64 can count");
  auto impl = std::make_shared<TensorImpl>();
  impl->storage =
      std::make_shared<Storage>(data, static_cast<size_t>(nbytes), Device::cpu(), std::move(deleter));
  impl->sizes = shape;
  impl->strides = st;
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

}  // namespace ember
