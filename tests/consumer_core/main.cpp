// Tensors and autograd from ember::core alone: a gradient checked against its closed form, and the
// same on the reference backend (kernels are part of core).
#include <ember/autograd/gradcheck.h>
#include <ember/core/ops.h>
#include <ember/kernels/backend.h>

#include <iostream>

int main() {
  using namespace ember;
  manual_seed(0);
  Tensor x = randn({4, 3}).requires_grad_();
  Tensor w = randn({3, 2});
  Tensor y = (matmul(x, w).tanh() * 2).sum();
  y.backward();
  // d/dx sum(2 tanh(xw)) = 2 (1 - tanh(xw)^2) w^T
  Tensor t = matmul(x.detach(), w).tanh();
  Tensor expected = matmul((1 - t * t) * 2, w.t());
  const bool grad_ok = allclose(x.grad(), expected, 1e-5, 1e-6);
  Tensor on_reference;
  {
    kernels::ScopedBackend scope(DeviceType::CPU, kernels::reference_backend());
    on_reference = softmax(matmul(x.detach(), w), 1);
  }
  const bool backends_ok = allclose(on_reference, softmax(matmul(x.detach(), w), 1), 1e-5, 1e-6);
  std::cout << "core consumer: gradient " << (grad_ok ? "ok" : "WRONG") << ", backends "
            << (backends_ok ? "agree" : "DIFFER") << "\n";
  return grad_ok && backends_ok ? 0 : 1;
}
