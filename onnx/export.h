// ONNX export: runs a forward once under a tracer (core/trace.h), turns the ops it ran into an ONNX
// graph and writes the model file. Parameters and buffers become initializers under their module
// names; dynamic axes become symbolic dimensions, and sizes that follow them are computed in the graph.
//
//   ember::onnx::export_model(*model, example, "model.onnx", {.dynamic_axes = {{"input_0", {0}}}});
//
// See docs/onnx.md for what maps and how the exported files are checked.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "ember/core/tensor.h"

namespace ember::nn {
class Module;
}

namespace ember::onnx {

struct ExportOptions {
  int64_t opset_version = 17;
  std::vector<std::string> input_names{};   // default input_0, input_1, ...
  std::vector<std::string> output_names{};  // default output_0, output_1, ...
  // Input name -> the axes whose size may change (batch, sequence length). Axes of different inputs
  // with the same size in the example are taken to be one dimension (src and tgt batch, say); give
  // independent axes different example sizes.
  std::map<std::string, std::vector<int64_t>> dynamic_axes{};
};

using Forward = std::function<std::vector<Tensor>(const std::vector<Tensor>&)>;

// Runs model(example_input) in eval mode (the module's modes are restored after) and writes the ONNX
// model to `path` (a temporary file, renamed once complete).
void export_model(nn::Module& model, const Tensor& example_input, const std::string& path,
                  const ExportOptions& options = {});

// The same for any forward: several inputs and outputs, masks, modules with other signatures.
// Initializers take their names from `names` (a module whose parameters and buffers the forward uses;
// its modes are left alone) when given, otherwise they are called const_0, const_1, ...
void export_function(const Forward& forward, const std::vector<Tensor>& example_inputs,
                     const std::string& path, const ExportOptions& options = {},
                     const nn::Module* names = nullptr);

}  // namespace ember::onnx
