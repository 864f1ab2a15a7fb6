// The CUDA backend: tensors on Device::cuda(0) - the simulated device, or the GPU in a GPU build -
// computed by ember's CUDA kernels against the same ops on the CPU, over odd sizes, broadcasting and
// non-contiguous inputs, dtypes, autograd through them, and the errors around them.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "ember/ember.h"
#include "ember/kernels/cuda/cuda_backend.h"

using namespace ember;

namespace {
const Device kCuda = Device::cuda(0);

void check_same(const Tensor& on_cuda, const Tensor& on_cpu, double rtol = 1e-5, double atol = 1e-6) {
  REQUIRE(on_cuda.device() == kCuda);
  CHECK(on_cuda.sizes() == on_cpu.sizes());
  CHECK(on_cuda.dtype() == on_cpu.dtype());
  Tensor back = on_cuda.to(Device::cpu());
  if (is_floating(on_cpu.dtype())) CHECK(allclose(back, on_cpu, rtol, atol, /*equal_nan=*/true));
  else CHECK(equal(back, on_cpu));
}
// Sets up cuda:0: the simulated device in the simulator build; in the GPU build (EMBER_CUDA=ON) the
// GPU, or, on a machine without one, skips the test and says so.
bool use_cuda() {
  if (!cuda::built_for_gpu()) {
    cuda::enable_simulated_device();
    return true;
  }
  if (!cuda::is_available()) MESSAGE("skipped: no GPU here (" << cuda::unavailable_reason() << ")");
  return cuda::is_available();
}
}  // namespace

TEST_CASE("cuda: without a device, CUDA is unavailable and says so") {
  if (cuda::is_available()) return;  // EMBER_CUDA_SIM=1 in the environment
  CHECK(cuda::device_count() == 0);
  try {
    (void)zeros({2}, TensorOptions(kCuda));
    FAIL("expected an error");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("cuda:0 is not available") != std::string::npos);
    CHECK(std::string(e.what()).find("EMBER_CUDA_SIM=1") != std::string::npos);
  }
  if (cuda::built_for_gpu()) {  // the GPU build has no simulated device to fall back on
    try {
      cuda::enable_simulated_device();
      FAIL("expected an error");
    } catch (const Error& e) {
      CHECK(std::string(e.what()).find("-DEMBER_CUDA=OFF") != std::string::npos);
    }
    CHECK_THROWS_AS(cuda::memory_allocated(), Error);
  }
}

TEST_CASE("cuda: tensors move to the device and back, in every dtype") {
  if (!use_cuda()) return;
  REQUIRE(cuda::is_available());
  CHECK(cuda::device_count() == 1);
  manual_seed(1);
  for (DType dt : {kFloat32, kFloat64, kInt64, kInt32, kBool}) {
    Tensor x = (randn({7, 33}) * 10).to(dt);
    Tensor g = x.to(kCuda);
    CHECK(g.device() == kCuda);
    CHECK(equal(g.to(Device::cpu()), x));
    check_same(g.t().contiguous(), x.t().contiguous());  // strided copy on the device
    check_same(g.to(kFloat64), x.to(kFloat64));          // cast on the device
  }
  check_same(full({5, 3}, 2.5, TensorOptions(kCuda)), full({5, 3}, 2.5));
  check_same(full({4}, int64_t(1) << 60, TensorOptions(kInt64).set_device(kCuda)),
             full({4}, int64_t(1) << 60, kInt64));
}

TEST_CASE("cuda: bfloat16 and float16 casts give the CPU's bits; half tensors compute on the device") {
  if (!use_cuda()) return;
  manual_seed(3);
  const float inf = std::numeric_limits<float>::infinity();
  // Ties, subnormals, overflow, signed zero, NaN and infinities, plus odd-sized random data.
  const std::vector<float> values = {
      0.0f, -0.0f, 1.0f + 1.0f / 2048, 1.0f + 3.0f / 2048, 65519.0f, 65520.0f, 1e-7f, -2.98e-8f, 3e-8f,
      inf,  -inf,  std::nanf(""),      1.0f + 1.0f / 256,  3.0e38f};
  Tensor special = tensor(values, {static_cast<int64_t>(values.size())});
  for (const Tensor& x : {special, randn({1023}) * 100, randn({7, 33}).t()}) {
    for (DType half : {kBFloat16, kFloat16}) {
      Tensor on_cpu = x.to(half), on_cuda = x.to(kCuda).to(half);
      CHECK(on_cuda.dtype() == half);
      // Widening is exact and one-to-one, so equal floats (NaN with NaN) mean equal 16-bit patterns.
      check_same(on_cuda.to(kFloat32), on_cpu.to(kFloat32), 0, 0);
      check_same(on_cuda.to(kFloat64), on_cpu.to(kFloat64), 0, 0);
      check_same(on_cuda.to(kInt64), on_cpu.to(kInt64));
    }
  }
  // A small half-precision forward and backward on the device against the same on the CPU.
  for (DType half : {kBFloat16, kFloat16}) {
    Tensor w = (randn({9, 5}) * 0.3).to(half), v = randn({4, 9}).to(half);
    Tensor gw = w.to(kCuda).requires_grad_(), cw = w.clone().requires_grad_();
    Tensor gy = softmax(matmul(v.to(kCuda), gw).relu() + 1, 1), cy = softmax(matmul(v, cw).relu() + 1, 1);
    CHECK(gy.dtype() == half);
    check_same(gy.to(kFloat32), cy.to(kFloat32), 1e-2, 1e-3);
    (gy.to(kFloat32) * arange(1.0, 6.0, 1.0, kFloat32).to(kCuda)).sum().backward();
    (cy.to(kFloat32) * arange(1.0, 6.0, 1.0, kFloat32)).sum().backward();
    CHECK(gw.grad().dtype() == half);
    check_same(gw.grad().to(kFloat32), cw.grad().to(kFloat32), 2e-2, 2e-3);
    check_same(full({3}, 0.5, TensorOptions(half).set_device(kCuda)).to(kFloat32), full({3}, 0.5));
    // The 16-bit GEMM (float32 accumulation) batched, with transposed operands.
    Tensor x3 = randn({3, 9, 4}).to(half), y3 = randn({3, 5, 4}).to(half);
    check_same(bmm(x3.to(kCuda), y3.to(kCuda).transpose(1, 2)).to(kFloat32),
               bmm(x3, y3.transpose(1, 2)).to(kFloat32), 1e-2, 1e-2);
    check_same(matmul(x3.to(kCuda).transpose(1, 2), x3.to(kCuda)).to(kFloat32),
               matmul(x3.transpose(1, 2), x3).to(kFloat32), 1e-2, 1e-2);
    // Autocast for CUDA tensors: the matmul runs in the 16-bit dtype, the loss in float32.
    AutocastGuard autocast(DeviceType::CUDA, half);
    Tensor a = randn({6, 9}), m = matmul(a.to(kCuda), w.to(kFloat32).to(kCuda));
    CHECK(m.dtype() == half);
    check_same(m.to(kFloat32), matmul(a.to(half), w).to(kFloat32), 1e-2, 1e-2);
    CHECK(nn::functional::cross_entropy(m, zeros({6}, kInt64).to(kCuda)).dtype() == kFloat32);
  }
}

TEST_CASE("cuda: unary ops over odd sizes and non-contiguous inputs") {
  if (!use_cuda()) return;
  manual_seed(2);
  for (int64_t n : {1, 7, 33, 1023}) {
    Tensor x = randn({n, 3}).t();  // non-contiguous
    Tensor g = x.to(kCuda);
    check_same(g.exp(), x.exp());
    check_same(g.tanh(), x.tanh());
    check_same(g.relu(), x.relu());
    check_same(g.sigmoid(), x.sigmoid());
    check_same(nn::functional::gelu(g), nn::functional::gelu(x));
    for (const std::string approximate : {"none", "tanh"}) {  // GELU's one-pass backward kernels
      Tensor gl = g.detach().requires_grad_(), cl = x.detach().requires_grad_();
      (gelu(gl, approximate) * g).sum().backward();
      (gelu(cl, approximate) * x).sum().backward();
      check_same(gl.grad(), cl.grad());
    }
    {  // ReLU's one-pass backward kernel
      Tensor gl = g.detach().requires_grad_(), cl = x.detach().requires_grad_();
      (gl.relu() * g).sum().backward();
      (cl.relu() * x).sum().backward();
      check_same(gl.grad(), cl.grad());
    }
    check_same(g.abs().sqrt(), x.abs().sqrt());
    check_same(g.clamp(-0.5, 0.5), x.clamp(-0.5, 0.5));
    check_same(g.to(kFloat64).log1p().to(kFloat32), x.to(kFloat64).log1p().to(kFloat32));
    check_same(-g * 3.0 + 1.0, -x * 3.0 + 1.0);
  }
}

TEST_CASE("cuda: broadcasting binary ops, comparisons and where") {
  if (!use_cuda()) return;
  manual_seed(3);
  Tensor a = randn({7, 1, 5}), b = randn({1, 3, 5});
  Tensor ga = a.to(kCuda), gb = b.to(kCuda);
  check_same(ga + gb, a + b);
  check_same(ga * gb - ga / (gb.abs() + 1), a * b - a / (b.abs() + 1));
  check_same(maximum(ga, gb), maximum(a, b));
  check_same(ga.pow(2.0), a.pow(2.0));
  check_same(ga > gb, a > b);
  check_same(ga.eq(ga), a.eq(a));
  check_same(where(ga > gb, ga, gb), where(a > b, a, b));
  Tensor i = randint(-50, 50, {9, 4}), j = randint(1, 9, {4});
  check_same(i.to(kCuda) * j.to(kCuda) + i.to(kCuda), i * j + i);
  check_same(logical_and(i.to(kCuda) > 0, j.to(kCuda) > 4), logical_and(i > 0, j > 4));
}

TEST_CASE("cuda: reductions over every dim, softmax and matmul") {
  if (!use_cuda()) return;
  manual_seed(4);
  Tensor x = randn({6, 33, 17});
  Tensor g = x.to(kCuda);
  check_same(g.sum(), x.sum(), 1e-4, 1e-4);
  for (int64_t d = 0; d < 3; ++d) {
    check_same(g.sum({d}), x.sum({d}), 1e-5, 1e-5);
    check_same(g.mean({d}, true), x.mean({d}, true), 1e-5, 1e-5);
    check_same(amax(g, {d}), amax(x, {d}));
    // argmax through the primitive itself, against the reference backend's indices.
    Tensor idx = empty({x.numel() / x.size(d)}, TensorOptions(kInt64).set_device(kCuda));
    Tensor ref = empty({x.numel() / x.size(d)}, kInt64);
    const int64_t outer = d == 0 ? 1 : (d == 1 ? 6 : 6 * 33), r = x.size(d), inner = x.numel() / outer / r;
    kernels::backend_for(kCuda).reduce(kernels::ReduceOp::ArgMax, kFloat32, g.data_ptr(), idx.data_ptr(),
                                       outer, r, inner);
    kernels::reference_backend().reduce(kernels::ReduceOp::ArgMax, kFloat32, x.data_ptr(), ref.data_ptr(),
                                        outer, r, inner);
    check_same(idx, ref);
  }
  check_same(g.slice(2, 0, 4).prod({1}), x.slice(2, 0, 4).prod({1}), 1e-4, 1e-6);
  Tensor counts = randint(0, 5, {7, 9});
  check_same(counts.to(kCuda).sum({1}), counts.sum({1}));
  Tensor rows = randn({33, 1023}) * 4;
  check_same(softmax(rows.to(kCuda), 1), softmax(rows, 1));
  check_same(log_softmax(rows.to(kCuda), 1), log_softmax(rows, 1), 1e-5, 1e-5);
  Tensor a = randn({5, 7, 33}), b = randn({33, 9});
  check_same(matmul(a.to(kCuda), b.to(kCuda)), matmul(a, b), 1e-5, 1e-5);
}

TEST_CASE("cuda: max/min and argmax/argmin of rows: ties, NaN, every dtype, rows longer than a block") {
  if (!use_cuda()) return;
  manual_seed(14);
  for (int64_t r : {2, 7, 33, 300, 1023}) {
    CAPTURE(r);
    // Few distinct values, so extremes repeat (the first one must win); a NaN in some rows.
    Tensor x = randint(0, 4, {5, r}).to(kFloat32);
    x.index_put_({1, r / 2}, std::nanf(""));
    x.index_put_({3, r - 1}, std::nanf(""));
    for (DType dt : {kFloat32, kFloat64, kInt64, kInt32, kBool}) {
      Tensor xd = x.to(dt).contiguous(), gd = xd.to(kCuda);
      for (auto op : {kernels::ReduceOp::Max, kernels::ReduceOp::Min, kernels::ReduceOp::ArgMax,
                      kernels::ReduceOp::ArgMin}) {
        const bool arg = op == kernels::ReduceOp::ArgMax || op == kernels::ReduceOp::ArgMin;
        const DType out_dt = arg ? kInt64 : dt;
        Tensor got = empty({5}, TensorOptions(out_dt).set_device(kCuda)), want = empty({5}, out_dt);
        kernels::backend_for(kCuda).reduce(op, dt, gd.data_ptr(), got.data_ptr(), 5, r, 1);
        kernels::reference_backend().reduce(op, dt, xd.data_ptr(), want.data_ptr(), 5, r, 1);
        check_same(got, want);
      }
    }
  }
}

TEST_CASE("cuda: fused cross-entropy with class weights and ignored targets, forward and backward") {
  if (!use_cuda()) return;
  manual_seed(15);
  for (auto [rows, classes] :
       std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {7, 33}, {300, 7}, {5, 1023}}) {
    CAPTURE(rows);
    CAPTURE(classes);
    Tensor x = randn({rows, classes}) * 3, t = randint(0, classes, {rows}), w = rand({classes}) + 0.5;
    if (rows > 1) t.index_put_({1}, int64_t(-100));  // ignored
    for (const char* reduction : {"mean", "sum", "none"}) {
      Tensor gx = x.to(kCuda).requires_grad_(), cx = x.clone().requires_grad_();
      Tensor gl = nn::functional::cross_entropy(gx, t.to(kCuda), w.to(kCuda), -100, reduction);
      Tensor cl = nn::functional::cross_entropy(cx, t, w, -100, reduction);
      check_same(gl, cl, 1e-5, 1e-6);
      Tensor seed = randn(cl.sizes());
      (gl * seed.to(kCuda)).sum().backward();
      (cl * seed).sum().backward();
      check_same(gx.grad(), cx.grad(), 1e-5, 1e-6);
    }
  }
  CHECK(kernels::fused_for(kernels::backend_for(kCuda), kernels::FusedOp::CrossEntropy, kFloat64) != nullptr);
}

TEST_CASE("cuda: one launch updates many parameters (multi-tensor SGD, Adam, AdamW) like the CPU") {
  if (!use_cuda()) return;
  manual_seed(16);
  // 40 parameters (two launches of up to 32), sizes from empty to several 1024-element chunks.
  std::vector<Tensor> cpu_params, cuda_params;
  for (int i = 0; i < 40; ++i) {
    const int64_t n = i == 3 ? 0 : (i * 397) % 2500 + 1;
    Tensor p = randn({n});
    cpu_params.push_back(p.clone().requires_grad_());
    cuda_params.push_back(p.to(kCuda).requires_grad_());
  }
  auto run = [&](optim::Optimizer& on_cpu, optim::Optimizer& on_cuda) {
    for (int step = 0; step < 3; ++step) {
      for (size_t i = 0; i < cpu_params.size(); ++i) {
        Tensor g = randn(cpu_params[i].sizes());
        cpu_params[i].set_grad(g);
        cuda_params[i].set_grad(g.to(kCuda));
      }
      on_cpu.step();
      on_cuda.step();
    }
    for (size_t i = 0; i < cpu_params.size(); ++i)
      check_same(cuda_params[i].detach(), cpu_params[i].detach(), 1e-5, 1e-6);
  };
  {
    optim::SGD a(cpu_params, {.lr = 0.1, .momentum = 0.9, .nesterov = true}),
        b(cuda_params, {.lr = 0.1, .momentum = 0.9, .nesterov = true});
    run(a, b);
  }
  {
    optim::Adam a(cpu_params, {.lr = 0.01, .amsgrad = true}), b(cuda_params, {.lr = 0.01, .amsgrad = true});
    run(a, b);
  }
  {
    optim::AdamWOptions o;
    o.lr = 0.01;
    optim::AdamW a(cpu_params, o), b(cuda_params, o);
    run(a, b);
  }
}

TEST_CASE("cuda: autograd runs on the device and agrees with the CPU") {
  if (!use_cuda()) return;
  manual_seed(5);
  Tensor x = randn({8, 5}), w = randn({5, 3});
  Tensor gx = x.to(kCuda).requires_grad_(), gw = w.to(kCuda).requires_grad_();
  Tensor cx = x.clone().requires_grad_(), cw = w.clone().requires_grad_();
  log_softmax(matmul(gx, gw).tanh(), 1).sum().backward();
  log_softmax(matmul(cx, cw).tanh(), 1).sum().backward();
  check_same(gx.grad(), cx.grad(), 1e-5, 1e-5);
  check_same(gw.grad(), cw.grad(), 1e-5, 1e-5);
}

TEST_CASE("cuda: random numbers equal the CPU's for the same seed") {
  if (!use_cuda()) return;
  manual_seed(11);
  Tensor a = randn({33, 7}, TensorOptions(kCuda));
  Tensor b = rand({100}, TensorOptions(kCuda));
  manual_seed(11);
  Tensor ca = randn({33, 7}), cb = rand({100});
  CHECK(equal(a.to(Device::cpu()), ca));
  CHECK(equal(b.to(Device::cpu()), cb));
  manual_seed(12);
  Tensor d = nn::functional::dropout(ones({64}, TensorOptions(kCuda)), 0.5, true);
  manual_seed(12);
  CHECK(equal(d.to(Device::cpu()), nn::functional::dropout(ones({64}), 0.5, true)));
}

TEST_CASE("cuda: index ops, cumsum, sort and nonzero") {
  if (!use_cuda()) return;
  manual_seed(13);
  Tensor x = randn({9, 6});
  Tensor idx = tensor(std::vector<int64_t>{4, 0, 4, 8, 2}, {5});
  check_same(index_select(x.to(kCuda), 0, idx.to(kCuda)), index_select(x, 0, idx));
  Tensor g_idx = randint(0, 6, {9, 3});
  check_same(gather(x.to(kCuda), 1, g_idx.to(kCuda)), gather(x, 1, g_idx));
  Tensor src = randn({9, 3});
  check_same(scatter_add(zeros({9, 6}).to(kCuda), 1, g_idx.to(kCuda), src.to(kCuda)),
             scatter_add(zeros({9, 6}), 1, g_idx, src), 1e-5, 1e-6);
  check_same(cumsum(x.to(kCuda), 1), cumsum(x, 1), 1e-5, 1e-6);
  check_same(cumsum(x.to(kCuda), 0), cumsum(x, 0), 1e-5, 1e-6);
  auto [values, order] = sort(x.to(kCuda), 1, true);
  auto [cvalues, corder] = sort(x, 1, true);
  check_same(values, cvalues);
  check_same(order, corder);
  check_same(nonzero(x.to(kCuda) > 0), nonzero(x > 0));
  // Embedding forward and backward (index_add with repeated indices).
  nn::Embedding emb(10, 4);
  Tensor w = emb.weight.detach().clone();
  Tensor tokens = tensor(std::vector<int64_t>{1, 3, 1, 9, 1}, {5});
  Tensor gw = w.to(kCuda).requires_grad_(), cw = w.clone().requires_grad_();
  (nn::functional::embedding(tokens.to(kCuda), gw) * 2.0).sum().backward();
  (nn::functional::embedding(tokens, cw) * 2.0).sum().backward();
  check_same(gw.grad(), cw.grad());
}

TEST_CASE("cuda: layers and a training step on the device match the CPU") {
  if (!use_cuda()) return;
  manual_seed(14);
  // LayerNorm forward and backward.
  Tensor x = randn({6, 17});
  nn::LayerNorm ln(17);
  Tensor gx = x.to(kCuda).requires_grad_(), cx = x.clone().requires_grad_();
  Tensor dy = randn({6, 17});
  auto cuda_ln = std::make_shared<nn::LayerNorm>(17);
  cuda_ln->load_state_dict(ln.state_dict());
  cuda_ln->to(kCuda);
  ((*cuda_ln)(gx)*dy.to(kCuda)).sum().backward();
  (ln(cx) * dy).sum().backward();
  check_same(gx.grad(), cx.grad(), 1e-5, 1e-5);
  check_same(cuda_ln->weight.grad(), ln.weight.grad(), 1e-5, 1e-5);
  // Conv2d forward and backward (im2col / col2im).
  nn::Conv2d conv(3, 4, 3, nn::Conv2dOptions{.stride = {2, 1}, .padding = {1, 1}});
  auto cuda_conv =
      std::make_shared<nn::Conv2d>(3, 4, 3, nn::Conv2dOptions{.stride = {2, 1}, .padding = {1, 1}});
  cuda_conv->load_state_dict(conv.state_dict());
  cuda_conv->to(kCuda);
  Tensor img = randn({2, 3, 7, 5});
  Tensor gi = img.to(kCuda).requires_grad_(), ci = img.clone().requires_grad_();
  Tensor go = (*cuda_conv)(gi), co = conv(ci);
  check_same(go, co, 1e-5, 1e-5);
  go.pow(2.0).sum().backward();
  co.pow(2.0).sum().backward();
  check_same(gi.grad(), ci.grad(), 1e-4, 1e-5);
  check_same(cuda_conv->weight.grad(), conv.weight.grad(), 1e-4, 1e-5);
  // An MLP classifier: three Adam steps on each device.
  auto make = [] {
    manual_seed(15);
    return std::make_shared<nn::Sequential>(std::initializer_list<nn::ModulePtr>{
        std::make_shared<nn::Linear>(8, 16), std::make_shared<nn::ReLU>(),
        std::make_shared<nn::Linear>(16, 4)});
  };
  auto on_cuda = make(), on_cpu = make();
  on_cuda->to(kCuda);
  optim::Adam cuda_opt(on_cuda->parameters()), cpu_opt(on_cpu->parameters());
  Tensor data = randn({32, 8}), labels = randint(0, 4, {32});
  for (int step = 0; step < 3; ++step) {
    cuda_opt.zero_grad();
    cpu_opt.zero_grad();
    nn::functional::cross_entropy((*on_cuda)(data.to(kCuda)), labels.to(kCuda)).backward();
    nn::functional::cross_entropy((*on_cpu)(data), labels).backward();
    cuda_opt.step();
    cpu_opt.step();
  }
  auto a = on_cuda->state_dict(), b = on_cpu->state_dict();
  for (size_t i = 0; i < a.size(); ++i) check_same(a[i].second, b[i].second, 1e-5, 1e-6);
}

TEST_CASE("cuda: batch norm and max pooling (with padding, dilation, ceil_mode) match the CPU") {
  if (!use_cuda()) return;
  manual_seed(21);
  for (Shape shape : {Shape{33, 5}, Shape{4, 3, 7}, Shape{2, 3, 9, 5}})
    for (DType dt : {kFloat32, kFloat64}) {
      INFO(shape_str(shape) << " " << dtype_name(dt));
      const int64_t c = shape[1];
      Tensor x = randn(shape, dt) * 2 + 3, w = randn({c}, dt), b = randn({c}, dt), dy = randn(shape, dt);
      auto run = [&](Device d) {
        Tensor xl = x.to(d).requires_grad_(), wl = w.to(d).requires_grad_(), bl = b.to(d).requires_grad_();
        Tensor rm = zeros({c}, TensorOptions(dt).set_device(d)),
               rv = ones({c}, TensorOptions(dt).set_device(d));
        Tensor y = nn::functional::batch_norm(xl, rm, rv, wl, bl, true, 0.1, 1e-5);
        (y * dy.to(d)).sum().backward();
        return std::vector<Tensor>{y, xl.grad(), wl.grad(), bl.grad(), rm, rv};
      };
      auto on_cuda = run(kCuda), on_cpu = run(Device::cpu());
      for (size_t i = 0; i < on_cpu.size(); ++i) check_same(on_cuda[i], on_cpu[i], 1e-4, 1e-5);
    }
  struct Pool {
    Shape in;
    Pair k, s, p, d;
    bool ceil;
  };
  for (const Pool& g : {Pool{{2, 3, 7, 5}, {3, 3}, {2, 2}, {1, 1}, {1, 1}, true},
                        Pool{{3, 2, 9, 8}, {2, 3}, {2, 3}, {1, 0}, {2, 1}, false},
                        Pool{{2, 4, 6, 6}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, false}}) {  // overlapping windows
    INFO(shape_str(g.in));
    Tensor x = randn(g.in);
    Tensor gx = x.to(kCuda).requires_grad_(), cx = x.clone().requires_grad_();
    auto [gv, gi] = nn::functional::max_pool2d_with_indices(gx, g.k, g.s, g.p, g.d, g.ceil);
    auto [cv, ci] = nn::functional::max_pool2d_with_indices(cx, g.k, g.s, g.p, g.d, g.ceil);
    check_same(gv, cv);
    check_same(gi, ci);
    (gv * gv).sum().backward();
    (cv * cv).sum().backward();
    check_same(gx.grad(), cx.grad());
  }
  CHECK(kernels::fused_for(kernels::backend_for(kCuda), kernels::FusedOp::BatchNorm, kFloat32) != nullptr);
  CHECK(kernels::fused_for(kernels::backend_for(kCuda), kernels::FusedOp::MaxPool2d, kFloat64) != nullptr);
}

TEST_CASE("cuda: attention without a graph reads keys and values where they lie in a longer buffer") {
  if (!use_cuda()) return;
  manual_seed(17);
  autograd::NoGradGuard no_grad;
  Tensor keys = randn({2, 3, 16, 8}), values = randn({2, 3, 16, 6});  // a cache of 16 positions
  for (int64_t len : {1, 6, 16})
    for (int64_t queries : {1, 3}) {
      if (queries > len) continue;
      Tensor q = randn({2, 3, queries, 8});
      Tensor mask = tril(ones({queries, len}, kBool), len - queries);
      check_same(
          nn::functional::scaled_dot_product_attention(q.to(kCuda), keys.to(kCuda).narrow(2, 0, len),
                                                       values.to(kCuda).narrow(2, 0, len), mask.to(kCuda)),
          nn::functional::scaled_dot_product_attention(q, keys.narrow(2, 0, len).contiguous(),
                                                       values.narrow(2, 0, len).contiguous(), mask),
          1e-5, 1e-6);
    }
}

TEST_CASE("cuda: fused attention forward and backward, with causal and padding masks") {
  if (!use_cuda()) return;
  manual_seed(16);
  Tensor q = randn({2, 3, 5, 8}), k = randn({2, 3, 7, 8}), v = randn({2, 3, 7, 6});
  // The last two keys are padding in batch 0, none in batch 1.
  Tensor float_mask =
      tensor(std::vector<float>{0, 0, 0, 0, 0, -1e30f, -1e30f, 0, 0, 0, 0, 0, 0, 0}, {2, 1, 1, 7});
  for (int variant = 0; variant < 3; ++variant) {
    Tensor gq = q.to(kCuda).requires_grad_(), gk = k.to(kCuda).requires_grad_(),
           gv = v.to(kCuda).requires_grad_();
    Tensor cq = q.clone().requires_grad_(), ck = k.clone().requires_grad_(), cv = v.clone().requires_grad_();
    Tensor go, co;
    if (variant == 0) {
      go = nn::functional::scaled_dot_product_attention(gq, gk, gv);
      co = nn::functional::scaled_dot_product_attention(cq, ck, cv);
    } else if (variant == 1) {
      go = nn::functional::scaled_dot_product_attention(gq, gk.narrow(2, 0, 5), gv.narrow(2, 0, 5), {}, 0.0,
                                                        true);
      co = nn::functional::scaled_dot_product_attention(cq, ck.narrow(2, 0, 5), cv.narrow(2, 0, 5), {}, 0.0,
                                                        true);
    } else {
      go = nn::functional::scaled_dot_product_attention(gq, gk, gv, float_mask.to(kCuda));
      co = nn::functional::scaled_dot_product_attention(cq, ck, cv, float_mask);
    }
    check_same(go, co, 1e-5, 1e-6);
    Tensor w = randn(co.sizes());
    (go * w.to(kCuda)).sum().backward();
    (co * w).sum().backward();
    check_same(gq.grad(), cq.grad(), 1e-4, 1e-5);
    check_same(gk.grad(), ck.grad(), 1e-4, 1e-5);
    check_same(gv.grad(), cv.grad(), 1e-4, 1e-5);
  }
}

TEST_CASE("cuda: tiled attention over lengths and dims around the 16-row tiles") {
  if (!use_cuda()) return;
  manual_seed(17);
  struct Case {
    int64_t L, S, D, Dv;
    bool causal;
    DType dt;
  };
  // Lengths 1, 7, 16, 17, 33 put rows in partial tiles and keys in several tiles; dims 1 and 33 give
  // lanes with no columns and lanes with one more column than the rest.
  const std::vector<Case> cases = {{1, 1, 1, 1, false, kFloat32},    {7, 33, 8, 5, false, kFloat32},
                                   {33, 17, 33, 7, true, kFloat32},  {17, 33, 16, 16, true, kFloat64},
                                   {16, 16, 64, 64, true, kFloat32}, {40, 9, 3, 33, false, kFloat64}};
  for (const Case& c : cases) {
    CAPTURE(c.L);
    CAPTURE(c.S);
    CAPTURE(c.D);
    CAPTURE(c.causal);
    const double tol = c.dt == kFloat64 ? 1e-10 : 2e-5;
    // Queries as a transposed view: non-contiguous input.
    Tensor q = randn({2, c.D, c.L}).to(c.dt).transpose(1, 2), k = randn({2, c.S, c.D}).to(c.dt),
           v = randn({2, c.S, c.Dv}).to(c.dt);
    // A padding mask that hides every key from query row 0 of batch 1 (when not causal): NaN row.
    Tensor mask = zeros({2, c.L, c.S}, c.dt);
    if (!c.causal) mask.select(0, 1).select(0, 0).fill_(-std::numeric_limits<double>::infinity());
    Tensor gq = q.to(kCuda).requires_grad_(), gk = k.to(kCuda).requires_grad_(),
           gv = v.to(kCuda).requires_grad_();
    Tensor cq = q.detach().requires_grad_(), ck = k.clone().requires_grad_(), cv = v.clone().requires_grad_();
    Tensor go = nn::functional::scaled_dot_product_attention(gq, gk, gv, c.causal ? Tensor() : mask.to(kCuda),
                                                             0.0, c.causal);
    Tensor co =
        nn::functional::scaled_dot_product_attention(cq, ck, cv, c.causal ? Tensor() : mask, 0.0, c.causal);
    check_same(go, co, tol, tol);
    if (!c.causal) {
      const double first = go.select(0, 1).select(0, 0).select(0, 0).to(Device::cpu()).item<double>();
      CHECK(first != first);  // NaN
    }
    // Only rows that attended to something take part in the loss (NaN != NaN drops the rest).
    Tensor w = randn(co.sizes()).to(c.dt);
    Tensor attended = co.eq(co);
    where(attended.to(kCuda), go * w.to(kCuda), 0.0).sum().backward();
    where(attended, co * w, 0.0).sum().backward();
    check_same(gq.grad(), cq.grad(), 10 * tol, tol);
    check_same(gk.grad(), ck.grad(), 10 * tol, tol);
    check_same(gv.grad(), cv.grad(), 10 * tol, tol);
  }
}

TEST_CASE("cuda: attention beyond the kernel's head dim is a clear error") {
  if (!use_cuda()) return;
  Tensor q = zeros({1, 2, 300}, TensorOptions(kCuda));
  try {
    (void)nn::functional::scaled_dot_product_attention(q, q, q);
    FAIL("expected an error");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("head dim 300") != std::string::npos);
  }
}

TEST_CASE("cuda: every primitive has a kernel; other devices give a clear error") {
  if (!use_cuda()) return;
  CHECK(kernels::fused_for(kernels::backend_for(kCuda), kernels::FusedOp::Attention, kFloat32) != nullptr);
  CHECK(kernels::fused_for(kernels::backend_for(kCuda), kernels::FusedOp::Softmax, kFloat32) != nullptr);
  CHECK_FALSE(kernels::fused_for(kernels::backend_for(kCuda), kernels::FusedOp::Softmax, kInt64) != nullptr);
  try {
    (void)zeros({2}, TensorOptions(Device::cuda(1)));
    FAIL("expected an error");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("cuda:1 is not available") != std::string::npos);
  }
}

TEST_CASE("cuda: the caching allocator reuses blocks and keeps PyTorch's memory statistics") {
  if (!use_cuda()) return;
  cuda::empty_cache();
  const int64_t base = cuda::memory_allocated();
  const void* first = nullptr;
  {
    Tensor a = empty({1000}, TensorOptions(kCuda));  // 4000 bytes -> a 4096-byte block
    first = a.data_ptr();
    CHECK(cuda::memory_allocated() == base + 4096);
    CHECK(cuda::max_memory_allocated() >= base + 4096);
  }
  CHECK(cuda::memory_allocated() == base);
  const int64_t reserved = cuda::memory_reserved();
  CHECK(reserved >= 4096);
  {
    Tensor b = empty({1010}, TensorOptions(kCuda));  // same size class: the cached block again
    CHECK(b.data_ptr() == first);
    CHECK(cuda::memory_reserved() == reserved);
  }
  cuda::empty_cache();
  CHECK(cuda::memory_reserved() == cuda::memory_allocated());
  cuda::reset_peak_memory_stats();
  CHECK(cuda::max_memory_allocated() == cuda::memory_allocated());
}
