// Random tensors from the device generator, and the ops built on them (bernoulli, dropout).

#include "ember/core/generator.h"
#include "ember/core/ops/internal.h"
#include "ember/core/trace.h"

namespace ember {
using namespace detail;

Generator& Generator::for_device(Device device) {
  static Generator cpu;
  static Generator cuda[16];
  if (device.is_cpu()) return cpu;
  EMBER_CHECK(device.index >= 0 && device.index < 16, "generator: no device ", device.str());
  return cuda[device.index];
}

void manual_seed(uint64_t seed) {
  Generator::for_device(Device::cpu()).manual_seed(seed);
  for (int i = 0; i < 16; ++i) Generator::for_device(Device::cuda(i)).manual_seed(seed);
}

// Draws into a float32/float64 buffer; other float dtypes are drawn in float32 and cast.
static Tensor draw(const Shape& shape, TensorOptions opts, bool normal, double p0, double p1,
                   const char* op) {
  EMBER_CHECK(is_floating(opts.dtype), op, ": needs a floating dtype, got ", dtype_name(opts.dtype));
  const DType work = compute_dtype(opts.dtype);
  Tensor t = make_empty(shape, work, opts.device);
  auto& gen = Generator::for_device(opts.device);
  const uint64_t offset = gen.take(t.numel());
  auto& be = backend_of(t);
  if (normal) be.random_normal(work, t.data_ptr(), t.numel(), gen.seed(), offset, p0, p1);
  else be.random_uniform(work, t.data_ptr(), t.numel(), gen.seed(), offset, p0, p1);
  t = cast_if_needed(t, opts.dtype);
  if (opts.requires_grad) t.requires_grad_(true);
  return t;
}

Tensor rand(const Shape& shape, TensorOptions opts) { return draw(shape, opts, false, 0, 1, "rand"); }
Tensor randn(const Shape& shape, TensorOptions opts) { return draw(shape, opts, true, 0, 1, "randn"); }
Tensor rand_like(const Tensor& t) { return rand(t.sizes(), TensorOptions(t.dtype()).set_device(t.device())); }
Tensor randn_like(const Tensor& t) {
  return randn(t.sizes(), TensorOptions(t.dtype()).set_device(t.device()));
}

Tensor randint(int64_t low, int64_t high, const Shape& shape, TensorOptions opts) {
  EMBER_CHECK(low < high, "randint: low (", low, ") must be less than high (", high, ")");
  Tensor u = draw(shape, TensorOptions(kFloat64).set_device(opts.device), false, static_cast<double>(low),
                  static_cast<double>(high), "randint");
  // floor of a uniform double in [low, high): every integer equally likely (53-bit resolution).
  Tensor r = u.to(kInt64);
  Tensor neg = lt(u, scalar_tensor(0.0, kFloat64));  // truncation rounds negatives up: fix those
  r = where(logical_and(neg, ne(r.to(kFloat64), u)), r - 1, r);
  return r.to(opts.dtype);
}

Tensor randint(int64_t high, const Shape& shape, TensorOptions opts) { return randint(0, high, shape, opts); }

Tensor randperm(int64_t n, TensorOptions opts) {
  EMBER_CHECK(n >= 0, "randperm: n must be non-negative, got ", n);
  return argsort(rand({n}, TensorOptions(kFloat64).set_device(opts.device))).to(opts.dtype);
}

Tensor bernoulli(const Tensor& probs) {
  autograd::NoGradGuard guard;
  Tensor u = rand(probs.sizes(), TensorOptions(compute_dtype(probs.dtype())).set_device(probs.device()));
  return lt(u, probs).to(probs.dtype());
}

Tensor bernoulli(const Shape& shape, double p, TensorOptions opts) {
  EMBER_CHECK(p >= 0 && p <= 1, "bernoulli: p must be in [0, 1], got ", p);
  autograd::NoGradGuard guard;
  Tensor u = rand(shape, TensorOptions(kFloat64).set_device(opts.device));
  return lt(u, scalar_tensor(p, TensorOptions(kFloat64).set_device(opts.device))).to(opts.dtype);
}

Tensor dropout(const Tensor& input, double p, bool train) {
  EMBER_CHECK(p >= 0 && p <= 1, "dropout: probability has to be between 0 and 1, got ", p);
  if (!train || p == 0) return input;
  // A random mask has no place in an exported graph: the exporter reports this op as unmappable.
  if (trace::recording())
    return trace::traced("dropout(train=true)", {input}, {}, [&] { return dropout(input, p, train); });
  if (p == 1) return input * 0;
  // Keep each element with probability 1-p and scale by 1/(1-p) so the expectation is unchanged;
  // the mask is a constant, so the gradient is grad * mask / (1-p) with no extra node.
  Tensor mask =
      bernoulli(input.sizes(), 1 - p, TensorOptions(compute_dtype(input.dtype())).set_device(input.device()));
  return input * mask.mul_(1.0 / (1 - p));
}

Tensor& Tensor::uniform_(double from, double to) {
  detail::check_inplace(*this, "uniform_");
  autograd::NoGradGuard guard;
  return commit_inplace(
      *this, draw(sizes(), TensorOptions(dtype()).set_device(device()), false, from, to, "uniform_"),
      "uniform_");
}

Tensor& Tensor::normal_(double mean, double std) {
  detail::check_inplace(*this, "normal_");
  autograd::NoGradGuard guard;
  return commit_inplace(
      *this, draw(sizes(), TensorOptions(dtype()).set_device(device()), true, mean, std, "normal_"),
      "normal_");
}

Tensor& Tensor::bernoulli_(double p) {
  detail::check_inplace(*this, "bernoulli_");
  autograd::NoGradGuard guard;
  return commit_inplace(*this, bernoulli(sizes(), p, TensorOptions(dtype()).set_device(device())),
                        "bernoulli_");
}

}  // namespace ember
