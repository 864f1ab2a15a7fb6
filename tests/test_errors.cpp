// The error contract: misuse of each op family throws ember::Error whose message names the op the
// user called (not a helper it is built from) and the shapes passed; nothing else escapes. Each case
// here is a call a user can make; docs/errors.md lists the same families.
#include <climits>

#include "helpers.h"

using namespace ember;
using ember::test::check_error;
namespace F = ember::nn::functional;

TEST_CASE("errors: shapes whose element count or byte size overflows int64 are refused") {
  check_error([] { empty({int64_t{1} << 32, int64_t{1} << 32}); }, {"empty", "int64"});
  check_error([] { zeros({int64_t{1} << 62, 4}); }, {"empty", "int64"});  // bytes overflow
  check_error([] { empty({3, -1}); }, {"empty", "negative"});
  Tensor x = zeros({0});
  check_error([&] { x.view({int64_t{1} << 32, int64_t{1} << 32, 0, -1}); }, {"view"});
  check_error([&] { x.reshape({int64_t{1} << 40, int64_t{1} << 40}); }, {"reshape", "int64"});
  check_error([] { scalar_tensor(1.0).expand({int64_t{1} << 32, int64_t{1} << 32}); }, {"expand", "int64"});
  check_error([] { arange(0.0, 1e30); }, {"arange", "elements"});
  check_error([] { arange(0.0, INFINITY); }, {"arange"});
  // A zero anywhere makes a shape empty, however large the other sizes.
  CHECK(empty({int64_t{1} << 62, 0}).numel() == 0);
}

TEST_CASE("errors: as_strided checks offset, sizes and strides against the storage") {
  Tensor x = arange(10.0);
  check_error([&] { x.as_strided({2}, {1}, -1); }, {"as_strided", "negative storage offset"});
  check_error([&] { x.as_strided({2}, {-1}); }, {"as_strided", "negative"});
  check_error([&] { x.as_strided({4}, {3}, 2); }, {"as_strided", "storage of 10"});
  check_error([&] { x.as_strided({2, 2}, {INT64_MAX, 1}); }, {"as_strided"});
  CHECK(x.as_strided({3}, {3}, 1).equal(tensor({1.0, 4.0, 7.0}).to(x.dtype())));
}

TEST_CASE("errors: pointwise ops") {
  check_error([] { add(ones({2, 3}), ones({4})); }, {"add", "[2, 3]", "[4]"});
  check_error([] { mul(ones({2, 3}), ones({3, 2})); }, {"mul", "[2, 3]", "[3, 2]"});
  check_error(
      [] {
        pow(tensor({2, 3}), -1);
      },
      {"pow", "Integers to negative integer powers are not allowed"});
  check_error([] { pow(tensor({2, 3}), tensor({1, -2})); }, {"pow", "negative integer powers"});
  CHECK(pow(tensor({2, 3}), 2).equal(tensor({4, 9})));
  CHECK(pow(tensor({2.0, 4.0}), -1).allclose(tensor({0.5, 0.25})));
  check_error([] { where(ones({2}), ones({2}), ones({2})); }, {"where", "bool"});
  check_error([] { masked_fill(ones({2, 2}), ones({3}, kBool), 0); }, {"masked_fill"});
}

TEST_CASE("errors: reductions, views and joins name their op and dims") {
  check_error([] { sum(ones({2, 3}), {2}); }, {"sum", "dimension 2"});
  check_error([] { softmax(ones({2, 3}), 5); }, {"softmax"});
  check_error([] { ones({2, 3}).view({4}); }, {"view", "[4]", "[2, 3]"});
  check_error([] { ones({2, 3}).transpose(0, 3); }, {"transpose"});
  check_error([] { cat({ones({2, 3}), ones({2, 4})}, 0); }, {"cat", "[2, 3]", "[2, 4]"});
  check_error([] { stack({ones({2}), ones({3})}); }, {"stack"});
  check_error([] { ones({2, 3}).expand({4, 3, 2}); }, {"expand"});
  check_error([] { narrow(ones({4}), 0, 2, 5); }, {"narrow"});
  check_error([] { select(ones({4}), 0, 4); }, {"select", "4"});
}

TEST_CASE("errors: matrix products name the op the user called") {
  check_error([] { mm(ones({2, 3}), ones({4, 5})); }, {"mm", "[2, 3]", "[4, 5]"});
  check_error([] { addmm(ones({2, 5}), ones({2, 3}), ones({4, 5})); }, {"addmm", "[2, 3]", "[4, 5]"});
  check_error([] { addmm(ones({3, 5}), ones({2, 3}), ones({3, 5})); }, {"addmm", "[3, 5]", "[2, 5]"});
  check_error([] { bmm(ones({2, 2, 3}), ones({3, 3, 2})); }, {"bmm"});
  check_error([] { matmul(ones({2, 3}), ones({4})); }, {"matmul", "[2, 3]", "[4]"});
  check_error([] { linear(ones({2, 3}), ones({4, 5})); }, {"linear"});
}

TEST_CASE("errors: indexing names the op, the index and the size") {
  check_error([] { index_select(ones({3, 2}), 0, tensor({0, 3})); }, {"index_select", "3"});
  check_error([] { gather(ones({3, 2}), 1, tensor({{0, 5}})); }, {"gather"});
  check_error([] { index_select(ones({3, 2}), 0, tensor({0.5})); }, {"index_select", "int64"});
  Tensor w = ones({4, 2});
  check_error([&] { F::embedding(tensor({1, 4}), w); }, {"embedding", "4"});
  check_error([&] { F::embedding(tensor({1.0}), w); }, {"embedding"});
  Tensor x = zeros({2, 3});
  check_error([&] { x.index_put_({Slice(), 0}, ones({3})); }, {"index_put_", "[3]", "[2]"});
  check_error([&] { x.index({5}); }, {"index", "5"});
  check_error([] { one_hot(tensor({0, 3}), 3); }, {"one_hot"});
}

TEST_CASE("errors: convolution and pooling name the layer's op and shapes") {
  Tensor x = ones({1, 2, 5, 5});
  check_error([&] { F::conv2d(x, ones({4, 3, 3, 3})); }, {"conv2d", "[1, 2, 5, 5]", "[4, 3, 3, 3]"});
  check_error([&] { F::conv2d(x, ones({4, 2, 7, 7})); }, {"conv2d", "kernel"});
  check_error([&] { F::conv2d(x, ones({4, 2, 3, 3}), ones({5})); }, {"conv2d", "bias", "[5]"});
  check_error([&] { F::conv2d(ones({2, 5, 5}).view({2, 25}), ones({4, 2, 3, 3})); }, {"conv2d"});
  check_error([&] { F::max_pool2d(x, {7, 7}); }, {"max_pool2d", "[1, 2, 5, 5]"});
  check_error([&] { F::max_pool2d(x, {3, 3}, std::nullopt, {1, 1}, {4, 4}); }, {"max_pool2d", "spans 9"});
  check_error([&] { F::avg_pool2d(x, {6, 6}); }, {"avg_pool2d", "[1, 2, 5, 5]"});
  check_error([&] { F::max_pool2d(x, {2, 2}, std::nullopt, {2, 2}); }, {"max_pool2d", "padding"});
  CHECK(F::max_pool2d(x, {5, 5}).sizes() == Shape{1, 2, 1, 1});
}

TEST_CASE("errors: attention masks must be bool or float") {
  nn::MultiheadAttention mha(4, 2);
  Tensor q = ones({3, 1, 4});
  nn::AttentionForward args;
  args.attn_mask = zeros({3, 3}, kInt64);
  check_error([&] { mha.forward(q, q, q, args); }, {"MultiheadAttention", "attn_mask", "bool or float"});
  args.attn_mask = {};
  args.key_padding_mask = zeros({1, 3}, kInt32);
  check_error([&] { mha.forward(q, q, q, args); },
              {"MultiheadAttention", "key_padding_mask", "bool or float"});
}

TEST_CASE("errors: an optimizer refuses a gradient whose shape differs from its parameter's") {
  Tensor w = ones({3, 2}).requires_grad_();
  optim::SGD sgd({w}, {.lr = 0.1});
  w.mutable_grad() = ones({2, 3});
  check_error([&] { sgd.step(); }, {"SGD", "[2, 3]", "[3, 2]"});
  optim::Adam adam({w});
  check_error([&] { adam.step(); }, {"Adam", "[2, 3]", "[3, 2]"});
  CHECK(w.equal(ones({3, 2})));  // nothing was applied
  // A loaded state that does not fit its parameter (a hand-edited checkpoint) is refused at the step,
  // before a kernel could read past it.
  w.mutable_grad() = ones({3, 2});
  adam.step();
  for (Tensor bad : {scalar_tensor(0.0), zeros({3, 2}, kInt32), zeros({2})}) {
    optim::OptimizerState st = adam.state_dict();
    st.state.begin()->second["exp_avg"] = bad;
    optim::Adam fresh({w});
    try {
      fresh.load_state_dict(st);
    } catch (const Error&) {
      continue;  // refused at load: as good
    }
    check_error([&] { fresh.step(); }, {"Adam", "exp_avg"});
  }
  // A state saved by another optimizer: its options are not this one's.
  optim::SGD other({w}, {.lr = 0.1, .momentum = 0.9});
  check_error([&] { other.load_state_dict(adam.state_dict()); },
              {"SGD.load_state_dict", "group 0", "lacks the option \"momentum\"", "another optimizer"});
  optim::OptimizerState extra = other.state_dict();
  extra.groups[0].beta1 = 0.9;
  check_error([&] { other.load_state_dict(extra); },
              {"SGD.load_state_dict", "has the option \"beta1\"", "SGD does not have"});
  optim::OptimizerState st = adam.state_dict();
  st.state.begin()->second["step"] = scalar_tensor(NAN);
  optim::Adam fresh({w});
  fresh.load_state_dict(st);
  check_error([&] { fresh.step(); }, {"Adam", "step"});
}

TEST_CASE("errors: layers and functional ops name themselves, never a helper") {
  check_error([] { F::conv1d(ones({1, 2, 5}), ones({4, 2, 7})); }, {"conv1d", "[1, 2, 5]"});
  check_error([] { F::conv1d(ones({1, 2, 5}), ones({4, 2, 3}), ones({3})); }, {"conv1d", "bias"});
  check_error([] { F::conv1d(ones({1, 3, 5}), ones({4, 2, 3})); }, {"conv1d", "[1, 3, 5]"});
  check_error(
      [] {
        F::conv_transpose2d(ones({1, 2, 3, 3}), ones({2, 4, 3, 3}), ones({5}));
      },
      {"conv_transpose2d", "bias"});
  check_error([] { F::adaptive_avg_pool2d(ones({1, 2, 3}), {1, 1}); }, {"adaptive_avg_pool2d", "[1, 2, 3]"});
  check_error([] { F::layer_norm(ones({2, 3}), {4}); }, {"layer_norm", "[2, 3]", "[4]"});
  check_error([] { F::layer_norm(ones({2, 3}), {3}, ones({4})); }, {"layer_norm", "weight"});
  check_error([] { F::group_norm(ones({2, 6, 4}), 4); }, {"group_norm", "6", "4"});
  check_error([] { F::group_norm(ones({2, 6, 4}), 3, ones({5})); }, {"group_norm", "weight"});
  check_error(
      [] {
        F::batch_norm(ones({4, 3}), zeros({2}), ones({2}), {}, {}, false);
      },
      {"batch_norm", "[4, 3]"});
  check_error([] { F::batch_norm(ones({4, 3}), {}, {}, ones({2}), {}, true); }, {"batch_norm", "weight"});
  nn::BatchNorm2d bn(3);
  check_error([&] { bn(ones({2, 3, 4})); }, {"BatchNorm2d", "[2, 3, 4]"});
  check_error([&] { bn(ones({2, 4, 3, 3})); }, {"BatchNorm2d", "[2, 4, 3, 3]"});
  nn::LayerNorm ln(4);
  check_error([&] { ln(ones({2, 3})); }, {"layer_norm", "[2, 3]"});
  nn::Embedding emb(5, 2);
  check_error([&] { emb(tensor({5})); }, {"embedding", "5"});
  check_error([] { F::bilinear(ones({2, 3}), ones({2, 4}), ones({5, 3, 3})); }, {"bilinear"});
}

TEST_CASE("errors: losses name themselves and the shapes passed") {
  check_error([] { F::mse_loss(ones({2, 3}), ones({3, 2})); }, {"mse_loss", "[2, 3]", "[3, 2]"});
  check_error([] { F::l1_loss(ones({2, 3}), ones({4})); }, {"l1_loss", "[2, 3]", "[4]"});
  check_error([] { F::mse_loss(ones({2}), ones({2}), "avg"); }, {"mse_loss", "avg"});
  check_error([] { F::cross_entropy(ones({2, 3}), tensor({0, 3})); }, {"cross_entropy", "3"});
  check_error([] { F::cross_entropy(ones({2, 3}), tensor({0, 1, 2})); }, {"cross_entropy", "[2, 3]", "[3]"});
  check_error([] { F::cross_entropy(ones({2, 3}), tensor({0.5, 1.0})); }, {"cross_entropy"});
  check_error([] { F::nll_loss(ones({2, 3}), tensor({0, -5})); }, {"nll_loss", "-5"});
  check_error([] { F::binary_cross_entropy(full({2}, 0.5), ones({3})); },
              {"binary_cross_entropy", "[2]", "[3]"});
  check_error([] { F::binary_cross_entropy_with_logits(ones({2}), ones({3})); },
              {"binary_cross_entropy_with_logits"});
  check_error([] { F::kl_div(ones({2}), ones({3})); }, {"kl_div"});
  check_error([] { F::smooth_l1_loss(ones({2}), ones({3})); }, {"smooth_l1_loss"});
  check_error([] { F::huber_loss(ones({2}), ones({3})); }, {"huber_loss"});
}
