// The graph builder behind onnx/builder.h: value names, initializers, and sizes that follow the
// dynamic axes. A size seen as v in the example and v' in the trace where one dimension went from
// s to s' is c * s^e when v' * s^e == v * s'^e (e = 0, 1 or 2 per dimension), or s + d when it moves
// by exactly s' - s; anything else cannot be written as graph arithmetic and is an error.
#include "ember/onnx/builder.h"

#include <cstring>

#include "ember/core/error.h"
#include "ember/core/ops.h"

namespace ember::onnx::detail {

int32_t onnx_type(DType dt) {
  using P = ::onnx::TensorProto;
  switch (dt) {
    case kFloat32: return P::FLOAT;
    case kFloat64: return P::DOUBLE;
    case kInt64: return P::INT64;
    case kInt32: return P::INT32;
    case kBool: return P::BOOL;
    case kFloat16: return P::FLOAT16;
    case kBFloat16: return P::BFLOAT16;
  }
  fail("onnx export: dtype ", dtype_name(dt), " has no ONNX type");
}

void fill_tensor(::onnx::TensorProto* proto, const Tensor& value) {
  Tensor host = value.to(Device::cpu()).contiguous();
  proto->set_data_type(onnx_type(host.dtype()));
  for (int64_t d : host.sizes()) proto->add_dims(d);
  proto->set_raw_data(std::string(static_cast<const char*>(host.data_ptr()), host.numel() * host.element_size()));
}

void set_attr(::onnx::NodeProto& n, const char* name, int64_t value) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(::onnx::AttributeProto::INT);
  a->set_i(value);
}
void set_attr(::onnx::NodeProto& n, const char* name, double value) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(::onnx::AttributeProto::FLOAT);
  a->set_f(static_cast<float>(value));
}
void set_attr(::onnx::NodeProto& n, const char* name, const std::vector<int64_t>& values) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(::onnx::AttributeProto::INTS);
  for (int64_t v : values) a->add_ints(v);
}
void set_attr(::onnx::NodeProto& n, const char* name, const std::string& value) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(::onnx::AttributeProto::STRING);
  a->set_s(value);
}
void set_attr(::onnx::NodeProto& n, const char* name, const Tensor& value) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(::onnx::AttributeProto::TENSOR);
  fill_tensor(a->mutable_t(), value);
}

GraphBuilder::GraphBuilder(::onnx::GraphProto* graph, std::vector<Symbol> symbols)
    : graph_(graph), symbols_(std::move(symbols)) {}

std::string GraphBuilder::fresh(const std::string& hint) {
  const int n = name_counts_[hint]++;
  return hint + "_" + std::to_string(n);
}

::onnx::NodeProto& GraphBuilder::node_into(const std::string& op, const std::vector<std::string>& inputs,
                                           const std::vector<std::string>& outputs) {
  auto* n = graph_->add_node();
  n->set_op_type(op);
  n->set_name(fresh(op));
  for (const auto& i : inputs) n->add_input(i);
  for (const auto& o : outputs) n->add_output(o);
  return *n;
}

::onnx::NodeProto& GraphBuilder::node(const std::string& op, const std::vector<std::string>& inputs,
                                      int n_outputs) {
  std::vector<std::string> outputs;
  for (int i = 0; i < n_outputs; ++i) outputs.push_back(fresh("/" + op + "_out"));
  return node_into(op, inputs, outputs);
}

std::string GraphBuilder::initializer(const std::string& name, const Tensor& value) {
  fill_tensor(graph_->add_initializer(), value);
  graph_->mutable_initializer(graph_->initializer_size() - 1)->set_name(name);
  return name;
}

std::string GraphBuilder::constant(const Tensor& value) {
  return initializer("const_" + std::to_string(constants_++), value);
}

std::string GraphBuilder::scalar(double value, DType dtype) {
  return constant(scalar_tensor(value, TensorOptions(kFloat64)).to(dtype));
}

std::string GraphBuilder::ints(const std::vector<int64_t>& values) {
  return constant(tensor(values, {static_cast<int64_t>(values.size())}, TensorOptions(kInt64)));
}

std::string GraphBuilder::cast(const std::string& value, DType from, DType to) {
  if (from == to) return value;
  auto& n = node("Cast", {value});
  set_attr(n, "to", static_cast<int64_t>(onnx_type(to)));
  return n.output(0);
}

std::string GraphBuilder::symbol_value(size_t g) {
  auto it = symbol_values_.find(g);
  if (it != symbol_values_.end()) return it->second;
  auto& n = node("Shape", {symbols_[g].input});
  set_attr(n, "start", symbols_[g].axis);
  set_attr(n, "end", symbols_[g].axis + 1);
  return symbol_values_[g] = n.output(0);
}

namespace {
int64_t ipow(int64_t b, int e) {
  int64_t r = 1;
  for (int i = 0; i < e; ++i) r *= b;
  return r;
}
}  // namespace

// One size as a 1-D [1] int64 value.
std::string GraphBuilder::size_expression(const std::vector<int64_t>& v, const std::string& what) {
  const size_t G = symbols_.size();
  const int64_t base = v[0];
  bool constant = true;
  for (int64_t x : v) constant = constant && x == base;
  if (constant) return ints({base});
  EMBER_CHECK(v[G + 1] == base, "onnx export: ", what, " depends on the input values (", base, " for the example, ",
              v[G + 1], " for other values): data-dependent shapes cannot be exported");
  // c * prod s_g^e_g
  std::vector<int> exps(G, 0);
  bool monomial = base != 0;
  int64_t denom = 1;
  for (size_t g = 0; g < G && monomial; ++g) {
    const int64_t s = symbols_[g].size, s2 = symbols_[g].variant_size;
    int found = -1;
    for (int e = 0; e <= 2 && found < 0; ++e)
      if (v[g + 1] * ipow(s, e) == base * ipow(s2, e)) found = e;
    if (found < 0) monomial = false;
    else {
      exps[g] = found;
      denom *= ipow(s, found);
    }
  }
  if (monomial && base % denom == 0) {
    const int64_t c = base / denom;
    std::string expr;
    for (size_t g = 0; g < G; ++g)
      for (int e = 0; e < exps[g]; ++e)
        expr = expr.empty() ? symbol_value(g) : node("Mul", {expr, symbol_value(g)}).output(0);
    if (c != 1) expr = node("Mul", {expr, ints({c})}).output(0);
    return expr;
  }
  // s_g + d for one dimension g
  for (size_t g = 0; g < G; ++g) {
    const int64_t d = base - symbols_[g].size;
    bool affine = v[g + 1] == symbols_[g].variant_size + d;
    for (size_t h = 0; h < G; ++h)
      if (h != g) affine = affine && v[h + 1] == base;
    if (affine) return d == 0 ? symbol_value(g) : node("Add", {symbol_value(g), ints({d})}).output(0);
  }
  std::string seen;
  for (size_t g = 0; g < G; ++g)
    seen += ", " + std::to_string(v[g + 1]) + " when " + symbols_[g].dim_param + " is " +
            std::to_string(symbols_[g].variant_size);
  fail("onnx export: ", what, " is ", base, " for the example", seen,
       ": it follows the dynamic axes in a way the graph cannot compute (only c * size and size + c are)");
}

std::string GraphBuilder::sizes(const std::vector<std::vector<int64_t>>& per_trace, const std::string& what) {
  const size_t n = per_trace[0].size();
  for (const auto& t : per_trace)
    EMBER_CHECK(t.size() == n, "onnx export: ", what, " has ", n, " entries for the example and ", t.size(),
                " at another size");
  bool constant = true;
  for (const auto& t : per_trace) constant = constant && t == per_trace[0];
  if (constant) return ints(per_trace[0]);
  std::vector<std::string> parts;
  for (size_t j = 0; j < n; ++j) {
    std::vector<int64_t> v;
    for (const auto& t : per_trace) v.push_back(t[j]);
    parts.push_back(size_expression(v, what + "[" + std::to_string(j) + "]"));
  }
  if (parts.size() == 1) return parts[0];
  auto& c = node("Concat", parts);
  set_attr(c, "axis", int64_t{0});
  return c.output(0);
}

std::string GraphBuilder::size_scalar(const std::vector<int64_t>& per_trace, const std::string& what) {
  bool constant = true;
  for (int64_t x : per_trace) constant = constant && x == per_trace[0];
  if (constant) return constant_scalar_int(per_trace[0]);
  return node("Squeeze", {size_expression(per_trace, what), ints({0})}).output(0);
}

std::string GraphBuilder::constant_scalar_int(int64_t value) {
  return constant(scalar_tensor(value, TensorOptions(kInt64)));
}

std::string GraphBuilder::dim_param(const std::vector<int64_t>& v) const {
  const size_t G = symbols_.size();
  for (size_t g = 0; g < G; ++g) {
    bool match = v[0] == symbols_[g].size && v[g + 1] == symbols_[g].variant_size;
    for (size_t h = 0; h < G; ++h)
      if (h != g) match = match && v[h + 1] == v[0];
    if (match) return symbols_[g].dim_param;
  }
  return "";
}

std::string OpContext::input_as(size_t i, DType dt) { return g.cast(in[i], input(i).dtype(), dt); }

std::vector<int64_t> OpContext::static_ints(const std::string& key) const {
  const auto& base = event().attrs.ints.at(key);
  for (const auto* t : traces)
    EMBER_CHECK(t->attrs.ints.at(key) == base, "onnx export: ", event().op, "'s argument ", key,
                " changes with the dynamic axes; ONNX takes it as a fixed attribute");
  return base;
}

std::string OpContext::sizes(const std::string& key) {
  std::vector<std::vector<int64_t>> per_trace;
  for (const auto* t : traces) per_trace.push_back(t->attrs.ints.at(key));
  return g.sizes(per_trace, event().op + "'s " + key);
}

std::string OpContext::size_scalar(const std::string& key) {
  std::vector<int64_t> per_trace;
  for (const auto* t : traces) per_trace.push_back(t->attrs.ints.at(key).at(0));
  return g.size_scalar(per_trace, event().op + "'s " + key);
}

}  // namespace ember::onnx::detail
