// Op semantics with hand-checked values: PyTorch's conventions for matmul shapes, var correction,
// norms, sort/topk, one_hot, embedding, triangles, dropout, NaN handling and edge cases.
#include "helpers.h"

using namespace ember;
using ember::test::check_error;

TEST_CASE("matmul covers PyTorch's 1-D, 2-D and batched broadcasting cases") {
  CHECK(matmul(ones({3}), ones({3})).sizes() == Shape{});
  CHECK(matmul(ones({3}), ones({3})).item<float>() == 3.0f);
  CHECK(matmul(ones({2, 3}), ones({3})).sizes() == Shape{2});
  CHECK(matmul(ones({3}), ones({3, 4})).sizes() == Shape{4});
  CHECK(matmul(ones({5, 2, 3}), ones({3, 4})).sizes() == Shape{5, 2, 4});
  CHECK(matmul(ones({2, 3}), ones({5, 3, 4})).sizes() == Shape{5, 2, 4});
  CHECK(matmul(ones({7, 1, 2, 3}), ones({5, 3, 4})).sizes() == Shape{7, 5, 2, 4});
  CHECK(matmul(ones({3}), ones({5, 3, 4})).sizes() == Shape{5, 4});
  CHECK(matmul(ones({5, 2, 3}), ones({3})).sizes() == Shape{5, 2});
  Tensor a = tensor({{1.0, 2.0}, {3.0, 4.0}});
  CHECK(matmul(a, a).to_vector<float>() == std::vector<float>{7, 10, 15, 22});
  CHECK(a.mm(a.t()).to_vector<float>() == std::vector<float>{5, 11, 11, 25});
  CHECK(addmm(ones({2}), a, a, 2.0, 1.0).to_vector<float>() == std::vector<float>{9, 12, 17, 24});
  CHECK(linear(a, a, tensor({1.0, -1.0})).to_vector<float>() == std::vector<float>{6, 10, 12, 24});
  check_error([] { bmm(ones({2, 2, 3}), ones({3, 3, 2})); }, {"bmm", "[2, 2, 3]", "[3, 3, 2]"});
  check_error([] { linear(ones({2, 3}), ones({4, 5})); }, {"linear", "[2, 3]", "[4, 5]"});
  check_error([] { matmul(ones({2, 3}, kInt64), ones({3, 2}, kInt64)); }, {"floating"});
}

// y[..., o] = b[o] + sum_i x[..., i] w[o, i] by plain loops in double, the oracle for linear below.
static std::vector<double> linear_by_loops(const Tensor& x, const Tensor& w, const Tensor& b) {
  Tensor xs = x.to(kFloat64).contiguous(), ws = w.to(kFloat64).contiguous(), bs = b.to(kFloat64);
  const auto xv = xs.to_vector<double>(), wv = ws.to_vector<double>(), bv = bs.to_vector<double>();
  const int64_t k = w.size(1), n = w.size(0), rows = x.numel() / k;
  std::vector<double> y;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < n; ++o) {
      double acc = bv[o];
      for (int64_t i = 0; i < k; ++i) acc += xv[r * k + i] * wv[o * k + i];
      y.push_back(acc);
    }
  return y;
}

TEST_CASE("linear: N-D inputs and every weight layout, with and without a graph") {
  manual_seed(41);
  // Weights stored as they are, transposed (a .t() view) and strided both ways (neither: copied).
  Tensor w_plain = randn({7, 5}), w_transposed = randn({5, 7}).t(),
         w_strided = randn({14, 15}).slice(0, 0, 14, 2).slice(1, 0, 15, 3);
  Tensor b = randn({7});
  Tensor x3 = randn({2, 3, 5}), x3_strided = randn({3, 2, 5}).transpose(0, 1), x4 = randn({2, 1, 3, 5});
  for (const Tensor& w : {w_plain, w_transposed, w_strided}) {
    for (const Tensor& x : {x3, x3_strided, x4}) {
      INFO("w strides " << w.strides() << ", x " << x.sizes() << " strides " << x.strides());
      Shape expect_shape = x.sizes();
      expect_shape.back() = 7;
      const std::vector<double> expect = linear_by_loops(x, w, b);
      {
        autograd::NoGradGuard no_grad;  // the compact input is read in place
        Tensor y = linear(x, w, b);
        CHECK(y.sizes() == expect_shape);
        const auto got = y.to(kFloat64).to_vector<double>();
        REQUIRE(got.size() == expect.size());
        for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(expect[i]).epsilon(1e-5));
      }
      Tensor xg = x.detach().requires_grad_(true);  // with a graph: folded by a recorded reshape
      Tensor y = linear(xg, w, b);
      CHECK(y.sizes() == expect_shape);
      y.sum().backward();
      // d sum(y) / dx[..., i] = sum_o w[o, i], the same for every row.
      const auto colsum = w.sum(Shape{0}).to_vector<float>();
      const auto gx = xg.grad().contiguous().to_vector<float>();
      for (size_t i = 0; i < gx.size(); ++i) CHECK(gx[i] == doctest::Approx(colsum[i % 5]).epsilon(1e-5));
    }
  }
}

TEST_CASE("reductions follow PyTorch's conventions") {
  Tensor x = tensor({{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}});
  CHECK(x.sum().item<float>() == 21.0f);
  CHECK(x.sum({0}).to_vector<float>() == std::vector<float>{5, 7, 9});
  CHECK(x.sum({1}, true).sizes() == Shape{2, 1});
  CHECK(x.mean({0, 1}).item<float>() == 3.5f);
  CHECK(x.prod().item<float>() == 720.0f);
  CHECK(x.var().item<float>() == doctest::Approx(3.5));  // unbiased by default
  CHECK(x.var(std::nullopt, 0).item<float>() == doctest::Approx(35.0 / 12));
  CHECK(x.std(Shape{1}).to_vector<float>() == std::vector<float>{1, 1});
  CHECK(x.norm().item<float>() == doctest::Approx(std::sqrt(91.0)));
  CHECK(x.norm(1).item<float>() == 21.0f);
  CHECK(x.norm(INFINITY).item<float>() == 6.0f);
  CHECK(x.logsumexp({1}).index({0}).item<float>() ==
        doctest::Approx(std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0))));
  CHECK(tensor({-INFINITY, -INFINITY}).logsumexp({0}).item<float>() == -INFINITY);
  CHECK(tensor({1000.0, 1000.0}).logsumexp({0}).item<float>() == doctest::Approx(1000.6931));
  auto [vals, idx] = x.max(1);
  CHECK(vals.to_vector<float>() == std::vector<float>{3, 6});
  CHECK(idx.to_vector<int64_t>() == std::vector<int64_t>{2, 2});
  CHECK(x.min(0, true).second.sizes() == Shape{1, 3});
  CHECK(x.argmax().item<int64_t>() == 5);
  CHECK(x.argmin(1).to_vector<int64_t>() == std::vector<int64_t>{0, 0});
  CHECK(tensor({2, 7, 7}).argmax().item<int64_t>() == 1);  // first of ties
  CHECK(x.cumsum(1).to_vector<float>() == std::vector<float>{1, 3, 6, 4, 9, 15});
  CHECK(tensor({1, 2, 3}).cumsum(0).dtype() == kInt64);
  CHECK(zeros({0}).sum().item<float>() == 0.0f);
  CHECK(zeros({0, 3}).sum({0}).sizes() == Shape{3});
  check_error([] { zeros({0}).max(); }, {"max", "empty"});
  check_error([] { tensor({1, 2}).mean(); }, {"mean", "floating"});
}

TEST_CASE("softmax and log_softmax are stable and sum to one") {
  Tensor x = tensor({{1000.0, 1001.0}, {-1000.0, -1000.0}});
  Tensor s = softmax(x, 1);
  CHECK(s.index({0, 1}).item<float>() == doctest::Approx(0.7310586));
  CHECK(s.index({1, 0}).item<float>() == doctest::Approx(0.5));
  CHECK(log_softmax(x, 1).index({0, 0}).item<float>() == doctest::Approx(-1.3132616).epsilon(1e-4));
  Tensor r = randn({4, 5, 6});
  CHECK(allclose(softmax(r, 1).sum({1}), ones({4, 6}), 1e-5, 1e-5));
}

TEST_CASE("sort, topk, one_hot, embedding, tril/triu, where") {
  Tensor x = tensor({3.0, NAN, 1.0, 2.0});
  auto [sv, si] = sort(x);
  CHECK(si.to_vector<int64_t>() == std::vector<int64_t>{2, 3, 0, 1});  // NaN last ascending
  CHECK(sort(x, 0, true).second.index({0}).item<int64_t>() == 1);      // NaN first descending
  auto [tv, ti] = topk(tensor({1.0, 5.0, 3.0, 4.0}), 2);
  CHECK(tv.to_vector<float>() == std::vector<float>{5, 4});
  CHECK(ti.to_vector<int64_t>() == std::vector<int64_t>{1, 3});
  CHECK(topk(tensor({1.0, 5.0, 3.0}), 2, -1, false).first.to_vector<float>() == std::vector<float>{1, 3});
  check_error([] { topk(ones({3}), 4); }, {"topk", "k (4)"});
  Tensor oh = one_hot(tensor({0, 2}), 3);
  CHECK(oh.to_vector<int64_t>() == std::vector<int64_t>{1, 0, 0, 0, 0, 1});
  CHECK(one_hot(tensor({1, 3})).sizes() == Shape{2, 4});
  Tensor w = arange(6.0, std::nullopt).view({3, 2});
  CHECK(embedding(w, tensor({{2, 0}})).sizes() == Shape{1, 2, 2});
  CHECK(embedding(w, tensor({2})).to_vector<float>() == std::vector<float>{4, 5});
  check_error([&] { embedding(w, tensor({3})); }, {"out of bounds", "size 3"});
  Tensor m = ones({3, 3});
  CHECK(tril(m).sum().item<float>() == 6.0f);
  CHECK(triu(m, 1).sum().item<float>() == 3.0f);
  CHECK(tril(m, -1).to_vector<float>() == std::vector<float>{0, 0, 0, 1, 0, 0, 1, 1, 0});
  CHECK(where(tensor({true, false}), tensor({1.0, 2.0}), 0.5).to_vector<float>() ==
        std::vector<float>{1, 0.5f});
  CHECK(masked_fill(ones({2, 2}), tensor({true, false}), -1.0).to_vector<float>() ==
        std::vector<float>{-1, 1, -1, 1});
  CHECK(nonzero(tensor({{0, 1}, {1, 0}})).to_vector<int64_t>() == std::vector<int64_t>{0, 1, 1, 0});
  CHECK(scatter(zeros({2, 3}), 1, tensor({2, 0}).view({2, 1}), 5.0).to_vector<float>() ==
        std::vector<float>{0, 0, 5, 5, 0, 0});
}

TEST_CASE("dropout keeps the expectation and is identity in eval") {
  manual_seed(3);
  Tensor x = ones({100000});
  Tensor y = dropout(x, 0.25, true);
  const double kept = (y > 0).to(kFloat64).mean().item<double>();
  CHECK(kept == doctest::Approx(0.75).epsilon(0.01));
  CHECK(y.max().item<float>() == doctest::Approx(1.0 / 0.75));
  CHECK(y.mean().item<float>() == doctest::Approx(1.0).epsilon(0.01));
  CHECK(dropout(x, 0.25, false).is_same(x));
  CHECK(dropout(x, 1.0, true).sum().item<float>() == 0.0f);
  check_error([&] { dropout(x, 1.5); }, {"dropout", "between 0 and 1"});
  Tensor p = ones({4}).requires_grad_();
  manual_seed(9);
  Tensor d = dropout(p, 0.5);
  d.sum().backward();
  CHECK(allclose(p.grad(), d.detach()));  // gradient is the same scaled mask
}

TEST_CASE("elementwise edge cases: NaN, infinities, integer math") {
  CHECK(std::isnan(relu(tensor({NAN})).item<float>()));
  CHECK(std::isnan(maximum(tensor({NAN}), tensor({1.0})).item<float>()));
  CHECK(std::isnan(clamp(tensor({NAN}), 0, 1).item<float>()));
  CHECK(exp(tensor({-INFINITY, 0.0, 100.0})).to_vector<float>()[0] == 0.0f);
  CHECK(std::isinf(exp(tensor({100.0})).item<float>()));
  CHECK(exp(tensor({88.0})).item<float>() == doctest::Approx(std::exp(88.0f)).epsilon(1e-6));
  CHECK(sigmoid(tensor({-100.0})).item<float>() == doctest::Approx(0.0));
  CHECK(floor_divide(tensor({-7, 7}), 2).to_vector<int64_t>() == std::vector<int64_t>{-4, 3});
  CHECK(pow(tensor({2, 3}), 2).to_vector<int64_t>() == std::vector<int64_t>{4, 9});
  CHECK((2.0 - tensor({1.0})).item<float>() == 1.0f);
  CHECK((6.0 / tensor({3.0})).item<float>() == 2.0f);
  CHECK(allclose(tensor({1.0, INFINITY}), tensor({1.0, INFINITY})));
  CHECK_FALSE(allclose(tensor({NAN}), tensor({NAN})));
  CHECK(allclose(tensor({NAN}), tensor({NAN}), 1e-5, 1e-8, true));
  CHECK(gelu(tensor({1.0})).item<float>() == doctest::Approx(0.8413447));
  CHECK(gelu(tensor({1.0}), "tanh").item<float>() == doctest::Approx(0.8411920));
  CHECK(softplus(tensor({30.0})).item<float>() == 30.0f);  // above the threshold: identity
  check_error([] { gelu(ones({1}), "fast"); }, {"gelu", "approximate"});
  check_error([] { neg(tensor({true})); }, {"neg", "bool"});
}
