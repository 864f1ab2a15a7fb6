// Initialisers; see init.h.
#include "ember/nn/init.h"

#include <cmath>
#include <vector>

#include "ember/autograd/grad_mode.h"

namespace ember::nn::init {

double calculate_gain(const std::string& nl, double param) {
  if (nl == "linear" || nl == "conv1d" || nl == "conv2d" || nl == "conv3d" || nl == "sigmoid" ||
      nl == "conv_transpose1d" || nl == "conv_transpose2d")
    return 1.0;
  if (nl == "tanh") return 5.0 / 3.0;
  if (nl == "relu") return std::sqrt(2.0);
  if (nl == "leaky_relu") return std::sqrt(2.0 / (1 + param * param));
  if (nl == "selu") return 3.0 / 4.0;
  fail("calculate_gain: unsupported nonlinearity \"", nl, "\"");
}

std::pair<int64_t, int64_t> calculate_fan_in_and_fan_out(const Tensor& t) {
  EMBER_CHECK(t.dim() >= 2, "init: fan in and fan out need a tensor with at least 2 dims, got ", t.sizes());
  int64_t receptive = 1;
  for (int64_t d = 2; d < t.dim(); ++d) receptive *= t.size(d);
  return {t.size(1) * receptive, t.size(0) * receptive};
}

Tensor& uniform_(Tensor& t, double a, double b) {
  autograd::NoGradGuard guard;
  return t.uniform_(a, b);
}
Tensor& normal_(Tensor& t, double mean, double std) {
  autograd::NoGradGuard guard;
  return t.normal_(mean, std);
}
Tensor& constant_(Tensor& t, double value) {
  autograd::NoGradGuard guard;
  return t.fill_(value);
}
Tensor& zeros_(Tensor& t) { return constant_(t, 0); }
Tensor& ones_(Tensor& t) { return constant_(t, 1); }

Tensor& xavier_uniform_(Tensor& t, double gain) {
  auto [fan_in, fan_out] = calculate_fan_in_and_fan_out(t);
  const double std = gain * std::sqrt(2.0 / static_cast<double>(fan_in + fan_out));
  const double a = std::sqrt(3.0) * std;
  return uniform_(t, -a, a);
}

Tensor& xavier_normal_(Tensor& t, double gain) {
  auto [fan_in, fan_out] = calculate_fan_in_and_fan_out(t);
  return normal_(t, 0, gain * std::sqrt(2.0 / static_cast<double>(fan_in + fan_out)));
}

static double kaiming_std(const Tensor& t, double a, const std::string& mode, const std::string& nl) {
  EMBER_CHECK(mode == "fan_in" || mode == "fan_out",
              "kaiming init: mode must be \"fan_in\" or "
              "\"fan_out\", got \"",
              mode, "\"");
  auto [fan_in, fan_out] = calculate_fan_in_and_fan_out(t);
  const int64_t fan = mode == "fan_in" ? fan_in : fan_out;
  EMBER_CHECK(fan > 0, "kaiming init: cannot initialise a tensor with zero elements");
  return calculate_gain(nl, a) / std::sqrt(static_cast<double>(fan));
}

Tensor& kaiming_uniform_(Tensor& t, double a, const std::string& mode, const std::string& nl) {
  const double bound = std::sqrt(3.0) * kaiming_std(t, a, mode, nl);
  return uniform_(t, -bound, bound);
}

Tensor& kaiming_normal_(Tensor& t, double a, const std::string& mode, const std::string& nl) {
  return normal_(t, 0, kaiming_std(t, a, mode, nl));
}

namespace {
// Inverse error function by Newton's method on erf (converges in a few steps to double precision).
double erfinv(double y) {
  double x = 0;
  if (y <= -1) return -INFINITY;
  if (y >= 1) return INFINITY;
  // Initial guess (Giles' single-precision approximation shape), then Newton refinement.
  const double w = -std::log((1.0 - y) * (1.0 + y));
  x = w < 5 ? y * (1.5 + 0.25 * (w - 2.5)) : y * (2.8 + 0.1 * (std::sqrt(w) - 3));
  for (int i = 0; i < 40; ++i) {
    const double err = std::erf(x) - y;
    x -= err / (2.0 / std::sqrt(M_PI) * std::exp(-x * x));
    if (std::abs(err) < 1e-15) break;
  }
  return x;
}
}  // namespace

Tensor& trunc_normal_(Tensor& t, double mean, double std, double a, double b) {
  EMBER_CHECK(a < b, "trunc_normal_: a (", a, ") must be less than b (", b, ")");
  autograd::NoGradGuard guard;
  auto cdf = [](double x) { return 0.5 * (1 + std::erf(x / std::sqrt(2.0))); };
  const double lo = cdf((a - mean) / std), hi = cdf((b - mean) / std);
  Tensor u = rand(t.sizes(), kFloat64);
  std::vector<double> v = u.to_vector<double>();
  for (double& x : v) {
    const double p = lo + (hi - lo) * x;
    x = mean + std * std::sqrt(2.0) * erfinv(2 * p - 1);
    x = std::min(std::max(x, a), b);
  }
  t.copy_(tensor(v, t.sizes()));
  return t;
}

Tensor& orthogonal_(Tensor& t, double gain) {
  EMBER_CHECK(t.dim() >= 2, "orthogonal_: needs at least 2 dims, got ", t.sizes());
  autograd::NoGradGuard guard;
  const int64_t rows = t.size(0), cols = t.numel() / rows;
  const bool tall = rows >= cols;
  // QR of a normal matrix, on the host in double (Modified Gram-Schmidt on the long side), with
  // signs fixed by R's diagonal so the result is uniformly distributed.
  const int64_t n = tall ? rows : cols, m = tall ? cols : rows;  // orthonormalise m vectors of n
  std::vector<double> a = randn({m, n}, kFloat64).to_vector<double>();
  for (int64_t j = 0; j < m; ++j) {
    double* v = &a[j * n];
    for (int64_t k = 0; k < j; ++k) {
      const double* q = &a[k * n];
      double dot = 0;
      for (int64_t i = 0; i < n; ++i) dot += q[i] * v[i];
      for (int64_t i = 0; i < n; ++i) v[i] -= dot * q[i];
    }
    double norm = 0;
    for (int64_t i = 0; i < n; ++i) norm += v[i] * v[i];
    norm = std::sqrt(norm);
    for (int64_t i = 0; i < n; ++i) v[i] /= norm;
  }
  Tensor q = tensor(a, {m, n}, kFloat64);  // rows orthonormal
  if (tall) q = q.t();                     // [rows, cols] with orthonormal columns
  t.copy_((q * gain).reshape(t.sizes()));
  return t;
}

}  // namespace ember::nn::init
