// Tensor's methods: metadata, conversion and copies, autograd entry points, in-place variants. Most
// math methods are one-line forwards to the free functions in core/ops.h.
#include "ember/core/tensor.h"

#include "ember/autograd/engine.h"
#include "ember/core/ops.h"
#include "ember/core/ops/internal.h"
#include "ember/core/trace.h"
#include "ember/kernels/dispatch.h"

namespace ember {
using namespace detail;

// ---- metadata ------------------------------------------------------------------------------

int64_t Tensor::size(int64_t d) const { return sizes()[wrap_dim(d, dim(), "size")]; }
int64_t Tensor::stride(int64_t d) const { return strides()[wrap_dim(d, dim(), "stride")]; }

bool Tensor::is_contiguous() const {
  int64_t expected = 1;
  for (int64_t d = dim() - 1; d >= 0; --d) {
    if (sizes()[d] == 1) continue;
    if (strides()[d] != expected) return false;
    expected *= sizes()[d];
  }
  return true;
}

template <class T>
T* Tensor::data_ptr() const {
  EMBER_CHECK(dtype() == dtype_of<T>(), "data_ptr: tensor has dtype ", dtype_name(dtype()), ", asked for ",
              dtype_name(dtype_of<T>()));
  EMBER_CHECK(is_cpu(), "data_ptr<T>: tensor lives on ", device().str(),
              "; copy it to the CPU first with .cpu()");
  return static_cast<T*>(data_ptr());
}

template <class T>
std::vector<T> Tensor::to_vector() const {
  autograd::NoGradGuard guard;
  Tensor host = to(Device::cpu(), dtype_of<T>()).contiguous();
  const T* p = host.data_ptr<T>();
  return std::vector<T>(p, p + host.numel());
}

template <class T>
T Tensor::item() const {
  EMBER_CHECK(numel() == 1, "item: a tensor with ", numel(), " elements (shape ", sizes(),
              ") cannot be converted to a scalar");
  return to_vector<T>()[0];
}

#define EMBER_INSTANTIATE(T)                            \
  template T* Tensor::data_ptr<T>() const;              \
  template std::vector<T> Tensor::to_vector<T>() const; \
  template T Tensor::item<T>() const;
EMBER_INSTANTIATE(float)
EMBER_INSTANTIATE(double)
EMBER_INSTANTIATE(int64_t)
EMBER_INSTANTIATE(int32_t)
EMBER_INSTANTIATE(BFloat16)
EMBER_INSTANTIATE(Half)
#undef EMBER_INSTANTIATE

template <>
bool Tensor::item<bool>() const {
  EMBER_CHECK(numel() == 1, "item: a tensor with ", numel(), " elements (shape ", sizes(),
              ") cannot be converted to a scalar");
  return to_vector<int64_t>()[0] != 0;
}
template <>
bool* Tensor::data_ptr<bool>() const {
  EMBER_CHECK(dtype() == kBool, "data_ptr: tensor has dtype ", dtype_name(dtype()), ", asked for bool");
  EMBER_CHECK(is_cpu(), "data_ptr<T>: tensor lives on ", device().str());
  return static_cast<bool*>(data_ptr());
}

// ---- conversion and copies -------------------------------------------------------------------

Tensor Tensor::to(Device device, DType dt) const {
  if (device == this->device() && dt == dtype()) return *this;
  if (trace::recording())
    return trace::traced("to", {*this}, {.ints = {{"dtype", {static_cast<int64_t>(dt)}}}},
                         [&] { return to(device, dt); });
  Tensor src = contiguous();
  Tensor out;
  {
    autograd::NoGradGuard guard;
    if (device == this->device()) {
      out = make_empty(sizes(), dt, device);
      backend_of(*this).cast(src.dtype(), src.data_ptr(), dt, out.data_ptr(), numel());
    } else {
      // Across devices: stage through host memory, then cast on the target.
      Tensor moved = make_empty(sizes(), src.dtype(), device);
      std::vector<char> host(numel() * element_size());
      backend_of(*this).copy_to_host(host.data(), src.data_ptr(), host.size());
      backend_of(moved).copy_from_host(moved.data_ptr(), host.data(), host.size());
      out = moved.to(dt);
    }
  }
  if (is_floating(dt) && is_floating(dtype())) {
    Device from = this->device();
    autograd::record("to", {*this}, {out}, {},
                     [from](FunctionNode&, const variable_list& g) -> variable_list {
                       return {g[0].to(from)};  // the node casts the dtype back itself
                     });
  }
  return out;
}
Tensor Tensor::to(DType dt) const { return to(device(), dt); }
Tensor Tensor::to(Device d) const { return to(d, dtype()); }
Tensor Tensor::contiguous() const { return ember::contiguous(*this); }

Tensor Tensor::clone() const {
  Tensor out = make_empty(sizes(), dtype(), device());
  backend_of(*this).strided_copy(dtype(), data_ptr(), strides(), out.data_ptr(), out.strides(), sizes());
  autograd::record("clone", {*this}, {out}, {},
                   [](FunctionNode&, const variable_list& g) -> variable_list { return {g[0]}; });
  return out;
}

Tensor Tensor::detach() const {
  auto impl = std::make_shared<TensorImpl>(*checked());
  impl->autograd.reset();
  impl->view_base.reset();  // outside autograd: writes through it rewrite no history
  return Tensor(std::move(impl));
}

Tensor& Tensor::detach_() {
  checked()->autograd.reset();
  return *this;
}

// ---- autograd --------------------------------------------------------------------------------

bool Tensor::requires_grad() const {
  auto* m = autograd::meta_if(*this);
  return m && m->requires_grad;
}

Tensor& Tensor::requires_grad_(bool on) {
  if (on)
    EMBER_CHECK(is_floating(dtype()),
                "requires_grad_: only floating point tensors can require "
                "gradients, this one is ",
                dtype_name(dtype()));
  auto* m = autograd::meta_if(*this);
  if (!on && m && m->grad_fn)
    fail("requires_grad_: cannot turn off requires_grad of a non-leaf tensor (computed by '",
         m->grad_fn->name(), "'); use detach() instead");
  autograd::meta_of(*this).requires_grad = on;
  return *this;
}

Tensor Tensor::grad() const {
  auto* m = autograd::meta_if(*this);
  return m ? m->grad : Tensor();
}
Tensor& Tensor::mutable_grad() { return autograd::meta_of(*this).grad; }
void Tensor::set_grad(const Tensor& g) {
  if (g.defined())
    EMBER_CHECK(g.sizes() == sizes(), "set_grad: gradient of shape ", g.sizes(),
                " does not match the tensor's shape ", sizes());
  autograd::meta_of(*this).grad = g;
}
bool Tensor::is_leaf() const {
  auto* m = autograd::meta_if(*this);
  return !m || !m->grad_fn;
}
std::shared_ptr<autograd::Node> Tensor::grad_fn() const {
  auto* m = autograd::meta_if(*this);
  return m ? m->grad_fn : nullptr;
}
uint32_t Tensor::output_nr() const {
  auto* m = autograd::meta_if(*this);
  return m ? m->output_nr : 0;
}

void Tensor::register_hook(std::function<Tensor(const Tensor&)> hook) {
  EMBER_CHECK(requires_grad(),
              "register_hook: cannot register a hook on a tensor that does not "
              "require grad");
  auto& m = autograd::meta_of(*this);
  if (m.grad_fn) m.grad_fn->pre_hooks.at(m.output_nr).push_back(std::move(hook));
  else m.leaf_hooks.push_back(std::move(hook));
}

void Tensor::retain_grad() {
  EMBER_CHECK(requires_grad(), "retain_grad: the tensor does not require grad");
  auto& m = autograd::meta_of(*this);
  if (!m.grad_fn || m.retains_grad) return;  // leaves keep their grad anyway
  m.retains_grad = true;
  std::weak_ptr<TensorImpl> weak = impl_ptr();
  m.grad_fn->pre_hooks.at(m.output_nr).push_back([weak](const Tensor& g) {
    if (auto impl = weak.lock()) {
      auto& meta = *impl->autograd;
      meta.grad = meta.grad.defined() ? meta.grad + g : g.detach().clone();
    }
    return Tensor();
  });
}
bool Tensor::retains_grad() const {
  auto* m = autograd::meta_if(*this);
  return m && m->retains_grad;
}

void Tensor::backward(const Tensor& gradient, bool retain_graph, bool create_graph) const {
  autograd::backward({*this},
                     gradient.defined() ? autograd::variable_list{gradient} : autograd::variable_list{},
                     retain_graph, create_graph);
}

// ---- views -------------------------------------------------------------------------------------

Tensor Tensor::view(const Shape& s) const { return ember::view(*this, s); }
Tensor Tensor::reshape(const Shape& s) const { return ember::reshape(*this, s); }
Tensor Tensor::flatten(int64_t a, int64_t b) const { return ember::flatten(*this, a, b); }
Tensor Tensor::unflatten(int64_t d, const Shape& s) const {
  const int64_t w = wrap_dim(d, dim(), "unflatten");
  Shape shape(sizes().begin(), sizes().begin() + w);
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) infer = static_cast<int64_t>(i);
    else known *= s[i];
  }
  Shape part = s;
  if (infer >= 0 && known) part[infer] = size(w) / known;
  EMBER_CHECK(numel_of(part, "unflatten") == size(w), "unflatten: sizes ", s, " do not multiply to dim ", w,
              " of size ", size(w), " (shape ", sizes(), ")");
  shape.insert(shape.end(), part.begin(), part.end());
  shape.insert(shape.end(), sizes().begin() + w + 1, sizes().end());
  return view(shape);
}
Tensor Tensor::permute(const Shape& d) const { return ember::permute(*this, d); }
Tensor Tensor::transpose(int64_t a, int64_t b) const { return ember::transpose(*this, a, b); }
Tensor Tensor::t() const {
  EMBER_CHECK(dim() <= 2, "t: expects a tensor with <= 2 dims, got shape ", sizes(),
              "; use transpose(dim0, dim1) or mT()");
  return dim() < 2 ? *this : transpose(0, 1);
}
Tensor Tensor::squeeze() const { return ember::squeeze(*this); }
Tensor Tensor::squeeze(int64_t d) const { return ember::squeeze(*this, d); }
Tensor Tensor::unsqueeze(int64_t d) const { return ember::unsqueeze(*this, d); }
Tensor Tensor::expand(const Shape& s) const { return ember::expand(*this, s); }
Tensor Tensor::slice(int64_t d, std::optional<int64_t> a, std::optional<int64_t> b, int64_t s) const {
  return ember::slice(*this, d, a, b, s);
}
Tensor Tensor::narrow(int64_t d, int64_t s, int64_t l) const { return ember::narrow(*this, d, s, l); }
Tensor Tensor::select(int64_t d, int64_t i) const { return ember::select(*this, d, i); }
std::vector<Tensor> Tensor::unbind(int64_t d) const { return ember::unbind(*this, d); }
std::vector<Tensor> Tensor::chunk(int64_t c, int64_t d) const { return ember::chunk(*this, c, d); }
std::vector<Tensor> Tensor::split(int64_t size_, int64_t d) const {
  EMBER_CHECK(size_ > 0, "split: split_size must be positive, got ", size_);
  const int64_t w = wrap_dim(d, dim(), "split");
  Shape sizes_;
  for (int64_t left = size(w); left > 0; left -= size_) sizes_.push_back(std::min(size_, left));
  if (sizes_.empty()) sizes_.push_back(0);
  return ember::split(*this, sizes_, w);
}
std::vector<Tensor> Tensor::split(const Shape& s, int64_t d) const { return ember::split(*this, s, d); }
Tensor Tensor::diagonal(int64_t o, int64_t a, int64_t b) const { return ember::diagonal(*this, o, a, b); }
Tensor Tensor::as_strided(const Shape& s, const Shape& st, std::optional<int64_t> o) const {
  return ember::as_strided(*this, s, st, o);
}

// ---- math forwards -----------------------------------------------------------------------------

Tensor Tensor::add(const Tensor& o, Scalar a) const { return ember::add(*this, o, a); }
Tensor Tensor::sub(const Tensor& o, Scalar a) const { return ember::sub(*this, o, a); }
Tensor Tensor::mul(const Tensor& o) const { return ember::mul(*this, o); }
Tensor Tensor::div(const Tensor& o) const { return ember::div(*this, o); }
Tensor Tensor::pow(const Tensor& e) const { return ember::pow(*this, e); }
Tensor Tensor::pow(Scalar e) const { return ember::pow(*this, e); }
Tensor Tensor::neg() const { return ember::neg(*this); }
Tensor Tensor::exp() const { return ember::exp(*this); }
Tensor Tensor::log() const { return ember::log(*this); }
Tensor Tensor::log1p() const { return ember::log1p(*this); }
Tensor Tensor::sqrt() const { return ember::sqrt(*this); }
Tensor Tensor::rsqrt() const { return ember::rsqrt(*this); }
Tensor Tensor::abs() const { return ember::abs(*this); }
Tensor Tensor::sign() const { return ember::sign(*this); }
Tensor Tensor::sin() const { return ember::sin(*this); }
Tensor Tensor::cos() const { return ember::cos(*this); }
Tensor Tensor::tanh() const { return ember::tanh(*this); }
Tensor Tensor::sigmoid() const { return ember::sigmoid(*this); }
Tensor Tensor::relu() const { return ember::relu(*this); }
Tensor Tensor::square() const { return ember::square(*this); }
Tensor Tensor::reciprocal() const { return ember::reciprocal(*this); }
Tensor Tensor::clamp(std::optional<Scalar> lo, std::optional<Scalar> hi) const {
  return ember::clamp(*this, lo, hi);
}
Tensor Tensor::maximum(const Tensor& o) const { return ember::maximum(*this, o); }
Tensor Tensor::minimum(const Tensor& o) const { return ember::minimum(*this, o); }
Tensor Tensor::eq(const Tensor& o) const { return ember::eq(*this, o); }
Tensor Tensor::ne(const Tensor& o) const { return ember::ne(*this, o); }
Tensor Tensor::lt(const Tensor& o) const { return ember::lt(*this, o); }
Tensor Tensor::le(const Tensor& o) const { return ember::le(*this, o); }
Tensor Tensor::gt(const Tensor& o) const { return ember::gt(*this, o); }
Tensor Tensor::ge(const Tensor& o) const { return ember::ge(*this, o); }
Tensor Tensor::logical_not() const { return ember::logical_not(*this); }
Tensor Tensor::logical_and(const Tensor& o) const { return ember::logical_and(*this, o); }
Tensor Tensor::logical_or(const Tensor& o) const { return ember::logical_or(*this, o); }
Tensor Tensor::masked_fill(const Tensor& m, Scalar v) const { return ember::masked_fill(*this, m, v); }
Tensor Tensor::masked_select(const Tensor& m) const { return ember::masked_select(*this, m); }
Tensor Tensor::sum() const { return ember::sum(*this); }
Tensor Tensor::sum(const Shape& d, bool k) const { return ember::sum(*this, d, k); }
Tensor Tensor::mean() const { return ember::mean(*this); }
Tensor Tensor::mean(const Shape& d, bool k) const { return ember::mean(*this, d, k); }
Tensor Tensor::prod() const { return ember::prod(*this); }
Tensor Tensor::prod(int64_t d, bool k) const { return ember::prod(*this, d, k); }
Tensor Tensor::max() const { return ember::max(*this); }
std::pair<Tensor, Tensor> Tensor::max(int64_t d, bool k) const { return ember::max(*this, d, k); }
Tensor Tensor::min() const { return ember::min(*this); }
std::pair<Tensor, Tensor> Tensor::min(int64_t d, bool k) const { return ember::min(*this, d, k); }
Tensor Tensor::argmax(std::optional<int64_t> d, bool k) const { return ember::argmax(*this, d, k); }
Tensor Tensor::argmin(std::optional<int64_t> d, bool k) const { return ember::argmin(*this, d, k); }
Tensor Tensor::var(std::optional<Shape> d, int64_t c, bool k) const { return ember::var(*this, d, c, k); }
Tensor Tensor::std(std::optional<Shape> d, int64_t c, bool k) const { return ember::std(*this, d, c, k); }
Tensor Tensor::norm(double p, std::optional<Shape> d, bool k) const { return ember::norm(*this, p, d, k); }
Tensor Tensor::logsumexp(const Shape& d, bool k) const { return ember::logsumexp(*this, d, k); }
Tensor Tensor::amax(const Shape& d, bool k) const { return ember::amax(*this, d, k); }
Tensor Tensor::amin(const Shape& d, bool k) const { return ember::amin(*this, d, k); }
Tensor Tensor::cumsum(int64_t d) const { return ember::cumsum(*this, d); }
Tensor Tensor::softmax(int64_t d) const { return ember::softmax(*this, d); }
Tensor Tensor::log_softmax(int64_t d) const { return ember::log_softmax(*this, d); }
Tensor Tensor::matmul(const Tensor& o) const { return ember::matmul(*this, o); }
Tensor Tensor::mm(const Tensor& o) const { return ember::mm(*this, o); }
Tensor Tensor::bmm(const Tensor& o) const { return ember::bmm(*this, o); }
Tensor Tensor::index_select(int64_t d, const Tensor& i) const { return ember::index_select(*this, d, i); }
Tensor Tensor::gather(int64_t d, const Tensor& i) const { return ember::gather(*this, d, i); }
Tensor Tensor::scatter(int64_t d, const Tensor& i, const Tensor& s) const {
  return ember::scatter(*this, d, i, s);
}
Tensor Tensor::scatter_add(int64_t d, const Tensor& i, const Tensor& s) const {
  return ember::scatter_add(*this, d, i, s);
}
Tensor Tensor::index_add(int64_t d, const Tensor& i, const Tensor& s, Scalar a) const {
  return ember::index_add(*this, d, i, s, a);
}
Tensor Tensor::tril(int64_t d) const { return ember::tril(*this, d); }
Tensor Tensor::triu(int64_t d) const { return ember::triu(*this, d); }
std::pair<Tensor, Tensor> Tensor::topk(int64_t k, int64_t d, bool l, bool s) const {
  return ember::topk(*this, k, d, l, s);
}
std::pair<Tensor, Tensor> Tensor::sort(int64_t d, bool desc) const { return ember::sort(*this, d, desc); }
Tensor Tensor::argsort(int64_t d, bool desc) const { return ember::argsort(*this, d, desc); }
bool Tensor::allclose(const Tensor& o, double r, double a, bool n) const {
  return ember::allclose(*this, o, r, a, n);
}
bool Tensor::equal(const Tensor& o) const { return ember::equal(*this, o); }

// ---- in place ------------------------------------------------------------------------------------

namespace {
// Whether autograd sees an in-place write into `self`: grad mode is on and self, or the tensor
// self is a view of, is part of a graph.
bool write_is_tracked(const Tensor& self) {
  const auto& base = self.impl()->view_base;
  return autograd::GradMode::is_enabled() && (self.requires_grad() || (base && Tensor(base).requires_grad()));
}
Tensor inplace_source(const Tensor& self) { return write_is_tracked(self) ? self.clone() : self; }
}  // namespace

// Each computes the out-of-place result and commits it into this tensor's memory (see
// commit_inplace). Outside autograd that is one extra pass over the data; the optimizers, whose
// updates are all in place, use fused update kernels instead.

// The ops whose backward reads their input (mul by a tensor, pow, clamp) read inplace_source(*this):
// under autograd a copy, since the write is about to replace that value (PyTorch saves the original
// self the same way); the others need no copy.
#define EMBER_INPLACE(decl, name, expr)         \
  Tensor& Tensor::decl {                        \
    check_inplace(*this, name);                 \
    Tensor result = expr;                       \
    return commit_inplace(*this, result, name); \
  }
// Binary in-place ops with a tensor first try writing straight into self (no temporary).
#define EMBER_BINARY_INPLACE(decl, name, OP, expr)                         \
  Tensor& Tensor::decl {                                                   \
    check_inplace(*this, name);                                            \
    if (try_binary_inplace(kernels::BinaryOp::OP, *this, o)) return *this; \
    Tensor result = expr;                                                  \
    return commit_inplace(*this, result, name);                            \
  }
Tensor& Tensor::add_(const Tensor& o, Scalar a) {
  check_inplace(*this, "add_");
  if (a.to_double() == 1.0 && try_binary_inplace(kernels::BinaryOp::Add, *this, o)) return *this;
  return commit_inplace(*this, ember::add(*this, o, a), "add_");
}
Tensor& Tensor::sub_(const Tensor& o, Scalar a) {
  check_inplace(*this, "sub_");
  if (a.to_double() == 1.0 && try_binary_inplace(kernels::BinaryOp::Sub, *this, o)) return *this;
  return commit_inplace(*this, ember::sub(*this, o, a), "sub_");
}
EMBER_BINARY_INPLACE(mul_(const Tensor& o), "mul_", Mul, ember::mul(inplace_source(*this), o))
EMBER_BINARY_INPLACE(div_(const Tensor& o), "div_", Div, ember::div(*this, o))
#undef EMBER_BINARY_INPLACE
EMBER_INPLACE(add_(Scalar o), "add_", ember::add(*this, o))
EMBER_INPLACE(sub_(Scalar o), "sub_", ember::sub(*this, o))
EMBER_INPLACE(mul_(Scalar o), "mul_", ember::mul(*this, o))
EMBER_INPLACE(div_(Scalar o), "div_", ember::div(*this, o))
EMBER_INPLACE(pow_(Scalar e), "pow_", ember::pow(inplace_source(*this), e))
EMBER_INPLACE(neg_(), "neg_", ember::neg(*this))
EMBER_INPLACE(exp_(), "exp_", ember::exp(*this))
EMBER_INPLACE(sqrt_(), "sqrt_", ember::sqrt(*this))
EMBER_INPLACE(relu_(), "relu_", ember::relu(*this))
EMBER_INPLACE(sigmoid_(), "sigmoid_", ember::sigmoid(*this))
EMBER_INPLACE(tanh_(), "tanh_", ember::tanh(*this))
EMBER_INPLACE(clamp_(std::optional<Scalar> lo, std::optional<Scalar> hi), "clamp_",
              ember::clamp(inplace_source(*this), lo, hi))
EMBER_INPLACE(masked_fill_(const Tensor& m, Scalar v), "masked_fill_", ember::masked_fill(*this, m, v))
#undef EMBER_INPLACE

// Straight into memory unless autograd must see the write: into a tracked tensor, or a view of
// one (commit_inplace then cuts the filled region off from the old history).
Tensor& Tensor::fill_(Scalar value) {
  check_inplace(*this, "fill_");
  const bool tracked = write_is_tracked(*this);
  if (is_contiguous() && !tracked) {
    backend_of(*this).fill(dtype(), data_ptr(), numel(), value);
    checked()->storage->bump_version();
    return *this;
  }
  Tensor constant;
  {
    autograd::NoGradGuard guard;
    constant = full(sizes(), value, options());
  }
  return commit_inplace(*this, constant, "fill_");
}

Tensor& Tensor::zero_() { return fill_(0); }

Tensor& Tensor::copy_(const Tensor& src) {
  check_inplace(*this, "copy_");
  EMBER_CHECK(broadcast_shapes(src.sizes(), sizes(), "copy_") == sizes(), "copy_: source of shape ",
              src.sizes(), " cannot be broadcast to the destination's shape ", sizes());
  Tensor s = src.to(device()).to(dtype());
  if (s.sizes() != sizes()) s = s.expand(sizes());
  // The copy is differentiable w.r.t. src: its gradient is the destination's gradient.
  Tensor result = s.requires_grad() ? s.clone() : s;
  return commit_inplace(*this, result, "copy_");
}

Tensor& Tensor::assign_data_(const Tensor& src) {
  EMBER_CHECK(src.sizes() == sizes(), "assign_data_: shape ", src.sizes(), " does not match ", sizes());
  autograd::NoGradGuard guard;
  return commit_inplace(*this, src, "assign_data_");
}

}  // namespace ember
