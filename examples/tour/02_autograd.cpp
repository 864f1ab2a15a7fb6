// Tour 02: reverse-mode autograd. First a scalar graph the size of micrograd's example, whose
// gradients you can check by hand; then a tanh neuron on tensors, checked against finite differences
// by gradcheck in float64, and its graph printed node by node (each op records a node whose
// next_edges point at the nodes of its inputs; leaves end in AccumulateGrad).
#include <functional>
#include <iostream>
#include <set>
#include <string>

#include "ember/ember.h"

using namespace ember;

namespace {
int failures = 0;
void expect(bool ok, const std::string& what) {
  std::cout << (ok ? "  ok    " : "  WRONG ") << what << "\n";
  if (!ok) ++failures;
}

// Prints the graph below `node`, one line per node, children indented.
void print_graph(const std::shared_ptr<autograd::Node>& node, int depth, std::set<autograd::Node*>& seen) {
  if (!node) return;
  std::cout << std::string(2 * depth + 2, ' ') << node->name() << (seen.count(node.get()) ? " (again)" : "")
            << "\n";
  if (!seen.insert(node.get()).second) return;
  for (const auto& edge : node->next_edges) print_graph(edge.node, depth + 1, seen);
}
}  // namespace

int main() {
  // L = (a * b + c) * f. By hand: dL/da = b * f = 6, dL/db = a * f = -4, dL/dc = f = -2,
  // dL/df = a * b + c = 4.
  auto scalar = [](double v) { return tensor({v}, kFloat64).requires_grad_(); };
  Tensor a = scalar(2), b = scalar(-3), c = scalar(10), f = scalar(-2);
  Tensor L = ((a * b + c) * f).sum();
  L.backward();
  std::cout << "L = " << L.item<double>() << "\n";
  expect(a.grad().item<double>() == 6 && b.grad().item<double>() == -4, "dL/da = 6, dL/db = -4");
  expect(c.grad().item<double>() == -2 && f.grad().item<double>() == 4, "dL/dc = -2, dL/df = 4");

  // A neuron: tanh(x @ w + bias) over a batch, the same machinery on tensors.
  manual_seed(0);
  Tensor x = randn({4, 3}, kFloat64), w = randn({3, 2}, kFloat64).requires_grad_();
  Tensor bias = zeros({2}, kFloat64).requires_grad_();
  auto neuron = [&x](const autograd::variable_list& in) { return tanh(matmul(x, in[0]) + in[1]); };
  Tensor loss = neuron({w, bias}).pow(2.0).mean();
  std::cout << "the graph of loss, from the root:\n";
  std::set<autograd::Node*> seen;
  print_graph(loss.grad_fn(), 0, seen);
  loss.backward();
  expect(w.grad().sizes() == Shape{3, 2} && bias.grad().sizes() == Shape{2},
         "gradients have their leaves' shapes");

  autograd::GradcheckOptions twice;
  twice.check_double_backward = true;
  auto check =
      autograd::gradcheck(neuron, {w.detach().requires_grad_(), bias.detach().requires_grad_()}, twice);
  expect(check.ok, "gradcheck (finite differences, float64, double backward): " +
                       (check.ok ? std::string("agrees") : check.message));
  return failures == 0 ? 0 : 1;
}
