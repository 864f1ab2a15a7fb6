// ONNX export from inside the library: the graph it writes for small models (read back with ONNX's
// protobuf messages), and every way an export can fail with a clear error and no file left behind.
// The outside tools (ONNX's checker, ONNX Runtime) judge the bigger models in tests/onnx/.
#include <onnx/onnx_pb.h>

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "ember/ember.h"

using namespace ember;
namespace fs = std::filesystem;

namespace {

std::string scratch(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / "ember-onnx-tests";
  fs::create_directories(dir);
  fs::remove(dir / name);
  return (dir / name).string();
}

::onnx::ModelProto read_model(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  ::onnx::ModelProto model;
  REQUIRE(model.ParseFromString(bytes.str()));
  return model;
}

std::vector<std::string> op_types(const ::onnx::ModelProto& m) {
  std::vector<std::string> ops;
  for (const auto& n : m.graph().node()) ops.push_back(n.op_type());
  return ops;
}

bool has(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

struct Twice : autograd::Function<Twice> {
  static Tensor forward(autograd::AutogradContext*, Tensor x) { return x * 2; }
  static autograd::variable_list backward(autograd::AutogradContext*, autograd::variable_list g) {
    return {g[0] * 2};
  }
};

}  // namespace

TEST_CASE("onnx export writes initializers under module names and symbolic batch dims") {
  manual_seed(1);
  auto model = std::make_shared<nn::Sequential>(std::initializer_list<nn::ModulePtr>{
      std::make_shared<nn::Linear>(6, 5), std::make_shared<nn::ReLU>(), std::make_shared<nn::Linear>(5, 3)});
  const std::string path = scratch("mlp.onnx");
  ember::onnx::export_model(*model, randn({4, 6}), path, {.dynamic_axes = {{"input_0", {0}}}});
  CHECK(model->is_training());  // the modes are put back
  auto m = read_model(path);
  CHECK(m.opset_import(0).version() == 17);
  const auto ops = op_types(m);
  CHECK(has(ops, "Gemm"));
  CHECK(has(ops, "Relu"));
  std::vector<std::string> inits;
  for (const auto& t : m.graph().initializer()) inits.push_back(t.name());
  CHECK(has(inits, "0.weight"));
  CHECK(has(inits, "2.bias"));
  REQUIRE(m.graph().input_size() == 1);
  CHECK(m.graph().input(0).type().tensor_type().shape().dim(0).dim_param() == "input_0_dim0");
  CHECK(m.graph().input(0).type().tensor_type().shape().dim(1).dim_value() == 6);
  CHECK(m.graph().output(0).name() == "output_0");
  CHECK(m.graph().output(0).type().tensor_type().shape().dim(0).dim_param() == "input_0_dim0");
}

TEST_CASE("onnx export computes sizes that follow a dynamic axis in the graph") {
  // reshape to [B * 3, 2]: the batch-dependent size is read from the input's Shape, not frozen.
  const std::string path = scratch("reshape.onnx");
  ember::onnx::export_function(
      [](const std::vector<Tensor>& in) {
        return std::vector<Tensor>{in[0].reshape({-1, 2}) * 3.0};
      },
      {randn({4, 3, 2})}, path, {.dynamic_axes = {{"input_0", {0}}}});
  const auto ops = op_types(read_model(path));
  CHECK(has(ops, "Shape"));
  CHECK(has(ops, "Reshape"));
  // Without dynamic axes the same size is a constant.
  ember::onnx::export_function(
      [](const std::vector<Tensor>& in) {
        return std::vector<Tensor>{in[0].reshape({-1, 2})};
      },
      {randn({4, 3, 2})}, path);
  CHECK_FALSE(has(op_types(read_model(path)), "Shape"));
}

TEST_CASE("onnx export: an op without a mapping is an error naming it, and no file is written") {
  const std::string path = scratch("custom.onnx");
  auto forward = [](const std::vector<Tensor>& in) { return std::vector<Tensor>{Twice::apply(in[0]) + 1.0}; };
  try {
    ember::onnx::export_function(forward, {randn({2, 3})}, path);
    FAIL("expected an error");
  } catch (const Error& e) {
    const std::string what = e.what();
    CHECK(what.find("autograd::Function") != std::string::npos);
    CHECK(what.find("Twice") != std::string::npos);
    CHECK(what.find("no ONNX mapping") != std::string::npos);
  }
  CHECK_FALSE(fs::exists(path));
  CHECK_FALSE(fs::exists(path + ".tmp"));
}

TEST_CASE("onnx export: training-mode dropout and batch norm are errors that say to call eval()") {
  const std::string path = scratch("train.onnx");
  auto drop = std::make_shared<nn::Dropout>(0.5);
  CHECK_THROWS_WITH_AS(ember::onnx::export_function(
                           [&](const std::vector<Tensor>& in) { return std::vector<Tensor>{(*drop)(in[0])}; },
                           {randn({2, 3})}, path),
                       doctest::Contains("eval()"), Error);
  auto bn = std::make_shared<nn::BatchNorm1d>(3);
  CHECK_THROWS_WITH_AS(ember::onnx::export_function(
                           [&](const std::vector<Tensor>& in) { return std::vector<Tensor>{(*bn)(in[0])}; },
                           {randn({4, 3})}, path),
                       doctest::Contains("training mode"), Error);
  CHECK_FALSE(fs::exists(path));
  // export_model switches to eval mode itself.
  ember::onnx::export_model(*bn, randn({4, 3}), path);
  CHECK(has(op_types(read_model(path)), "BatchNormalization"));
}

TEST_CASE("onnx export: a value computed outside the traced ops is caught, not frozen into the graph") {
  const std::string path = scratch("hidden.onnx");
  // nonzero has no mapping and records no graph node: its result would silently become a constant.
  auto forward = [](const std::vector<Tensor>& in) {
    Tensor idx = nonzero(in[0] > 0).select(1, 0);
    return std::vector<Tensor>{index_select(in[0], 0, idx)};
  };
  CHECK_THROWS_WITH_AS(ember::onnx::export_function(forward, {tensor({-1.0, 2.0, 3.0, -4.0, 5.0})}, path),
                       doctest::Contains("changes with the inputs"), Error);
  CHECK_FALSE(fs::exists(path));
}

TEST_CASE("onnx export: bad options are clear errors") {
  const std::string path = scratch("bad.onnx");
  auto id = [](const std::vector<Tensor>& in) { return std::vector<Tensor>{in[0] + 1.0}; };
  CHECK_THROWS_WITH_AS(
      ember::onnx::export_function(id, {randn({2})}, path, ember::onnx::ExportOptions{.opset_version = 11}),
      doctest::Contains("opset_version 11"), Error);
  CHECK_THROWS_WITH_AS(ember::onnx::export_function(id, {randn({2})}, path, {.dynamic_axes = {{"x", {0}}}}),
                       doctest::Contains("not an input name"), Error);
  CHECK_THROWS_WITH_AS(
      ember::onnx::export_function(id, {randn({2})}, path, {.dynamic_axes = {{"input_0", {3}}}}),
      doctest::Contains("out of range"), Error);
  CHECK_THROWS_WITH_AS(ember::onnx::export_function(id, {randn({2})}, path, {.input_names = {"a", "b"}}),
                       doctest::Contains("2 input names for 1 input"), Error);
  // A size that follows the batch in a way the graph cannot compute (B - 1 is fine, B * B + 1 is not).
  auto odd = [](const std::vector<Tensor>& in) {
    const int64_t b = in[0].size(0);
    return std::vector<Tensor>{zeros({b * b + 1})};
  };
  CHECK_THROWS_WITH_AS(
      ember::onnx::export_function(odd, {randn({3})}, path, {.dynamic_axes = {{"input_0", {0}}}}),
      doctest::Contains("cannot compute"), Error);
  CHECK_FALSE(fs::exists(path));
}

namespace {
using Pair2 = std::array<Tensor, 2>;
// A LightningModule inside a LightningModule, as Lightning users nest them (a backbone and a head).
struct Backbone : trainer::LightningModule<Pair2> {
  std::shared_ptr<nn::Sequential> net;
  Backbone() : LightningModule("Backbone") {
    net = register_module("net", std::make_shared<nn::Sequential>(std::initializer_list<nn::ModulePtr>{
                                     std::make_shared<nn::Linear>(5, 8), std::make_shared<nn::Dropout>(0.3),
                                     std::make_shared<nn::GELU>("tanh")}));
  }
  Tensor forward(const Tensor& x) override { return (*net)(x); }
  Tensor training_step(const Pair2& b, int64_t) override { return forward(b[0]).sum(); }
};
struct Classifier : trainer::LightningModule<Pair2> {
  std::shared_ptr<Backbone> backbone;
  std::shared_ptr<nn::Linear> head;
  Classifier() : LightningModule("Classifier") {
    backbone = register_module("backbone", std::make_shared<Backbone>());
    head = register_module("head", std::make_shared<nn::Linear>(8, 3));
  }
  Tensor forward(const Tensor& x) override { return softmax((*head)((*backbone)(x)), -1); }
  Tensor training_step(const Pair2& b, int64_t) override { return forward(b[0]).sum(); }
};
}  // namespace

TEST_CASE("LightningModule::to_onnx exports nested modules in eval mode and restores the modes") {
  Classifier model;
  model.train();
  const std::string path = scratch("lightning.onnx");
  model.to_onnx(path, randn({2, 5}), {.input_names = {"x"}, .dynamic_axes = {{"x", {0}}}});
  CHECK(model.is_training());
  CHECK(model.backbone->net->is_training());
  auto m = read_model(path);
  std::vector<std::string> inits;
  for (const auto& t : m.graph().initializer()) inits.push_back(t.name());
  CHECK(has(inits, "backbone.net.0.weight"));
  CHECK(has(inits, "head.bias"));
  const auto ops = op_types(m);
  CHECK(has(ops, "Tanh"));  // GELU's tanh form
  CHECK(has(ops, "Softmax"));
  CHECK_FALSE(has(ops, "Dropout"));
}
