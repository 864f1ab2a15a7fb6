// nn::Module: the base of every layer and model. A module owns named parameters (tensors to train),
// buffers (state that is saved but not trained, e.g. BatchNorm's running mean) and child modules,
// each in insertion order, so `named_parameters()` gives PyTorch's dotted names ("0.weight",
// "encoder.layers.1.linear1.bias") and `state_dict()` round-trips with PyTorch.
//
// Layers whose forward takes and returns one tensor override `forward(const Tensor&)`; calling the
// module (`m(x)`) runs forward pre-hooks, forward, then forward hooks. Layers with other signatures
// (attention, losses) have their own `forward` overloads.
#pragma once
#include <functional>
#include <iosfwd>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "ember/core/ops.h"

namespace ember::nn {

// An insertion-ordered name -> tensor list, the type of state_dict() (lookups are linear: these
// lists are short and order is what matters).
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

struct LoadResult {
  std::vector<std::string> missing_keys;
  std::vector<std::string> unexpected_keys;
};

class Module : public std::enable_shared_from_this<Module> {
 public:
  explicit Module(std::string type_name = "Module");
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // ---- registration ---------------------------------------------------------------------
  // Returns the registered tensor (the same handle the module keeps).
  Tensor& register_parameter(const std::string& name, Tensor param, bool requires_grad = true);
  Tensor& register_buffer(const std::string& name, Tensor buffer, bool persistent = true);
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    add_child(name, module);
    return module;
  }
  // Replaces a registered child (used by containers); the name must exist.
  void replace_module(const std::string& name, std::shared_ptr<Module> module);

  // ---- traversal -------------------------------------------------------------------------
  std::vector<Tensor> parameters(bool recurse = true) const;
  NamedTensors named_parameters(bool recurse = true) const;
  std::vector<Tensor> buffers(bool recurse = true) const;
  NamedTensors named_buffers(bool recurse = true) const;
  std::vector<std::shared_ptr<Module>> children() const;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_children() const;
  // This module first, then every descendant (depth first, each once).
  std::vector<std::shared_ptr<Module>> modules();
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_modules(const std::string& prefix = "");
  // Calls fn on every descendant and then on this module (PyTorch's order).
  Module& apply(const std::function<void(Module&)>& fn);
  int64_t num_parameters(bool trainable_only = false) const;

  // ---- modes and conversion --------------------------------------------------------------
  virtual Module& train(bool on = true);
  Module& eval() { return train(false); }
  bool is_training() const { return training_; }
  // Each module's own train/eval flag, this one first and then its children depth first; and the
  // same flags put back without calling train() (what the Trainer does around an evaluation loop,
  // so a submodule the user left in eval mode stays there).
  std::vector<bool> training_modes() const;
  void set_training_modes(const std::vector<bool>& modes);
  // In place: every parameter and buffer keeps its Tensor identity (optimizers stay valid), only
  // its data moves or changes dtype. to(dtype) converts floating tensors only.
  Module& to(Device device);
  Module& to(DType dtype);
  Module& to(Device device, DType dtype);
  void zero_grad(bool set_to_none = true);
  Module& requires_grad_(bool on = true);

  // ---- state -------------------------------------------------------------------------------
  NamedTensors state_dict() const;
  // Copies values in (no_grad); errors name the key and both shapes. With strict, missing or
  // unexpected keys are an error; otherwise they are reported in the result.
  LoadResult load_state_dict(const NamedTensors& state, bool strict = true);

  // ---- forward ----------------------------------------------------------------------------
  virtual Tensor forward(const Tensor& input);
  Tensor operator()(const Tensor& input);
  using PreHook = std::function<Tensor(Module&, const Tensor&)>;                  // may replace input
  using PostHook = std::function<Tensor(Module&, const Tensor&, const Tensor&)>;  // may replace output
  void register_forward_pre_hook(PreHook hook) { pre_hooks_.push_back(std::move(hook)); }
  void register_forward_hook(PostHook hook) { post_hooks_.push_back(std::move(hook)); }

  // ---- printing --------------------------------------------------------------------------
  const std::string& type_name() const { return type_name_; }
  // The part inside the parentheses of this module's line, e.g. "in_features=4, out_features=2".
  virtual std::string extra_repr() const { return ""; }
  std::string repr() const;

  // Direct access to this module's own entries (not children's).
  Tensor* find_parameter(const std::string& name);
  Tensor* find_buffer(const std::string& name);
  std::shared_ptr<Module> find_child(const std::string& name) const;

 protected:
  void add_child(const std::string& name, std::shared_ptr<Module> module);
  void clear_children() { children_.clear(); }

 private:
  struct BufferEntry {
    std::string name;
    Tensor tensor;
    bool persistent;
  };
  void convert_tensors(const std::function<Tensor(const Tensor&)>& fn);
  void collect(const std::string& prefix, bool params, bool persistent_only, bool recurse,
               NamedTensors& out) const;
  std::string type_name_;
  bool training_ = true;
  std::vector<std::pair<std::string, Tensor>> params_;
  std::vector<BufferEntry> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  std::vector<PreHook> pre_hooks_;
  std::vector<PostHook> post_hooks_;
};

std::ostream& operator<<(std::ostream& os, const Module& m);

// Looks a key up in a NamedTensors list; null when absent.
const Tensor* find(const NamedTensors& list, const std::string& key);

}  // namespace ember::nn
