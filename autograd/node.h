// The graph autograd records while ops run forward. Each differentiable op adds a Node whose `apply`
// maps gradients of the op's outputs to gradients of its inputs; `next_edges[i]` says where the
// gradient for input i goes (the Node that produced that input, or the AccumulateGrad of a leaf).
// Tensors a backward formula needs are kept as SavedTensors, which remember the version counter at
// save time and refuse to unpack if the tensor was written in place since.
#pragma once
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "ember/core/tensor.h"

namespace ember::autograd {

using variable_list = std::vector<Tensor>;
using TensorHook = std::function<Tensor(const Tensor&)>;
struct Node;

struct Edge {
  std::shared_ptr<Node> node;
  uint32_t input_nr = 0;
  bool valid() const { return node != nullptr; }
};

// What autograd keeps per tensor that takes part in a graph.
struct AutogradMeta {
  bool requires_grad = false;
  Tensor grad;
  std::shared_ptr<Node> grad_fn;         // null for leaves
  uint32_t output_nr = 0;                // which output of grad_fn this tensor is
  std::weak_ptr<Node> grad_accumulator;  // leaves: the AccumulateGrad node, made on demand
  std::vector<TensorHook> leaf_hooks;    // leaves: run before accumulation
  bool retains_grad = false;
};

class SavedTensor {
 public:
  SavedTensor() = default;
  // is_output: the tensor is an output of the node saving it. It is then kept without its grad_fn
  // (which would be a reference cycle) and re-linked to the node on unpack.
  SavedTensor(const Tensor& t, bool is_output);
  Tensor unpack(const std::shared_ptr<Node>& owner, const std::string& owner_name) const;

 private:
  Tensor data_;
  uint64_t version_ = 0;
  bool is_output_ = false;
  bool requires_grad_ = false;
  uint32_t output_nr_ = 0;
};

// Shape and dtype of one forward output: used to make zeros for an output that got no gradient.
struct OutputMeta {
  Shape shape;
  DType dtype = kFloat32;
  Device device;
};

struct Node : std::enable_shared_from_this<Node> {
  explicit Node(std::string name);
  // Releases the nodes only this one keeps alive without recursing into them (see node.cpp).
  virtual ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // grads[i] is the gradient of the forward op's output i (never undefined when called by the
  // engine: missing ones are filled with zeros). Returns one gradient per next_edge.
  virtual variable_list apply(variable_list&& grads) = 0;
  // Drops saved tensors after a backward without retain_graph.
  virtual void release_saved() {}

  const std::string& name() const { return name_; }
  size_t num_outputs() const { return output_meta.size(); }

  std::vector<Edge> next_edges;
  std::vector<OutputMeta> output_meta;
  // pre_hooks[i] run on the gradient of output i before apply (tensor hooks, retain_grad).
  std::vector<std::vector<TensorHook>> pre_hooks;
  uint64_t sequence_nr;  // creation order; the engine runs later nodes first

 private:
  std::string name_;
};

// A node defined by a backward lambda and the tensors it saved: what every built-in op uses.
class FunctionNode : public Node {
 public:
  using BackwardFn = std::function<variable_list(FunctionNode&, const variable_list&)>;
  FunctionNode(std::string name, BackwardFn fn) : Node(std::move(name)), fn_(std::move(fn)) {}

  variable_list apply(variable_list&& grads) override;
  void release_saved() override;

  // The i-th saved tensor, version-checked.
  Tensor saved(size_t i);
  // Whether the forward op's input i needs a gradient (skip computing it otherwise).
  bool needs_input_grad(size_t i) const { return i < next_edges.size() && next_edges[i].valid(); }
  const Shape& input_shape(size_t i) const { return input_shapes_[i]; }
  DType input_dtype(size_t i) const { return input_dtypes_[i]; }

 private:
  friend void record_inputs(FunctionNode&, std::span<const Tensor>);
  friend void save_tensors(FunctionNode&, std::span<const Tensor>, std::span<const Tensor>);
  BackwardFn fn_;
  std::vector<SavedTensor> saved_;
  std::vector<Shape> input_shapes_;
  std::vector<DType> input_dtypes_;
  bool released_ = false;
};

// The sink of a leaf: adds incoming gradients into the leaf's .grad().
class AccumulateGrad : public Node {
 public:
  explicit AccumulateGrad(Tensor variable);
  variable_list apply(variable_list&& grads) override;
  const Tensor& variable() const { return variable_; }

 private:
  Tensor variable_;
};

// ---- helpers used by ops ---------------------------------------------------------------------
AutogradMeta& meta_of(const Tensor& t);  // creates the metadata if missing
AutogradMeta* meta_if(const Tensor& t);  // null when the tensor has none
// Where a gradient flowing into `t` goes: its grad_fn, or its leaf accumulator.
Edge gradient_edge(const Tensor& t);
std::shared_ptr<Node> grad_accumulator(const Tensor& t);

// Attaches a new node for an op: `inputs` are the forward inputs (one next_edge each, an invalid
// edge where an input needs no gradient), `outputs` become the node's outputs (their grad_fn is set;
// non-floating outputs are skipped), `to_save` are kept as SavedTensors for `fn`.
// Returns the node, or null if no input requires grad or grad mode is off.
std::shared_ptr<FunctionNode> record(const char* name, const std::vector<Tensor>& inputs,
                                     const std::vector<Tensor>& outputs, const std::vector<Tensor>& to_save,
                                     FunctionNode::BackwardFn fn);
std::shared_ptr<FunctionNode> record(const char* name, std::span<const Tensor> inputs,
                                     std::span<const Tensor> outputs, std::span<const Tensor> to_save,
                                     FunctionNode::BackwardFn fn);
bool should_record(const std::vector<Tensor>& inputs);
bool should_record(const Tensor* first, const Tensor* last);
inline bool should_record(std::initializer_list<Tensor> inputs) {
  return should_record(inputs.begin(), inputs.end());
}

}  // namespace ember::autograd

namespace ember::trace {
bool recording();  // core/trace.h
}

namespace ember::autograd {

// Whether an op on [first, last) leaves anything behind: a graph node, or an event for a tracer.
inline bool records_or_traces(const Tensor* first, const Tensor* last) {
  return trace::recording() || should_record(first, last);
}

// The form ops use, with braced lists: whether there is anything to record (or a tracer to tell) is
// decided before the lists become vectors and the formula a std::function, so an op run under
// NoGradGuard (inference, generation) pays no allocation here, and a recorded one reads the lists
// where they lie.
template <class Fn>
std::shared_ptr<FunctionNode> record(const char* name, std::initializer_list<Tensor> inputs,
                                     std::initializer_list<Tensor> outputs,
                                     std::initializer_list<Tensor> to_save, Fn&& fn) {
  if (!records_or_traces(inputs.begin(), inputs.end())) return nullptr;
  return record(name, std::span<const Tensor>(inputs.begin(), inputs.size()),
                std::span<const Tensor>(outputs.begin(), outputs.size()),
                std::span<const Tensor>(to_save.begin(), to_save.size()),
                FunctionNode::BackwardFn(std::forward<Fn>(fn)));
}

}  // namespace ember::autograd
