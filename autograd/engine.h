// The backward engine: runs the recorded graph from some outputs back to the leaves, in dependency
// order, summing gradients where paths meet. `backward` accumulates into leaves' .grad();
// `grad` returns the gradients of chosen inputs instead and leaves .grad() alone.
#pragma once
#include <vector>

#include "ember/autograd/node.h"

namespace ember::autograd {

// With create_graph a leaf's .grad() keeps the graph that computed it, and that graph keeps the leaf:
// a reference cycle, as in PyTorch. Reset the gradient (mutable_grad() = Tensor(), or zero_grad with
// set_to_none) when done with it, or use autograd::grad, which stores nothing in the leaves.
void backward(const variable_list& outputs, const variable_list& grad_outputs = {}, bool retain_graph = false,
              bool create_graph = false);

// Gradients of sum(outputs[i] * grad_outputs[i]) with respect to each input. An input the outputs do
// not depend on gives an error unless allow_unused, then an undefined tensor. retain_graph defaults
// to create_graph, as in PyTorch.
variable_list grad(const variable_list& outputs, const variable_list& inputs,
                   const variable_list& grad_outputs = {}, std::optional<bool> retain_graph = {},
                   bool create_graph = false, bool allow_unused = false);

// grad() for a list of inputs some of which may be undefined or not require grad: the result is
// aligned with `inputs`, undefined where there is nothing to differentiate. Fused ops use it to
// differentiate their composed formula under create_graph.
variable_list grad_aligned(const Tensor& output, const variable_list& inputs, const Tensor& grad_output,
                           bool create_graph);

// The leaf tensors a backward from `root` would accumulate into (each once, in no set order). The
// trainer uses it to find tensors that get gradients but are not registered parameters.
std::vector<Tensor> graph_leaves(const Tensor& root);

}  // namespace ember::autograd
