// The engine. Three steps: (1) walk the graph from the roots and count, for every node, how many
// edges point at it; (2) seed the roots' input buffers with the output gradients; (3) repeatedly run a
// node whose buffer is complete (count reached zero), newest first, and add what it returns into the
// buffers of its next edges. With `capture` (autograd::grad), only the nodes on a path to a captured
// edge run, and the gradient arriving at each captured edge is returned instead of accumulated.
#include "ember/autograd/engine.h"

#include <algorithm>
#include <cmath>
#include <queue>
#include <unordered_map>
#include <unordered_set>

#include "ember/autograd/grad_mode.h"
#include "ember/core/ops.h"

namespace ember::autograd {
namespace {

struct Capture {
  std::vector<Edge> edges;
  variable_list grads;
};

bool has_nan(const Tensor& t) {
  if (!t.defined() || !t.is_floating_point()) return false;
  NoGradGuard guard;
  return logical_not(eq(t, t)).to(kInt64).sum().item<int64_t>() > 0;
}

void accumulate_into(Tensor& slot, const Tensor& g) {
  if (!g.defined()) return;
  slot = slot.defined() ? slot + g : g;
}

// One backward pass, in the three steps above, each a named function. Every walk over the graph is
// an explicit stack or queue: a graph thousands of nodes deep (a long RNN, a loop of small ops) needs
// no deeper C++ stack than a shallow one.
class GraphTask {
 public:
  GraphTask(bool keep_graph, Capture* capture) : keep_graph_(keep_graph), capture_(capture) {}

  void run(const std::vector<Edge>& roots, const variable_list& root_grads, bool create_graph) {
    count_dependencies(roots);
    if (capture_) mark_needed();
    seed(roots, root_grads);
    AutoGradMode mode(create_graph);
    while (!ready_.empty()) {
      Node* node = ready_.top();
      ready_.pop();
      execute(node);
    }
  }

 private:
  // (1) How many edges point at each node reachable from the roots.
  void count_dependencies(const std::vector<Edge>& roots) {
    std::vector<Node*> stack;
    for (const auto& e : roots)
      if (e.valid() && reachable_.insert(e.node.get()).second) stack.push_back(e.node.get());
    while (!stack.empty()) {
      Node* n = stack.back();
      stack.pop_back();
      for (const auto& e : n->next_edges) {
        if (!e.valid()) continue;
        ++deps_[e.node.get()];
        if (reachable_.insert(e.node.get()).second) stack.push_back(e.node.get());
      }
    }
  }

  // With captures (autograd::grad) a node needs to run only if a captured edge lies below it: the
  // needed nodes are the ancestors of the captured ones, found walking the edges backwards.
  void mark_needed() {
    std::unordered_map<Node*, std::vector<Node*>> parents;
    for (Node* n : reachable_)
      for (const auto& e : n->next_edges)
        if (e.valid()) parents[e.node.get()].push_back(n);
    std::vector<Node*> stack;
    for (const auto& e : capture_->edges)
      if (e.valid()) stack.push_back(e.node.get());
    while (!stack.empty()) {
      Node* n = stack.back();
      stack.pop_back();
      for (Node* p : parents[n])
        if (needed_.insert(p).second) stack.push_back(p);
    }
  }

  // (2) The roots' input buffers hold the output gradients; roots nothing else points at are ready.
  void seed(const std::vector<Edge>& roots, const variable_list& root_grads) {
    for (size_t i = 0; i < roots.size(); ++i)
      if (roots[i].valid()) accumulate_into(buffer_of(roots[i].node)[roots[i].input_nr], root_grads[i]);
    for (const auto& e : roots)
      if (e.valid() && deps_[e.node.get()] == 0 && buffers_.count(e.node.get())) {
        ready_.push(e.node.get());
        deps_[e.node.get()] = -1;  // queued
      }
  }

  // (3) One node whose buffer is complete: hooks, captures, its backward, then its gradients passed on.
  void execute(Node* node) {
    std::shared_ptr<Node> keep = owners_[node];
    variable_list grads = std::move(buffers_[node]);
    buffers_.erase(node);
    apply_pre_hooks(*node, grads);
    if (capture_) {
      for (size_t c = 0; c < capture_->edges.size(); ++c)
        if (capture_->edges[c].node.get() == node)
          accumulate_into(capture_->grads[c], grads[capture_->edges[c].input_nr]);
      if (!needed_.count(node)) return;  // a target with nothing needed below it
    }
    variable_list outputs;
    if (fill_missing(*node, grads)) outputs = node->apply(std::move(grads));
    if (!keep_graph_) node->release_saved();
    if (AnomalyMode::is_enabled()) check_anomaly(*node, outputs);
    propagate(*node, outputs);
  }

  static void apply_pre_hooks(Node& node, variable_list& grads) {
    for (size_t i = 0; i < grads.size() && i < node.pre_hooks.size(); ++i)
      for (auto& hook : node.pre_hooks[i]) {
        if (!grads[i].defined()) continue;
        Tensor replaced = hook(grads[i]);
        if (replaced.defined()) grads[i] = replaced;
      }
  }

  // Gradients that never arrived are zeros of the output's shape; returns whether any did arrive
  // (if none did, the backward is skipped and nothing flows on).
  static bool fill_missing(const Node& node, variable_list& grads) {
    bool any_defined = false;
    for (size_t i = 0; i < grads.size(); ++i) {
      if (grads[i].defined()) {
        any_defined = true;
      } else if (i < node.output_meta.size()) {
        const auto& m = node.output_meta[i];
        grads[i] = zeros(m.shape, TensorOptions(m.dtype).set_device(m.device));
      }
    }
    return any_defined;
  }

  static void check_anomaly(const Node& node, const variable_list& outputs) {
    for (size_t i = 0; i < outputs.size(); ++i)
      if (has_nan(outputs[i]))
        fail("autograd anomaly: the backward of '", node.name(), "' returned NaN in its ", i,
             "-th output (the gradient for input ", i, " of the forward op '", node.name(), "')");
  }

  void propagate(const Node& node, const variable_list& outputs) {
    for (size_t i = 0; i < node.next_edges.size(); ++i) {
      const Edge& e = node.next_edges[i];
      if (!e.valid()) continue;
      if (capture_ && !needed_.count(e.node.get()) && !is_captured(e.node.get())) continue;
      if (i < outputs.size()) accumulate_into(buffer_of(e.node)[e.input_nr], outputs[i]);
      else buffer_of(e.node);
      if (--deps_[e.node.get()] == 0) ready_.push(e.node.get());
    }
  }

  bool is_captured(const Node* n) const {
    return std::any_of(capture_->edges.begin(), capture_->edges.end(),
                       [&](const Edge& c) { return c.node.get() == n; });
  }

  variable_list& buffer_of(const std::shared_ptr<Node>& n) {
    auto& b = buffers_[n.get()];
    if (b.empty()) b.resize(std::max<size_t>(n->num_outputs(), 1));
    owners_.emplace(n.get(), n);
    return b;
  }

  static bool newer_first(Node* a, Node* b) { return a->sequence_nr < b->sequence_nr; }

  bool keep_graph_;
  Capture* capture_;
  std::unordered_set<Node*> reachable_, needed_;
  std::unordered_map<Node*, int> deps_;
  std::unordered_map<Node*, variable_list> buffers_;
  std::unordered_map<Node*, std::shared_ptr<Node>> owners_;  // keeps nodes alive while queued
  std::priority_queue<Node*, std::vector<Node*>, decltype(&newer_first)> ready_{&newer_first};
};

void run(const std::vector<Edge>& roots, variable_list root_grads, bool keep_graph, bool create_graph,
         Capture* capture) {
  GraphTask(keep_graph, capture).run(roots, root_grads, create_graph);
}

std::vector<Edge> root_edges(const variable_list& outputs) {
  std::vector<Edge> roots;
  for (size_t i = 0; i < outputs.size(); ++i) {
    Edge e = gradient_edge(outputs[i]);
    if (!e.valid())
      fail("backward: element ", i,
           " of the outputs does not require grad and has no grad_fn "
           "(was it computed under NoGradGuard, or from tensors without requires_grad?)");
    roots.push_back(e);
  }
  return roots;
}

variable_list root_gradients(const variable_list& outputs, const variable_list& grad_outputs) {
  if (!grad_outputs.empty() && grad_outputs.size() != outputs.size())
    fail("backward: got ", grad_outputs.size(), " gradients for ", outputs.size(), " outputs");
  variable_list grads;
  for (size_t i = 0; i < outputs.size(); ++i) {
    Tensor g = grad_outputs.empty() ? Tensor() : grad_outputs[i];
    if (!g.defined()) {
      if (outputs[i].numel() != 1)
        fail("backward: grad can be implicitly created only for scalar outputs; output ", i, " has shape ",
             outputs[i].sizes(), ", pass a gradient of that shape");
      g = ones_like(outputs[i]);
    } else if (g.sizes() != outputs[i].sizes()) {
      fail("backward: gradient of shape ", g.sizes(), " given for an output of shape ", outputs[i].sizes());
    }
    grads.push_back(g);
  }
  return grads;
}

}  // namespace

void backward(const variable_list& outputs, const variable_list& grad_outputs, bool retain_graph,
              bool create_graph) {
  run(root_edges(outputs), root_gradients(outputs, grad_outputs), retain_graph || create_graph, create_graph,
      nullptr);
}

variable_list grad(const variable_list& outputs, const variable_list& inputs,
                   const variable_list& grad_outputs, std::optional<bool> retain_graph, bool create_graph,
                   bool allow_unused) {
  Capture capture;
  for (size_t i = 0; i < inputs.size(); ++i) {
    Edge e = gradient_edge(inputs[i]);
    if (!e.valid()) fail("autograd::grad: input ", i, " does not require grad");
    capture.edges.push_back(e);
  }
  capture.grads.resize(inputs.size());
  run(root_edges(outputs), root_gradients(outputs, grad_outputs), retain_graph.value_or(create_graph),
      create_graph, &capture);
  for (size_t i = 0; i < inputs.size(); ++i)
    if (!capture.grads[i].defined() && !allow_unused)
      fail("autograd::grad: input ", i, " (shape ", inputs[i].sizes(),
           ") is not used to compute the outputs; pass allow_unused=true to get an undefined "
           "gradient for it instead");
  return capture.grads;
}

variable_list grad_aligned(const Tensor& output, const variable_list& inputs, const Tensor& grad_output,
                           bool create_graph) {
  variable_list targets;
  for (const auto& t : inputs)
    if (t.defined() && t.requires_grad()) targets.push_back(t);
  variable_list result(inputs.size());
  if (targets.empty()) return result;
  variable_list got = grad({output}, targets, {grad_output}, true, create_graph, true);
  for (size_t i = 0, j = 0; i < inputs.size(); ++i)
    if (inputs[i].defined() && inputs[i].requires_grad()) result[i] = got[j++];
  return result;
}

std::vector<Tensor> graph_leaves(const Tensor& root) {
  std::vector<Tensor> leaves;
  if (!root.defined() || !root.impl()->autograd) return leaves;
  std::shared_ptr<Node> start = meta_of(root).grad_fn;
  if (!start) {
    if (root.requires_grad()) leaves.push_back(root);
    return leaves;
  }
  std::unordered_set<const Node*> seen{start.get()};
  std::vector<Node*> stack{start.get()};
  while (!stack.empty()) {
    Node* node = stack.back();
    stack.pop_back();
    if (auto* acc = dynamic_cast<AccumulateGrad*>(node)) leaves.push_back(acc->variable());
    for (const Edge& e : node->next_edges)
      if (e.valid() && seen.insert(e.node.get()).second) stack.push_back(e.node.get());
  }
  return leaves;
}

}  // namespace ember::autograd
