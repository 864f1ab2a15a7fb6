// The README's first example, built against the installed ember. Exits non-zero if the gradient is
// wrong, so the install test checks behaviour, not just linking.
#include <ember/ember.h>

#include <cmath>
#include <iostream>

int main() {
  ember::manual_seed(0);
  auto x = ember::randn({3, 4}).requires_grad_();
  auto w = ember::randn({4, 2}).requires_grad_();
  auto y = ember::matmul(x, w).relu().sum();
  y.backward();
  std::cout << x.grad() << w.grad() << y.item<float>() << "\n";
  // d(sum relu(xw))/dx = mask(xw > 0) @ w^T
  auto mask = (ember::matmul(x, w) > 0).to(ember::kFloat32);
  auto expected = ember::matmul(mask, w.t());
  return ember::allclose(x.grad(), expected.detach()) ? 0 : 1;
}
