// What the ONNX exporter builds a graph with (internal to onnx/): a GraphBuilder that names values and
// adds nodes and initializers to an onnx::GraphProto, and the OpContext an op's mapping reads its
// traced event from. Sizes that change with a dynamic axis are found by comparing the same event in
// several traces (the example, then one trace per dynamic dimension at another size) and are computed
// in the graph from the input's Shape.
#pragma once
#include <onnx/onnx_pb.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "ember/core/trace.h"

namespace ember::onnx::detail {

// One dynamic dimension: the graph input it is read from, its size in the example and in its variant
// trace (traces 1..n vary one dimension each).
struct Symbol {
  std::string input;
  int64_t axis = 0;
  int64_t size = 0, variant_size = 0;
  std::string dim_param{};
};

int32_t onnx_type(DType dt);

class GraphBuilder {
 public:
  GraphBuilder(::onnx::GraphProto* graph, std::vector<Symbol> symbols);

  std::string fresh(const std::string& hint);
  // Adds a node with `n_outputs` fresh outputs (or the given names) and returns it.
  ::onnx::NodeProto& node(const std::string& op, const std::vector<std::string>& inputs, int n_outputs = 1);
  ::onnx::NodeProto& node_into(const std::string& op, const std::vector<std::string>& inputs,
                               const std::vector<std::string>& outputs);
  std::string initializer(const std::string& name, const Tensor& value);
  std::string constant(const Tensor& value);               // const_0, const_1, ...
  std::string scalar(double value, DType dtype);           // a 0-d constant
  std::string ints(const std::vector<int64_t>& values);    // a 1-D int64 constant
  std::string constant_scalar_int(int64_t value);          // a 0-d int64 constant
  std::string cast(const std::string& value, DType from, DType to);
  // A 1-D int64 tensor holding a list of sizes, given its value in every trace; constant when it
  // never changes, otherwise computed from the symbols. `what` names it in errors.
  std::string sizes(const std::vector<std::vector<int64_t>>& per_trace, const std::string& what);
  // The same for one size as a 0-d int64 tensor.
  std::string size_scalar(const std::vector<int64_t>& per_trace, const std::string& what);
  // The dim_param of a dimension seen as `per_trace` (its size in each trace), or "" if it is not
  // one symbol.
  std::string dim_param(const std::vector<int64_t>& per_trace) const;

 private:
  std::string symbol_value(size_t g);
  std::string size_expression(const std::vector<int64_t>& per_trace, const std::string& what);

  ::onnx::GraphProto* graph_;
  std::vector<Symbol> symbols_;
  std::map<size_t, std::string> symbol_values_;
  std::map<std::string, int> name_counts_;
  int constants_ = 0;
};

void set_attr(::onnx::NodeProto& n, const char* name, int64_t value);
void set_attr(::onnx::NodeProto& n, const char* name, double value);
void set_attr(::onnx::NodeProto& n, const char* name, const std::vector<int64_t>& values);
void set_attr(::onnx::NodeProto& n, const char* name, const std::string& value);
void set_attr(::onnx::NodeProto& n, const char* name, const Tensor& value);
void fill_tensor(::onnx::TensorProto* proto, const Tensor& value);

// One traced op as a mapping sees it: the event in every trace (0 is the example's), its input names.
struct OpContext {
  GraphBuilder& g;
  std::vector<const trace::Event*> traces;
  std::vector<std::string> in;  // "" for an absent optional input

  const trace::Event& event() const { return *traces[0]; }
  const Tensor& input(size_t i) const { return event().inputs[i]; }
  const Tensor& output(size_t i = 0) const { return event().outputs[i]; }
  DType out_dtype(size_t i = 0) const { return output(i).dtype(); }
  // Input i cast to `dt` when it has another dtype.
  std::string input_as(size_t i, DType dt);
  // An int argument that must be the same in every trace.
  std::vector<int64_t> static_ints(const std::string& key) const;
  int64_t static_int(const std::string& key) const { return static_ints(key).at(0); }
  double number(const std::string& key) const { return event().attrs.floats.at(key); }
  // An int-list argument that may follow the dynamic axes: a 1-D int64 value in the graph.
  std::string sizes(const std::string& key);
  std::string size_scalar(const std::string& key);
};

using Mapping = std::function<std::vector<std::string>(OpContext&)>;
// ember op name -> its mapping; an op missing here cannot be exported.
const std::map<std::string, Mapping>& mappings();

}  // namespace ember::onnx::detail
