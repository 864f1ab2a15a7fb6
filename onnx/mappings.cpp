// How each traced ember op is written in ONNX (opset 17). Most are one node; GELU, the fused
// attention and a few others are the standard small subgraphs. An op missing from this table is
// what export reports as having no mapping.
#include <cmath>

#include "ember/core/error.h"
#include "ember/core/ops.h"
#include "ember/onnx/builder.h"

namespace ember::onnx::detail {

namespace {

using Names = std::vector<std::string>;

std::string out0(::onnx::NodeProto& n) { return n.output(0); }

// Elementwise with the inputs cast to the output's dtype (ember promotes, ONNX does not).
Mapping elementwise(const char* op) {
  return [op](OpContext& c) -> Names {
    Names ins;
    for (size_t i = 0; i < c.in.size(); ++i) ins.push_back(c.input_as(i, c.out_dtype()));
    return {out0(c.g.node(op, ins))};
  };
}

// Comparisons: both sides in their promoted dtype, a bool result; `negate` wraps it in Not.
Mapping comparison(const char* op, bool negate = false) {
  return [op, negate](OpContext& c) -> Names {
    const DType dt = promote_types(c.input(0).dtype(), c.input(1).dtype());
    std::string r = out0(c.g.node(op, {c.input_as(0, dt), c.input_as(1, dt)}));
    return {negate ? out0(c.g.node("Not", {r})) : r};
  };
}

Mapping logical(const char* op) {
  return [op](OpContext& c) -> Names {
    Names ins;
    for (size_t i = 0; i < c.in.size(); ++i) ins.push_back(c.input_as(i, kBool));
    return {out0(c.g.node(op, ins))};
  };
}

Mapping identity() {
  return [](OpContext& c) -> Names { return {out0(c.g.node("Identity", {c.in[0]}))}; };
}

std::string gelu(OpContext& c, const std::string& x, bool tanh_form) {
  GraphBuilder& g = c.g;
  const DType dt = c.out_dtype();
  std::string inner;
  if (tanh_form) {  // tanh(sqrt(2/pi) * (x + 0.044715 x^3))
    std::string x3 = out0(g.node("Mul", {out0(g.node("Mul", {x, x})), x}));
    std::string poly = out0(g.node("Add", {x, out0(g.node("Mul", {x3, g.scalar(0.044715, dt)}))}));
    inner = out0(g.node("Tanh", {out0(g.node("Mul", {poly, g.scalar(0.7978845608028654, dt)}))}));
  } else {  // erf(x / sqrt(2))
    inner = out0(g.node("Erf", {out0(g.node("Mul", {x, g.scalar(0.7071067811865476, dt)}))}));
  }
  std::string half_x = out0(g.node("Mul", {x, g.scalar(0.5, dt)}));
  return out0(g.node("Mul", {half_x, out0(g.node("Add", {inner, g.scalar(1.0, dt)}))}));
}

std::string reduce(OpContext& c, const char* op, bool axes_as_input) {
  const auto dims = c.static_ints("dims");
  const int64_t keep = c.static_int("keepdim");
  std::string x = c.input_as(0, c.out_dtype());
  Names ins{x};
  if (axes_as_input && !dims.empty()) ins.push_back(c.g.ints(dims));
  auto& n = c.g.node(op, ins);
  if (!axes_as_input && !dims.empty()) set_attr(n, "axes", dims);
  set_attr(n, "keepdims", keep);
  return out0(n);
}

// softmax(q k^T * scale + mask) v, with the causal mask built from q's and k's lengths in the graph.
std::string attention(OpContext& c) {
  GraphBuilder& g = c.g;
  const DType dt = c.out_dtype();
  const int64_t rank = c.input(1).dim();
  std::vector<int64_t> perm;
  for (int64_t i = 0; i < rank; ++i) perm.push_back(i);
  std::swap(perm[rank - 1], perm[rank - 2]);
  auto& kt = g.node("Transpose", {c.in[1]});
  set_attr(kt, "perm", perm);
  std::string scores = out0(g.node("MatMul", {c.in[0], out0(kt)}));
  scores = out0(g.node("Mul", {scores, g.scalar(c.number("scale"), dt)}));
  if (!c.in[3].empty()) scores = out0(g.node("Add", {scores, c.input_as(3, dt)}));
  if (c.static_int("is_causal")) {
    auto& lq = g.node("Shape", {c.in[0]});
    set_attr(lq, "start", c.input(0).dim() - 2);
    set_attr(lq, "end", c.input(0).dim() - 1);
    auto& lk = g.node("Shape", {c.in[1]});
    set_attr(lk, "start", rank - 2);
    set_attr(lk, "end", rank - 1);
    auto& shape = g.node("Concat", {out0(lq), out0(lk)});
    set_attr(shape, "axis", int64_t{0});
    auto& ones = g.node("ConstantOfShape", {out0(shape)});
    set_attr(ones, "value", ember::ones({1}, TensorOptions(kFloat32)));
    auto& upper = g.node("Trilu", {out0(ones), g.constant_scalar_int(1)});
    set_attr(upper, "upper", int64_t{1});
    std::string blocked = g.cast(out0(upper), kFloat32, kBool);
    std::string mask = out0(g.node("Where", {blocked, g.scalar(-INFINITY, dt), g.scalar(0.0, dt)}));
    scores = out0(g.node("Add", {scores, mask}));
  }
  auto& p = g.node("Softmax", {scores});
  set_attr(p, "axis", int64_t{-1});
  return out0(g.node("MatMul", {out0(p), c.in[2]}));
}

// A per-channel or per-feature input the ONNX op requires: the given one, or ones/zeros.
std::string affine_or(OpContext& c, size_t i, double fill, const Shape& shape) {
  if (!c.in[i].empty()) return c.in[i];
  return c.g.constant(full(shape, fill, TensorOptions(c.out_dtype())));
}

void add_unary(std::map<std::string, Mapping>& m) {
  const std::pair<const char*, const char*> unary[] = {
      {"neg", "Neg"},   {"exp", "Exp"},         {"log", "Log"},   {"sqrt", "Sqrt"},       {"abs", "Abs"},
      {"sign", "Sign"}, {"sin", "Sin"},         {"cos", "Cos"},   {"tanh", "Tanh"},       {"sigmoid", "Sigmoid"},
      {"relu", "Relu"}, {"erf", "Erf"},         {"reciprocal", "Reciprocal"}};
  for (auto [ember_name, onnx_name] : unary) m[ember_name] = elementwise(onnx_name);
  m["rsqrt"] = [](OpContext& c) -> Names {
    return {out0(c.g.node("Reciprocal", {out0(c.g.node("Sqrt", {c.input_as(0, c.out_dtype())}))}))};
  };
  m["log1p"] = [](OpContext& c) -> Names {
    std::string x = c.input_as(0, c.out_dtype());
    return {out0(c.g.node("Log", {out0(c.g.node("Add", {x, c.g.scalar(1.0, c.out_dtype())}))}))};
  };
  m["square"] = [](OpContext& c) -> Names {
    std::string x = c.input_as(0, c.out_dtype());
    return {out0(c.g.node("Mul", {x, x}))};
  };
  m["silu"] = [](OpContext& c) -> Names {
    std::string x = c.input_as(0, c.out_dtype());
    return {out0(c.g.node("Mul", {x, out0(c.g.node("Sigmoid", {x}))}))};
  };
  m["leaky_relu"] = [](OpContext& c) -> Names {
    auto& n = c.g.node("LeakyRelu", {c.in[0]});
    set_attr(n, "alpha", c.number("negative_slope"));
    return {out0(n)};
  };
  m["gelu"] = [](OpContext& c) -> Names {
    return {gelu(c, c.input_as(0, c.out_dtype()), c.event().attrs.strings.at("approximate") == "tanh")};
  };
  m["softplus"] = [](OpContext& c) -> Names {  // log(1 + exp(beta x)) / beta, x itself past the threshold
    GraphBuilder& g = c.g;
    const DType dt = c.out_dtype();
    const double beta = c.number("beta");
    std::string bx = out0(g.node("Mul", {c.in[0], g.scalar(beta, dt)}));
    std::string soft = out0(g.node("Div", {out0(g.node("Softplus", {bx})), g.scalar(beta, dt)}));
    std::string past = out0(g.node("Greater", {bx, g.scalar(c.number("threshold"), dt)}));
    return {out0(g.node("Where", {past, c.in[0], soft}))};
  };
}

void add_shape_ops(std::map<std::string, Mapping>& m) {
  m["reshape"] = [](OpContext& c) -> Names { return {out0(c.g.node("Reshape", {c.in[0], c.sizes("shape")}))}; };
  m["expand"] = [](OpContext& c) -> Names { return {out0(c.g.node("Expand", {c.in[0], c.sizes("shape")}))}; };
  m["permute"] = [](OpContext& c) -> Names {
    auto& n = c.g.node("Transpose", {c.in[0]});
    set_attr(n, "perm", c.static_ints("perm"));
    return {out0(n)};
  };
  m["slice"] = [](OpContext& c) -> Names {
    return {out0(c.g.node("Slice", {c.in[0], c.sizes("start"), c.sizes("end"), c.g.ints(c.static_ints("dim")),
                                     c.g.ints(c.static_ints("step"))}))};
  };
  m["select"] = [](OpContext& c) -> Names {
    auto& n = c.g.node("Gather", {c.in[0], c.size_scalar("index")});
    set_attr(n, "axis", c.static_int("dim"));
    return {out0(n)};
  };
  m["cat"] = [](OpContext& c) -> Names {
    Names ins;
    for (size_t i = 0; i < c.in.size(); ++i) ins.push_back(c.input_as(i, c.out_dtype()));
    auto& n = c.g.node("Concat", ins);
    set_attr(n, "axis", c.static_int("dim"));
    return {out0(n)};
  };
  m["pad"] = [](OpContext& c) -> Names {  // F.pad's (last_left, last_right, ...) to ONNX's begins, ends
    const auto pads = c.static_ints("pads");
    const int64_t rank = c.input(0).dim();
    std::vector<int64_t> onnx_pads(2 * rank, 0);
    for (size_t i = 0; i < pads.size() / 2; ++i) {
      const int64_t d = rank - 1 - static_cast<int64_t>(i);
      onnx_pads[d] = pads[2 * i];
      onnx_pads[rank + d] = pads[2 * i + 1];
    }
    return {out0(c.g.node("Pad", {c.in[0], c.g.ints(onnx_pads), c.g.scalar(c.number("value"), c.out_dtype())}))};
  };
  m["contiguous"] = identity();
  m["clone"] = identity();
  m["to"] = [](OpContext& c) -> Names { return {c.g.cast(c.in[0], c.input(0).dtype(), c.out_dtype())}; };
}

void add_creation_ops(std::map<std::string, Mapping>& m) {
  m["full"] = [](OpContext& c) -> Names {
    auto& n = c.g.node("ConstantOfShape", {c.sizes("shape")});
    set_attr(n, "value", full({1}, c.number("value"), TensorOptions(kFloat64)).to(c.out_dtype()));
    return {out0(n)};
  };
  m["arange"] = [](OpContext& c) -> Names {
    std::string r = out0(c.g.node("Range", {c.size_scalar("start"), c.size_scalar("end"), c.size_scalar("step")}));
    return {c.g.cast(r, kInt64, c.out_dtype())};
  };
  auto triangle = [](bool upper) -> Mapping {
    return [upper](OpContext& c) -> Names {
      // Trilu on float: not every runtime has it for bool or integer tensors.
      const DType dt = c.out_dtype();
      const DType work = is_floating(dt) ? dt : kFloat32;
      auto& n = c.g.node("Trilu", {c.input_as(0, work), c.g.constant_scalar_int(c.static_int("diagonal"))});
      set_attr(n, "upper", int64_t{upper});
      return {c.g.cast(out0(n), work, dt)};
    };
  };
  m["tril"] = triangle(false);
  m["triu"] = triangle(true);
}

void add_math_ops(std::map<std::string, Mapping>& m) {
  const std::pair<const char*, const char*> binary[] = {{"add", "Add"}, {"sub", "Sub"},         {"mul", "Mul"},
                                                         {"div", "Div"}, {"pow", "Pow"},         {"maximum", "Max"},
                                                         {"minimum", "Min"}, {"mm", "MatMul"},   {"bmm", "MatMul"},
                                                         {"matmul", "MatMul"}};
  for (auto [ember_name, onnx_name] : binary) m[ember_name] = elementwise(onnx_name);
  const std::pair<const char*, const char*> compare[] = {
      {"eq", "Equal"}, {"lt", "Less"}, {"le", "LessOrEqual"}, {"gt", "Greater"}, {"ge", "GreaterOrEqual"}};
  for (auto [ember_name, onnx_name] : compare) m[ember_name] = comparison(onnx_name);
  m["ne"] = comparison("Equal", true);
  const std::pair<const char*, const char*> logic[] = {
      {"logical_and", "And"}, {"logical_or", "Or"}, {"logical_xor", "Xor"}, {"logical_not", "Not"}};
  for (auto [ember_name, onnx_name] : logic) m[ember_name] = logical(onnx_name);
  m["where"] = [](OpContext& c) -> Names {
    const DType dt = c.out_dtype();
    return {out0(c.g.node("Where", {c.input_as(0, kBool), c.input_as(1, dt), c.input_as(2, dt)}))};
  };
  m["clamp"] = [](OpContext& c) -> Names { return {out0(c.g.node("Clip", {c.in[0], c.in[1], c.in[2]}))}; };
  m["sum"] = [](OpContext& c) -> Names { return {reduce(c, "ReduceSum", true)}; };
  m["mean"] = [](OpContext& c) -> Names { return {reduce(c, "ReduceMean", false)}; };
  m["amax"] = [](OpContext& c) -> Names { return {reduce(c, "ReduceMax", false)}; };
  m["amin"] = [](OpContext& c) -> Names { return {reduce(c, "ReduceMin", false)}; };
  for (auto [name, op] : {std::pair{"argmax", "ArgMax"}, std::pair{"argmin", "ArgMin"}}) {
    m[name] = [op = op](OpContext& c) -> Names {
      auto& n = c.g.node(op, {c.in[0]});
      set_attr(n, "axis", c.static_int("dim"));
      set_attr(n, "keepdims", c.static_int("keepdim"));
      return {out0(n)};
    };
  }
  m["linear"] = [](OpContext& c) -> Names {
    if (c.input(0).dim() == 2) {
      Names ins{c.in[0], c.in[1]};
      if (!c.in[2].empty()) ins.push_back(c.in[2]);
      auto& n = c.g.node("Gemm", ins);
      set_attr(n, "transB", int64_t{1});
      return {out0(n)};
    }
    auto& wt = c.g.node("Transpose", {c.in[1]});
    set_attr(wt, "perm", std::vector<int64_t>{1, 0});
    std::string y = out0(c.g.node("MatMul", {c.in[0], out0(wt)}));
    return {c.in[2].empty() ? y : out0(c.g.node("Add", {y, c.in[2]}))};
  };
  for (auto [name, op] : {std::pair{"softmax", "Softmax"}, std::pair{"log_softmax", "LogSoftmax"}}) {
    m[name] = [op = op](OpContext& c) -> Names {
      auto& n = c.g.node(op, {c.in[0]});
      set_attr(n, "axis", c.static_int("dim"));
      return {out0(n)};
    };
  }
  m["index_select"] = [](OpContext& c) -> Names {
    auto& n = c.g.node("Gather", {c.in[0], c.in[1]});
    set_attr(n, "axis", c.static_int("dim"));
    return {out0(n)};
  };
  m["embedding"] = [](OpContext& c) -> Names { return {out0(c.g.node("Gather", {c.in[0], c.in[1]}))}; };
  m["gather"] = [](OpContext& c) -> Names {
    auto& n = c.g.node("GatherElements", {c.in[0], c.in[1]});
    set_attr(n, "axis", c.static_int("dim"));
    return {out0(n)};
  };
}

void add_nn_ops(std::map<std::string, Mapping>& m) {
  m["attention"] = [](OpContext& c) -> Names { return {attention(c)}; };
  m["layer_norm"] = [](OpContext& c) -> Names {
    const int64_t k = c.static_int("normalized_dims");
    const Shape& xs = c.input(0).sizes();
    const Shape normalized(xs.end() - k, xs.end());
    Names ins{c.in[0], affine_or(c, 1, 1.0, normalized)};
    if (!c.in[2].empty()) ins.push_back(c.in[2]);
    auto& n = c.g.node("LayerNormalization", ins);
    set_attr(n, "axis", -k);
    set_attr(n, "epsilon", c.number("eps"));
    return {out0(n)};
  };
  m["batch_norm"] = [](OpContext& c) -> Names {
    const Shape channels{c.input(0).size(1)};
    auto& n = c.g.node("BatchNormalization",
                       {c.in[0], affine_or(c, 1, 1.0, channels), affine_or(c, 2, 0.0, channels), c.in[3], c.in[4]});
    set_attr(n, "epsilon", c.number("eps"));
    return {out0(n)};
  };
  m["conv2d"] = [](OpContext& c) -> Names {
    Names ins{c.in[0], c.in[1]};
    if (!c.in[2].empty()) ins.push_back(c.in[2]);
    auto& n = c.g.node("Conv", ins);
    const auto pad = c.static_ints("padding");
    set_attr(n, "kernel_shape", std::vector<int64_t>{c.input(1).size(2), c.input(1).size(3)});
    set_attr(n, "strides", c.static_ints("stride"));
    set_attr(n, "pads", std::vector<int64_t>{pad[0], pad[1], pad[0], pad[1]});
    set_attr(n, "dilations", c.static_ints("dilation"));
    set_attr(n, "group", c.static_int("groups"));
    return {out0(n)};
  };
  auto pool = [](const char* op, bool average) -> Mapping {
    return [op, average](OpContext& c) -> Names {
      auto& n = c.g.node(op, {c.in[0]});
      const auto pad = c.static_ints("padding");
      set_attr(n, "kernel_shape", c.static_ints("kernel"));
      set_attr(n, "strides", c.static_ints("stride"));
      set_attr(n, "pads", std::vector<int64_t>{pad[0], pad[1], pad[0], pad[1]});
      set_attr(n, "ceil_mode", c.static_int("ceil_mode"));
      if (average) set_attr(n, "count_include_pad", c.static_int("count_include_pad"));
      else set_attr(n, "dilations", c.static_ints("dilation"));
      return {out0(n)};
    };
  };
  m["max_pool2d"] = pool("MaxPool", false);
  m["avg_pool2d"] = pool("AveragePool", true);
}

std::map<std::string, Mapping> build_mappings() {
  std::map<std::string, Mapping> m;
  add_unary(m);
  add_shape_ops(m);
  add_creation_ops(m);
  add_math_ops(m);
  add_nn_ops(m);
  return m;
}

}  // namespace

const std::map<std::string, Mapping>& mappings() {
  static const std::map<std::string, Mapping> table = build_mappings();
  return table;
}

}  // namespace ember::onnx::detail
