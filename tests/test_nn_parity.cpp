// nn parity with PyTorch: each case builds the ember layer, loads PyTorch's state_dict from the
// fixtures (tests/parity/make_nn_fixtures.py), runs the same inputs (and the same number of training
// steps for stateful layers) and compares the output, the input gradients, the parameter gradients
// and the buffers afterwards.
#include <map>

#include "helpers.h"

using namespace ember;

namespace {

struct Case {
  std::function<std::shared_ptr<nn::Module>()> make;
  std::function<Tensor(nn::Module&, const std::vector<Tensor>&)> call;
  bool train = true;
  int steps = 1;
};

Tensor unary(nn::Module& m, const std::vector<Tensor>& in) { return m(in[0]); }
Tensor loss_call(nn::Module& m, const std::vector<Tensor>& in) {
  return static_cast<nn::Loss&>(m)(in[0], in[1]);
}

template <class M, class... A>
std::function<std::shared_ptr<nn::Module>()> make(A... args) {
  return [=] { return std::make_shared<M>(args...); };
}

std::map<std::string, Case> cases() {
  using namespace nn;
  return {
      {"linear", {make<Linear>(7, 5), unary}},
      {"linear_nobias_3d", {make<Linear>(6, 3, false), unary}},
      {"bilinear",
       {make<Bilinear>(3, 4, 2),
        [](Module& m, const std::vector<Tensor>& in) {
          return static_cast<Bilinear&>(m).forward(in[0], in[1]);
        }}},
      {"layernorm", {make<LayerNorm>(6), unary}},
      {"layernorm_2d_noaffine",
       {[] {
          return std::make_shared<LayerNorm>(Shape{4, 6}, 1e-5, false);
        },
        unary}},
      {"groupnorm", {make<GroupNorm>(2, 6), unary}},
      {"batchnorm1d_train", {make<BatchNorm1d>(5), unary, true, 3}},
      {"batchnorm1d_eval", {make<BatchNorm1d>(5), unary, false, 1}},
      {"batchnorm2d_train",
       {[] { return std::make_shared<BatchNorm2d>(3, 1e-5, std::nullopt); }, unary, true, 4}},
      {"batchnorm1d_3d", {[] { return std::make_shared<BatchNorm1d>(4, 1e-5, 0.3); }, unary, true, 2}},
      {"embedding_pad", {[] { return std::make_shared<Embedding>(10, 4, 2); }, unary}},
      {"gelu_tanh", {make<GELU>(std::string("tanh")), unary}},
      {"sequential",
       {[] {
          return std::make_shared<Sequential>(std::initializer_list<ModulePtr>{
              std::make_shared<Linear>(6, 8), std::make_shared<ReLU>(), std::make_shared<Dropout>(0.0),
              std::make_shared<Linear>(8, 3), std::make_shared<LogSoftmax>(-1)});
        },
        unary}},
      {"conv2d",
       {[] {
          return std::make_shared<Conv2d>(3, 4, 3, Conv2dOptions{{2, 2}, {1, 1}});
        },
        unary}},
      {"conv2d_groups_dilation",
       {[] {
          Conv2dOptions o;
          o.padding = {2, 1};
          o.dilation = {2, 1};
          o.groups = 2;
          return std::make_shared<Conv2d>(4, 6, Pair{3, 2}, o);
        },
        unary}},
      {"conv2d_same",
       {[] {
          Conv2dOptions o;
          o.padding_mode_string = "same";
          o.bias = false;
          return std::make_shared<Conv2d>(2, 3, 4, o);
        },
        unary}},
      {"conv1d",
       {[] {
          return std::make_shared<Conv1d>(3, 2, 3, Conv1dOptions{2, 1});
        },
        unary}},
      {"conv_transpose2d",
       {[] {
          ConvTranspose2dOptions o;
          o.stride = {2, 2};
          o.padding = {1, 1};
          o.output_padding = {1, 1};
          o.groups = 2;
          return std::make_shared<ConvTranspose2d>(4, 2, 3, o);
        },
        unary}},
      {"maxpool2d",
       {[] {
          return std::make_shared<MaxPool2d>(Pair{3, 3}, Pair{2, 2}, Pair{1, 1});
        },
        unary}},
      {"avgpool2d", {make<AvgPool2d>(2), unary}},
      {"avgpool2d_pad_exclude",
       {[] {
          return std::make_shared<AvgPool2d>(Pair{3, 3}, Pair{2, 2}, Pair{1, 1}, false, false);
        },
        unary}},
      {"maxpool2d_ceil",
       {[] {
          return std::make_shared<MaxPool2d>(Pair{3, 3}, Pair{2, 2}, Pair{1, 1}, Pair{1, 1}, true);
        },
        unary}},
      {"maxpool2d_ceil_dilation",
       {[] {
          return std::make_shared<MaxPool2d>(Pair{2, 3}, Pair{3, 2}, Pair{0, 0}, Pair{2, 1}, true);
        },
        unary}},
      {"avgpool2d_ceil",
       {[] {
          return std::make_shared<AvgPool2d>(Pair{3, 3}, Pair{2, 2}, Pair{1, 1}, true);
        },
        unary}},
      {"avgpool2d_ceil_exclude",
       {[] {
          return std::make_shared<AvgPool2d>(Pair{2, 3}, Pair{2, 2}, Pair{1, 1}, true, false);
        },
        unary}},
      {"adaptive_avgpool2d",
       {[] {
          return std::make_shared<AdaptiveAvgPool2d>(Pair{3, 2});
        },
        unary}},
      {"small_cnn",
       {[] {
          Conv2dOptions pad1;
          pad1.padding = {1, 1};
          return std::make_shared<Sequential>(std::initializer_list<ModulePtr>{
              std::make_shared<Conv2d>(1, 4, 3, pad1), std::make_shared<BatchNorm2d>(4),
              std::make_shared<ReLU>(), std::make_shared<MaxPool2d>(2), std::make_shared<Flatten>(),
              std::make_shared<Linear>(36, 5)});
        },
        unary, true, 2}},
      {"ce", {make<CrossEntropyLoss>(), loss_call}},
      {"ce_smooth_sum",
       {[] { return std::make_shared<CrossEntropyLoss>(Tensor(), -100, "sum", 0.2); }, loss_call}},
      {"ce_none_nd", {[] { return std::make_shared<CrossEntropyLoss>(Tensor(), -100, "none"); }, loss_call}},
      {"ce_probs",
       {[] { return std::make_shared<CrossEntropyLoss>(Tensor(), -100, "mean", 0.1); }, loss_call}},
      {"mse", {make<MSELoss>(), loss_call}},
      {"l1_sum", {make<L1Loss>(std::string("sum")), loss_call}},
      {"smooth_l1", {make<SmoothL1Loss>(std::string("mean"), 0.5), loss_call}},
      {"huber", {make<HuberLoss>(std::string("mean"), 0.7), loss_call}},
      {"bce", {make<BCELoss>(), loss_call}},
      {"kldiv_batchmean", {make<KLDivLoss>(std::string("batchmean")), loss_call}},
  };
}

}  // namespace

TEST_CASE("nn parity with PyTorch: layers and losses from committed fixtures") {
  std::map<std::string, Tensor> fx;
  for (auto& [k, t] : nn::load_safetensors(std::string(EMBER_FIXTURE_DIR) + "/nn_parity.safetensors"))
    fx[k] = t;
  auto all = cases();
  // Losses whose options are tensors taken from the fixture file.
  all["ce_weight_ignore_smooth"] = {
      [&] { return std::make_shared<nn::CrossEntropyLoss>(fx.at("weight_for_ce"), 4, "mean", 0.1); },
      loss_call};
  all["nll_weight"] = {[&] { return std::make_shared<nn::NLLLoss>(fx.at("weight_for_ce")); }, loss_call};
  all["bce_logits_pos"] = {
      [&] { return std::make_shared<nn::BCEWithLogitsLoss>(Tensor(), "mean", fx.at("pos_weight_for_bce")); },
      loss_call};
  // Attention and Transformer cases: masks come from the fixture (NAME.mask.<arg>).
  auto mask = [&](const std::string& name, const std::string& arg) {
    auto it = fx.find(name + ".mask." + arg);
    return it == fx.end() ? Tensor() : it->second;
  };
  auto mha_case = [&](const std::string& name, int64_t heads, nn::MultiheadAttentionOptions o,
                      bool need_weights, bool average) {
    all[name] = {[=] { return std::make_shared<nn::MultiheadAttention>(8, heads, o); },
                 [=](nn::Module& m, const std::vector<Tensor>& in) {
                   nn::AttentionForward a;
                   a.attn_mask = mask(name, "attn_mask");
                   a.key_padding_mask = mask(name, "key_padding_mask");
                   a.need_weights = need_weights;
                   a.average_attn_weights = average;
                   auto [out, w] = static_cast<nn::MultiheadAttention&>(m).forward(in[0], in[1], in[2], a);
                   return w.defined() ? cat({out.flatten(), w.flatten()}) : out;
                 }};
  };
  mha_case("mha_basic", 2, {}, true, true);
  nn::MultiheadAttentionOptions bf;
  bf.batch_first = true;
  mha_case("mha_bool_masks_bf", 2, bf, true, false);
  nn::MultiheadAttentionOptions kv;
  kv.kdim = 5;
  kv.vdim = 6;
  kv.add_bias_kv = true;
  kv.add_zero_attn = true;
  mha_case("mha_float3d_kv_bias_zero", 2, kv, true, true);
  nn::MultiheadAttentionOptions nobias;
  nobias.bias = false;
  mha_case("mha_no_weights", 4, nobias, false, true);
  for (bool norm_first : {false, true}) {
    const std::string tag = norm_first ? "pre" : "post";
    nn::TransformerLayerOptions enc;
    enc.d_model = 8;
    enc.nhead = 2;
    enc.dim_feedforward = 16;
    enc.dropout = 0.0;
    enc.activation = "gelu";
    enc.norm_first = norm_first;
    const std::string en = "encoder_layer_" + tag;
    all[en] = {[=] { return std::make_shared<nn::TransformerEncoderLayer>(enc); },
               [=](nn::Module& m, const std::vector<Tensor>& in) {
                 return static_cast<nn::TransformerEncoderLayer&>(m).forward(
                     in[0], nn::EncoderMasks{mask(en, "src_mask"), mask(en, "src_key_padding_mask")});
               }};
    nn::TransformerLayerOptions dec = enc;
    dec.activation = "relu";
    dec.batch_first = true;
    const std::string dn = "decoder_layer_" + tag;
    all[dn] = {[=] { return std::make_shared<nn::TransformerDecoderLayer>(dec); },
               [=](nn::Module& m, const std::vector<Tensor>& in) {
                 nn::DecoderMasks dm;
                 dm.tgt_mask = mask(dn, "tgt_mask");
                 dm.memory_key_padding_mask = mask(dn, "memory_key_padding_mask");
                 return static_cast<nn::TransformerDecoderLayer&>(m).forward(in[0], in[1], dm);
               }};
    nn::TransformerOptions t;
    t.d_model = 8;
    t.nhead = 2;
    t.num_encoder_layers = 2;
    t.num_decoder_layers = 2;
    t.dim_feedforward = 16;
    t.dropout = 0.0;
    t.norm_first = norm_first;
    const std::string tn = "transformer_" + tag;
    all[tn] = {[=] { return std::make_shared<nn::Transformer>(t); },
               [=](nn::Module& m, const std::vector<Tensor>& in) {
                 nn::TransformerMasks tm;
                 tm.tgt_mask = mask(tn, "tgt_mask");
                 return static_cast<nn::Transformer&>(m).forward(in[0], in[1], tm);
               }};
  }
  size_t checked = 0;
  for (auto& [name, c] : all) {
    INFO("case " << name);
    REQUIRE(fx.count(name + ".out"));
    auto module = c.make();
    nn::NamedTensors state;
    const std::string prefix = name + ".state.";
    for (auto& [k, t] : fx)
      if (k.rfind(prefix, 0) == 0) state.emplace_back(k.substr(prefix.size()), t);
    module->load_state_dict(state, /*strict=*/true);
    module->train(c.train);
    std::vector<Tensor> inputs;
    for (int i = 0; fx.count(name + ".in" + std::to_string(i)); ++i) {
      Tensor x = fx[name + ".in" + std::to_string(i)].clone();
      if (x.is_floating_point()) x.requires_grad_();
      inputs.push_back(x);
    }
    for (int s = 0; s + 1 < c.steps; ++s) {
      std::vector<Tensor> detached;
      for (auto& x : inputs) detached.push_back(x.detach());
      c.call(*module, detached);
    }
    Tensor out = c.call(*module, inputs);
    REQUIRE(out.sizes() == fx[name + ".out"].sizes());
    CHECK(allclose(out, fx[name + ".out"], 1e-4, 1e-5));
    (out * fx[name + ".w"]).sum().backward();
    for (size_t i = 0; i < inputs.size(); ++i) {
      const std::string key = name + ".grad_in" + std::to_string(i);
      if (!fx.count(key)) continue;
      INFO("input gradient " << i);
      REQUIRE(inputs[i].grad().defined());
      CHECK(allclose(inputs[i].grad(), fx[key], 1e-4, 1e-5));
    }
    for (auto& [pname, p] : module->named_parameters()) {
      const std::string key = name + ".grad." + pname;
      INFO("parameter gradient " << pname);
      REQUIRE(fx.count(key));
      REQUIRE(p.grad().defined());
      CHECK(allclose(p.grad(), fx[key], 1e-4, 1e-5));
    }
    for (auto& [bname, b] : module->named_buffers()) {
      const std::string key = name + ".after." + bname;
      INFO("buffer after the steps " << bname);
      REQUIRE(fx.count(key));
      CHECK(allclose(b.to(kFloat64), fx[key].to(kFloat64), 1e-4, 1e-5));
    }
    ++checked;
  }
  CHECK(checked == all.size());
  CHECK(checked >= 46);
}
