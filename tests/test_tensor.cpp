// Tensor basics: creation, dtypes and promotion, views and the version counter, indexing,
// printing, and the error messages users see.
#include "helpers.h"

#include <sstream>

using namespace ember;
using ember::test::check_error;

TEST_CASE("creation: filled tensors, ranges and host data") {
  CHECK(zeros({2, 3}).to_vector<float>() == std::vector<float>(6, 0.f));
  CHECK(ones({2}, kInt64).to_vector<int64_t>() == std::vector<int64_t>{1, 1});
  CHECK(full({2}, 2.5).dtype() == kFloat32);
  CHECK(full({2}, 3).dtype() == kInt64);
  CHECK(full({2}, true).dtype() == kBool);
  CHECK(eye(3).to_vector<float>() == std::vector<float>{1, 0, 0, 0, 1, 0, 0, 0, 1});
  CHECK(eye(2, 3).sizes() == Shape{2, 3});
  CHECK(arange(5).to_vector<int64_t>() == std::vector<int64_t>{0, 1, 2, 3, 4});
  CHECK(arange(5).dtype() == kInt64);
  CHECK(arange(0.0, 1.0, 0.25).to_vector<float>() == std::vector<float>{0, 0.25f, 0.5f, 0.75f});
  CHECK(arange(5, 0, -2).to_vector<int64_t>() == std::vector<int64_t>{5, 3, 1});
  auto ls = linspace(0, 1, 5).to_vector<float>();
  CHECK(ls == std::vector<float>{0, 0.25f, 0.5f, 0.75f, 1.0f});
  CHECK(tensor({1.0, 2.0}).dtype() == kFloat32);
  CHECK(tensor({1, 2}).dtype() == kInt64);
  CHECK(tensor({true, false}).dtype() == kBool);
  Tensor m = tensor({{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}});
  CHECK(m.sizes() == Shape{2, 3});
  CHECK(m.index({1, 2}).item<float>() == 6.0f);
  CHECK(tensor({{{1.0, 1.5}, {2.0, 2.5}}, {{3.0, 3.5}, {4.0, 4.5}}}).sizes() == Shape{2, 2, 2});
  CHECK(zeros_like(m).sizes() == m.sizes());
  CHECK(ones_like(m, kFloat64).dtype() == kFloat64);
  CHECK(full_like(m, 7).to_vector<float>() == std::vector<float>(6, 7.f));
  CHECK(empty({0, 3}).numel() == 0);
}

TEST_CASE("from_blob shares the caller's memory and runs the deleter") {
  std::vector<float> data = {1, 2, 3, 4, 5, 6};
  bool deleted = false;
  {
    Tensor t = from_blob(data.data(), {2, 3}, kFloat32, [&](void*) { deleted = true; });
    t.mul_(2);
    CHECK(data[5] == 12.0f);
    Tensor strided = from_blob(data.data(), {3}, kFloat32, {}, Shape{2});
    CHECK(strided.to_vector<float>() == std::vector<float>{2, 6, 10});
  }
  CHECK(deleted);
}

TEST_CASE("random: seeded generator is reproducible and has the right distribution") {
  manual_seed(42);
  Tensor a = randn({1000});
  manual_seed(42);
  Tensor b = randn({1000});
  CHECK(equal(a, b));
  Tensor c = randn({1000});
  CHECK_FALSE(equal(a, c));  // the generator advanced
  manual_seed(1);
  Tensor big = randn({200000}, kFloat64);
  CHECK(std::abs(big.mean().item<double>()) < 0.01);
  CHECK(std::abs(big.std().item<double>() - 1.0) < 0.01);
  Tensor u = rand({200000}, kFloat64);
  CHECK(u.min().item<double>() >= 0.0);
  CHECK(u.max().item<double>() < 1.0);
  CHECK(std::abs(u.mean().item<double>() - 0.5) < 0.01);
  Tensor r = randint(-3, 4, {10000});
  CHECK(r.dtype() == kInt64);
  CHECK(r.min().item<int64_t>() == -3);
  CHECK(r.max().item<int64_t>() == 3);
  Tensor bern = bernoulli({100000}, 0.3, kFloat64);
  CHECK(std::abs(bern.mean().item<double>() - 0.3) < 0.01);
  Tensor perm = randperm(50);
  CHECK(equal(sort(perm).first, arange(50)));
  // Same numbers whatever the thread count: the CPU and reference backends agree bitwise.
  manual_seed(7);
  Tensor fast = rand({100000});
  manual_seed(7);
  Tensor ref;
  {
    kernels::ScopedBackend use(DeviceType::CPU, kernels::reference_backend());
    ref = rand({100000});
  }
  CHECK(equal(fast, ref));
}

TEST_CASE("dtypes: promotion follows PyTorch") {
  Tensor i = tensor({1, 2});
  Tensor f = tensor({1.0, 2.0});
  Tensor d = tensor({1.0, 2.0}, kFloat64);
  Tensor b = tensor({true, false});
  CHECK((i + f).dtype() == kFloat32);
  CHECK((f + d).dtype() == kFloat64);
  CHECK((i + 2).dtype() == kInt64);
  CHECK((i + 2.5).dtype() == kFloat32);
  CHECK((i / i).dtype() == kFloat32);  // true division
  CHECK((b + b).dtype() == kBool);
  CHECK((b + 1).dtype() == kInt64);
  CHECK((f + scalar_tensor(1.0, kFloat64)).dtype() == kFloat32);  // 0-d only lifts the category
  CHECK((i.to(kInt32) + i).dtype() == kInt64);
  CHECK(promote_types(kBFloat16, kFloat16) == kFloat32);
  CHECK(exp(i).dtype() == kFloat32);
  CHECK(sum(b).dtype() == kInt64);
  CHECK(sum(i.to(kInt32)).dtype() == kInt64);
}

TEST_CASE("dtypes: bfloat16 and float16 store, convert and compute through float32") {
  Tensor x = tensor({1.0, -2.5, 0.099976, 65504.0, 1e-7});
  Tensor h = x.to(kFloat16);
  CHECK(h.element_size() == 2);
  auto back = h.to(kFloat32).to_vector<float>();
  CHECK(back[0] == 1.0f);
  CHECK(back[1] == -2.5f);
  CHECK(back[2] == doctest::Approx(0.099976).epsilon(1e-3));
  CHECK(back[3] == 65504.0f);
  CHECK(back[4] == doctest::Approx(1.19209e-07).epsilon(0.1));  // subnormal half
  CHECK(std::isinf(tensor({1e6}).to(kFloat16).to(kFloat32).item<float>()));
  Tensor bf = x.to(kBFloat16);
  CHECK(bf.to(kFloat32).index({1}).item<float>() == -2.5f);
  CHECK(bf.to(kFloat32).index({3}).item<float>() == 65536.0f);  // 8 bits of mantissa
  Tensor s = (bf + bf);
  CHECK(s.dtype() == kBFloat16);
  CHECK(s.to(kFloat32).index({0}).item<float>() == 2.0f);
  CHECK((h * h).dtype() == kFloat16);
  CHECK(softmax(h.slice(0, 0, 3), 0).dtype() == kFloat16);
  CHECK(matmul(bf.view({1, 5}), bf.view({5, 1})).dtype() == kBFloat16);
  CHECK(std::isnan(tensor({NAN}).to(kBFloat16).to(kFloat32).item<float>()));
}

TEST_CASE("dtypes: every float16 and bfloat16 value round-trips; midpoints round to even") {
  // All 2^16 bit patterns: to float and back gives the same bits (NaNs stay NaN).
  for (uint32_t b = 0; b < 65536; ++b) {
    const auto bits = static_cast<uint16_t>(b);
    const float h = half_bits::half_to_float(bits), bf = half_bits::bf16_to_float(bits);
    if (h == h) REQUIRE(half_bits::half_from_float(h) == bits);
    else REQUIRE(std::isnan(half_bits::half_to_float(half_bits::half_from_float(h))));
    if (bf == bf) REQUIRE(half_bits::bf16_from_float(bf) == bits);
  }
  // Between neighbouring positive halves a < b (normal and subnormal): the midpoint goes to the one
  // with an even mantissa, anything above it to b, below it to a.
  for (uint16_t a = 0; a < 0x7bff; ++a) {
    const float lo = half_bits::half_to_float(a), hi = half_bits::half_to_float(static_cast<uint16_t>(a + 1));
    const float mid = (lo + hi) / 2;  // exact in float
    const uint16_t even = (a & 1u) ? static_cast<uint16_t>(a + 1) : a;
    REQUIRE(half_bits::half_from_float(mid) == even);
    REQUIRE(half_bits::half_from_float(std::nextafter(mid, hi)) == a + 1);
    REQUIRE(half_bits::half_from_float(std::nextafter(mid, lo)) == a);
    REQUIRE(half_bits::half_from_float(-mid) == (even | 0x8000u));
  }
  CHECK(half_bits::half_from_float(65519.0f) == 0x7bff);  // below the midpoint to 2^16: the largest half
  CHECK(half_bits::half_from_float(65520.0f) == 0x7c00);  // the midpoint rounds (to even) to infinity
}

TEST_CASE("views share storage and the version counter") {
  Tensor base = arange(12.0, std::nullopt).view({3, 4});
  Tensor v = base.view({4, 3});
  Tensor t = base.t();
  Tensor s = base.index({Slice(), 1});
  CHECK(v.data_ptr() == base.data_ptr());
  CHECK_FALSE(t.is_contiguous());
  CHECK(t.contiguous().is_contiguous());
  CHECK(s.strides() == Shape{4});
  const auto before = base.version();
  s.fill_(-1);
  CHECK(base.version() == before + 1);
  CHECK(v.version() == base.version());
  CHECK(base.index({2, 1}).item<float>() == -1.0f);
  CHECK(base.reshape({-1}).sizes() == Shape{12});
  Tensor nc = base.t();
  Tensor r = nc.reshape({12});  // needs a copy: t() of [3,4] is not viewable as [12]
  CHECK(r.to_vector<float>()[1] == base.index({1, 0}).item<float>());
  check_error([&] { nc.view({12}); }, {"view", "reshape"});
}

TEST_CASE("view ops: shapes and values") {
  Tensor x = arange(24).view({2, 3, 4});
  CHECK(x.permute({2, 0, 1}).sizes() == Shape{4, 2, 3});
  CHECK(x.permute({2, 0, 1}).index({3, 1, 2}).item<int64_t>() == x.index({1, 2, 3}).item<int64_t>());
  CHECK(x.transpose(0, 2).sizes() == Shape{4, 3, 2});
  CHECK(x.flatten().sizes() == Shape{24});
  CHECK(x.flatten(1).sizes() == Shape{2, 12});
  CHECK(x.flatten(1).unflatten(1, {3, -1}).sizes() == Shape{2, 3, 4});
  CHECK(x.unsqueeze(1).sizes() == Shape{2, 1, 3, 4});
  CHECK(x.unsqueeze(-1).sizes() == Shape{2, 3, 4, 1});
  CHECK(x.unsqueeze(1).squeeze().sizes() == Shape{2, 3, 4});
  CHECK(ones({1, 3, 1}).squeeze(0).sizes() == Shape{3, 1});
  Tensor e = tensor({1, 2, 3}).view({3, 1}).expand({3, 4});
  CHECK(e.strides() == Shape{1, 0});
  CHECK(e.sum().item<int64_t>() == 24);
  CHECK(e.expand_as(zeros({2, 3, 4})).sizes() == Shape{2, 3, 4});
  CHECK(x.slice(2, 1, 4, 2).to_vector<int64_t>() ==
        std::vector<int64_t>{1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23});
  CHECK(x.narrow(1, 1, 2).sizes() == Shape{2, 2, 4});
  CHECK(x.select(1, -1).sizes() == Shape{2, 4});
  auto parts = x.unbind(0);
  CHECK(parts.size() == 2);
  CHECK(parts[1].index({0, 0}).item<int64_t>() == 12);
  auto ch = arange(10).chunk(3);
  CHECK(ch.size() == 3);
  CHECK(ch[2].sizes() == Shape{2});
  auto sp = arange(10).split(Shape{3, 7});
  CHECK(sp[1].index({0}).item<int64_t>() == 3);
  CHECK(arange(10).split(4).size() == 3);
  Tensor sq = arange(9).view({3, 3});
  CHECK(sq.diagonal().to_vector<int64_t>() == std::vector<int64_t>{0, 4, 8});
  CHECK(sq.diagonal(1).to_vector<int64_t>() == std::vector<int64_t>{1, 5});
  CHECK(sq.diagonal(-1).to_vector<int64_t>() == std::vector<int64_t>{3, 7});
  Tensor windows = arange(6).as_strided({3, 2}, {2, 1});
  CHECK(windows.to_vector<int64_t>() == std::vector<int64_t>{0, 1, 2, 3, 4, 5});
  Tensor overlap = arange(6).as_strided({4, 3}, {1, 1});
  CHECK(overlap.index({3}).to_vector<int64_t>() == std::vector<int64_t>{3, 4, 5});
  check_error([&] { arange(6).as_strided({4, 3}, {2, 1}); }, {"as_strided"});
}

TEST_CASE("indexing with slices, None, ellipsis, index and mask tensors") {
  Tensor x = arange(24).view({2, 3, 4});
  CHECK(x.index({Slice(), 0}).sizes() == Shape{2, 4});
  CHECK(x.index({Ellipsis, 1}).sizes() == Shape{2, 3});
  CHECK(x.index({None, 0}).sizes() == Shape{1, 3, 4});
  CHECK(x.index({0, Slice(1, {}), Slice({}, {}, 2)}).to_vector<int64_t>() ==
        std::vector<int64_t>{4, 6, 8, 10});
  CHECK(x.index({-1, -1, -1}).item<int64_t>() == 23);
  CHECK(x.index({Slice(-1)}).sizes() == Shape{1, 3, 4});
  CHECK(x[1][2][3].item<int64_t>() == 23);
  Tensor idx = tensor({2, 0});
  CHECK(x.index({Slice(), idx}).sizes() == Shape{2, 2, 4});
  CHECK(x.index({0, idx, 0}).to_vector<int64_t>() == std::vector<int64_t>{8, 0});
  Tensor m = arange(6).view({2, 3});
  CHECK(m.index({m > 2}).to_vector<int64_t>() == std::vector<int64_t>{3, 4, 5});
  Tensor y = zeros({2, 3});
  y.index_put_({Slice(), 1}, 5.0);
  y.index_put_({0}, tensor({1.0, 2.0, 3.0}));
  CHECK(y.to_vector<float>() == std::vector<float>{1, 2, 3, 0, 5, 0});
  check_error([&] { x.index({0, 0, 0, 0}); }, {"index", "too many indices", "[2, 3, 4]"});
  check_error([&] { x.index({5}); }, {"select", "index 5 is out of bounds", "size 2"});
}

TEST_CASE("printing shows values, shape, dtype, device and autograd state") {
  Tensor x = tensor({{1.5, -2.0}, {3.25, 4.0}});
  std::string s = to_string(x);
  CHECK(s.find("1.5000") != std::string::npos);
  CHECK(s.find("size=[2, 2]") != std::string::npos);
  CHECK(s.find("dtype=float32") != std::string::npos);
  CHECK(s.find("device=cpu") != std::string::npos);
  Tensor w = ones({2}).requires_grad_();
  CHECK(to_string(w).find("requires_grad=True") != std::string::npos);
  CHECK(to_string(w * 2).find("grad_fn=<mulBackward>") != std::string::npos);
  std::ostringstream os;
  os << tensor({true, false});
  CHECK(os.str().find("True") != std::string::npos);
  CHECK(to_string(arange(2000)).find("...") != std::string::npos);
  CHECK(to_string(scalar_tensor(3.0)).find("tensor(3.0") != std::string::npos);
}

TEST_CASE("errors name the op and the shapes") {
  check_error(
      [] {
        matmul(ones({32, 16}), ones({8, 4}));
      },
      {"matmul: shapes [32, 16] and [8, 4] cannot be multiplied (16 != 8)"});
  check_error([] { add(ones({2, 3}), ones({4})); }, {"add", "[2, 3]", "[4]"});
  check_error([] { ones({2, 3}).view({4}); }, {"view", "[4]", "[2, 3]"});
  check_error([] { ones({2, 3}).sum({2}); }, {"sum", "dimension 2 is out of range"});
  check_error([] { cat({ones({2, 3}), ones({2, 4})}, 0); }, {"cat", "[2, 3]", "[2, 4]"});
  check_error(
      [] {
        index_select(ones({3, 2}), 0, tensor({0, 3}));
      },
      {"index_select", "index 3 is out of bounds", "size 3"});
  check_error([] { ones({2}).item<float>(); }, {"item", "2 elements"});
  check_error([] { Tensor().sum(); }, {"undefined tensor"});
  check_error([] { ones({2}).to(Device::cuda(0)); }, {"cuda:0", "not available"});
  check_error([] { tensor({1, 2}).requires_grad_(); }, {"requires_grad_", "floating"});
  check_error([] { mm(ones({2, 2}), ones({2, 2}, kFloat64)); }, {"mm", "same dtype"});
  check_error([] { where(ones({2}), ones({2}), ones({2})); }, {"where", "bool"});
}

TEST_CASE("in-place ops write through, bump the version and check shapes") {
  Tensor x = ones({2, 3});
  x.add_(1).mul_(3);
  CHECK(x.to_vector<float>() == std::vector<float>(6, 6.f));
  x.sub_(tensor({1.0, 2.0, 3.0}));  // broadcast source
  CHECK(x.index({1}).to_vector<float>() == std::vector<float>{5, 4, 3});
  x.div_(2).neg_();
  CHECK(x.index({0, 0}).item<float>() == -2.5f);
  x.clamp_(-2, 0).zero_();
  CHECK(x.sum().item<float>() == 0);
  Tensor y = zeros({3});
  y.copy_(tensor({1, 2, 3}));  // converts dtype
  CHECK(y.to_vector<float>() == std::vector<float>{1, 2, 3});
  y += 1;
  y *= tensor({2.0, 2.0, 2.0});
  CHECK(y.to_vector<float>() == std::vector<float>{4, 6, 8});
  check_error([&] { ones({3}).add_(ones({2, 3})); }, {"add_", "[2, 3]", "[3]"});
  Tensor i = tensor({1, 2});
  i.mul_(3);
  CHECK(i.to_vector<int64_t>() == std::vector<int64_t>{3, 6});
}

TEST_CASE("tensor: sum and mean over one dim given as an int, as in LibTorch") {
  Tensor x = tensor({{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}});
  CHECK(x.sum(1).to_vector<float>() == std::vector<float>{6, 15});
  CHECK(x.sum(0, true).sizes() == Shape{1, 3});
  CHECK(x.mean(-1).to_vector<float>() == std::vector<float>{2, 5});
  CHECK(sum(x, 1).equal(x.sum({1})));
  CHECK(mean(x, int64_t{0}).to_vector<float>() == std::vector<float>{2.5, 3.5, 4.5});
  CHECK(x.sum({}).item<float>() == 21);  // an empty dim list still means every dim
  CHECK(x.sum({0, 1}).item<float>() == 21);
}

TEST_CASE("tensor: every reduction over dims takes one int too, with keepdim (LibTorch's IntArrayRef)") {
  Tensor x = tensor({{1.0, 5.0, 3.0}, {4.0, 2.0, 6.0}}, kFloat64);
  CHECK(x.amax(1).equal(x.amax({1})));
  CHECK(x.amin(0, true).sizes() == Shape{1, 3});
  CHECK(amax(x, -1).to_vector<double>() == std::vector<double>{5, 6});
  CHECK(amin(x, 0).to_vector<double>() == std::vector<double>{1, 2, 3});
  // PyTorch: x.var(1) = [4, 4], x.var(0, correction=0) = [2.25, 2.25, 2.25], x.std(1) = [2, 2]
  CHECK(x.var(1).to_vector<double>() == std::vector<double>{4, 4});
  CHECK(var(x, 0, 0).to_vector<double>() == std::vector<double>{2.25, 2.25, 2.25});
  CHECK(x.std(1, 1, true).sizes() == Shape{2, 1});
  CHECK(ember::std(x, -1).to_vector<double>() == std::vector<double>{2, 2});
  CHECK(x.logsumexp(1).equal(x.logsumexp({1})));
  CHECK(logsumexp(x, 0, true).sizes() == Shape{1, 3});
  CHECK(x.norm(2, 1).equal(x.norm(2, Shape{1})));
  CHECK(norm(x, 1, 0).to_vector<double>() == std::vector<double>{5, 7, 9});
  CHECK(x.mean(-1, true).sizes() == Shape{2, 1});
  CHECK(x.softmax(-1).equal(softmax(x, 1)));
  CHECK(x.var().item<double>() == doctest::Approx(3.5));  // every dim, as before
}
