// Nodes, saved tensors and the recording helper every differentiable op calls.
#include "ember/autograd/node.h"

#include <atomic>

#include "ember/autograd/grad_mode.h"
#include "ember/core/ops.h"
#include "ember/core/trace.h"

namespace ember::autograd {
namespace {
std::atomic<uint64_t> next_sequence_nr{0};
thread_local bool grad_mode_enabled = true;
std::atomic<bool> anomaly_enabled{false};
}  // namespace

bool GradMode::is_enabled() { return grad_mode_enabled; }
void GradMode::set_enabled(bool enabled) { grad_mode_enabled = enabled; }
bool AnomalyMode::is_enabled() { return anomaly_enabled; }
void AnomalyMode::set_enabled(bool enabled) { anomaly_enabled = enabled; }

// Releasing the last reference to a node releases the nodes only it points at, which release theirs:
// a recursion as deep as the graph, which overflows the C++ stack for a chain of a million ops. So the
// nodes that would die with this one are moved to a local list and released one at a time, each
// first dropping its saved tensors (which may hold the only other references to nodes below it)
// and handing over its own dying next nodes.
Node::~Node() {
  std::vector<std::shared_ptr<Node>> dying;
  auto take_dying = [&dying](std::vector<Edge>& edges) {
    for (Edge& e : edges)
      if (e.node && e.node.use_count() == 1) dying.push_back(std::move(e.node));
  };
  take_dying(next_edges);
  while (!dying.empty()) {
    std::shared_ptr<Node> node = std::move(dying.back());
    dying.pop_back();
    node->release_saved();
    take_dying(node->next_edges);
  }  // `node` is released here with no next node left that it alone keeps alive
}

Node::Node(std::string name) : sequence_nr(next_sequence_nr++), name_(std::move(name)) {}

// An alias of t's data (same storage, so the same version counter) with no autograd metadata.
static Tensor bare_alias(const Tensor& t) {
  auto impl = std::make_shared<TensorImpl>(*t.impl());
  impl->autograd.reset();
  return Tensor(std::move(impl));
}

SavedTensor::SavedTensor(const Tensor& t, bool is_output) : is_output_(is_output) {
  if (!t.defined()) return;
  version_ = t.version();
  requires_grad_ = t.requires_grad();
  if (is_output) {
    data_ = bare_alias(t);
    output_nr_ = t.output_nr();
  } else {
    data_ = t;
  }
}

Tensor SavedTensor::unpack(const std::shared_ptr<Node>& owner, const std::string& owner_name) const {
  if (!data_.defined()) return {};
  if (data_.version() != version_) {
    fail("autograd: one of the tensors saved by '", owner_name,
         "' for its backward was modified by an in-place operation: a ", dtype_name(data_.dtype()),
         " tensor of shape ", data_.sizes(), " is at version ", data_.version(), ", expected ", version_,
         ". Clone it before the in-place op, or do the op out of place.");
  }
  if (!is_output_) return data_;
  Tensor t = bare_alias(data_);
  if (requires_grad_) {
    auto& m = meta_of(t);
    m.requires_grad = true;
    m.grad_fn = owner;
    m.output_nr = output_nr_;
  }
  return t;
}

AutogradMeta& meta_of(const Tensor& t) {
  auto& ptr = t.impl()->autograd;
  if (!ptr) ptr = std::make_shared<AutogradMeta>();
  return *ptr;
}

AutogradMeta* meta_if(const Tensor& t) { return t.defined() ? t.impl()->autograd.get() : nullptr; }

std::shared_ptr<Node> grad_accumulator(const Tensor& t) {
  auto& m = meta_of(t);
  if (auto existing = m.grad_accumulator.lock()) return existing;
  auto acc = std::make_shared<AccumulateGrad>(t);
  m.grad_accumulator = acc;
  return acc;
}

Edge gradient_edge(const Tensor& t) {
  AutogradMeta* m = meta_if(t);
  if (!m || !m->requires_grad) return {};
  if (m->grad_fn) return {m->grad_fn, m->output_nr};
  return {grad_accumulator(t), 0};
}

bool should_record(const Tensor* first, const Tensor* last) {
  if (!GradMode::is_enabled()) return false;
  for (const Tensor* t = first; t != last; ++t)
    if (t->defined() && t->requires_grad()) return true;
  return false;
}

bool should_record(const std::vector<Tensor>& inputs) {
  return should_record(inputs.data(), inputs.data() + inputs.size());
}

void record_inputs(FunctionNode& node, std::span<const Tensor> inputs) {
  node.next_edges.reserve(inputs.size());
  node.input_shapes_.reserve(inputs.size());
  node.input_dtypes_.reserve(inputs.size());
  for (const auto& t : inputs) {
    node.next_edges.push_back(t.defined() ? gradient_edge(t) : Edge{});
    node.input_shapes_.push_back(t.defined() ? t.sizes() : Shape{});
    node.input_dtypes_.push_back(t.defined() ? t.dtype() : kFloat32);
  }
}

void save_tensors(FunctionNode& node, std::span<const Tensor> outputs, std::span<const Tensor> to_save) {
  node.saved_.reserve(to_save.size());
  for (const auto& t : to_save) {
    bool is_output = false;
    for (const auto& o : outputs)
      if (t.defined() && o.is_same(t)) is_output = true;
    node.saved_.emplace_back(t, is_output);
  }
}

std::shared_ptr<FunctionNode> record(const char* name, std::span<const Tensor> inputs,
                                     std::span<const Tensor> outputs, std::span<const Tensor> to_save,
                                     FunctionNode::BackwardFn fn) {
  // An op that reports itself to a tracer has an OpScope open; one that does not is reported here
  // by its autograd name, which the exporter either maps or names in its error.
  if (trace::recording())
    trace::on_autograd_record(name, std::vector<Tensor>(inputs.begin(), inputs.end()),
                              std::vector<Tensor>(outputs.begin(), outputs.end()));
  if (!should_record(inputs.data(), inputs.data() + inputs.size())) return nullptr;
  auto node = std::make_shared<FunctionNode>(name, std::move(fn));
  record_inputs(*node, inputs);
  node->output_meta.reserve(outputs.size());
  node->pre_hooks.resize(outputs.size());
  for (size_t i = 0; i < outputs.size(); ++i) {
    const Tensor& out = outputs[i];
    node->output_meta.push_back({out.sizes(), out.dtype(), out.device()});
    if (!is_floating(out.dtype())) continue;  // integer outputs (indices) never carry gradients
    auto& m = meta_of(out);
    m.requires_grad = true;
    m.grad_fn = node;
    m.output_nr = static_cast<uint32_t>(i);
  }
  save_tensors(*node, outputs, to_save);
  return node;
}

std::shared_ptr<FunctionNode> record(const char* name, const std::vector<Tensor>& inputs,
                                     const std::vector<Tensor>& outputs, const std::vector<Tensor>& to_save,
                                     FunctionNode::BackwardFn fn) {
  return record(name, std::span<const Tensor>(inputs), std::span<const Tensor>(outputs),
                std::span<const Tensor>(to_save), std::move(fn));
}

Tensor FunctionNode::saved(size_t i) {
  if (released_) {
    fail("autograd: trying to backward through '", name(),
         "' a second time, after its saved tensors were freed. Pass retain_graph=true to the first "
         "backward if you need to run backward twice.");
  }
  return saved_.at(i).unpack(shared_from_this(), name());
}

variable_list FunctionNode::apply(variable_list&& grads) {
  if (released_) {
    fail("autograd: trying to backward through '", name(),
         "' a second time, after its saved tensors were freed. Pass retain_graph=true to the first "
         "backward if you need to run backward twice.");
  }
  variable_list out = fn_(*this, grads);
  out.resize(next_edges.size());
  for (size_t i = 0; i < out.size(); ++i) {
    if (!next_edges[i].valid()) {
      out[i] = Tensor();
      continue;
    }
    if (!out[i].defined()) continue;
    // Broadcasting in forward means summing in backward; promotion means casting back.
    if (out[i].sizes() != input_shapes_[i]) out[i] = sum_to(out[i], input_shapes_[i]);
    if (out[i].dtype() != input_dtypes_[i]) out[i] = out[i].to(input_dtypes_[i]);
  }
  return out;
}

void FunctionNode::release_saved() {
  saved_.clear();
  released_ = true;
}

AccumulateGrad::AccumulateGrad(Tensor variable) : Node("AccumulateGrad"), variable_(std::move(variable)) {
  output_meta.push_back({variable_.sizes(), variable_.dtype(), variable_.device()});
  pre_hooks.resize(1);
}

variable_list AccumulateGrad::apply(variable_list&& grads) {
  Tensor g = std::move(grads.at(0));
  auto& m = meta_of(variable_);
  for (auto& hook : m.leaf_hooks) {
    Tensor replaced = hook(g);
    if (replaced.defined()) g = replaced;
  }
  if (!g.defined()) return {};
  if (g.sizes() != variable_.sizes()) {
    fail("autograd: gradient of shape ", g.sizes(), " does not match the leaf's shape ", variable_.sizes());
  }
  if (!m.grad.defined()) {
    // Own the stored gradient: what arrives may be a broadcast view or shared with the caller, in
    // which case it is copied; a fresh compact gradient nobody else holds is taken as it is.
    const bool sole_owner = g.impl_ptr().use_count() == 1 && g.impl()->storage.use_count() == 1;
    if (GradMode::is_enabled()) m.grad = g.clone();
    else m.grad = sole_owner && g.is_contiguous() && !g.impl()->autograd ? g : g.detach().clone();
  } else if (GradMode::is_enabled()) {
    m.grad = m.grad + g;  // create_graph: keep the accumulation differentiable
  } else {
    m.grad.add_(g);
  }
  return {};
}

}  // namespace ember::autograd
