// Module's registration, traversal, state_dict and printing.
#include "ember/nn/module.h"

#include <ostream>
#include <set>
#include <sstream>

#include "ember/autograd/grad_mode.h"

namespace ember::nn {

namespace {
void check_name(const std::string& name, const char* what) {
  EMBER_CHECK(!name.empty() && name.find('.') == std::string::npos, "register_", what, ": name \"", name,
              "\" must be non-empty and contain no '.'");
}
}  // namespace

Module::Module(std::string type_name) : type_name_(std::move(type_name)) {}

Tensor& Module::register_parameter(const std::string& name, Tensor param, bool requires_grad) {
  check_name(name, "parameter");
  for (auto& [n, t] : params_)
    EMBER_CHECK(n != name, "register_parameter: ", type_name_, " already has a parameter \"", name, "\"");
  if (param.defined() && requires_grad && !param.requires_grad()) param.requires_grad_(true);
  params_.emplace_back(name, std::move(param));
  return params_.back().second;
}

Tensor& Module::register_buffer(const std::string& name, Tensor buffer, bool persistent) {
  check_name(name, "buffer");
  for (auto& b : buffers_)
    EMBER_CHECK(b.name != name, "register_buffer: ", type_name_, " already has a buffer \"", name, "\"");
  buffers_.push_back({name, std::move(buffer), persistent});
  return buffers_.back().tensor;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> module) {
  check_name(name, "module");
  EMBER_CHECK(module != nullptr, "register_module: module \"", name, "\" is null");
  for (auto& [n, m] : children_)
    EMBER_CHECK(n != name, "register_module: ", type_name_, " already has a child \"", name, "\"");
  children_.emplace_back(name, std::move(module));
}

void Module::replace_module(const std::string& name, std::shared_ptr<Module> module) {
  for (auto& [n, m] : children_)
    if (n == name) {
      m = std::move(module);
      return;
    }
  fail("replace_module: ", type_name_, " has no child \"", name, "\"");
}

void Module::collect(const std::string& prefix, bool params, bool persistent_only, bool recurse,
                     NamedTensors& out) const {
  if (params) {
    for (const auto& [n, t] : params_)
      if (t.defined()) out.emplace_back(prefix + n, t);
  } else {
    for (const auto& b : buffers_)
      if (b.tensor.defined() && (b.persistent || !persistent_only))
        out.emplace_back(prefix + b.name, b.tensor);
  }
  if (!recurse) return;
  for (const auto& [n, child] : children_)
    child->collect(prefix + n + ".", params, persistent_only, true, out);
}

NamedTensors Module::named_parameters(bool recurse) const {
  NamedTensors out;
  collect("", true, false, recurse, out);
  // A tensor shared by two modules (tied weights) is listed once, under its first name.
  NamedTensors unique;
  std::set<const TensorImpl*> seen;
  for (auto& [n, t] : out)
    if (seen.insert(t.impl()).second) unique.emplace_back(n, t);
  return unique;
}

std::vector<Tensor> Module::parameters(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& [n, t] : named_parameters(recurse)) out.push_back(t);
  return out;
}

NamedTensors Module::named_buffers(bool recurse) const {
  NamedTensors out;
  collect("", false, false, recurse, out);
  return out;
}

std::vector<Tensor> Module::buffers(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& [n, t] : named_buffers(recurse)) out.push_back(t);
  return out;
}

std::vector<std::shared_ptr<Module>> Module::children() const {
  std::vector<std::shared_ptr<Module>> out;
  for (auto& [n, m] : children_) out.push_back(m);
  return out;
}

std::vector<std::pair<std::string, std::shared_ptr<Module>>> Module::named_children() const {
  return children_;
}

std::vector<std::pair<std::string, std::shared_ptr<Module>>> Module::named_modules(
    const std::string& prefix) {
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> out;
  std::set<const Module*> seen;
  std::function<void(const std::string&, const std::shared_ptr<Module>&)> visit =
      [&](const std::string& name, const std::shared_ptr<Module>& m) {
        if (!seen.insert(m.get()).second) return;
        out.emplace_back(name, m);
        for (auto& [n, child] : m->children_) visit(name.empty() ? n : name + "." + n, child);
      };
  visit(prefix, shared_from_this());
  return out;
}

std::vector<std::shared_ptr<Module>> Module::modules() {
  std::vector<std::shared_ptr<Module>> out;
  for (auto& [n, m] : named_modules()) out.push_back(m);
  return out;
}

Module& Module::apply(const std::function<void(Module&)>& fn) {
  for (auto& [n, child] : children_) child->apply(fn);
  fn(*this);
  return *this;
}

int64_t Module::num_parameters(bool trainable_only) const {
  int64_t n = 0;
  for (auto& t : parameters())
    if (!trainable_only || t.requires_grad()) n += t.numel();
  return n;
}

std::vector<bool> Module::training_modes() const {
  std::vector<bool> out{training_};
  for (auto& [n, child] : children_) {
    auto below = child->training_modes();
    out.insert(out.end(), below.begin(), below.end());
  }
  return out;
}

void Module::set_training_modes(const std::vector<bool>& modes) {
  size_t next = 0;
  std::function<void(Module&)> restore = [&](Module& m) {
    EMBER_CHECK(next < modes.size(), "set_training_modes: ", modes.size(),
                " flags for a module tree with more modules");
    m.training_ = modes[next++];
    for (auto& [n, child] : m.children_) restore(*child);
  };
  restore(*this);
  EMBER_CHECK(next == modes.size(), "set_training_modes: ", modes.size(), " flags for a tree of ", next,
              " modules");
}

Module& Module::train(bool on) {
  training_ = on;
  for (auto& [n, child] : children_) child->train(on);
  return *this;
}

// Replaces each parameter's and buffer's data by fn(tensor), keeping the Tensor handle: the
// implementation's storage and geometry are swapped, so every holder of the handle (an optimizer, a
// module sharing the weight) sees the converted data.
void Module::convert_tensors(const std::function<Tensor(const Tensor&)>& fn) {
  autograd::NoGradGuard guard;
  auto convert = [&](Tensor& t) {
    if (!t.defined()) return;
    Tensor moved = fn(t);
    if (moved.is_same(t)) return;
    TensorImpl* impl = t.impl();
    impl->storage = moved.impl()->storage;
    impl->sizes = moved.sizes();
    impl->strides = moved.strides();
    impl->offset = moved.storage_offset();
    impl->dtype = moved.dtype();
    if (t.grad().defined()) t.mutable_grad() = t.grad().to(moved.device(), moved.dtype());
  };
  apply([&](Module& m) {
    for (auto& [n, t] : m.params_) convert(t);
    for (auto& b : m.buffers_) convert(b.tensor);
  });
}

Module& Module::to(Device device, DType dtype) {
  convert_tensors([&](const Tensor& t) { return t.to(device, t.is_floating_point() ? dtype : t.dtype()); });
  return *this;
}

Module& Module::to(Device device) {
  convert_tensors([&](const Tensor& t) { return t.to(device); });
  return *this;
}

Module& Module::to(DType dtype) {
  convert_tensors([&](const Tensor& t) { return t.is_floating_point() ? t.to(dtype) : t; });
  return *this;
}

void Module::zero_grad(bool set_to_none) {
  for (auto& t : parameters()) {
    if (!t.grad().defined()) continue;
    if (set_to_none) t.mutable_grad() = Tensor();
    else {
      autograd::NoGradGuard guard;
      t.mutable_grad().zero_();
    }
  }
}

Module& Module::requires_grad_(bool on) {
  for (auto& t : parameters()) t.requires_grad_(on);
  return *this;
}

NamedTensors Module::state_dict() const {
  NamedTensors out;
  std::function<void(const Module&, const std::string&)> visit = [&](const Module& m,
                                                                     const std::string& prefix) {
    for (const auto& [n, t] : m.params_)
      if (t.defined()) out.emplace_back(prefix + n, t.detach());
    for (const auto& b : m.buffers_)
      if (b.tensor.defined() && b.persistent) out.emplace_back(prefix + b.name, b.tensor.detach());
    for (const auto& [n, child] : m.children_) visit(*child, prefix + n + ".");
  };
  visit(*this, "");
  return out;
}

const Tensor* find(const NamedTensors& list, const std::string& key) {
  for (const auto& [n, t] : list)
    if (n == key) return &t;
  return nullptr;
}

LoadResult Module::load_state_dict(const NamedTensors& state, bool strict) {
  LoadResult result;
  NamedTensors mine = state_dict();
  std::set<std::string> expected;
  for (auto& [n, t] : mine) expected.insert(n);
  for (auto& [n, t] : state)
    if (!expected.count(n)) result.unexpected_keys.push_back(n);
  for (auto& [n, t] : mine)
    if (!find(state, n)) result.missing_keys.push_back(n);
  if (strict && (!result.missing_keys.empty() || !result.unexpected_keys.empty())) {
    std::ostringstream os;
    os << "load_state_dict: error(s) loading state_dict for " << type_name_ << ":";
    if (!result.missing_keys.empty()) {
      os << " missing key(s):";
      for (auto& k : result.missing_keys) os << " \"" << k << "\"";
      os << ".";
    }
    if (!result.unexpected_keys.empty()) {
      os << " unexpected key(s):";
      for (auto& k : result.unexpected_keys) os << " \"" << k << "\"";
      os << ".";
    }
    throw Error(os.str());
  }
  // Check every shape before copying anything, so a failed load leaves the module unchanged.
  for (auto& [n, dst] : mine)
    if (const Tensor* src = find(state, n))
      EMBER_CHECK(src->sizes() == dst.sizes(), "load_state_dict: size mismatch for \"", n,
                  "\": copying a param with shape ", src->sizes(),
                  " from the checkpoint, the shape in the current model is ", dst.sizes());
  autograd::NoGradGuard guard;
  for (auto& [n, dst] : mine)
    if (const Tensor* src = find(state, n)) {
      Tensor target = dst;  // a detached alias of the registered tensor: same storage
      target.copy_(*src);
    }
  return result;
}

Tensor Module::forward(const Tensor&) {
  fail(type_name_, ": this module has no single-tensor forward; call its own forward(...)");
}

Tensor Module::operator()(const Tensor& input) {
  Tensor x = input;
  for (auto& hook : pre_hooks_) {
    Tensor replaced = hook(*this, x);
    if (replaced.defined()) x = replaced;
  }
  Tensor y = forward(x);
  for (auto& hook : post_hooks_) {
    Tensor replaced = hook(*this, x, y);
    if (replaced.defined()) y = replaced;
  }
  return y;
}

Tensor* Module::find_parameter(const std::string& name) {
  for (auto& [n, t] : params_)
    if (n == name) return &t;
  return nullptr;
}

Tensor* Module::find_buffer(const std::string& name) {
  for (auto& b : buffers_)
    if (b.name == name) return &b.tensor;
  return nullptr;
}

std::shared_ptr<Module> Module::find_child(const std::string& name) const {
  for (auto& [n, m] : children_)
    if (n == name) return m;
  return nullptr;
}

std::string Module::repr() const {
  std::ostringstream os;
  os << type_name_ << "(" << extra_repr();
  if (!children_.empty()) {
    os << "\n";
    for (auto& [n, child] : children_) {
      std::string inner = child->repr();
      // Indent the child's lines by two spaces.
      std::string indented;
      for (char c : inner) {
        indented += c;
        if (c == '\n') indented += "  ";
      }
      os << "  (" << n << "): " << indented << "\n";
    }
  }
  os << ")";
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const Module& m) { return os << m.repr() << "\n"; }

}  // namespace ember::nn
