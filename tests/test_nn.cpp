// nn: the Module system (registration, names, traversal, modes, conversion, state_dict), the
// containers, init, safetensors files, layer errors, and gradcheck of every layer in float64.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "helpers.h"

using namespace ember;
using ember::test::check_error;
using ember::test::check_gradcheck;
using ember::test::randn64;

namespace {

// A user model: children registered by name, plus the classic pitfall, layers in a std::vector.
struct Net : nn::Module {
  Net() : nn::Module("Net") {
    fc1 = register_module("fc1", std::make_shared<nn::Linear>(4, 3));
    blocks = register_module("blocks", std::make_shared<nn::ModuleList>());
    blocks->push_back(std::make_shared<nn::Linear>(3, 3));
    blocks->push_back(std::make_shared<nn::BatchNorm1d>(3));
    scale = register_parameter("scale", ones({1}));
    hidden.push_back(std::make_shared<nn::Linear>(3, 3));  // not registered: invisible
  }
  Tensor forward(const Tensor& x) override {
    Tensor h = (*fc1)(x);
    for (auto& b : *blocks) h = (*b)(h);
    for (auto& l : hidden) h = (*l)(h);
    return h * scale;
  }
  std::shared_ptr<nn::Linear> fc1;
  std::shared_ptr<nn::ModuleList> blocks;
  std::vector<std::shared_ptr<nn::Linear>> hidden;
  Tensor scale;
};

std::string temp_path(const std::string& name) {
  return (ember::test::scratch_root() / ("ember_test_" + name)).string();
}

}  // namespace

TEST_CASE("Module: dotted, insertion-ordered names and traversal") {
  auto net = std::make_shared<Net>();
  std::vector<std::string> names;
  for (auto& [n, p] : net->named_parameters()) names.push_back(n);
  CHECK(names == std::vector<std::string>{"scale", "fc1.weight", "fc1.bias", "blocks.0.weight",
                                          "blocks.0.bias", "blocks.1.weight", "blocks.1.bias"});
  std::vector<std::string> buffers;
  for (auto& [n, b] : net->named_buffers()) buffers.push_back(n);
  CHECK(buffers == std::vector<std::string>{"blocks.1.running_mean", "blocks.1.running_var",
                                            "blocks.1.num_batches_tracked"});
  CHECK(net->children().size() == 2);
  std::vector<std::string> mods;
  for (auto& [n, m] : net->named_modules()) mods.push_back(n);
  CHECK(mods == std::vector<std::string>{"", "fc1", "blocks", "blocks.0", "blocks.1"});
  CHECK(net->num_parameters() == 1 + 4 * 3 + 3 + 3 * 3 + 3 + 3 + 3);
  CHECK(net->parameters(false).size() == 1);
  int visited = 0;
  net->apply([&](nn::Module&) { ++visited; });
  CHECK(visited == 5);
}

TEST_CASE("Module: layers in a std::vector are invisible, in a ModuleList visible") {
  auto net = std::make_shared<Net>();
  auto hidden_weight = net->hidden[0]->weight;
  bool in_params = false;
  for (auto& p : net->parameters()) in_params |= p.is_same(hidden_weight);
  CHECK_FALSE(in_params);  // the pitfall: an optimizer built from parameters() would skip it
  bool list_weight_seen = false;
  for (auto& p : net->parameters()) list_weight_seen |= p.is_same(net->blocks->at<nn::Linear>(0)->weight);
  CHECK(list_weight_seen);
  CHECK(net->state_dict().size() == 10);  // 7 parameters + 3 buffers, none from `hidden`
}

TEST_CASE("Module: train/eval, zero_grad, requires_grad_, to(dtype) keeps identity") {
  auto net = std::make_shared<Net>();
  CHECK(net->blocks->at<nn::BatchNorm1d>(1)->is_training());
  net->eval();
  CHECK_FALSE(net->blocks->at<nn::BatchNorm1d>(1)->is_training());
  net->train();
  Tensor y = (*net)(randn({5, 4}));
  y.sum().backward();
  CHECK(net->fc1->weight.grad().defined());
  net->zero_grad(false);
  CHECK(net->fc1->weight.grad().sum().item<float>() == 0.0f);
  net->zero_grad();
  CHECK_FALSE(net->fc1->weight.grad().defined());
  Tensor handle = net->fc1->weight;
  net->to(kFloat64);
  CHECK(net->hidden[0]->weight.dtype() == kFloat32);  // unregistered layers are left behind
  net->hidden.clear();
  CHECK(handle.dtype() == kFloat64);  // the same Tensor the module holds, converted in place
  CHECK(net->fc1->weight.is_same(handle));
  CHECK(net->blocks->at<nn::BatchNorm1d>(1)->num_batches_tracked.dtype() == kInt64);
  CHECK((*net)(randn({5, 4}, kFloat64)).dtype() == kFloat64);
  net->requires_grad_(false);
  CHECK_FALSE(net->fc1->weight.requires_grad());
  CHECK(net->num_parameters(true) == 0);
}

TEST_CASE("Module: forward hooks and printing") {
  auto lin = std::make_shared<nn::Linear>(3, 2);
  int calls = 0;
  lin->register_forward_pre_hook([&](nn::Module&, const Tensor& x) {
    ++calls;
    return x * 0.0;  // replaces the input
  });
  lin->register_forward_hook([&](nn::Module&, const Tensor&, const Tensor& y) { return y + 1.0; });
  Tensor y = (*lin)(ones({1, 3}));
  CHECK(calls == 1);
  CHECK(allclose(y, lin->bias.detach().unsqueeze(0) + 1.0));
  nn::Sequential seq{std::make_shared<nn::Linear>(784, 256), std::make_shared<nn::ReLU>(),
                     std::make_shared<nn::Dropout>(0.1), std::make_shared<nn::LayerNorm>(256)};
  const std::string text = seq.repr();
  CHECK(text ==
        "Sequential(\n"
        "  (0): Linear(in_features=784, out_features=256, bias=True)\n"
        "  (1): ReLU()\n"
        "  (2): Dropout(p=0.1, inplace=False)\n"
        "  (3): LayerNorm((256,), eps=1e-05, elementwise_affine=True)\n"
        ")");
  std::ostringstream os;
  os << *std::make_shared<Net>();
  CHECK(os.str().find("  (blocks): ModuleList(\n    (0): Linear(in_features=3") != std::string::npos);
}

TEST_CASE("containers: Sequential, ModuleList, ModuleDict, ParameterList, ParameterDict") {
  nn::Sequential named(
      {{"encoder", std::make_shared<nn::Linear>(2, 3)}, {"act", std::make_shared<nn::Tanh>()}});
  CHECK(named.named_parameters()[0].first == "encoder.weight");
  CHECK(named[-1]->type_name() == "Tanh");
  CHECK(named(ones({4, 2})).sizes() == Shape{4, 3});
  named.push_back(std::make_shared<nn::Linear>(3, 1));
  CHECK(named.size() == 3);
  CHECK(named.named_parameters().back().first == "2.bias");

  nn::ModuleList list;
  list.push_back(std::make_shared<nn::Linear>(1, 1));
  list.push_back(std::make_shared<nn::ReLU>());
  list.insert(1, std::make_shared<nn::Tanh>());
  CHECK(list[1]->type_name() == "Tanh");
  CHECK(list.named_children()[2].first == "2");
  CHECK(list.named_children()[2].second->type_name() == "ReLU");
  list.extend({std::make_shared<nn::Linear>(1, 2)});
  CHECK(list.size() == 4);
  CHECK(list.named_parameters().back().first == "3.bias");
  check_error([&] { list[7]; }, {"ModuleList", "index 7"});
  check_error([&] { list.at<nn::Linear>(1); }, {"Tanh"});

  nn::ModuleDict dict({{"b", std::make_shared<nn::Linear>(1, 1)}, {"a", std::make_shared<nn::ReLU>()}});
  CHECK(dict.keys() == std::vector<std::string>{"b", "a"});
  CHECK(dict.contains("a"));
  dict.insert("b", std::make_shared<nn::Linear>(2, 2));  // replace keeps position
  CHECK(dict.keys() == std::vector<std::string>{"b", "a"});
  CHECK(dict["b"]->parameters()[0].sizes() == Shape{2, 2});
  auto popped = dict.pop("b");
  CHECK(popped->type_name() == "Linear");
  CHECK(dict.keys() == std::vector<std::string>{"a"});
  check_error([&] { dict["zzz"]; }, {"ModuleDict", "zzz"});

  nn::ParameterList plist{zeros({2}), ones({3})};
  CHECK(plist.size() == 2);
  CHECK(plist[1].requires_grad());
  CHECK(plist.named_parameters()[1].first == "1");
  nn::ParameterDict pdict;
  pdict.insert("alpha", zeros({1}));
  pdict.insert("beta", ones({2}));
  CHECK(pdict.keys() == std::vector<std::string>{"alpha", "beta"});
  CHECK(pdict["beta"].numel() == 2);
  CHECK(pdict.state_dict().size() == 2);
}

TEST_CASE("state_dict and load_state_dict: missing, unexpected and mismatched keys") {
  auto a = std::make_shared<Net>();
  auto b = std::make_shared<Net>();
  CHECK_FALSE(allclose(a->fc1->weight, b->fc1->weight));
  b->load_state_dict(a->state_dict());
  CHECK(allclose(a->fc1->weight, b->fc1->weight));
  CHECK(b->fc1->weight.requires_grad());  // loading keeps parameters trainable
  auto state = a->state_dict();
  state.erase(state.begin());                      // "scale" missing
  state.emplace_back("extra.weight", zeros({1}));  // unexpected
  check_error([&] { b->load_state_dict(state); }, {"missing", "\"scale\"", "unexpected", "\"extra.weight\""});
  auto result = b->load_state_dict(state, /*strict=*/false);
  CHECK(result.missing_keys == std::vector<std::string>{"scale"});
  CHECK(result.unexpected_keys == std::vector<std::string>{"extra.weight"});
  nn::NamedTensors bad = a->state_dict();
  for (auto& [k, t] : bad)
    if (k == "fc1.weight") t = zeros({2, 2});
  Tensor before = b->fc1->bias.clone();
  check_error([&] { b->load_state_dict(bad); }, {"size mismatch for \"fc1.weight\"", "[2, 2]", "[3, 4]"});
  CHECK(allclose(b->fc1->bias, before));  // nothing was copied
}

TEST_CASE("safetensors: round trip, metadata, atomic writes, bad files") {
  auto a = std::make_shared<Net>();
  const std::string path = temp_path("net.safetensors");
  nn::save(*a, path, {{"format", "pt"}});
  CHECK_FALSE(std::filesystem::exists(path + ".tmp"));
  auto b = std::make_shared<Net>();
  nn::load(*b, path);
  for (auto& [k, t] : a->state_dict()) CHECK(equal(t, *nn::find(b->state_dict(), k)));
  nn::Metadata meta;
  auto loaded = nn::load_safetensors(path, &meta);
  CHECK(meta.at("format") == "pt");
  CHECK(loaded.front().first == "scale");  // file order is insertion order
  // Every dtype survives.
  nn::NamedTensors all = {
      {"f32", randn({2, 3})},           {"f64", randn({3}, kFloat64)}, {"i64", tensor({1, -2})},
      {"i32", tensor({7}).to(kInt32)},  {"b", tensor({true, false})},  {"bf16", randn({4}).to(kBFloat16)},
      {"f16", randn({4}).to(kFloat16)}, {"empty", zeros({0, 2})},      {"scalar", scalar_tensor(2.5)}};
  nn::save_safetensors(all, path);
  auto back = nn::load_safetensors(path);
  REQUIRE(back.size() == all.size());
  for (size_t i = 0; i < all.size(); ++i) {
    CHECK(back[i].first == all[i].first);
    CHECK(back[i].second.dtype() == all[i].second.dtype());
    CHECK(equal(back[i].second, all[i].second));
  }
  {
    std::ofstream junk(path, std::ios::binary);
    junk << "not a safetensors file";
  }
  check_error([&] { nn::load_safetensors(path); }, {"load_safetensors", path});
  check_error([&] { nn::load_safetensors(path + ".missing"); }, {"cannot open"});
  std::remove(path.c_str());
}

TEST_CASE("layers: PyTorch's default initialisation and shape errors") {
  manual_seed(0);
  nn::Linear lin(100, 50);
  const double bound = 1.0 / std::sqrt(100.0);
  CHECK(lin.weight.abs().max().item<float>() <= bound + 1e-6);
  CHECK(lin.weight.abs().max().item<float>() > 0.9 * bound);
  CHECK(lin.bias.abs().max().item<float>() <= bound + 1e-6);
  check_error(
      [&] {
        lin(ones({2, 784}));
      },
      {"Linear(in_features=100): input has 784 features in its last dim"});
  nn::Embedding emb(10, 3, 0);
  CHECK(emb.weight.index({0}).abs().sum().item<float>() == 0.0f);
  CHECK(emb.weight.std().item<float>() > 0.5f);
  check_error([&] { emb(tensor({10})); }, {"out of bounds", "size 10"});
  nn::BatchNorm2d bn(3);
  check_error([&] { bn(ones({2, 3, 4})); }, {"BatchNorm2d", "4D"});
  check_error([&] { bn(ones({2, 4, 3, 3})); }, {"BatchNorm2d(num_features=3)", "4 channels"});
  check_error([] { nn::GroupNorm(4, 6); }, {"GroupNorm", "divisible"});
  check_error([] { nn::Dropout(2.0); }, {"Dropout", "between 0 and 1"});
  check_error([] { nn::CrossEntropyLoss(Tensor(), -100, "avg"); }, {"reduction", "avg"});
  nn::CrossEntropyLoss ce;
  check_error([&] { ce(ones({2, 3}), tensor({0, 3})); }, {"cross_entropy", "out of bounds"});
  check_error([&] { ce(ones({2, 3}), tensor({0, 1, 2})); }, {"cross_entropy", "[3]", "[2, 3]"});
  auto m = std::make_shared<nn::Module>();
  check_error([&] { (*m)(ones({1})); }, {"no single-tensor forward"});
  check_error([&] { m->register_parameter("a.b", ones({1})); }, {"contain no '.'"});
}

TEST_CASE("init: fans, gains and distributions") {
  Tensor w = empty({64, 32, 3, 3});
  auto [fan_in, fan_out] = nn::init::calculate_fan_in_and_fan_out(w);
  CHECK(fan_in == 32 * 9);
  CHECK(fan_out == 64 * 9);
  CHECK(nn::init::calculate_gain("relu") == doctest::Approx(std::sqrt(2.0)));
  CHECK(nn::init::calculate_gain("tanh") == doctest::Approx(5.0 / 3.0));
  manual_seed(1);
  Tensor big = empty({512, 256});
  nn::init::kaiming_normal_(big, 0, "fan_in", "relu");
  CHECK(big.std().item<float>() == doctest::Approx(std::sqrt(2.0 / 256)).epsilon(0.02));
  nn::init::xavier_uniform_(big);
  const double a = std::sqrt(6.0 / (512 + 256));
  CHECK(big.abs().max().item<float>() <= a + 1e-6);
  nn::init::trunc_normal_(big, 0, 1, -0.5, 0.5);
  CHECK(big.abs().max().item<float>() <= 0.5f);
  CHECK(big.std().item<float>() == doctest::Approx(0.2876).epsilon(0.03));  // std of N(0,1) on [-.5,.5]
  Tensor q = empty({6, 4});
  nn::init::orthogonal_(q);
  CHECK(allclose(matmul(q.t(), q), eye(4), 1e-4, 1e-5));
  Tensor wide = empty({3, 5});
  nn::init::orthogonal_(wide, 2.0);
  CHECK(allclose(matmul(wide, wide.t()), eye(3) * 4.0, 1e-4, 1e-4));
  nn::init::constant_(q, 0.5);
  CHECK(q.sum().item<float>() == 12.0f);
}

TEST_CASE("gradcheck: every layer and loss in float64") {
  manual_seed(21);
  auto as64 = [](std::shared_ptr<nn::Module> m) {
    m->to(kFloat64);
    return m;
  };
  auto check_module = [&](std::shared_ptr<nn::Module> m, const Shape& shape) {
    INFO(m->type_name());
    auto params = m->parameters();
    autograd::variable_list inputs = {randn64(shape)};
    for (auto& p : params) inputs.push_back(p);
    check_gradcheck([m](const autograd::variable_list& v) { return (*m)(v[0]); }, inputs);
  };
  check_module(as64(std::make_shared<nn::Linear>(3, 2)), {4, 3});
  check_module(as64(std::make_shared<nn::LayerNorm>(Shape{2, 3})), {2, 2, 3});
  check_module(as64(std::make_shared<nn::GroupNorm>(2, 4)), {3, 4, 2});
  check_module(as64(std::make_shared<nn::BatchNorm1d>(3)), {5, 3});
  // Training-mode batch_norm is one node with a closed-form backward; its double backward goes
  // through the composed formula. Both against finite differences, 2-D and 4-D, with affine.
  for (const Shape& shape : {Shape{5, 3}, Shape{2, 3, 2, 2}}) {
    INFO("batch_norm training " << shape_str(shape));
    check_gradcheck(
        [](const autograd::variable_list& v) {
          return nn::functional::batch_norm(v[0], {}, {}, v[1], v[2], true, 0.1, 1e-5);
        },
        {(randn64(shape, false) * 3.0 + 2.0).requires_grad_(), randn64({3}), randn64({3})},
        {.check_double_backward = true});
  }
  auto bn_eval = as64(std::make_shared<nn::BatchNorm2d>(2));
  bn_eval->eval();
  check_module(bn_eval, {2, 2, 2, 2});
  check_module(as64(std::make_shared<nn::GELU>("tanh")), {3, 2});
  check_module(as64(std::make_shared<nn::Sequential>(std::initializer_list<nn::ModulePtr>{
                   std::make_shared<nn::Linear>(3, 4), std::make_shared<nn::SiLU>(),
                   std::make_shared<nn::Linear>(4, 2), std::make_shared<nn::Softmax>(-1)})),
               {2, 3});
  nn::Conv2dOptions strided;
  strided.stride = {2, 1};
  strided.padding = {1, 0};
  strided.groups = 2;
  check_module(as64(std::make_shared<nn::Conv2d>(2, 2, Pair{2, 3}, strided)), {1, 2, 4, 4});
  check_module(as64(std::make_shared<nn::Conv1d>(2, 2, 2)), {2, 2, 4});
  // One group: the fused kernel's backward, and its double backward through the composed formula.
  for (Pair stride : {Pair{1, 1}, Pair{2, 1}}) {
    INFO("conv2d, one group, stride " << stride[0] << "x" << stride[1]);
    check_gradcheck(
        [stride](const autograd::variable_list& v) {
          return nn::functional::conv2d(v[0], v[1], v[2], stride, {1, 0}, {1, 2});
        },
        {randn64({2, 3, 5, 6}), randn64({2, 3, 2, 2}), randn64({2})}, {.check_double_backward = true});
  }
  nn::ConvTranspose2dOptions up;
  up.stride = {2, 2};
  up.output_padding = {1, 0};
  check_module(as64(std::make_shared<nn::ConvTranspose2d>(2, 1, 2, up)), {1, 2, 2, 3});
  check_module(as64(std::make_shared<nn::MaxPool2d>(Pair{2, 2}, Pair{1, 1}, Pair{1, 1})), {1, 2, 3, 3});
  check_module(as64(std::make_shared<nn::AvgPool2d>(Pair{2, 2}, Pair{1, 1}, Pair{1, 1}, false, false)),
               {1, 1, 3, 3});
  check_module(as64(std::make_shared<nn::AdaptiveAvgPool2d>(Pair{2, 2})), {1, 1, 3, 5});
  check_gradcheck(
      [](const autograd::variable_list& v) {
        return fold(unfold(v[0], {2, 2}, {1, 2}, {1, 0}, {1, 1}), {3, 4}, {2, 2}, {1, 2}, {1, 0}, {1, 1}) *
                   1.5 +
               pad(v[0], {1, 0, 0, 0}, 2.0).narrow(3, 0, 4);
      },
      {randn64({1, 2, 3, 4})}, {1e-6, 1e-5, 1e-3, true});
  auto bil = as64(std::make_shared<nn::Bilinear>(2, 3, 2));
  check_gradcheck(
      [bil](const autograd::variable_list& v) {
        return std::static_pointer_cast<nn::Bilinear>(bil)->forward(v[0], v[1]);
      },
      {randn64({3, 2}), randn64({3, 3}), bil->parameters()[0]});
  auto emb = as64(std::make_shared<nn::Embedding>(5, 3, 1));
  // Index 1 is padding_idx: its row gets no gradient by design (checked against PyTorch in the
  // parity test), so the finite-difference check uses the other rows.
  check_gradcheck(
      [emb](const autograd::variable_list&) {
        return (*emb)(tensor({{2, 4}, {0, 3}}));
      },
      {emb->parameters()[0]});
  // Losses, w.r.t. the input (and the target where it is continuous).
  Tensor labels = tensor({1, 0, 2, 2});
  Tensor cw = (rand({3}, kFloat64) + 0.5);
  check_gradcheck(
      [&](const autograd::variable_list& v) {
        return nn::functional::cross_entropy(v[0], labels, cw, 2, "mean", 0.1);
      },
      {randn64({4, 3})});
  check_gradcheck(
      [&](const autograd::variable_list& v) {
        return nn::functional::cross_entropy(v[0], softmax(v[1], -1));
      },
      {randn64({4, 3}), randn64({4, 3})});
  check_gradcheck([](const autograd::variable_list& v) { return nn::functional::mse_loss(v[0], v[1]); },
                  {randn64({3, 2}), randn64({3, 2})});
  check_gradcheck(
      [](const autograd::variable_list& v) { return nn::functional::smooth_l1_loss(v[0], v[1], "sum", 0.5); },
      {randn64({3, 2}), randn64({3, 2})});
  check_gradcheck(
      [](const autograd::variable_list& v) {
        return nn::functional::binary_cross_entropy(sigmoid(v[0]), sigmoid(v[1]));
      },
      {randn64({3, 2}), randn64({3, 2})});
  check_gradcheck(
      [](const autograd::variable_list& v) {
        return nn::functional::binary_cross_entropy_with_logits(v[0], sigmoid(v[1]), {}, "mean", v[2]);
      },
      {randn64({3, 2}), randn64({3, 2}), (rand({2}, kFloat64) + 0.5).requires_grad_()});
  check_gradcheck(
      [](const autograd::variable_list& v) {
        return nn::functional::kl_div(log_softmax(v[0], -1), softmax(v[1], -1), "batchmean");
      },
      {randn64({3, 4}), randn64({3, 4})});
}

TEST_CASE("attention: scaled_dot_product_attention, masks, MHA shapes and errors") {
  namespace F = nn::functional;
  manual_seed(5);
  Tensor q = randn({2, 3, 4, 8}), k = randn({2, 3, 6, 8}), v = randn({2, 3, 6, 5});
  Tensor out = F::scaled_dot_product_attention(q, k, v);
  CHECK(out.sizes() == Shape{2, 3, 4, 5});
  CHECK(allclose(out, matmul(softmax(matmul(q, k.transpose(-2, -1)) / std::sqrt(8.0), -1), v), 1e-5, 1e-6));
  // is_causal equals an explicit lower-triangular bool mask (true = may attend).
  Tensor sq = randn({4, 8});
  Tensor causal = F::scaled_dot_product_attention(sq, sq, sq, {}, 0.0, true);
  Tensor allowed = tril(ones({4, 4}, kBool));
  CHECK(allclose(causal, F::scaled_dot_product_attention(sq, sq, sq, allowed), 1e-6, 1e-6));
  CHECK(allclose(causal.index({0}), sq.index({0})));  // the first query sees only itself
  check_error(
      [&] {
        F::scaled_dot_product_attention(q, randn({2, 3, 6, 7}), v);
      },
      {"scaled_dot_product_attention", "[2, 3, 6, 7]"});
  Tensor m = nn::Transformer::generate_square_subsequent_mask(3);
  CHECK(m.index({0, 1}).item<float>() == -INFINITY);
  CHECK(m.index({1, 0}).item<float>() == 0.0f);
  CHECK(m.index({2, 2}).item<float>() == 0.0f);

  nn::MultiheadAttention mha(8, 2);
  auto [o, w] = mha.forward(randn({5, 8}), randn({7, 8}), randn({7, 8}));  // unbatched
  CHECK(o.sizes() == Shape{5, 8});
  CHECK(w.sizes() == Shape{5, 7});
  CHECK(allclose(w.sum({-1}), ones({5}), 1e-5, 1e-5));
  nn::AttentionForward causal_args;
  causal_args.is_causal = true;
  auto [oc, wc] = mha.forward(randn({4, 2, 8}), randn({4, 2, 8}), randn({4, 2, 8}), causal_args);
  CHECK(wc.index({Slice(), 0, Slice(1)}).abs().sum().item<float>() == 0.0f);  // no peeking ahead
  check_error([] { nn::MultiheadAttention(10, 3); }, {"divisible"});
  nn::AttentionForward bad;
  bad.attn_mask = ones({3, 3}, kBool);
  check_error(
      [&] {
        mha.forward(randn({4, 2, 8}), randn({5, 2, 8}), randn({5, 2, 8}), bad);
      },
      {"attn_mask", "[3, 3]", "[4, 5]"});
  check_error(
      [&] {
        mha.forward(randn({4, 2, 6}), randn({4, 2, 8}), randn({4, 2, 8}));
      },
      {"embed_dim=8", "6 features"});
  auto net = std::make_shared<nn::Transformer>([] {
    nn::TransformerOptions t;
    t.d_model = 8;
    t.nhead = 2;
    t.num_encoder_layers = 1;
    t.num_decoder_layers = 1;
    t.dim_feedforward = 8;
    return t;
  }());
  std::vector<std::string> names;
  for (auto& [n, p] : net->named_parameters()) names.push_back(n);
  CHECK(names.front() == "encoder.layers.0.self_attn.in_proj_weight");
  CHECK(std::find(names.begin(), names.end(), "decoder.layers.0.multihead_attn.out_proj.weight") !=
        names.end());
  CHECK(names.back() == "decoder.norm.bias");
}

TEST_CASE("gradcheck: attention and transformer layers in float64") {
  namespace F = nn::functional;
  manual_seed(17);
  Tensor mask = tensor({{true, true, false}, {true, false, true}});
  check_gradcheck(
      [&](const autograd::variable_list& v) {
        return F::scaled_dot_product_attention(v[0], v[1], v[2], mask) +
               F::scaled_dot_product_attention(v[0], v[1], v[2], {}, 0.0, false, 0.3);
      },
      {randn64({2, 2, 4}), randn64({2, 3, 4}), randn64({2, 3, 2})});
  nn::MultiheadAttentionOptions o;
  o.add_bias_kv = true;
  auto mha = std::make_shared<nn::MultiheadAttention>(4, 2, o);
  mha->to(kFloat64);
  nn::AttentionForward args;
  args.key_padding_mask = tensor({{false, false, true}});
  autograd::variable_list inputs = {randn64({2, 1, 4}), randn64({3, 1, 4})};
  for (auto& p : mha->parameters()) inputs.push_back(p);
  check_gradcheck(
      [&](const autograd::variable_list& v) {
        auto [out, w] = mha->forward(v[0], v[1], v[1], args);
        return out + w.sum() * 0.5;
      },
      inputs);
  nn::TransformerLayerOptions lo;
  lo.d_model = 4;
  lo.nhead = 2;
  lo.dim_feedforward = 6;
  lo.dropout = 0.0;
  lo.norm_first = true;
  auto layer = std::make_shared<nn::TransformerEncoderLayer>(lo);
  layer->to(kFloat64);
  autograd::variable_list lin = {randn64({3, 1, 4})};
  for (auto& p : layer->parameters()) lin.push_back(p);
  check_gradcheck([&](const autograd::variable_list& v) { return (*layer)(v[0]); }, lin);
}

TEST_CASE("fused attention: matches the composed formula, forward and backward, both backends") {
  namespace F = nn::functional;
  manual_seed(23);
  struct Case {
    Shape q, k, v;
    bool causal;
    int mask;
  };  // mask: 0 none, 1 bool [L,S], 2 float per batch
  std::vector<Case> cases = {{{2, 3, 5, 8}, {2, 3, 7, 8}, {2, 3, 7, 4}, false, 0},
                             {{1, 1, 1}, {1, 1, 1}, {1, 1, 1}, false, 0},
                             {{4, 33, 16}, {4, 33, 16}, {4, 33, 16}, true, 0},
                             {{3, 6, 8}, {1, 9, 8}, {1, 9, 5}, false, 1},
                             {{2, 2, 5, 4}, {2, 2, 5, 4}, {2, 2, 5, 4}, true, 2}};
  for (auto& c : cases) {
    INFO(shape_str(c.q) << " causal " << c.causal << " mask " << c.mask);
    const int64_t L = c.q[c.q.size() - 2], S = c.k[c.k.size() - 2];
    Tensor mask;
    if (c.mask == 1) {
      mask = rand({L, S}) < 0.7;
      mask.index_put_({Slice(), 0}, true);  // every query keeps a key
    } else if (c.mask == 2) {
      Shape ms(c.q.begin(), c.q.end() - 2);
      ms.push_back(L);
      ms.push_back(S);
      mask = randn(ms);
    }
    Tensor q = randn(c.q, kFloat64), k = randn(c.k, kFloat64), v = randn(c.v, kFloat64);
    Tensor fused = F::scaled_dot_product_attention(q, k, v, mask, 0.0, c.causal);
    // The composed formula, with the same masks.
    Tensor scores = matmul(q, k.transpose(-2, -1)) / std::sqrt(static_cast<double>(c.q.back()));
    if (c.causal) scores = scores + triu(full({L, S}, -INFINITY, kFloat64), 1);
    if (c.mask == 1) scores = masked_fill(scores, logical_not(mask), -INFINITY);
    if (c.mask == 2) scores = scores + mask.to(kFloat64);
    Tensor composed = matmul(softmax(scores, -1), v);
    CHECK(allclose(fused, composed, 1e-10, 1e-12));
    // Reference backend against CPU backend, in float32.
    Tensor qf = q.to(kFloat32), kf = k.to(kFloat32), vf = v.to(kFloat32);
    Tensor maskf = mask.defined() && mask.dtype() != kBool ? mask.to(kFloat32) : mask;
    test::check_against_reference(
        [&] { return F::scaled_dot_product_attention(qf, kf, vf, maskf, 0.0, c.causal); }, 1e-5, 1e-6);
    // Gradients: fused backward (first order) against finite differences.
    check_gradcheck(
        [&](const autograd::variable_list& in) {
          return F::scaled_dot_product_attention(in[0], in[1], in[2], mask, 0.0, c.causal);
        },
        {q.clone().requires_grad_(), k.clone().requires_grad_(), v.clone().requires_grad_()});
  }
  // Double backward goes through the composed formula.
  Tensor q = randn64({2, 3, 4}), k = randn64({2, 5, 4}), v = randn64({2, 5, 3});
  check_gradcheck(
      [](const autograd::variable_list& in) {
        return F::scaled_dot_product_attention(in[0], in[1], in[2], {}, 0.0, false);
      },
      {q, k, v}, {1e-6, 1e-5, 1e-3, true});
  // Fused backward on the CPU backend equals the reference backend's.
  Tensor qf = randn({3, 17, 8}).requires_grad_(), kf = randn({3, 19, 8}).requires_grad_(),
         vf = randn({3, 19, 5}).requires_grad_();
  Tensor w = randn({3, 17, 5});
  auto grads = [&] {
    auto g = autograd::grad({(F::scaled_dot_product_attention(qf, kf, vf) * w).sum()}, {qf, kf, vf});
    return cat({g[0].flatten(), g[1].flatten(), g[2].flatten()});
  };
  test::check_against_reference(grads, 1e-4, 1e-5);
  // More query rows than one CPU tile (64), causal, with a key-padding-style float mask.
  Tensor ql = randn({2, 130, 8}).requires_grad_(), kl = randn({2, 130, 8}).requires_grad_(),
         vl = randn({2, 130, 6}).requires_grad_();
  Tensor ml = where(rand({2, 1, 130}) < 0.2, full({}, -INFINITY), zeros({}));
  ml.index_put_({Slice(), Slice(), 0}, 0.0);
  Tensor wl = randn({2, 130, 6});
  auto long_grads = [&] {
    Tensor y = F::scaled_dot_product_attention(ql, kl, vl, ml, 0.0, true);
    auto g = autograd::grad({(y * wl).sum()}, {ql, kl, vl});
    return cat({y.flatten(), g[0].flatten(), g[1].flatten(), g[2].flatten()});
  };
  test::check_against_reference(long_grads, 1e-4, 1e-5);
  // A query row that sees no key: its output is NaN, and it adds nothing (not NaN) to any gradient
  // when the loss leaves it out.
  Tensor qn = randn({1, 3, 4}).requires_grad_(), kn = randn({1, 5, 4}).requires_grad_(),
         vn = randn({1, 5, 2}).requires_grad_();
  Tensor blind = zeros({1, 3, 5});
  blind.select(1, 1).fill_(-INFINITY);
  auto blind_grads = [&] {
    Tensor y = F::scaled_dot_product_attention(qn, kn, vn, blind);
    auto g = autograd::grad({where(y.eq(y), y, 0.0).sum()}, {qn, kn, vn});
    return cat({g[0].flatten(), g[1].flatten(), g[2].flatten()});
  };
  Tensor g = blind_grads();
  CHECK(g.eq(g).to(kInt64).sum().item<int64_t>() == g.numel());  // no NaN
  test::check_against_reference(blind_grads, 1e-5, 1e-6);
}

TEST_CASE("fused cross_entropy equals log_softmax + nll_loss, with double backward") {
  namespace F = nn::functional;
  manual_seed(31);
  Tensor labels = tensor({1, 0, 2, 2, 1});
  Tensor w = rand({3}, kFloat64) + 0.5;
  for (const char* red : {"mean", "sum", "none"}) {
    INFO(red);
    Tensor x = randn64({5, 3});
    Tensor fused = F::cross_entropy(x, labels, w, 2, red);
    Tensor composed = F::nll_loss(log_softmax(x, 1), labels, w, 2, red);
    CHECK(allclose(fused, composed, 1e-12, 1e-12));
    auto g1 = autograd::grad({fused.sum()}, {x});
    auto g2 = autograd::grad({composed.sum()}, {x});
    CHECK(allclose(g1[0], g2[0], 1e-12, 1e-12));
  }
  check_gradcheck([&](const autograd::variable_list& v) { return F::cross_entropy(v[0], labels, w, 2); },
                  {randn64({5, 3})}, {1e-6, 1e-5, 1e-3, true});
  Tensor nd_labels = tensor({{0, 3, 1}, {2, 2, 0}});
  check_gradcheck(
      [&](const autograd::variable_list& v) { return F::cross_entropy(v[0], nd_labels, {}, -100, "none"); },
      {randn64({2, 4, 3})});
}

TEST_CASE("fused cross_entropy: the CPU backend's float32 rows equal the reference backend's") {
  namespace F = nn::functional;
  manual_seed(44);
  for (auto [rows, classes] : std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {7, 33}, {130, 1000}}) {
    CAPTURE(rows);
    Tensor x = (randn({rows, classes}) * 4).requires_grad_(), t = randint(0, classes, {rows});
    Tensor w = rand({classes}) + 0.5;
    if (rows > 1) t.index_put_({0}, int64_t(-100));
    auto run = [&] {
      Tensor loss = F::cross_entropy(x, t, w, -100, "none");
      auto g = autograd::grad({(loss * arange(1.0, rows + 1.0, 1.0, kFloat32)).sum()}, {x});
      return cat({loss.detach(), g[0].flatten()});
    };
    test::check_against_reference(run, 1e-5, 1e-6);
  }
}

TEST_CASE("fused layer_norm: both backends, gradients, double backward") {
  namespace F = nn::functional;
  manual_seed(41);
  for (Shape norm : {Shape{7}, Shape{3, 33}, Shape{1}}) {
    INFO(shape_str(norm));
    Shape xs = {5};
    xs.insert(xs.end(), norm.begin(), norm.end());
    Tensor x = randn(xs), w = randn(norm), b = randn(norm), dy = randn(xs);
    auto run = [&] {
      Tensor xg = x.clone().requires_grad_(), wg = w.clone().requires_grad_(),
             bg = b.clone().requires_grad_();
      Tensor y = F::layer_norm(xg, norm, wg, bg, 1e-5);
      auto g = autograd::grad({(y * dy).sum()}, {xg, wg, bg});
      return cat({y.flatten(), g[0].flatten(), g[1].flatten(), g[2].flatten()});
    };
    test::check_against_reference(run, 1e-4, 1e-5);
  }
  Tensor big = randn({300, 1000});  // past the threading threshold: per-thread dw/db partials
  Tensor wbig = randn({1000}).requires_grad_();
  auto run_big = [&] {
    Tensor xg = big.clone().requires_grad_();
    auto g = autograd::grad({(F::layer_norm(xg, {1000}, wbig) * big).sum()}, {xg, wbig});
    return cat({g[0].flatten(), g[1]});
  };
  test::check_against_reference(run_big, 1e-4, 1e-4);
  check_gradcheck(
      [](const autograd::variable_list& v) {
        return F::layer_norm(v[0], {2, 3}, v[1], v[2]);
      },
      {randn64({4, 2, 3}), randn64({2, 3}), randn64({2, 3})}, {1e-6, 1e-5, 1e-3, true});
  check_gradcheck([](const autograd::variable_list& v) { return F::layer_norm(v[0], {4}); },
                  {randn64({3, 4})}, {1e-6, 1e-5, 1e-3, true});
}

TEST_CASE("BatchNorm with reduce_stats (SyncBatchNorm's path) equals plain BatchNorm in one process") {
  manual_seed(3);
  for (bool affine : {true, false}) {
    nn::BatchNorm2d plain(3, 1e-5, 0.1, affine), synced(3, 1e-5, 0.1, affine);
    synced.load_state_dict(plain.state_dict());
    synced.reduce_stats = [](const Tensor& stats) { return stats * 1.0; };  // one process: the sum is itself
    Tensor x = randn({4, 3, 5, 2}).requires_grad_();
    Tensor x2 = x.detach().clone().requires_grad_();
    Tensor w = randn({4, 3, 5, 2});
    Tensor a = plain(x), b = synced(x2);
    CHECK(allclose(a, b, 1e-4, 1e-5));
    (a * w).sum().backward();
    (b * w).sum().backward();
    CHECK(allclose(x.grad(), x2.grad(), 1e-4, 1e-5));
    CHECK(allclose(plain.running_mean, synced.running_mean, 1e-5, 1e-6));
    CHECK(allclose(plain.running_var, synced.running_var, 1e-5, 1e-6));
    if (affine) CHECK(allclose(plain.weight.grad(), synced.weight.grad(), 1e-4, 1e-5));
    synced.eval();
    plain.eval();
    CHECK(allclose(plain(x.detach()), synced(x.detach()), 1e-5, 1e-6));  // eval: running stats, no sync
  }
}
