// ember's float32 kernels against float64, held to PyTorch's float32 distance from float64: the same
// inputs (formulas, evaluated the same way in tests/parity/make_accuracy_fixtures.py) go through
// ember in float32 and in float64, and the relative RMS distance of the float32 output and input
// gradient must not exceed PyTorch's, read from tests/fixtures/accuracy.safetensors.
#include <cmath>
#include <map>

#include "helpers.h"

using namespace ember;

namespace {

Tensor from_formula(const Shape& shape, const std::function<double(int64_t)>& formula) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  std::vector<float> values(n);
  for (int64_t k = 0; k < n; ++k) values[k] = static_cast<float>(formula(k));
  return tensor(values, shape);
}

double weight(int64_t k) { return static_cast<double>(k * 37 % 101) / 50.0 - 1.0; }

double rel_rms(const Tensor& a, const Tensor& b) {
  Tensor d = a.to(kFloat64) - b;
  return std::sqrt((d * d).sum().item<double>() / (b * b).sum().item<double>());
}

double rel_max(const Tensor& a, const Tensor& b) {
  return (a.to(kFloat64) - b).abs().max().item<double>() / b.abs().max().item<double>();
}

struct Distances {
  double out, grad, out_max, grad_max;
};

// fn in float32 and in float64 from the same float32 values; the float32 results' distances.
Distances measure(const std::function<Tensor(const Tensor&)>& fn, const Tensor& x32) {
  Tensor w = from_formula(fn(x32).sizes(), weight);
  std::map<DType, std::pair<Tensor, Tensor>> res;
  for (DType dt : {kFloat32, kFloat64}) {
    Tensor x = x32.to(dt).detach().requires_grad_();
    Tensor out = fn(x);
    (out * w.to(dt)).sum().backward();
    res[dt] = {out.detach(), x.grad()};
  }
  return {
      rel_rms(res[kFloat32].first, res[kFloat64].first), rel_rms(res[kFloat32].second, res[kFloat64].second),
      rel_max(res[kFloat32].first, res[kFloat64].first), rel_max(res[kFloat32].second, res[kFloat64].second)};
}

const std::map<std::string, Tensor>& torch_distances() {
  static const std::map<std::string, Tensor> file = [] {
    std::map<std::string, Tensor> m;
    for (auto& [k, t] : nn::load_safetensors(std::string(EMBER_FIXTURE_DIR) + "/accuracy.safetensors"))
      m[k] = t;
    return m;
  }();
  return file;
}

void check_no_further_than_torch(const std::string& name, const Distances& ours) {
  const double torch_out = torch_distances().at(name + ".out_err").item<double>();
  const double torch_grad = torch_distances().at(name + ".grad_err").item<double>();
  INFO(name << ": ember out " << ours.out << " grad " << ours.grad << "; PyTorch out " << torch_out
            << " grad " << torch_grad);
  const double torch_out_max = torch_distances().at(name + ".out_max_err").item<double>();
  const double torch_grad_max = torch_distances().at(name + ".grad_max_err").item<double>();
  INFO("largest element: ember out " << ours.out_max << " grad " << ours.grad_max << "; PyTorch out "
                                     << torch_out_max << " grad " << torch_grad_max);
  CHECK(ours.out <= torch_out);
  CHECK(ours.grad <= torch_grad);
  CHECK(ours.out_max <= torch_out_max);
  CHECK(ours.grad_max <= torch_grad_max);
}

}  // namespace

TEST_CASE("accuracy: float32 GELU and its gradient are as close to float64 as PyTorch's") {
  Tensor x = from_formula({256, 512}, [](int64_t k) { return -6.0 + 12.0 * k / (256.0 * 512 - 1); });
  check_no_further_than_torch("gelu", measure([](const Tensor& t) { return gelu(t); }, x));
  check_no_further_than_torch("gelu_tanh", measure([](const Tensor& t) { return gelu(t, "tanh"); }, x));
}

TEST_CASE("accuracy: float32 batch_norm and its gradient are as close to float64 as PyTorch's") {
  auto bn = [](const Tensor& t) { return nn::functional::batch_norm(t, {}, {}, {}, {}, true, 0.1, 1e-5); };
  Tensor x1 = from_formula({8192, 8}, [](int64_t k) {
    return 20.0 * static_cast<double>(k % 8) +
           0.5 * std::sin(1.3 * static_cast<double>(k / 8) + static_cast<double>(k % 8));
  });
  check_no_further_than_torch("batch_norm1d", measure(bn, x1));
  Tensor x2 = from_formula({32, 8, 12, 12}, [](int64_t k) {
    const double c = static_cast<double>(k / 144 % 8);
    return 10.0 * c + std::cos(0.7 * static_cast<double>(k / 1152) + 0.3 * static_cast<double>(k / 12 % 12) -
                               0.2 * static_cast<double>(k % 12) + c);
  });
  check_no_further_than_torch("batch_norm2d", measure(bn, x2));
}
