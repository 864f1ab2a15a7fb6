// The backend contract: a backend with the 23 required primitives and no fused kernels runs every op,
// because core composes each fused op from the primitives. PrimitivesOnly below is such a backend
// (it forwards the primitives to another backend and hides that backend's fused kernels); every
// fused kernel of the CPU backend is compared here with the composed form it replaces, forward and
// backward, on odd, broadcast and non-contiguous shapes.
#include "helpers.h"

#include <ember/kernels/fused.h>

using namespace ember;

namespace {

class PrimitivesOnly final : public kernels::Backend {
 public:
  explicit PrimitivesOnly(kernels::Backend& base) : base_(base) {}
  const char* name() const override { return "primitives-only"; }
  bool supports(kernels::Op op, DType dt) const override { return base_.supports(op, dt); }
  void* allocate(size_t n) override { return base_.allocate(n); }
  void deallocate(void* p, size_t n) override { base_.deallocate(p, n); }
  void copy_to_host(void* dst, const void* src, size_t n) override { base_.copy_to_host(dst, src, n); }
  void copy_from_host(void* dst, const void* src, size_t n) override { base_.copy_from_host(dst, src, n); }
  void fill(DType dt, void* out, int64_t n, Scalar v) override { base_.fill(dt, out, n, v); }
  void cast(DType from, const void* in, DType to, void* out, int64_t n) override {
    base_.cast(from, in, to, out, n);
  }
  void strided_copy(DType dt, const void* src, kernels::Dims ss, void* dst, kernels::Dims ds,
                    kernels::Dims sizes) override {
    base_.strided_copy(dt, src, ss, dst, ds, sizes);
  }
  void unary(kernels::UnaryOp op, DType dt, const void* in, void* out, int64_t n, double a,
             double b) override {
    base_.unary(op, dt, in, out, n, a, b);
  }
  void binary(kernels::BinaryOp op, DType dt, const void* a, kernels::Dims as, const void* b,
              kernels::Dims bs, void* out, kernels::Dims sizes) override {
    base_.binary(op, dt, a, as, b, bs, out, sizes);
  }
  void where(DType dt, const void* c, kernels::Dims cs, const void* a, kernels::Dims as, const void* b,
             kernels::Dims bs, void* out, kernels::Dims sizes) override {
    base_.where(dt, c, cs, a, as, b, bs, out, sizes);
  }
  void reduce(kernels::ReduceOp op, DType dt, const void* in, void* out, int64_t o, int64_t r,
              int64_t i) override {
    base_.reduce(op, dt, in, out, o, r, i);
  }
  void cumsum(DType dt, const void* in, void* out, int64_t o, int64_t r, int64_t i) override {
    base_.cumsum(dt, in, out, o, r, i);
  }
  void gemm(const kernels::GemmArgs& g, const void* a, const void* b, void* c) override {
    base_.gemm(g, a, b, c);
  }
  void index_select(DType dt, const void* in, int64_t n, const int64_t* idx, int64_t k, void* out, int64_t o,
                    int64_t i) override {
    base_.index_select(dt, in, n, idx, k, out, o, i);
  }
  void index_add(DType dt, void* out, int64_t n, const int64_t* idx, int64_t k, const void* src, int64_t o,
                 int64_t i, double alpha) override {
    base_.index_add(dt, out, n, idx, k, src, o, i, alpha);
  }
  void gather(DType dt, const void* in, int64_t n, const int64_t* idx, void* out, int64_t o, int64_t k,
              int64_t i) override {
    base_.gather(dt, in, n, idx, out, o, k, i);
  }
  void scatter(DType dt, void* out, int64_t n, const int64_t* idx, const void* src, int64_t o, int64_t k,
               int64_t i, bool acc) override {
    base_.scatter(dt, out, n, idx, src, o, k, i, acc);
  }
  int64_t nonzero(const void* mask, int64_t n, int64_t* out) override { return base_.nonzero(mask, n, out); }
  void sort(DType dt, const void* in, int64_t* idx, int64_t rows, int64_t cols, bool desc) override {
    base_.sort(dt, in, idx, rows, cols, desc);
  }
  void random_uniform(DType dt, void* out, int64_t n, uint64_t seed, uint64_t off, double lo,
                      double hi) override {
    base_.random_uniform(dt, out, n, seed, off, lo, hi);
  }
  void random_normal(DType dt, void* out, int64_t n, uint64_t seed, uint64_t off, double m,
                     double s) override {
    base_.random_normal(dt, out, n, seed, off, m, s);
  }

 private:
  kernels::Backend& base_;
};

// Over the CPU backend's primitives. Static: tensors free their memory through the backend that
// allocated it, so it must outlive every tensor made under it.
kernels::Backend& primitives_of_cpu() {
  static PrimitivesOnly backend(kernels::cpu_backend());
  return backend;
}

// f's outputs (and the gradients of their weighted sum with respect to `inputs`) with the CPU
// backend's fused kernels and with the composed forms on its primitives; they must agree.
void check_fused_matches_composed(const std::function<std::vector<Tensor>(const std::vector<Tensor>&)>& f,
                                  const std::vector<Tensor>& inputs, double tol = 1e-5) {
  auto run = [&] {
    std::vector<Tensor> leaves;
    for (const Tensor& t : inputs) leaves.push_back(t.detach().clone().requires_grad_(t.is_floating_point()));
    std::vector<Tensor> outs = f(leaves), results;
    Tensor total = zeros({});
    for (size_t i = 0; i < outs.size(); ++i) {
      // A fixed, output-dependent weighting so every output element's gradient path is exercised.
      Tensor w = arange(0, static_cast<double>(outs[i].numel()), 1, outs[i].dtype()).reshape(outs[i].sizes());
      total = total + (outs[i] * sin(w)).sum().to(kFloat32);
      results.push_back(outs[i].detach());
    }
    total.backward();
    for (const Tensor& l : leaves)
      if (l.requires_grad()) results.push_back(l.grad().defined() ? l.grad() : zeros_like(l));
    return results;
  };
  std::vector<Tensor> fused = run(), composed;
  {
    kernels::ScopedBackend scope(DeviceType::CPU, primitives_of_cpu());
    composed = run();
  }
  REQUIRE(fused.size() == composed.size());
  for (size_t i = 0; i < fused.size(); ++i) {
    INFO("result " << i << " of shape " << fused[i].sizes());
    REQUIRE(fused[i].sizes() == composed[i].sizes());
    CHECK(allclose(fused[i], composed[i], tol, tol, true));
  }
}

}  // namespace

TEST_CASE("backend contract: a backend with only the required primitives is complete") {
  // Constructing it proves the 23 functions are all a backend must write (an abstract class would
  // not compile here); its fused() is null, so every fused op below runs composed.
  static PrimitivesOnly primitives(kernels::reference_backend());
  CHECK(primitives.fused() == nullptr);
  CHECK(kernels::fused_for(primitives, kernels::FusedOp::Attention, kFloat32) == nullptr);
  CHECK(kernels::fused_for(kernels::cpu_backend(), kernels::FusedOp::Attention, kFloat32) != nullptr);
  CHECK(kernels::fused_for(kernels::cpu_backend(), kernels::FusedOp::Attention, kInt64) == nullptr);
  kernels::ScopedBackend scope(DeviceType::CPU, primitives);
  Tensor x = randn({3, 5});
  CHECK(allclose(softmax(x, 1).sum({1}), ones({3})));
}

TEST_CASE("backend contract: softmax and log_softmax, fused vs composed") {
  for (int64_t dim : {0, 1, 2})
    for (DType dt : {kFloat32, kFloat64}) {
      check_fused_matches_composed(
          [dim](const std::vector<Tensor>& in) {
            return std::vector<Tensor>{softmax(in[0], dim), log_softmax(in[0], dim)};
          },
          {test::non_contiguous_randn({3, 7, 33}, dt) * 4});
    }
}

TEST_CASE("backend contract: unfold and fold (im2col/col2im), fused vs composed") {
  struct Case {
    Shape x;
    Pair kernel, dilation, padding, stride;
  };
  for (const Case& c : {Case{{2, 3, 7, 9}, {3, 3}, {1, 1}, {1, 1}, {1, 1}},
                        Case{{1, 2, 8, 5}, {2, 3}, {2, 1}, {0, 2}, {3, 2}},
                        Case{{3, 1, 5, 5}, {5, 1}, {1, 1}, {2, 0}, {1, 1}}}) {
    check_fused_matches_composed(
        [&c](const std::vector<Tensor>& in) {
          Tensor cols = unfold(in[0], c.kernel, c.dilation, c.padding, c.stride);
          return std::vector<Tensor>{
              cols, fold(cols * 2, {c.x[2], c.x[3]}, c.kernel, c.dilation, c.padding, c.stride)};
        },
        {test::non_contiguous_randn(c.x)});
  }
}

TEST_CASE("backend contract: conv2d, fused vs composed, with and without bias, 1x1 and strided") {
  struct Case {
    Shape x;
    int64_t out;
    Pair kernel, stride, padding, dilation;
    bool bias;
  };
  for (const Case& c : {Case{{2, 3, 7, 9}, 4, {3, 3}, {1, 1}, {1, 1}, {1, 1}, true},
                        Case{{9, 6, 10, 12}, 8, {3, 3}, {1, 1}, {1, 1}, {1, 1}, false},
                        Case{{3, 6, 5, 4}, 2, {1, 1}, {1, 1}, {0, 0}, {1, 1}, true},
                        Case{{1, 2, 8, 5}, 3, {2, 3}, {3, 2}, {0, 2}, {2, 1}, true}})
    for (DType dt : {kFloat32, kFloat64}) {
      INFO(shape_str(c.x) << " " << dtype_name(dt));
      std::vector<Tensor> inputs = {test::non_contiguous_randn(c.x, dt),
                                    randn({c.out, c.x[1], c.kernel[0], c.kernel[1]}, dt)};
      if (c.bias) inputs.push_back(randn({c.out}, dt));
      check_fused_matches_composed(
          [&c](const std::vector<Tensor>& in) {
            return std::vector<Tensor>{nn::functional::conv2d(in[0], in[1], c.bias ? in[2] : Tensor(),
                                                              c.stride, c.padding, c.dilation)};
          },
          inputs, 1e-4);
    }
}

TEST_CASE("backend contract: attention, fused vs composed, with masks, causal and broadcast batches") {
  Tensor q = randn({2, 3, 5, 8}), k = randn({2, 1, 7, 8}), v = randn({1, 3, 7, 6});
  Tensor float_mask = randn({5, 7});
  Tensor batch_mask = randn({2, 3, 5, 7});
  for (bool causal : {false, true})
    for (int mask_kind = 0; mask_kind < 3; ++mask_kind) {
      INFO("causal " << causal << ", mask kind " << mask_kind);
      check_fused_matches_composed(
          [&](const std::vector<Tensor>& in) {
            Tensor mask = mask_kind == 0 ? Tensor() : mask_kind == 1 ? float_mask : batch_mask;
            return std::vector<Tensor>{
                nn::functional::scaled_dot_product_attention(in[0], in[1], in[2], mask, 0.0, causal)};
          },
          {q, k, v}, 1e-4);
    }
  // One to three queries (generation: new tokens against cached keys) take the CPU kernel's direct
  // loops instead of its GEMM tiles.
  for (int64_t queries : {1, 2, 3})
    for (DType dt : {kFloat32, kFloat64}) {
      INFO(queries << " queries, " << dtype_name(dt));
      Tensor few = randn({2, 3, queries, 8}, dt), keys = randn({2, 3, 11, 8}, dt),
             values = randn({2, 3, 11, 5}, dt);
      Tensor mask = tril(ones({queries, 11}, kBool), 11 - queries);  // the last queries of 11 positions
      check_fused_matches_composed(
          [&](const std::vector<Tensor>& in) {
            return std::vector<Tensor>{
                nn::functional::scaled_dot_product_attention(in[0], in[1], in[2], mask),
                nn::functional::scaled_dot_product_attention(in[0], in[1], in[2])};
          },
          {few, keys, values}, 1e-4);
    }
  // float64 and a query length differing from the keys', non-contiguous inputs.
  check_fused_matches_composed(
      [](const std::vector<Tensor>& in) {
        return std::vector<Tensor>{
            nn::functional::scaled_dot_product_attention(in[0], in[1], in[2], {}, 0.0, true)};
      },
      {test::non_contiguous_randn({4, 9, 3}, kFloat64).permute({2, 1, 0}),
       test::non_contiguous_randn({4, 6, 3}, kFloat64).permute({2, 1, 0}), randn({3, 6, 5}, kFloat64)});
}

TEST_CASE("backend contract: attention without a graph reads keys and values in place from a longer buffer") {
  // A key/value cache: the first `len` of 16 positions, batch entries 16 rows apart; and a batch
  // broadcast of one key matrix (stride 0), which must still be read correctly.
  autograd::NoGradGuard no_grad;
  for (DType dt : {kFloat32, kFloat64})
    for (int64_t len : {1, 6, 16})
      for (int64_t queries : {1, 3, 6}) {
        if (queries > len) continue;
        INFO(dtype_name(dt) << ", " << len << " keys, " << queries << " queries");
        Tensor keys = randn({2, 3, 16, 8}, dt), values = randn({2, 3, 16, 5}, dt),
               q = randn({2, 3, queries, 8}, dt);
        Tensor mask = tril(ones({queries, len}, kBool), len - queries);
        Tensor k = keys.narrow(2, 0, len), v = values.narrow(2, 0, len);
        auto fused = [&] { return nn::functional::scaled_dot_product_attention(q, k, v, mask); };
        Tensor got = test::check_against_reference(fused, 1e-5, 1e-6);  // CPU and reference kernels
        Tensor composed;
        {
          kernels::ScopedBackend scope(DeviceType::CPU, primitives_of_cpu());
          composed = nn::functional::scaled_dot_product_attention(q, k.contiguous(), v.contiguous(), mask);
        }
        CHECK(allclose(got, composed, 1e-5, 1e-6));
        Tensor one_k = randn({1, 1, len, 8}, dt), one_v = randn({1, 1, len, 5}, dt);
        test::check_against_reference(
            [&] { return nn::functional::scaled_dot_product_attention(q, one_k, one_v); }, 1e-5, 1e-6);
      }
}

TEST_CASE("backend contract: layer_norm, fused vs composed, with and without affine") {
  for (bool affine : {false, true})
    for (Shape shape : {Shape{4, 33}, Shape{2, 3, 7, 5}}) {
      const Shape normalized(shape.end() - 2, shape.end());
      check_fused_matches_composed(
          [&](const std::vector<Tensor>& in) {
            return std::vector<Tensor>{nn::functional::layer_norm(
                in[0], normalized, affine ? in[1] : Tensor(), affine ? in[2] : Tensor(), 1e-5)};
          },
          {test::non_contiguous_randn(shape) * 3 + 1, randn(normalized), randn(normalized)}, 1e-4);
    }
}

TEST_CASE("backend contract: cross_entropy, fused vs composed, class weights and ignore_index") {
  Tensor target = tensor(std::vector<int64_t>{0, 4, 2, -100, 1, 4, 3}, {7});
  for (DType dt : {kFloat32, kFloat64})
    for (const char* reduction : {"mean", "sum", "none"}) {
      check_fused_matches_composed(
          [&](const std::vector<Tensor>& in) {
            return std::vector<Tensor>{nn::functional::cross_entropy(in[0], target, in[1], -100, reduction)};
          },
          {test::non_contiguous_randn({7, 5}, dt) * 3, rand({5}, dt) + 0.5});
    }
}

TEST_CASE("backend contract: batch_norm, fused vs composed, 1-D and 2-D, with and without affine") {
  for (DType dt : {kFloat32, kFloat64})
    for (bool affine : {false, true})
      for (Shape shape : {Shape{33, 4}, Shape{6, 3, 7}, Shape{2, 5, 7, 9}}) {
        INFO("dtype " << dtype_name(dt) << ", affine " << affine << ", shape " << shape_str(shape));
        const int64_t c = shape[1];
        check_fused_matches_composed(
            [&](const std::vector<Tensor>& in) {
              Tensor rm = zeros({c}, dt), rv = ones({c}, dt);
              Tensor y = nn::functional::batch_norm(in[0], rm, rv, affine ? in[1] : Tensor(),
                                                    affine ? in[2] : Tensor(), true, 0.1, 1e-5);
              return std::vector<Tensor>{y, rm, rv};
            },
            {test::non_contiguous_randn(shape, dt) * 3 + 2, randn({c}, dt), randn({c}, dt)}, 1e-4);
      }
}

TEST_CASE("backend contract: max_pool2d with indices, fused vs composed, padding, dilation, ceil_mode") {
  struct Case {
    Shape x;
    Pair kernel, stride, padding, dilation;
    bool ceil;
  };
  for (const Case& c : {Case{{2, 3, 8, 7}, {3, 3}, {2, 2}, {1, 1}, {1, 1}, false},
                        Case{{2, 3, 8, 7}, {3, 3}, {2, 2}, {1, 1}, {1, 1}, true},
                        Case{{1, 2, 9, 8}, {2, 3}, {3, 2}, {0, 1}, {2, 1}, true},
                        Case{{3, 1, 5, 5}, {2, 2}, {1, 1}, {0, 0}, {1, 1}, false}})
    for (DType dt : {kFloat32, kFloat64}) {
      INFO("shape " << shape_str(c.x) << ", ceil " << c.ceil);
      check_fused_matches_composed(
          [&c](const std::vector<Tensor>& in) {
            auto [values, indices] = nn::functional::max_pool2d_with_indices(in[0], c.kernel, c.stride,
                                                                             c.padding, c.dilation, c.ceil);
            return std::vector<Tensor>{values, indices};
          },
          {test::non_contiguous_randn(c.x, dt)});
    }
}

TEST_CASE("backend contract: every optimizer's update, fused vs composed, five steps") {
  using K = fused::OptimizerKind;
  std::vector<fused::OptimizerUpdate> specs;
  auto spec = [](K kind) {
    fused::OptimizerUpdate s;
    s.kind = kind;
    s.lr = 0.1;
    return s;
  };
  auto sgd = spec(K::SGD);
  sgd.momentum = 0.9, sgd.dampening = 0.1, sgd.weight_decay = 0.01;
  auto nesterov = spec(K::SGD);
  nesterov.momentum = 0.8, nesterov.nesterov = true, nesterov.maximize = true;
  auto adam = spec(K::Adam);
  adam.weight_decay = 0.1, adam.amsgrad = true;
  auto adamw = spec(K::AdamW);
  adamw.weight_decay = 0.05;
  auto rms = spec(K::RMSprop);
  rms.momentum = 0.5, rms.centered = true, rms.weight_decay = 0.01;
  auto rms_plain = spec(K::RMSprop);
  auto adagrad = spec(K::Adagrad);
  adagrad.lr_decay = 0.01, adagrad.eps = 1e-10;
  for (fused::OptimizerUpdate s : {spec(K::SGD), sgd, nesterov, adam, adamw, rms, rms_plain, adagrad}) {
    INFO("optimizer kind " << static_cast<int>(s.kind));
    Tensor p0 = randn({37}), grads = randn({5, 37});
    auto run = [&](bool composed_form) {
      // The buffers this kind and its options use, as the optimizers pass them (the rest undefined).
      const bool uses[3] = {
          s.kind != K::SGD || s.momentum != 0,
          s.kind == K::Adam || s.kind == K::AdamW || (s.kind == K::RMSprop && s.momentum > 0),
          s.amsgrad || s.centered};
      fused::ParamUpdate u{p0.clone(), Tensor(), {}};
      for (int i = 0; i < 3; ++i) u.state[i] = uses[i] ? zeros({37}) : Tensor();
      for (int64_t step = 1; step <= 5; ++step) {
        s.step = step;
        s.first_step = step == 1;
        u.grad = grads[step - 1].contiguous();
        if (composed_form) fused::optimizer_update_composed(s, u);
        else fused::optimizer_update(s, std::span<const fused::ParamUpdate>(&u, 1));
      }
      return std::vector<Tensor>{u.param, u.state[0], u.state[1], u.state[2]};
    };
    auto fast = run(false), composed = run(true);
    for (size_t i = 0; i < fast.size(); ++i) {
      INFO("tensor " << i);
      REQUIRE(fast[i].defined() == composed[i].defined());
      if (fast[i].defined()) CHECK(allclose(fast[i], composed[i], 1e-5, 1e-6));
    }
    CHECK_FALSE(allclose(fast[0], p0));  // the update did something
  }
}

TEST_CASE("backend contract: a small CNN trains the same with fused kernels and composed ones") {
  auto train = [] {
    manual_seed(3);
    nn::Sequential net({std::make_shared<nn::Conv2d>(1, 4, 3, nn::Conv2dOptions{.padding = {1, 1}}),
                        std::make_shared<nn::BatchNorm2d>(4), std::make_shared<nn::ReLU>(),
                        std::make_shared<nn::MaxPool2d>(Pair{2, 2}, std::nullopt, Pair{1, 1}),
                        std::make_shared<nn::Flatten>(), std::make_shared<nn::LayerNorm>(Shape{4 * 4 * 4}),
                        std::make_shared<nn::Linear>(4 * 4 * 4, 3)});
    optim::AdamWOptions options;
    options.lr = 1e-2;
    optim::AdamW opt(net.parameters(), options);
    Tensor x = randn({8, 1, 6, 6}), y = tensor(std::vector<int64_t>{0, 1, 2, 0, 1, 2, 0, 1}, {8});
    std::vector<double> losses;
    for (int step = 0; step < 4; ++step) {
      opt.zero_grad();
      Tensor loss = nn::functional::cross_entropy(net.forward(x), y);
      loss.backward();
      opt.step();
      losses.push_back(loss.item<double>());
    }
    return losses;
  };
  auto fused_losses = train();
  std::vector<double> composed_losses;
  {
    kernels::ScopedBackend scope(DeviceType::CPU, primitives_of_cpu());
    composed_losses = train();
  }
  for (size_t i = 0; i < fused_losses.size(); ++i)
    CHECK(fused_losses[i] == doctest::Approx(composed_losses[i]).epsilon(1e-4));
  CHECK(fused_losses.back() < fused_losses.front());
}
