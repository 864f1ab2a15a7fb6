// The CPU backend against the reference backend, primitive by primitive, over odd sizes (0, 1, 7,
// 33, 1023), non-contiguous and broadcast inputs. Threaded paths are reached by the larger shapes.
#include "helpers.h"

using namespace ember;
using ember::test::check_against_reference;
using ember::test::kOddSizes;
using ember::test::non_contiguous_randn;

TEST_CASE("backends: supports() answers per op and dtype") {
  auto& ref = kernels::reference_backend();
  CHECK(ref.supports(kernels::Op::Gemm, kFloat32));
  CHECK_FALSE(ref.supports(kernels::Op::Gemm, kInt64));
  CHECK(ref.supports(kernels::Op::Cast, kBFloat16));
  CHECK_FALSE(ref.supports(kernels::Op::Unary, kFloat16));
  CHECK(std::string(kernels::cpu_backend().name()) == "cpu");
}

TEST_CASE("backends: unary maps over odd sizes, contiguous and not") {
  using Fn = std::function<Tensor(const Tensor&)>;
  std::vector<std::pair<const char*, Fn>> ops = {
      {"neg", [](const Tensor& x) { return neg(x); }},
      {"exp", [](const Tensor& x) { return exp(x); }},
      {"log", [](const Tensor& x) { return log(abs(x) + 0.1); }},
      {"log1p", [](const Tensor& x) { return log1p(abs(x)); }},
      {"sqrt", [](const Tensor& x) { return sqrt(abs(x)); }},
      {"rsqrt", [](const Tensor& x) { return rsqrt(abs(x) + 0.5); }},
      {"abs", [](const Tensor& x) { return abs(x); }},
      {"sign", [](const Tensor& x) { return sign(x); }},
      {"sin", [](const Tensor& x) { return sin(x); }},
      {"cos", [](const Tensor& x) { return cos(x); }},
      {"tanh", [](const Tensor& x) { return tanh(x); }},
      {"sigmoid", [](const Tensor& x) { return sigmoid(x); }},
      {"relu", [](const Tensor& x) { return relu(x); }},
      {"leaky_relu", [](const Tensor& x) { return leaky_relu(x, 0.2); }},
      {"gelu", [](const Tensor& x) { return gelu(x); }},
      {"gelu_tanh", [](const Tensor& x) { return gelu(x, "tanh"); }},
      {"silu", [](const Tensor& x) { return silu(x); }},
      {"softplus", [](const Tensor& x) { return softplus(x, 2.0, 1.0); }},
      {"clamp", [](const Tensor& x) { return clamp(x, -0.5, 0.7); }},
      {"pow", [](const Tensor& x) { return pow(abs(x), 1.7); }},
      {"square", [](const Tensor& x) { return square(x); }},
      {"erf", [](const Tensor& x) { return erf(x); }},
      {"reciprocal", [](const Tensor& x) { return reciprocal(x + 10.0); }},
  };
  manual_seed(3);
  for (auto& [name, fn] : ops) {
    for (int64_t n : kOddSizes) {
      for (DType dt : {kFloat32, kFloat64}) {
        INFO(name << " n=" << n << " " << dtype_name(dt));
        Tensor x = randn({n}, dt) * 3.0;
        check_against_reference([&] { return fn(x); }, 2e-6, 1e-6);
        Tensor nc = non_contiguous_randn({n, 3}, dt);
        check_against_reference([&] { return fn(nc); }, 2e-6, 1e-6);
      }
    }
    Tensor big = randn({300, 257});  // past the threading threshold
    check_against_reference([&] { return fn(big); }, 2e-6, 1e-6);
  }
}

TEST_CASE("backends: GELU's backward, both forms, over odd sizes, strides, dtypes and extreme inputs") {
  manual_seed(31);
  auto grad_of = [](const Tensor& x, const Tensor& g, const std::string& approximate) {
    Tensor leaf = x.detach().requires_grad_();
    gelu(leaf, approximate).backward(g);
    return leaf.grad();
  };
  for (const std::string approximate : {"none", "tanh"}) {
    for (DType dt : {kFloat32, kFloat64}) {
      for (int64_t n : kOddSizes) {
        INFO(approximate << " n=" << n << " " << dtype_name(dt));
        Tensor x = randn({n}, dt) * 4.0, g = randn({n}, dt);
        check_against_reference([&] { return grad_of(x, g, approximate); }, 2e-6, 1e-6);
        Tensor nc = non_contiguous_randn({n, 3}, dt) * 4.0, gnc = non_contiguous_randn({n, 3}, dt);
        check_against_reference([&] { return grad_of(nc, gnc, approximate); }, 2e-6, 1e-6);
      }
      Tensor tails =
          tensor({-INFINITY, -1e4, -20.0, -9.0, -5.0, -1e-3, 0.0, 1e-3, 5.0, 9.0, 20.0, 1e4, INFINITY, NAN},
                 TensorOptions(dt));
      check_against_reference([&] { return grad_of(tails, ones_like(tails), approximate); }, 2e-6, 1e-6);
      Tensor big = randn({300, 257}, dt) * 3.0;  // past the threading threshold
      check_against_reference([&] { return grad_of(big, ones_like(big), approximate); }, 2e-6, 1e-6);
    }
  }
}

TEST_CASE("backends: ReLU's one-pass backward over odd sizes, strides and dtypes, NaN as PyTorch") {
  manual_seed(32);
  auto grad_of = [](const Tensor& x, const Tensor& g) {
    Tensor leaf = x.detach().requires_grad_();
    relu(leaf).backward(g);
    return leaf.grad();
  };
  for (DType dt : {kFloat32, kFloat64}) {
    for (int64_t n : kOddSizes) {
      INFO("n=" << n << " " << dtype_name(dt));
      Tensor x = randn({n}, dt), g = randn({n}, dt);
      check_against_reference([&] { return grad_of(x, g); });
      Tensor nc = non_contiguous_randn({n, 3}, dt), gnc = non_contiguous_randn({n, 3}, dt);
      check_against_reference([&] { return grad_of(nc, gnc); });
    }
  }
  // PyTorch's threshold_backward: zero where the output is <= 0 (an infinite gradient included),
  // the gradient where it is NaN or positive.
  Tensor x = tensor({-1.0f, 0.0f, NAN, 2.0f}), g = tensor({INFINITY, 5.0f, 3.0f, NAN});
  Tensor got = check_against_reference([&] { return grad_of(x, g); });  // NaNs compare equal there
  CHECK(got[0].item<float>() == 0.0f);
  CHECK(got[1].item<float>() == 0.0f);
  CHECK(got[2].item<float>() == 3.0f);
  CHECK(std::isnan(got[3].item<float>()));
  // With create_graph the differentiable formula runs instead: the same values.
  Tensor leaf = x.detach().requires_grad_();
  relu(leaf).backward(g, false, true);
  CHECK(allclose(leaf.grad().detach(), got, 0.0, 0.0, /*equal_nan=*/true));
}

TEST_CASE("backends: binary ops with broadcasting, mixed dtypes and strides") {
  manual_seed(4);
  std::vector<std::pair<Shape, Shape>> shapes = {
      {{7}, {7}},         {{0}, {0}},          {{33, 1}, {1, 7}},      {{1023}, {}},
      {{}, {1023}},       {{3, 1, 5}, {4, 1}}, {{2, 3, 4}, {2, 3, 4}}, {{300, 257}, {257}},
      {{1, 1}, {5, 1, 1}}};
  for (auto& [sa, sb] : shapes) {
    INFO(shape_str(sa) << " with " << shape_str(sb));
    Tensor a = randn(sa), b = randn(sb) + 3.0;
    check_against_reference([&] { return a + b; });
    check_against_reference([&] { return a - b; });
    check_against_reference([&] { return a * b; });
    check_against_reference([&] { return a / b; });
    check_against_reference([&] { return pow(abs(a) + 0.5, b); }, 1e-5, 1e-5);
    check_against_reference([&] { return maximum(a, b); });
    check_against_reference([&] { return minimum(a, b); });
    check_against_reference([&] { return (a < b).to(kInt64); });
    check_against_reference([&] { return (a >= b).to(kInt64); });
    check_against_reference([&] { return logical_xor(a > 0, b > 3).to(kInt64); });
    Tensor ia = randint(-5, 5, sa), ib = randint(1, 5, sb);
    check_against_reference([&] { return ia * ib + ia; });
    check_against_reference([&] { return ia / ib; });
    check_against_reference([&] { return ia + b; });
  }
  // Outputs over 16 MiB take the streaming-store path; an odd offset exercises its unaligned head.
  Tensor huge_a = randn({(1 << 22) + 77}), huge_b = randn({(1 << 22) + 77});
  check_against_reference([&] { return huge_a + huge_b; });
  check_against_reference([&] { return huge_a.slice(0, 3) * huge_b.slice(0, 0, -3); });
  Tensor nc = non_contiguous_randn({33, 7});
  Tensor nd = non_contiguous_randn({33, 7}, kFloat64);
  check_against_reference([&] { return nc * nd; });
  check_against_reference([&] { return nc.index({Slice({}, {}, 2)}) + 1.5; });
  Tensor c = randn({33, 7}) > 0;
  check_against_reference([&] { return where(c, nc, nd); });
  check_against_reference([&] { return where(c.index({0}), nc, 0.5); });
}

TEST_CASE("backends: reductions over every dim set, odd sizes, non-contiguous") {
  manual_seed(5);
  for (int64_t n : kOddSizes) {
    INFO("n=" << n);
    Tensor x = randn({n});
    check_against_reference([&] { return sum(x); }, 1e-5, 1e-4);
    if (n > 0) {
      check_against_reference([&] { return max(x); });
      check_against_reference([&] { return argmin(x); });
    }
    Tensor m = randn({3, n, 5});
    for (Shape dims : std::vector<Shape>{{0}, {1}, {2}, {0, 1}, {1, 2}, {0, 2}, {}}) {
      INFO("dims " << shape_str(dims));
      check_against_reference([&] { return sum(m, dims, true); }, 1e-5, 1e-4);
      if (n > 0) check_against_reference([&] { return amax(m, dims); });
    }
    if (n > 0) {
      check_against_reference([&] { return max(m, 1).first; });
      check_against_reference([&] { return max(m, 1).second; });
      check_against_reference([&] { return prod(m, 2); }, 1e-5, 1e-6);
      check_against_reference([&] { return cumsum(m, 1); }, 1e-5, 1e-5);
      check_against_reference([&] { return var(m, Shape{1}); }, 1e-4, 1e-5);
    }
  }
  Tensor big = randn({4096, 300});
  check_against_reference([&] { return sum(big); }, 1e-4, 1e-2);
  // 4096 float additions per output: about 1e-3 of absolute rounding error is expected.
  check_against_reference([&] { return sum(big, {0}); }, 1e-5, 2e-3);
  check_against_reference([&] { return sum(big, {1}); }, 1e-5, 1e-4);
  Tensor long_mid = randn({3, 70000, 2});
  check_against_reference([&] { return sum(long_mid, {1}); }, 1e-4, 1e-3);
  Tensor nc = non_contiguous_randn({33, 70});
  check_against_reference([&] { return sum(nc, {0}); }, 1e-5, 1e-4);
  check_against_reference([&] { return logsumexp(nc, {1}); }, 1e-5, 1e-5);
  check_against_reference([&] { return norm(nc, 3.0, Shape{0}); }, 1e-5, 1e-5);
  Tensor ints = randint(-100, 100, {33, 7});
  check_against_reference([&] { return sum(ints, {0}); });
  check_against_reference([&] { return ints.max(); });
  Tensor with_nan = tensor({1.0, NAN, 3.0});
  check_against_reference([&] { return max(with_nan); });
  CHECK(std::isnan(max(with_nan).item<float>()));
  CHECK(argmax(with_nan).item<int64_t>() == 1);
}

TEST_CASE("backends: GEMM over odd shapes, transposes and batches") {
  manual_seed(6);
  // Small m or k (<= 16) take the skinny-GEMM loops, the rest the packed kernel.
  std::vector<std::array<int64_t, 3>> mnk = {{1, 1, 1},
                                             {7, 33, 5},
                                             {33, 7, 1023},
                                             {0, 3, 4},
                                             {8, 300, 784},
                                             {300, 200, 8},
                                             {16, 65, 100},
                                             {1, 129, 257},
                                             {3, 0, 4},
                                             {3, 4, 0},
                                             {64, 65, 66},
                                             // a few rows against a large B: the threaded skinny path
                                             {1, 770, 257},
                                             {2, 515, 300},
                                             {3, 1030, 130},
                                             {6, 262, 520}};
  for (auto [m, n, k] : mnk) {
    INFO(m << "x" << k << " @ " << k << "x" << n);
    Tensor a = randn({m, k}), b = randn({k, n});
    check_against_reference([&] { return mm(a, b); }, 1e-4, 1e-4);
    Tensor at = randn({k, m}).t(), bt = randn({n, k}).t();  // transposed layouts, no copies
    check_against_reference([&] { return mm(at, b); }, 1e-4, 1e-4);
    check_against_reference([&] { return mm(a, bt); }, 1e-4, 1e-4);
    check_against_reference([&] { return mm(at, bt); }, 1e-4, 1e-4);
    Tensor a64 = randn({m, k}, kFloat64), b64 = randn({k, n}, kFloat64);
    check_against_reference([&] { return mm(a64, b64); }, 1e-10, 1e-10);
  }
  // Batches of products large enough for the packed kernel, each thread taking whole matrices
  // (the kernel then runs inside the batch's parallel region).
  Tensor pa = randn({8, 64, 72}), pb = randn({8, 72, 80});
  check_against_reference([&] { return bmm(pa, pb); }, 1e-4, 1e-4);
  check_against_reference([&] { return bmm(pa, pb.transpose(1, 2).contiguous().transpose(1, 2)); }, 1e-4,
                          1e-4);
  Tensor ba = randn({5, 7, 3}), bb = randn({5, 3, 9});
  check_against_reference([&] { return bmm(ba, bb); }, 1e-5, 1e-5);
  check_against_reference([&] { return bmm(ba, bb.transpose(1, 2).contiguous().transpose(1, 2)); }, 1e-5,
                          1e-5);
  Tensor sliced = randn({7, 10}).slice(1, 1, 8);  // row stride 10, not compact
  Tensor rhs = randn({7, 4});
  check_against_reference([&] { return mm(sliced, rhs); }, 1e-5, 1e-5);
  Tensor lx = randn({9, 7}), lw = randn({4, 7}), lb = randn({4});
  check_against_reference([&] { return linear(lx, lw, lb); }, 1e-5, 1e-5);
}

TEST_CASE("backends: im2col and col2im over odd geometries") {
  manual_seed(9);
  struct Geo {
    Shape in;
    Pair k, d, p, s;
  };
  std::vector<Geo> cases = {{{2, 3, 7, 5}, {3, 3}, {1, 1}, {1, 1}, {1, 1}},
                            {{1, 1, 1, 1}, {1, 1}, {1, 1}, {0, 0}, {1, 1}},
                            {{3, 2, 9, 8}, {2, 3}, {2, 1}, {0, 2}, {2, 3}},
                            {{2, 33, 5, 6}, {5, 1}, {1, 1}, {2, 0}, {1, 1}},
                            // padding wider than the image: whole rows and columns of padding
                            {{1, 2, 3, 2}, {3, 3}, {2, 2}, {3, 4}, {2, 3}},
                            {{2, 3, 6, 11}, {2, 4}, {1, 3}, {1, 5}, {1, 2}},
                            // stride 1, outputs as wide as the image: the one-loop-per-column-row path
                            {{2, 2, 6, 7}, {3, 3}, {2, 2}, {2, 2}, {1, 1}},
                            {{1, 2, 2, 3}, {5, 3}, {1, 1}, {2, 1}, {1, 1}},
                            {{3, 2, 4, 1}, {3, 1}, {1, 1}, {3, 0}, {1, 1}}};
  for (auto& g : cases) {
    INFO(shape_str(g.in));
    Tensor x = randn(g.in);
    Tensor cols = check_against_reference([&] { return unfold(x, g.k, g.d, g.p, g.s); });
    Tensor c2 = randn(cols.sizes());
    check_against_reference([&] { return fold(c2, {g.in[2], g.in[3]}, g.k, g.d, g.p, g.s); }, 1e-5, 1e-5);
    Tensor xi = randint(-5, 5, g.in);
    check_against_reference([&] { return unfold(xi, g.k, g.d, g.p, g.s); });
  }
}

TEST_CASE("backends: conv2d forward and backward over odd geometries, one image per thread and not") {
  manual_seed(10);
  struct Geo {
    Shape in;
    int64_t out;
    Pair k, s, p, d;
    bool bias;
  };
  // {9, 6, 12, 13}: more images than threads and enough work for each thread to take its own; 1x1
  // stride 1 reads the image as its columns; the rest: strides, dilation, padding wider than the
  // kernel reach, one image, a single output pixel.
  for (const Geo& g : {Geo{{2, 3, 7, 5}, 4, {3, 3}, {1, 1}, {1, 1}, {1, 1}, true},
                       Geo{{9, 6, 12, 13}, 8, {3, 2}, {1, 1}, {1, 0}, {1, 1}, true},
                       Geo{{3, 4, 6, 5}, 3, {1, 1}, {1, 1}, {0, 0}, {1, 1}, false},
                       Geo{{1, 2, 9, 8}, 5, {2, 3}, {2, 3}, {0, 2}, {2, 1}, true},
                       Geo{{2, 3, 3, 2}, 2, {3, 3}, {2, 1}, {3, 2}, {1, 2}, false},
                       Geo{{4, 3, 3, 3}, 2, {3, 3}, {1, 1}, {0, 0}, {1, 1}, true}})
    for (DType dt : {kFloat32, kFloat64}) {
      INFO(shape_str(g.in) << " -> " << g.out << " channels, " << dtype_name(dt));
      Tensor x = non_contiguous_randn(g.in, dt), w = randn({g.out, g.in[1], g.k[0], g.k[1]}, dt);
      Tensor b = g.bias ? randn({g.out}, dt) : Tensor();
      auto run = [&](int which) {
        Tensor xl = x.detach().requires_grad_(), wl = w.detach().requires_grad_();
        Tensor bl = b.defined() ? b.detach().requires_grad_() : Tensor();
        Tensor y = nn::functional::conv2d(xl, wl, bl, g.s, g.p, g.d);
        (y * sin(arange(0, static_cast<double>(y.numel()), 1, dt).reshape(y.sizes()))).sum().backward();
        return std::vector<Tensor>{y, xl.grad(), wl.grad(), bl.defined() ? bl.grad() : zeros({1}, dt)}[which];
      };
      for (int which = 0; which < 4; ++which) check_against_reference([&] { return run(which); }, 1e-4, 1e-4);
    }
}

TEST_CASE("backends: batch norm and max pooling over odd shapes, on one thread and several") {
  manual_seed(12);
  // {33, 5}: one value per row and channel; {16, 8, 33, 31}: enough work for the threaded path.
  for (Shape shape : {Shape{33, 5}, Shape{3, 4, 7}, Shape{2, 3, 7, 5}, Shape{16, 8, 33, 31}})
    for (DType dt : {kFloat32, kFloat64}) {
      INFO(shape_str(shape) << " " << dtype_name(dt));
      const int64_t c = shape[1];
      Tensor x = non_contiguous_randn(shape, dt) * 2 + 5, w = randn({c}, dt), b = randn({c}, dt);
      Tensor dy = randn(shape, dt);
      auto run = [&](int which) {
        Tensor xl = x.detach().requires_grad_(), wl = w.detach().requires_grad_(),
               bl = b.detach().requires_grad_();
        Tensor rm = zeros({c}, dt), rv = ones({c}, dt);
        Tensor y = nn::functional::batch_norm(xl, rm, rv, wl, bl, true, 0.1, 1e-5);
        (y * dy).sum().backward();
        return std::vector<Tensor>{y, xl.grad(), wl.grad(), bl.grad(), rm, rv}[which];
      };
      for (int which = 0; which < 6; ++which) check_against_reference([&] { return run(which); }, 1e-4, 1e-5);
    }
  struct Pool {
    Shape in;
    Pair k, s, p, d;
    bool ceil;
  };
  for (const Pool& g :
       {Pool{{2, 3, 7, 5}, {3, 3}, {2, 2}, {1, 1}, {1, 1}, true},
        Pool{{1, 1, 1, 1}, {1, 1}, {1, 1}, {0, 0}, {1, 1}, false},
        Pool{{3, 2, 9, 8}, {2, 3}, {2, 3}, {1, 0}, {2, 1}, false},
        Pool{{16, 32, 28, 28}, {2, 2}, {2, 2}, {0, 0}, {1, 1}, false},
        Pool{{2, 3, 7, 9}, {2, 2}, {2, 2}, {0, 0}, {1, 1}, false},      // odd: edges left out
        Pool{{2, 3, 6, 41}, {2, 2}, {2, 2}, {0, 0}, {1, 1}, false}}) {  // rows of 16 and a tail
    INFO(shape_str(g.in));
    Tensor x = non_contiguous_randn(g.in);
    auto pool = [&](bool grad) {
      Tensor xl = x.detach().requires_grad_();
      auto [values, indices] = nn::functional::max_pool2d_with_indices(xl, g.k, g.s, g.p, g.d, g.ceil);
      if (!grad) return values;
      (values * values).sum().backward();
      return xl.grad();
    };
    check_against_reference([&] { return pool(false); });
    check_against_reference([&] { return pool(true); });
    check_against_reference(
        [&] { return nn::functional::max_pool2d_with_indices(x, g.k, g.s, g.p, g.d, g.ceil).second; });
  }
  // Ties go to the first of equals; a NaN always wins.
  Tensor ties = tensor({1.0f, 3.0f, 3.0f, 0.0f, NAN, 2.0f, 5.0f, 5.0f}).reshape({1, 1, 2, 4});
  auto [tv, ti] = nn::functional::max_pool2d_with_indices(ties, {2, 2});
  CHECK(equal(ti, tensor(std::vector<int64_t>{4, 6}, {1, 1, 1, 2})));
  CHECK(std::isnan(tv.reshape({-1})[0].item<float>()));
  check_against_reference([&] { return nn::functional::max_pool2d_with_indices(ties, {2, 2}).second; });
  // Wide rows of small integers (ties everywhere) with NaNs and infinities scattered in them.
  Tensor wide = randint(-2, 3, {2, 3, 4, 38}).to(kFloat32);
  Tensor flat = wide.view({-1});
  for (int64_t i = 5; i < flat.numel(); i += 37)
    flat[i].fill_(i % 3 == 0 ? NAN : (i % 3 == 1 ? INFINITY : -INFINITY));
  check_against_reference([&] { return nn::functional::max_pool2d_with_indices(wide, {2, 2}).first; });
  check_against_reference([&] { return nn::functional::max_pool2d_with_indices(wide, {2, 2}).second; });
}

TEST_CASE("backends: softmax, indexing, sort and copies") {
  manual_seed(8);
  for (int64_t n : {1, 7, 33, 1023}) {
    Tensor x = randn({5, n}) * 4.0;
    check_against_reference([&] { return softmax(x, 1); }, 1e-5, 1e-6);
    check_against_reference([&] { return log_softmax(x, 1); }, 1e-5, 1e-5);
    check_against_reference([&] { return softmax(x, 0); }, 1e-5, 1e-6);
    Tensor x64 = randn({5, n}, kFloat64);
    check_against_reference([&] { return softmax(x64, 1); }, 1e-12, 1e-12);
  }
  check_against_reference([&] { return softmax(tensor({-INFINITY, 0.0, 1.0}), 0); });
  Tensor big = randn({4096, 100}) * 10.0;
  check_against_reference([&] { return softmax(big, -1); }, 1e-5, 1e-7);
  Tensor w = randn({33, 7});
  Tensor idx = randint(0, 33, {50});
  check_against_reference([&] { return index_select(w, 0, idx); });
  check_against_reference([&] { return index_select(w, 1, tensor({6, 0, 6})); });
  Tensor src50 = randn({50, 7}), src4 = randn({33, 4}), src1 = randn({33, 1});
  check_against_reference([&] { return index_add(zeros({33, 7}), 0, idx, src50); }, 1e-5, 1e-5);
  Tensor gi = randint(0, 7, {33, 4});
  check_against_reference([&] { return gather(w, 1, gi); });
  check_against_reference([&] { return scatter_add(zeros({33, 7}), 1, gi, src4); }, 1e-5, 1e-5);
  check_against_reference([&] { return scatter(zeros({33, 7}), 1, gi.index({Slice(), Slice(0, 1)}), src1); });
  Tensor dup = tensor({3.0, 1.0, 3.0, 2.0, 1.0});
  check_against_reference([&] { return sort(dup).second; });
  CHECK(sort(dup).second.to_vector<int64_t>() == std::vector<int64_t>{1, 4, 3, 0, 2});  // stable
  Tensor to_sort = randn({7, 33}), to_top = randn({5, 1023}), nc3 = non_contiguous_randn({33, 7, 5});
  check_against_reference([&] { return sort(to_sort, 0, true).first; });
  check_against_reference([&] { return topk(to_top, 3).second; });
  check_against_reference([&] { return masked_select(w, w > 0); });
  // Past the CPU backend's threading threshold: nonzero and the scans and scatters split over threads.
  Tensor wide = randn({600, 701});
  check_against_reference([&] { return nonzero(wide > 0.5); });
  check_against_reference([&] { return cumsum(wide, 0); }, 1e-4, 1e-4);
  check_against_reference([&] { return amax(wide, {1}); });
  check_against_reference([&] { return argmin(wide, 0); });
  Tensor wide_idx = randint(0, 600, {600, 701});
  check_against_reference([&] { return scatter_add(zeros({600, 701}), 0, wide_idx, wide); }, 1e-5, 1e-5);
  check_against_reference([&] { return gather(wide, 0, wide_idx); });
  check_against_reference([&] { return where(wide.t() > 0, wide.t(), wide.select(0, 0).unsqueeze(1)); });
  // where splits its elements over threads mid-row: a scalar side, a column broadcast, all compact.
  Tensor odd = randn({601, 701});
  check_against_reference([&] { return where(odd > 0, odd, 0.0); });
  check_against_reference([&] { return where(odd > 0, odd, odd.select(1, 0).unsqueeze(1)); });
  check_against_reference([&] { return where(odd > 0, odd * 2, -odd); });
  check_against_reference([&] { return nc3.contiguous(); });
  check_against_reference([&] { return cat({w, w.t().contiguous().t()}, 1); });
  check_against_reference([&] { return w.to(kFloat64).to(kBFloat16).to(kFloat32); });
  check_against_reference([&] { return w.to(kInt32).to(kInt64); });
}
