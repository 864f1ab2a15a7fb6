// Printing a tensor the way PyTorch does: nested brackets, a common number format chosen from the
// values (fixed point unless the magnitudes call for scientific), long dims summarised with "...",
// then the facts that are not obvious: shape, dtype, device, requires_grad / grad_fn.
#include <cmath>
#include <iomanip>
#include <sstream>

#include "ember/autograd/grad_mode.h"
#include "ember/autograd/node.h"
#include "ember/core/ops.h"

namespace ember {
namespace {

struct Format {
  bool integral = false, boolean = false, scientific = false;
  int precision = 4;
  int width = 1;
};

std::string format_value(double v, const Format& f) {
  std::ostringstream os;
  if (f.boolean) return v != 0 ? "True" : "False";
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  if (f.integral) os << static_cast<int64_t>(v);
  else if (f.scientific) os << std::scientific << std::setprecision(f.precision) << v;
  else os << std::fixed << std::setprecision(f.precision) << v;
  return os.str();
}

void print_rec(std::ostream& os, const std::vector<double>& data, const Shape& shape, size_t dim,
               int64_t offset, const Format& f, int indent) {
  const int64_t n = shape[dim];
  int64_t stride = 1;
  for (size_t d = dim + 1; d < shape.size(); ++d) stride *= shape[d];
  const bool summarise = n > 6 && static_cast<int64_t>(data.size()) > 1000;
  os << "[";
  for (int64_t i = 0; i < n; ++i) {
    if (summarise && i == 3) {
      os << (dim + 1 == shape.size() ? "..., " : "...,\n" + std::string(indent + 1, ' '));
      i = n - 3;
    }
    if (dim + 1 == shape.size()) {
      std::string s = format_value(data[offset + i], f);
      os << std::string(std::max<int>(0, f.width - static_cast<int>(s.size())), ' ') << s;
    } else {
      print_rec(os, data, shape, dim + 1, offset + i * stride, f, indent + 1);
    }
    if (i + 1 < n) {
      os << ",";
      if (dim + 1 == shape.size()) os << " ";
      else os << std::string(shape.size() - dim - 1, '\n') << std::string(indent + 1, ' ');
    }
  }
  os << "]";
}

}  // namespace

std::string to_string(const Tensor& t) {
  if (!t.defined()) return "tensor(undefined)";
  std::vector<double> data;
  {
    autograd::NoGradGuard guard;
    data = t.to_vector<double>();
  }
  Format f;
  f.boolean = t.dtype() == kBool;
  f.integral = is_integral(t.dtype());
  if (!f.boolean && !f.integral) {
    double mx = 0, mn = INFINITY;
    bool all_int = true;
    for (double v : data) {
      if (!std::isfinite(v)) continue;
      mx = std::max(mx, std::abs(v));
      if (v != 0) mn = std::min(mn, std::abs(v));
      if (v != std::floor(v)) all_int = false;
    }
    f.scientific = mx >= 1e8 || (mn < 1e-4 && mn != INFINITY);
    if (all_int && !f.scientific) f.precision = 1;
  }
  for (double v : data) f.width = std::max<int>(f.width, format_value(v, f).size());
  std::ostringstream os;
  os << "tensor(";
  if (t.dim() == 0) os << format_value(data.empty() ? 0 : data[0], f);
  else if (t.numel() == 0) os << "[]";
  else print_rec(os, data, t.sizes(), 0, 0, f, 7);
  os << ", size=" << shape_str(t.sizes()) << ", dtype=" << dtype_name(t.dtype());
  os << ", device=" << t.device().str();
  if (auto fn = t.grad_fn()) os << ", grad_fn=<" << fn->name() << "Backward>";
  else if (t.requires_grad()) os << ", requires_grad=True";
  os << ")";
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << to_string(t) << "\n"; }

}  // namespace ember
