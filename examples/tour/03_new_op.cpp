// Tour 03: a new op end to end, softplus(x) = log(1 + exp(x)) (x itself above 20, as PyTorch does),
// built the way ember's own ops are (docs/internals.md, "Adding an op"):
//   1. a reference kernel: the plainest loop, computed in double; the oracle the others answer to;
//   2. a CPU kernel: the same map written to vectorise and split over OpenMP threads;
//   3. a CUDA kernel (03_new_op_kernel.cu): a __global__ function written against
//      kernels/cuda/portability.h and launched with EMBER_LAUNCH. nvcc builds it for a GPU; without
//      one, g++ builds it for ember's SIMT simulator, so this program is also the kernel's test on
//      any machine;
//   4. the autograd formula, d softplus / dx = sigmoid(x), as an autograd::Function;
//   5. gradcheck in float64 against finite differences.
// Each kernel is checked against the reference on odd sizes; the program exits non-zero on a mismatch.
#include <cmath>
#include <iostream>
#include <vector>

#include "ember/ember.h"
#include "ember/kernels/cuda/cuda_backend.h"

using namespace ember;

namespace tour {
std::vector<float> softplus_cuda(const std::vector<float>& x);  // 03_new_op_kernel.cu
}

namespace {

int failures = 0;
void expect(bool ok, const std::string& what) {
  std::cout << (ok ? "  ok    " : "  WRONG ") << what << "\n";
  if (!ok) ++failures;
}

// 1. The reference: one element at a time, in double.
void softplus_reference(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const double v = x[i];
    y[i] = static_cast<float>(v > 20 ? v : std::log1p(std::exp(v)));
  }
}

// 2. The CPU kernel: a loop the compiler vectorises, over threads when there is enough work.
void softplus_cpu(const float* x, float* y, int64_t n) {
#pragma omp parallel for simd if (n > 262144)
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] > 20.0f ? x[i] : std::log1p(std::exp(x[i]));
}

bool close(const std::vector<float>& a, const std::vector<float>& b) {
  for (size_t i = 0; i < a.size(); ++i)
    if (std::abs(a[i] - b[i]) > 1e-6f + 1e-5f * std::abs(b[i])) return false;
  return true;
}

// 4. Autograd: forward runs without recording; backward returns one gradient per input.
struct Softplus : autograd::Function<Softplus> {
  static Tensor forward(autograd::AutogradContext* ctx, Tensor x) {
    ctx->save_for_backward({x});
    if (x.dtype() == kFloat32) {
      Tensor xc = x.contiguous(), y = empty_like(xc);
      softplus_cpu(xc.data_ptr<float>(), y.data_ptr<float>(), xc.numel());
      return y;
    }
    return where(x > 20, x, log1p(exp(x)));  // other dtypes: composed from existing ops
  }
  static autograd::variable_list backward(autograd::AutogradContext* ctx, autograd::variable_list g) {
    Tensor x = ctx->get_saved_variables()[0];
    return {g[0] * sigmoid(x)};
  }
};

}  // namespace

int main() {
  for (int64_t n : {1, 7, 33, 1000, 4099}) {
    std::vector<float> x(n);
    for (int64_t i = 0; i < n; ++i) x[i] = static_cast<float>((i * 37 % 101) - 50) * 0.5f;  // -25 .. 25
    std::vector<float> ref(n), cpu(n);
    softplus_reference(x.data(), ref.data(), n);
    softplus_cpu(x.data(), cpu.data(), n);
    expect(close(cpu, ref), "CPU kernel = reference, n = " + std::to_string(n));
    expect(close(tour::softplus_cuda(x), ref), std::string(cuda::built_for_gpu() ? "GPU" : "simulated CUDA") +
                                                   " kernel = reference, n = " + std::to_string(n));
  }
  Tensor x = randn({5, 3});
  expect(allclose(Softplus::apply(x), softplus(x)), "the op agrees with ember's own softplus");
  auto check = autograd::gradcheck([](const autograd::variable_list& in) { return Softplus::apply(in[0]); },
                                   {(randn({4, 3}, kFloat64) * 3).requires_grad_()});
  expect(check.ok, "5. gradcheck in float64: " + (check.ok ? std::string("agrees") : check.message));
  return failures == 0 ? 0 : 1;
}
