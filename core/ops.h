// The ops API: every tensor operation as a free function, with PyTorch's names, broadcasting, type
// promotion and gradients. Each op is defined (forward and backward formula side by side) in one of
// the files under core/ops/. Bad input throws ember::Error naming the op and the shapes.
#pragma once
#include <array>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ember/core/tensor.h"

namespace ember {

// ---- creation (core/ops/factory.cpp) ---------------------------------------------------------
Tensor empty(const Shape& shape, TensorOptions opts = {});
Tensor zeros(const Shape& shape, TensorOptions opts = {});
Tensor ones(const Shape& shape, TensorOptions opts = {});
Tensor full(const Shape& shape, Scalar value, std::optional<TensorOptions> opts = {});
Tensor eye(int64_t n, std::optional<int64_t> m = {}, TensorOptions opts = {});
Tensor arange(Scalar end, std::optional<TensorOptions> opts = {});
Tensor arange(Scalar start, Scalar end, Scalar step = 1, std::optional<TensorOptions> opts = {});
Tensor linspace(double start, double end, int64_t steps, TensorOptions opts = {});
Tensor scalar_tensor(Scalar value, std::optional<TensorOptions> opts = {});
Tensor empty_like(const Tensor& t, std::optional<TensorOptions> opts = {});
Tensor zeros_like(const Tensor& t, std::optional<TensorOptions> opts = {});
Tensor ones_like(const Tensor& t, std::optional<TensorOptions> opts = {});
Tensor full_like(const Tensor& t, Scalar value, std::optional<TensorOptions> opts = {});
Tensor rand_like(const Tensor& t);
Tensor randn_like(const Tensor& t);

// From host data (copied). Floating literals give float32, integers int64, bools bool, as in PyTorch.
Tensor tensor(std::initializer_list<double> values, std::optional<TensorOptions> opts = {});
Tensor tensor(std::initializer_list<float> values, std::optional<TensorOptions> opts = {});
Tensor tensor(std::initializer_list<int64_t> values, std::optional<TensorOptions> opts = {});
Tensor tensor(std::initializer_list<int> values, std::optional<TensorOptions> opts = {});
Tensor tensor(std::initializer_list<bool> values, std::optional<TensorOptions> opts = {});
Tensor tensor(std::initializer_list<std::initializer_list<double>> rows,
              std::optional<TensorOptions> opts = {});
Tensor tensor(std::initializer_list<std::initializer_list<int64_t>> rows,
              std::optional<TensorOptions> opts = {});
Tensor tensor(std::initializer_list<std::initializer_list<int>> rows, std::optional<TensorOptions> opts = {});
Tensor tensor(std::initializer_list<std::initializer_list<bool>> rows,
              std::optional<TensorOptions> opts = {});
Tensor tensor(std::initializer_list<std::initializer_list<std::initializer_list<double>>> planes,
              std::optional<TensorOptions> opts = {});
template <class T>
Tensor tensor(const std::vector<T>& values, const Shape& shape, std::optional<TensorOptions> opts = {});
// Wraps existing host memory without copying; `deleter` runs when the last tensor releases it.
Tensor from_blob(void* data, const Shape& shape, DType dtype = kFloat32,
                 std::function<void(void*)> deleter = {}, std::optional<Shape> strides = {});

// ---- random (core/ops/random.cpp); all draw from the device's generator --------------------
void manual_seed(uint64_t seed);
Tensor rand(const Shape& shape, TensorOptions opts = {});
Tensor randn(const Shape& shape, TensorOptions opts = {});
Tensor randint(int64_t low, int64_t high, const Shape& shape, TensorOptions opts = kInt64);
Tensor randint(int64_t high, const Shape& shape, TensorOptions opts = kInt64);
Tensor randperm(int64_t n, TensorOptions opts = kInt64);
Tensor bernoulli(const Tensor& probs);
Tensor bernoulli(const Shape& shape, double p, TensorOptions opts = {});
Tensor dropout(const Tensor& input, double p = 0.5, bool train = true);

// ---- pointwise (core/ops/pointwise.cpp) -------------------------------------------------------
Tensor add(const Tensor& a, const Tensor& b, Scalar alpha = 1);
Tensor add(const Tensor& a, Scalar b);
// Out variants write into a preallocated compact `out` of the broadcast shape and result dtype (no
// autograd; an error if an input requires grad while grad mode is on).
Tensor& add_out(Tensor& out, const Tensor& a, const Tensor& b);
Tensor& sub_out(Tensor& out, const Tensor& a, const Tensor& b);
Tensor& mul_out(Tensor& out, const Tensor& a, const Tensor& b);
Tensor& div_out(Tensor& out, const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b, Scalar alpha = 1);
Tensor sub(const Tensor& a, Scalar b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, Scalar b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, Scalar b);
Tensor pow(const Tensor& a, const Tensor& exponent);
Tensor pow(const Tensor& a, Scalar exponent);
Tensor pow(Scalar base, const Tensor& exponent);
Tensor maximum(const Tensor& a, const Tensor& b);
Tensor minimum(const Tensor& a, const Tensor& b);
Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor log1p(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor rsqrt(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor sign(const Tensor& x);
Tensor sin(const Tensor& x);
Tensor cos(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor relu(const Tensor& x);
Tensor leaky_relu(const Tensor& x, double negative_slope = 0.01);
// approximate: "none" (exact, erf) or "tanh".
Tensor gelu(const Tensor& x, const std::string& approximate = "none");
Tensor silu(const Tensor& x);
Tensor softplus(const Tensor& x, double beta = 1, double threshold = 20);
Tensor square(const Tensor& x);
Tensor reciprocal(const Tensor& x);
Tensor erf(const Tensor& x);
Tensor clamp(const Tensor& x, std::optional<Scalar> min, std::optional<Scalar> max = {});
Tensor where(const Tensor& condition, const Tensor& a, const Tensor& b);
Tensor where(const Tensor& condition, const Tensor& a, Scalar b);
Tensor where(const Tensor& condition, Scalar a, const Tensor& b);
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
Tensor logical_and(const Tensor& a, const Tensor& b);
Tensor logical_or(const Tensor& a, const Tensor& b);
Tensor logical_xor(const Tensor& a, const Tensor& b);
Tensor logical_not(const Tensor& x);
// Integer division rounding toward -inf (integer tensors).
Tensor floor_divide(const Tensor& a, Scalar b);
Tensor masked_fill(const Tensor& x, const Tensor& mask, Scalar value);
Tensor masked_fill(const Tensor& x, const Tensor& mask, const Tensor& value);
bool allclose(const Tensor& a, const Tensor& b, double rtol = 1e-5, double atol = 1e-8,
              bool equal_nan = false);
bool equal(const Tensor& a, const Tensor& b);  // same shape and exactly equal values
// Broadcast shape of two shapes, or an ember::Error naming `op`.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op = "broadcast");

// ---- reductions (core/ops/reduction.cpp) ------------------------------------------------------
Tensor sum(const Tensor& x);
Tensor sum(const Tensor& x, const Shape& dims, bool keepdim = false);
template <std::integral I>
Tensor sum(const Tensor& x, I dim, bool keepdim = false) {
  return sum(x, Shape{static_cast<int64_t>(dim)}, keepdim);
}
Tensor mean(const Tensor& x);
Tensor mean(const Tensor& x, const Shape& dims, bool keepdim = false);
template <std::integral I>
Tensor mean(const Tensor& x, I dim, bool keepdim = false) {
  return mean(x, Shape{static_cast<int64_t>(dim)}, keepdim);
}
Tensor prod(const Tensor& x);
Tensor prod(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor max(const Tensor& x);
Tensor min(const Tensor& x);
std::pair<Tensor, Tensor> max(const Tensor& x, int64_t dim, bool keepdim = false);
std::pair<Tensor, Tensor> min(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor amax(const Tensor& x, const Shape& dims, bool keepdim = false);
Tensor amin(const Tensor& x, const Shape& dims, bool keepdim = false);
// One dim as an int, as LibTorch's IntArrayRef takes it (templates, so brace lists stay dim lists).
template <std::integral I>
Tensor amax(const Tensor& x, I dim, bool keepdim = false) {
  return amax(x, Shape{static_cast<int64_t>(dim)}, keepdim);
}
template <std::integral I>
Tensor amin(const Tensor& x, I dim, bool keepdim = false) {
  return amin(x, Shape{static_cast<int64_t>(dim)}, keepdim);
}
Tensor argmax(const Tensor& x, std::optional<int64_t> dim = {}, bool keepdim = false);
Tensor argmin(const Tensor& x, std::optional<int64_t> dim = {}, bool keepdim = false);
// correction = 1 is the unbiased (Bessel) estimate, 0 the population variance.
Tensor var(const Tensor& x, std::optional<Shape> dims = {}, int64_t correction = 1, bool keepdim = false);
Tensor std(const Tensor& x, std::optional<Shape> dims = {}, int64_t correction = 1, bool keepdim = false);
template <std::integral I>
Tensor var(const Tensor& x, I dim, int64_t correction = 1, bool keepdim = false) {
  return var(x, Shape{static_cast<int64_t>(dim)}, correction, keepdim);
}
template <std::integral I>
Tensor std(const Tensor& x, I dim, int64_t correction = 1, bool keepdim = false) {
  return std(x, Shape{static_cast<int64_t>(dim)}, correction, keepdim);
}
// p-norm; p = INFINITY gives the max-abs norm.
Tensor norm(const Tensor& x, double p = 2, std::optional<Shape> dims = {}, bool keepdim = false);
Tensor logsumexp(const Tensor& x, const Shape& dims, bool keepdim = false);
template <std::integral I>
Tensor norm(const Tensor& x, double p, I dim, bool keepdim = false) {
  return norm(x, p, Shape{static_cast<int64_t>(dim)}, keepdim);
}
template <std::integral I>
Tensor logsumexp(const Tensor& x, I dim, bool keepdim = false) {
  return logsumexp(x, Shape{static_cast<int64_t>(dim)}, keepdim);
}
Tensor cumsum(const Tensor& x, int64_t dim);
// Sums `x` down to `shape` (the reverse of broadcasting `shape` up to x's shape).
Tensor sum_to(const Tensor& x, const Shape& shape);

// ---- linear algebra (core/ops/linalg.cpp) -----------------------------------------------------
Tensor matmul(const Tensor& a, const Tensor& b);
Tensor mm(const Tensor& a, const Tensor& b);
Tensor bmm(const Tensor& a, const Tensor& b);
// beta * input + alpha * (m1 @ m2)
Tensor addmm(const Tensor& input, const Tensor& m1, const Tensor& m2, Scalar beta = 1, Scalar alpha = 1);
// x @ weight^T + bias, weight is [out_features, in_features].
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = {});

// ---- softmax family (core/ops/softmax.cpp) ----------------------------------------------------
Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);

// ---- shape and views (core/ops/view.cpp, core/ops/join.cpp) -----------------------------------
Tensor view(const Tensor& x, const Shape& shape);
Tensor reshape(const Tensor& x, const Shape& shape);
Tensor permute(const Tensor& x, const Shape& dims);
Tensor transpose(const Tensor& x, int64_t dim0, int64_t dim1);
Tensor squeeze(const Tensor& x, std::optional<int64_t> dim = {});
Tensor unsqueeze(const Tensor& x, int64_t dim);
Tensor expand(const Tensor& x, const Shape& sizes);
Tensor flatten(const Tensor& x, int64_t start_dim = 0, int64_t end_dim = -1);
Tensor slice(const Tensor& x, int64_t dim, std::optional<int64_t> start, std::optional<int64_t> end,
             int64_t step = 1);
Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length);
Tensor select(const Tensor& x, int64_t dim, int64_t index);
Tensor diagonal(const Tensor& x, int64_t offset = 0, int64_t dim1 = 0, int64_t dim2 = 1);
Tensor as_strided(const Tensor& x, const Shape& sizes, const Shape& strides,
                  std::optional<int64_t> storage_offset = {});
Tensor contiguous(const Tensor& x);
Tensor cat(const std::vector<Tensor>& tensors, int64_t dim = 0);
Tensor stack(const std::vector<Tensor>& tensors, int64_t dim = 0);
std::vector<Tensor> unbind(const Tensor& x, int64_t dim = 0);
std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim = 0);
std::vector<Tensor> split(const Tensor& x, const Shape& split_sizes, int64_t dim = 0);
Tensor tril(const Tensor& x, int64_t diagonal = 0);
Tensor triu(const Tensor& x, int64_t diagonal = 0);

// ---- indexing (core/ops/index.cpp) -----------------------------------------------------------
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);
Tensor scatter(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src);
Tensor scatter(const Tensor& x, int64_t dim, const Tensor& index, Scalar value);
Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src);
Tensor index_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& source, Scalar alpha = 1);
Tensor masked_select(const Tensor& x, const Tensor& mask);
Tensor nonzero(const Tensor& x);  // [count, ndim] int64 coordinates of the non-zero elements
Tensor embedding(const Tensor& weight, const Tensor& indices);
Tensor one_hot(const Tensor& indices, int64_t num_classes = -1);
std::pair<Tensor, Tensor> sort(const Tensor& x, int64_t dim = -1, bool descending = false);
Tensor argsort(const Tensor& x, int64_t dim = -1, bool descending = false);
std::pair<Tensor, Tensor> topk(const Tensor& x, int64_t k, int64_t dim = -1, bool largest = true,
                               bool sorted = true);

// ---- sliding windows and padding (core/ops/window.cpp) -----------------------------------------
// Pairs are (height, width). unfold: [N, C, H, W] -> [N, C*kh*kw, L] (PyTorch's F.unfold / im2col);
// fold is its adjoint, summing overlapping windows back into [N, C, H, W].
using Pair = std::array<int64_t, 2>;
Tensor unfold(const Tensor& x, Pair kernel, Pair dilation = {1, 1}, Pair padding = {0, 0},
              Pair stride = {1, 1});
Tensor fold(const Tensor& cols, Pair output_size, Pair kernel, Pair dilation = {1, 1}, Pair padding = {0, 0},
            Pair stride = {1, 1});
// The number of window positions along H and W of a 4-D input shape (PyTorch's output-size rule);
// an ember::Error naming `op` when the arguments are invalid or the window does not fit the padded
// input. Convolution and pooling check their arguments with it before building anything.
// ceil_mode (pooling) rounds the count up, as PyTorch does, keeping only windows that start inside
// the input or its left/top padding.
Pair window_output_size(const Shape& shape, Pair kernel, Pair dilation, Pair padding, Pair stride,
                        const char* op, bool ceil_mode = false);
// Constant padding, PyTorch's F.pad order: {last_left, last_right, prev_left, prev_right, ...}.
Tensor pad(const Tensor& x, const Shape& pads, Scalar value = 0);

// ---- operators ---------------------------------------------------------------------------
inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator+(const Tensor& a, Scalar b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, Scalar b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, Scalar b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, Scalar b) { return div(a, b); }
Tensor operator+(Scalar a, const Tensor& b);
Tensor operator-(Scalar a, const Tensor& b);
Tensor operator*(Scalar a, const Tensor& b);
Tensor operator/(Scalar a, const Tensor& b);
inline Tensor operator-(const Tensor& a) { return neg(a); }
inline Tensor operator==(const Tensor& a, const Tensor& b) { return eq(a, b); }
inline Tensor operator!=(const Tensor& a, const Tensor& b) { return ne(a, b); }
inline Tensor operator<(const Tensor& a, const Tensor& b) { return lt(a, b); }
inline Tensor operator<=(const Tensor& a, const Tensor& b) { return le(a, b); }
inline Tensor operator>(const Tensor& a, const Tensor& b) { return gt(a, b); }
inline Tensor operator>=(const Tensor& a, const Tensor& b) { return ge(a, b); }
Tensor operator==(const Tensor& a, Scalar b);
Tensor operator!=(const Tensor& a, Scalar b);
Tensor operator<(const Tensor& a, Scalar b);
Tensor operator<=(const Tensor& a, Scalar b);
Tensor operator>(const Tensor& a, Scalar b);
Tensor operator>=(const Tensor& a, Scalar b);
inline Tensor operator&(const Tensor& a, const Tensor& b) { return logical_and(a, b); }
inline Tensor operator|(const Tensor& a, const Tensor& b) { return logical_or(a, b); }
inline Tensor operator^(const Tensor& a, const Tensor& b) { return logical_xor(a, b); }
inline Tensor operator~(const Tensor& a) { return logical_not(a); }
inline Tensor& operator+=(Tensor& a, const Tensor& b) { return a.add_(b); }
inline Tensor& operator-=(Tensor& a, const Tensor& b) { return a.sub_(b); }
inline Tensor& operator*=(Tensor& a, const Tensor& b) { return a.mul_(b); }
inline Tensor& operator/=(Tensor& a, const Tensor& b) { return a.div_(b); }
inline Tensor& operator+=(Tensor& a, Scalar b) { return a.add_(b); }
inline Tensor& operator-=(Tensor& a, Scalar b) { return a.sub_(b); }
inline Tensor& operator*=(Tensor& a, Scalar b) { return a.mul_(b); }
inline Tensor& operator/=(Tensor& a, Scalar b) { return a.div_(b); }

}  // namespace ember
