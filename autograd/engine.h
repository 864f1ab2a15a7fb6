// The backward engine: runs the recorded graph from some outputs back to the leaves, in dependency
// order, summing gradients where paths meet. `backward` accumulates into leaves' .grad();
// `grad` returns the gradients of chosen inputs instead and leaves .grad() alone.
#pragma once
#include <vector>

#include "ember/autograd/node.h"

namespace ember::autograd {

void backward(const variable_list& outputs, const variable_list& grad_outputs = {},
              bool retain_graph = false, bool create_graph = false);

// Gradients of sum(outputs[i] * grad_outputs[i]) with respect to each input. An input the outputs do
// not depend on gives an error unless allow_unused, then an undefined tensor. retain_graph defaults
// to create_graph, as in PyTorch.
variable_list grad(const variable_list& outputs, const variable_list& inputs,
                   const variable_list& grad_outputs = {}, std::optional<bool> retain_graph = {},
                   bool create_graph = false, bool allow_unused = false);

}  // namespace ember::autograd
