// Exports the models ONNX export must handle (an MLP, the CNN with trained BatchNorm statistics, a
// pre-norm causal TransformerEncoder, a cross-attention MultiheadAttention with a key padding mask and
// both outputs, a seq2seq Transformer with token embeddings) into <dir>/<case>.onnx, and writes
// <dir>/<case>.json: for two settings of the dynamic axes, the inputs and ember's outputs. The
// checker (check_onnx.py) and ONNX Runtime (run_onnxruntime.js) then judge the files.
#include <cmath>
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>

#include "ember/core/atomic_file.h"
#include "ember/ember.h"
#include "gpt_model.h"

using namespace ember;
using json = nlohmann::json;

namespace {

json tensor_json(const std::string& name, const Tensor& t) {
  json j{{"name", name}, {"shape", t.sizes()}};
  Tensor c = t.contiguous();
  if (t.dtype() == kFloat32) {
    j["dtype"] = "float32";
    j["data"] = c.to_vector<float>();
  } else if (t.dtype() == kInt64) {
    j["dtype"] = "int64";
    j["data"] = c.to_vector<int64_t>();
  } else if (t.dtype() == kBool) {
    j["dtype"] = "bool";
    std::vector<int> v;
    for (int64_t x : c.to(kInt64).to_vector<int64_t>()) v.push_back(static_cast<int>(x));
    j["data"] = v;
  } else {
    throw Error("onnx_export_cases: unexpected dtype " + std::string(dtype_name(t.dtype())));
  }
  return j;
}

struct Case {
  std::string name;
  onnx::Forward forward;
  std::vector<std::string> input_names, output_names;
  std::vector<std::vector<Tensor>> runs;  // runs[0] is the example the model is traced at
  std::map<std::string, std::vector<int64_t>> dynamic_axes;
  nn::Module* module;
};

void write_case(const Case& c, const std::string& dir) {
  onnx::ExportOptions options{
      .input_names = c.input_names, .output_names = c.output_names, .dynamic_axes = c.dynamic_axes};
  onnx::export_function(c.forward, c.runs[0], dir + "/" + c.name + ".onnx", options, c.module);
  json j{{"model", c.name + ".onnx"}, {"runs", json::array()}};
  for (const auto& inputs : c.runs) {
    autograd::NoGradGuard no_grad;
    const auto outputs = c.forward(inputs);
    json run{{"inputs", json::array()}, {"outputs", json::array()}};
    for (size_t i = 0; i < inputs.size(); ++i)
      run["inputs"].push_back(tensor_json(c.input_names[i], inputs[i]));
    for (size_t i = 0; i < outputs.size(); ++i)
      run["outputs"].push_back(tensor_json(c.output_names[i], outputs[i]));
    j["runs"].push_back(run);
  }
  std::ofstream(dir + "/" + c.name + ".json") << j.dump();
  std::cout << "exported " << c.name << "\n";
}

Tensor tokens(int64_t n, int64_t t, int64_t vocab) { return randint(0, vocab, {n, t}); }

// Key padding: the last `pad[i]` keys of row i are ignored (never all of them).
Tensor padding_mask(int64_t n, int64_t s) {
  Tensor m = zeros({n, s}, kBool);
  for (int64_t i = 0; i < n; ++i) m.select(0, i).slice(0, s - 1 - (i % (s - 1)), {}).fill_(1);
  return m;
}

struct Seq2Seq : nn::Module {
  std::shared_ptr<nn::Embedding> src_embed, tgt_embed, positions;
  std::shared_ptr<nn::Transformer> transformer;
  std::shared_ptr<nn::Linear> head;
  Seq2Seq(int64_t vocab, int64_t d) : nn::Module("Seq2Seq") {
    src_embed = register_module("src_embed", std::make_shared<nn::Embedding>(vocab, d));
    tgt_embed = register_module("tgt_embed", std::make_shared<nn::Embedding>(vocab, d));
    positions = register_module("positions", std::make_shared<nn::Embedding>(64, d));
    nn::TransformerOptions o;
    o.d_model = d, o.nhead = 4, o.dim_feedforward = 64, o.dropout = 0.1, o.batch_first = true;
    o.num_encoder_layers = 2, o.num_decoder_layers = 2;
    transformer = register_module("transformer", std::make_shared<nn::Transformer>(o));
    head = register_module("head", std::make_shared<nn::Linear>(d, vocab));
  }
  Tensor embed(const std::shared_ptr<nn::Embedding>& table, const Tensor& ids) {
    Tensor pos = arange(ids.size(1));
    return (*table)(ids)*std::sqrt(32.0) + (*positions)(pos);
  }
  Tensor forward(const Tensor& src, const Tensor& tgt) {
    const int64_t t = tgt.size(1);
    nn::TransformerMasks masks;
    masks.tgt_mask = nn::Transformer::generate_square_subsequent_mask(t);
    masks.src_key_padding_mask = src == 0;
    return (*head)(transformer->forward(embed(src_embed, src), embed(tgt_embed, tgt), masks));
  }
};

// The layers the other cases leave out: dilated convolution, average and adaptive pooling with
// padding, Conv1d, BatchNorm1d with trained statistics, and the remaining activations.
struct Layers : nn::Module {
  std::shared_ptr<nn::Conv2d> conv;
  std::shared_ptr<nn::AvgPool2d> avg;
  std::shared_ptr<nn::Conv1d> conv1d;
  std::shared_ptr<nn::AdaptiveAvgPool2d> adaptive;
  std::shared_ptr<nn::Linear> fc1, fc2;
  std::shared_ptr<nn::BatchNorm1d> bn;
  Layers() : nn::Module("Layers") {
    conv = register_module("conv", std::make_shared<nn::Conv2d>(
                                       3, 8, 3, nn::Conv2dOptions{.padding = {2, 2}, .dilation = {2, 2}}));
    avg = register_module(
        "avg", std::make_shared<nn::AvgPool2d>(Pair{2, 2}, std::nullopt, Pair{1, 1}, false, false));
    conv1d =
        register_module("conv1d", std::make_shared<nn::Conv1d>(8, 4, 3, nn::Conv1dOptions{.padding = 1}));
    adaptive = register_module("adaptive", std::make_shared<nn::AdaptiveAvgPool2d>(3));
    fc1 = register_module("fc1", std::make_shared<nn::Linear>(36, 16));
    bn = register_module("bn", std::make_shared<nn::BatchNorm1d>(16));
    fc2 = register_module("fc2", std::make_shared<nn::Linear>(16, 16));
  }
  Tensor forward(const Tensor& x) override {
    Tensor h = leaky_relu((*avg)((*conv)(x)), 0.1);  // [N, 8, 9, 9]
    const int64_t n = h.size(0);
    h = (*conv1d)(h.reshape({n, 8, 81})).reshape({n, 4, 9, 9});
    h = (*adaptive)(h).flatten(1);  // [N, 36]
    h = silu((*bn)((*fc1)(h)));
    h = softplus(gelu((*fc2)(h), "tanh"), 2.0, 5.0);
    return softmax(clamp(h, -1.0, 3.0), 1);
  }
};

}  // namespace

int main(int argc, char** argv) try {
  if (argc != 2) {
    std::cerr << "usage: onnx_export_cases <output dir>\n";
    return 2;
  }
  const std::string dir = argv[1];
  create_directories_or_fail(dir, "onnx_export_cases");
  manual_seed(7);

  auto mlp = std::make_shared<nn::Sequential>(std::initializer_list<nn::ModulePtr>{
      std::make_shared<nn::Linear>(20, 32), std::make_shared<nn::GELU>(),
      std::make_shared<nn::Linear>(32, 32), std::make_shared<nn::Tanh>(), std::make_shared<nn::Dropout>(0.2),
      std::make_shared<nn::Linear>(32, 10), std::make_shared<nn::LogSoftmax>(1)});
  mlp->eval();
  write_case({"mlp",
              [&](const std::vector<Tensor>& in) { return std::vector<Tensor>{(*mlp)(in[0])}; },
              {"x"},
              {"log_probs"},
              {{randn({4, 20})}, {randn({7, 20})}},
              {{"x", {0}}},
              mlp.get()},
             dir);

  auto cnn = std::make_shared<nn::Sequential>(std::initializer_list<nn::ModulePtr>{
      std::make_shared<nn::Conv2d>(1, 8, 3, nn::Conv2dOptions{.padding = {1, 1}}),
      std::make_shared<nn::BatchNorm2d>(8), std::make_shared<nn::ReLU>(), std::make_shared<nn::MaxPool2d>(2),
      std::make_shared<nn::Conv2d>(8, 16, 3, nn::Conv2dOptions{.stride = {2, 2}, .groups = 2}),
      std::make_shared<nn::BatchNorm2d>(16), std::make_shared<nn::ReLU>(), std::make_shared<nn::Flatten>(),
      std::make_shared<nn::Linear>(16 * 6 * 6, 10)});
  for (int i = 0; i < 3; ++i) (*cnn)(randn({8, 1, 28, 28}) * 2.0 + 0.5);  // running statistics move
  cnn->eval();
  write_case({"cnn",
              [&](const std::vector<Tensor>& in) { return std::vector<Tensor>{(*cnn)(in[0])}; },
              {"images"},
              {"logits"},
              {{randn({4, 1, 28, 28})}, {randn({3, 1, 28, 28})}},
              {{"images", {0}}},
              cnn.get()},
             dir);

  auto layers = std::make_shared<Layers>();
  for (int i = 0; i < 3; ++i) (*layers)(randn({6, 3, 16, 16}) + 0.3);
  layers->eval();
  write_case({"layers",
              [&](const std::vector<Tensor>& in) { return std::vector<Tensor>{(*layers)(in[0])}; },
              {"x"},
              {"probs"},
              {{randn({4, 3, 16, 16})}, {randn({5, 3, 16, 16})}},
              {{"x", {0}}},
              layers.get()},
             dir);

  // The GPT of examples/gpt: causal fused attention, learned positions, the head tied to the embedding.
  auto gpt = std::make_shared<gpt::GPT>(
      gpt::GPTConfig{.vocab_size = 30, .block_size = 32, .n_layer = 2, .n_head = 4, .d_model = 32});
  gpt->eval();
  write_case({"gpt",
              [&](const std::vector<Tensor>& in) { return std::vector<Tensor>{(*gpt)(in[0])}; },
              {"tokens"},
              {"logits"},
              {{tokens(2, 12, 30)}, {tokens(3, 7, 30)}},
              {{"tokens", {0, 1}}},
              gpt.get()},
             dir);

  nn::TransformerLayerOptions lo;
  lo.d_model = 32, lo.nhead = 4, lo.dim_feedforward = 64, lo.activation = "gelu", lo.batch_first = true,
  lo.norm_first = true;
  auto encoder = std::make_shared<nn::TransformerEncoder>(nn::TransformerEncoderLayer(lo), 2,
                                                          std::make_shared<nn::LayerNorm>(Shape{32}));
  encoder->eval();
  write_case({"encoder",
              [&](const std::vector<Tensor>& in) {
                return std::vector<Tensor>{encoder->forward(in[0], {.is_causal = true})};
              },
              {"src"},
              {"hidden"},
              {{randn({2, 10, 32})}, {randn({3, 7, 32})}},
              {{"src", {0, 1}}},
              encoder.get()},
             dir);

  auto mha = std::make_shared<nn::MultiheadAttention>(
      32, 4, nn::MultiheadAttentionOptions{.kdim = 24, .vdim = 16, .batch_first = true});
  mha->eval();
  write_case({"mha",
              [&](const std::vector<Tensor>& in) {
                auto [out, weights] = mha->forward(in[0], in[1], in[2], {.key_padding_mask = in[3]});
                return std::vector<Tensor>{out, weights};
              },
              {"query", "key", "value", "key_padding_mask"},
              {"attn_output", "attn_weights"},
              {{randn({2, 5, 32}), randn({2, 9, 24}), randn({2, 9, 16}), padding_mask(2, 9)},
               {randn({3, 4, 32}), randn({3, 6, 24}), randn({3, 6, 16}), padding_mask(3, 6)}},
              {{"query", {0, 1}}, {"key", {0, 1}}, {"value", {0, 1}}, {"key_padding_mask", {0, 1}}},
              mha.get()},
             dir);

  auto seq2seq = std::make_shared<Seq2Seq>(40, 32);
  seq2seq->eval();
  write_case(
      {"seq2seq",
       [&](const std::vector<Tensor>& in) { return std::vector<Tensor>{seq2seq->forward(in[0], in[1])}; },
       {"src", "tgt"},
       {"logits"},
       {{tokens(2, 9, 40), tokens(2, 6, 40)}, {tokens(3, 7, 40), tokens(3, 5, 40)}},
       {{"src", {0, 1}}, {"tgt", {0, 1}}},
       seq2seq.get()},
      dir);
  return 0;
} catch (const std::exception& e) {
  std::cerr << "onnx_export_cases: " << e.what() << "\n";
  return 1;
}
