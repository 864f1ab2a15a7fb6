// The engine. Three steps: (1) walk the graph from the roots and count, for every node, how many
// edges point at it; (2) seed the roots' input buffers with the output gradients; (3) repeatedly run a
// node whose buffer is complete (count reached zero), newest first, and add what it returns into the
// buffers of its next edges. With `capture` (autograd::grad), only the nodes on a path to a captured
// edge run, and the gradient arriving at each captured edge is returned instead of accumulated.
#include "ember/autograd/engine.h"

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

void run(const std::vector<Edge>& roots, variable_list root_grads, bool keep_graph,
         bool create_graph, Capture* capture) {
  // (1) dependency counts over everything reachable from the roots.
  std::unordered_map<Node*, int> deps;
  std::unordered_set<Node*> seen;
  std::vector<Node*> stack;
  for (const auto& e : roots)
    if (e.valid() && seen.insert(e.node.get()).second) stack.push_back(e.node.get());
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    for (const auto& e : n->next_edges) {
      if (!e.valid()) continue;
      ++deps[e.node.get()];
      if (seen.insert(e.node.get()).second) stack.push_back(e.node.get());
    }
  }

  // With captures, a node needs to run only if some captured edge lies below it.
  std::unordered_set<Node*> needed;
  if (capture) {
    std::unordered_set<Node*> targets;
    for (const auto& e : capture->edges)
      if (e.valid()) targets.insert(e.node.get());
    // Post-order over the reachable graph: needed(n) = any child is a target or needed.
    std::unordered_map<Node*, bool> memo;
    std::function<bool(Node*)> visit = [&](Node* n) -> bool {
      auto it = memo.find(n);
      if (it != memo.end()) return it->second;
      memo[n] = false;
      bool need = false;
      for (const auto& e : n->next_edges)
        if (e.valid() && (targets.count(e.node.get()) | visit(e.node.get()))) need = true;
      memo[n] = need;
      return need;
    };
    for (Node* n : seen)
      if (visit(n)) needed.insert(n);
  }

  // (2) input buffers, seeded with the root gradients.
  std::unordered_map<Node*, variable_list> buffers;
  std::unordered_map<Node*, std::shared_ptr<Node>> owners;  // keep nodes alive while queued
  auto buffer_of = [&](const std::shared_ptr<Node>& n) -> variable_list& {
    auto& b = buffers[n.get()];
    if (b.empty()) b.resize(std::max<size_t>(n->num_outputs(), 1));
    owners.emplace(n.get(), n);
    return b;
  };
  auto newer_first = [](Node* a, Node* b) { return a->sequence_nr < b->sequence_nr; };
  std::priority_queue<Node*, std::vector<Node*>, decltype(newer_first)> ready(newer_first);
  for (size_t i = 0; i < roots.size(); ++i) {
    if (!roots[i].valid()) continue;
    accumulate_into(buffer_of(roots[i].node)[roots[i].input_nr], root_grads[i]);
  }
  for (const auto& e : roots)
    if (e.valid() && deps[e.node.get()] == 0 && buffers.count(e.node.get())) {
      ready.push(e.node.get());
      deps[e.node.get()] = -1;  // queued
    }

  // (3) run nodes as their buffers complete.
  AutoGradMode mode(create_graph);
  while (!ready.empty()) {
    Node* node = ready.top();
    ready.pop();
    std::shared_ptr<Node> keep = owners[node];
    variable_list grads = std::move(buffers[node]);
    buffers.erase(node);

    for (size_t i = 0; i < grads.size() && i < node->pre_hooks.size(); ++i)
      for (auto& hook : node->pre_hooks[i]) {
        if (!grads[i].defined()) continue;
        Tensor replaced = hook(grads[i]);
        if (replaced.defined()) grads[i] = replaced;
      }
    if (capture) {
      for (size_t c = 0; c < capture->edges.size(); ++c)
        if (capture->edges[c].node.get() == node)
          accumulate_into(capture->grads[c], grads[capture->edges[c].input_nr]);
      if (!needed.count(node)) continue;  // a target with nothing needed below it
    }
    bool any_defined = false;
    for (size_t i = 0; i < grads.size(); ++i) {
      if (grads[i].defined()) {
        any_defined = true;
      } else if (i < node->output_meta.size()) {
        const auto& m = node->output_meta[i];
        grads[i] = zeros(m.shape, TensorOptions(m.dtype).set_device(m.device));
      }
    }
    variable_list outputs;
    if (any_defined) outputs = node->apply(std::move(grads));
    if (!keep_graph) node->release_saved();
    if (AnomalyMode::is_enabled()) {
      for (size_t i = 0; i < outputs.size(); ++i)
        if (has_nan(outputs[i]))
          fail("autograd anomaly: the backward of '", node->name(), "' returned NaN in its ", i,
               "-th output (the gradient for input ", i, " of the forward op '", node->name(),
               "')");
    }

    for (size_t i = 0; i < node->next_edges.size(); ++i) {
      const Edge& e = node->next_edges[i];
      if (!e.valid()) continue;
      if (capture && !needed.count(e.node.get()) &&
          std::none_of(capture->edges.begin(), capture->edges.end(),
                       [&](const Edge& c) { return c.node == e.node; }))
        continue;
      if (i < outputs.size()) accumulate_into(buffer_of(e.node)[e.input_nr], outputs[i]);
      else buffer_of(e.node);
      if (--deps[e.node.get()] == 0) ready.push(e.node.get());
    }
  }
}

std::vector<Edge> root_edges(const variable_list& outputs) {
  std::vector<Edge> roots;
  for (size_t i = 0; i < outputs.size(); ++i) {
    Edge e = gradient_edge(outputs[i]);
    if (!e.valid())
      fail("backward: element ", i, " of the outputs does not require grad and has no grad_fn "
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
        fail("backward: grad can be implicitly created only for scalar outputs; output ", i,
             " has shape ", outputs[i].sizes(), ", pass a gradient of that shape");
      g = ones_like(outputs[i]);
    } else if (g.sizes() != outputs[i].sizes()) {
      fail("backward: gradient of shape ", g.sizes(), " given for an output of shape ",
           outputs[i].sizes());
    }
    grads.push_back(g);
  }
  return grads;
}

}  // namespace

void backward(const variable_list& outputs, const variable_list& grad_outputs, bool retain_graph,
              bool create_graph) {
  run(root_edges(outputs), root_gradients(outputs, grad_outputs), retain_graph || create_graph,
      create_graph, nullptr);
}

variable_list grad(const variable_list& outputs, const variable_list& inputs,
                   const variable_list& grad_outputs, std::optional<bool> retain_graph,
                   bool create_graph, bool allow_unused) {
  Capture capture;
  for (size_t i = 0; i < inputs.size(); ++i) {
    Edge e = gradient_edge(inputs[i]);
    if (!e.valid()) fail("autograd::grad: input ", i, " does not require grad");
    capture.edges.push_back(e);
  }
  capture.grads.resize(inputs.size());
  run(root_edges(outputs), root_gradients(outputs, grad_outputs),
      retain_graph.value_or(create_graph), create_graph, &capture);
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
