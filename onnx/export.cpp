// export_model / export_function: trace the forward at the example inputs, once more per dynamic
// dimension at another size, and once with the input values moved around (same shapes); check the
// traces ran the same ops; then write one ONNX graph from the example's trace, with the sizes that
// differ between traces computed in the graph. The model is checked with ONNX's own checker and
// written to a temporary file that is renamed over `path` only when complete.
#include "ember/onnx/export.h"

#include <onnx/checker.h>

#include <algorithm>
#include <cstring>
#include <ostream>
#include <unordered_map>
#include <unordered_set>

#include "ember/autograd/grad_mode.h"
#include "ember/core/atomic_file.h"
#include "ember/core/error.h"
#include "ember/core/ops.h"
#include "ember/nn/module.h"
#include "ember/onnx/builder.h"

namespace ember::onnx {

namespace {

using detail::GraphBuilder;
using detail::OpContext;
using detail::Symbol;

struct Recorder : trace::Tracer {
  std::vector<trace::Event> events;
  void on_event(trace::Event event) override { events.push_back(std::move(event)); }
  void on_inplace(const Tensor& self, const Tensor& value) override {
    events.push_back({"inplace", {value}, {self}, {}});
  }
};

struct Trace {
  std::vector<Tensor> inputs, outputs;
  std::vector<trace::Event> events;
};

Trace run_traced(const Forward& forward, std::vector<Tensor> inputs) {
  Recorder recorder;
  std::vector<Tensor> outputs;
  {
    autograd::NoGradGuard no_grad;
    trace::TracerGuard guard(&recorder);
    outputs = forward(inputs);
  }
  return {std::move(inputs), std::move(outputs), std::move(recorder.events)};
}

// x with `axis` resized to n by repeating its slices cyclically (values stay valid token ids, masks).
Tensor resize_axis(const Tensor& x, int64_t axis, int64_t n) {
  std::vector<int64_t> idx(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) idx[static_cast<size_t>(i)] = i % x.size(axis);
  return index_select(x, axis, tensor(idx, {n}, TensorOptions(kInt64).set_device(x.device())));
}

// The same values in other places: what an input-derived tensor will not survive unchanged.
Tensor rotate_values(const Tensor& x) {
  if (x.numel() < 2) return x.clone();
  Tensor flat = x.reshape({-1});
  return cat({flat.slice(0, 1, {}), flat.slice(0, 0, 1)}).reshape(x.sizes());
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  if (!a.defined() || !b.defined() || a.sizes() != b.sizes() || a.dtype() != b.dtype()) return false;
  Tensor ca = a.to(Device::cpu()).contiguous(), cb = b.to(Device::cpu()).contiguous();
  return std::memcmp(ca.data_ptr(), cb.data_ptr(), static_cast<size_t>(ca.numel() * ca.element_size())) == 0;
}

std::string describe_inputs(const trace::Event& e) {
  std::string s;
  for (const auto& t : e.inputs) {
    if (!s.empty()) s += ", ";
    s += t.defined() ? std::string(dtype_name(t.dtype())) + " " + shape_str(t.sizes()) : "none";
  }
  return s;
}

// One dimension per distinct example size among the dynamic axes.
std::vector<Symbol> find_symbols(const std::vector<Tensor>& inputs, const std::vector<std::string>& names,
                                 const ExportOptions& options, std::vector<std::vector<int64_t>>& group_of) {
  std::vector<Symbol> symbols;
  group_of.assign(inputs.size(), {});
  for (size_t i = 0; i < inputs.size(); ++i) group_of[i].assign(static_cast<size_t>(inputs[i].dim()), -1);
  for (const auto& entry : options.dynamic_axes)
    EMBER_CHECK(std::find(names.begin(), names.end(), entry.first) != names.end(), "onnx export: dynamic_axes names \"",
                entry.first, "\", which is not an input name");
  for (size_t i = 0; i < names.size(); ++i) {  // in input order: the first input names a shared dimension
    auto found = options.dynamic_axes.find(names[i]);
    if (found == options.dynamic_axes.end()) continue;
    const std::string& name = names[i];
    for (int64_t axis : found->second) {
      const int64_t rank = inputs[i].dim();
      EMBER_CHECK(axis >= -rank && axis < rank, "onnx export: dynamic axis ", axis, " of input \"", name,
                  "\" is out of range for its shape ", shape_str(inputs[i].sizes()));
      const int64_t a = axis < 0 ? axis + rank : axis;
      const int64_t size = inputs[i].size(a);
      EMBER_CHECK(size > 0, "onnx export: dynamic axis ", a, " of input \"", name, "\" has size 0");
      size_t g = 0;
      while (g < symbols.size() && symbols[g].size != size) ++g;
      if (g == symbols.size()) {
        const int64_t variant = size > 2 && size % 2 == 0 ? size / 2 : 2 * size;
        symbols.push_back({name, a, size, variant, name + "_dim" + std::to_string(a)});
      }
      group_of[i][static_cast<size_t>(a)] = static_cast<int64_t>(g);
    }
  }
  return symbols;
}

void check_same_ops(const std::vector<Trace>& traces, const std::vector<Symbol>& symbols) {
  const auto& base = traces[0].events;
  for (size_t k = 1; k < traces.size(); ++k) {
    const std::string when = k <= symbols.size()
                                 ? "when " + symbols[k - 1].dim_param + " is " + std::to_string(symbols[k - 1].variant_size)
                                 : "for other input values";
    const auto& other = traces[k].events;
    size_t e = 0;
    while (e < base.size() && e < other.size() && base[e].op == other[e].op) ++e;
    if (e == base.size() && e == other.size() && traces[k].outputs.size() == traces[0].outputs.size()) continue;
    fail("onnx export: the forward runs other ops ", when, " (op #", e, ": ",
         e < base.size() ? base[e].op : "end", " for the example, ", e < other.size() ? other[e].op : "end",
         " then): control flow that depends on sizes or values cannot be one ONNX graph");
  }
}

void set_value_info(::onnx::ValueInfoProto* info, const std::string& name, const std::vector<Tensor>& per_trace,
                    const GraphBuilder& g) {
  info->set_name(name);
  auto* type = info->mutable_type()->mutable_tensor_type();
  type->set_elem_type(detail::onnx_type(per_trace[0].dtype()));
  auto* shape = type->mutable_shape();
  for (int64_t d = 0; d < per_trace[0].dim(); ++d) {
    std::vector<int64_t> sizes;
    for (const auto& t : per_trace) sizes.push_back(t.dim() > d ? t.size(d) : -1);
    auto* dim = shape->add_dim();
    bool fixed = true;
    for (int64_t s : sizes) fixed = fixed && s == sizes[0];
    if (fixed) dim->set_dim_value(sizes[0]);
    else if (auto p = g.dim_param(sizes); !p.empty()) dim->set_dim_param(p);
  }
}

class GraphWriter {
 public:
  GraphWriter(const std::vector<Trace>& traces, GraphBuilder& g, const nn::Module* names_from)
      : traces_(traces), g_(g) {
    if (!names_from) return;
    for (const auto& [name, t] : names_from->named_parameters()) params_[t.impl()] = name;
    for (const auto& [name, t] : names_from->named_buffers()) params_[t.impl()] = name;
  }

  void bind(const Tensor& t, const std::string& name) { names_[t.impl()] = name; }

  void write_events() {
    for (size_t e = 0; e < traces_[0].events.size(); ++e) write_event(e);
  }

  // The graph name of a tensor of the example's trace; `at(k)` gives the same tensor in trace k.
  std::string resolve(const Tensor& t, const std::function<Tensor(size_t)>& at, const std::string& where) {
    if (!t.defined()) return "";
    if (auto it = names_.find(t.impl()); it != names_.end()) return it->second;
    if (auto it = params_.find(t.impl()); it != params_.end()) return names_[t.impl()] = g_.initializer(it->second, t);
    for (size_t k = 1; k < traces_.size(); ++k) {
      const Tensor other = at(k);
      EMBER_CHECK(other.defined() && other.sizes() == t.sizes(), "onnx export: ", where, " reads a tensor of shape ",
                  shape_str(t.sizes()), " whose shape follows the inputs' sizes but that no recorded op made ",
                  "(a tensor built from sizes by an op ONNX export does not record, e.g. a float arange)");
      EMBER_CHECK(same_bytes(t, other), "onnx export: ", where, " reads a ", dtype_name(t.dtype()),
                  " tensor of shape ", shape_str(t.sizes()),
                  " that no recorded op produced and that changes with the inputs: it was computed by an op "
                  "ONNX export does not record (an untraced kernel call, a value read with item())");
    }
    return names_[t.impl()] = g_.constant(t);
  }

 private:
  void write_event(size_t e) {
    const trace::Event& event = traces_[0].events[e];
    const std::string where = event.op + " (op #" + std::to_string(e) + ")";
    std::vector<std::string> in;
    for (size_t i = 0; i < event.inputs.size(); ++i)
      in.push_back(resolve(event.inputs[i], [&](size_t k) { return traces_[k].events[e].inputs[i]; }, where));
    if (event.op == "inplace") {
      bind(event.outputs[0], g_.cast(in[0], event.inputs[0].dtype(), event.outputs[0].dtype()));
      return;
    }
    EMBER_CHECK(event.op.find("train") == std::string::npos, "onnx export: ", event.op, " (inputs: ",
                describe_inputs(event),
                ") runs in training mode, which an inference graph cannot hold; call eval() on the module "
                "first (export_model does)");
    const auto& table = detail::mappings();
    auto it = table.find(event.op);
    EMBER_CHECK(it != table.end(), "onnx export: the op ", event.op, " (inputs: ", describe_inputs(event),
                ") has no ONNX mapping; write the forward with ops that have one (docs/onnx.md lists them)");
    OpContext c{g_, {}, in};
    for (const auto& t : traces_) c.traces.push_back(&t.events[e]);
    const auto outs = it->second(c);
    for (size_t j = 0; j < event.outputs.size() && j < outs.size(); ++j) bind(event.outputs[j], outs[j]);
  }

  const std::vector<Trace>& traces_;
  GraphBuilder& g_;
  std::unordered_map<const TensorImpl*, std::string> names_, params_;
};

// Drops the nodes whose results no output needs (checks a forward makes on the side, the parts of a
// tensor an op computed but nothing read) and the initializers only they read.
void prune_unused(::onnx::GraphProto* graph) {
  std::unordered_set<std::string> needed;
  for (const auto& o : graph->output()) needed.insert(o.name());
  std::vector<bool> keep(static_cast<size_t>(graph->node_size()), false);
  for (int i = graph->node_size() - 1; i >= 0; --i) {  // nodes are in topological order
    const auto& n = graph->node(i);
    for (const auto& out : n.output())
      if (needed.count(out)) keep[static_cast<size_t>(i)] = true;
    if (keep[static_cast<size_t>(i)])
      for (const auto& in : n.input()) needed.insert(in);
  }
  ::onnx::GraphProto pruned;
  for (int i = 0; i < graph->node_size(); ++i)
    if (keep[static_cast<size_t>(i)]) *pruned.add_node() = graph->node(i);
  for (const auto& init : graph->initializer())
    if (needed.count(init.name())) *pruned.add_initializer() = init;
  graph->clear_node();
  graph->clear_initializer();
  graph->mutable_node()->Swap(pruned.mutable_node());
  graph->mutable_initializer()->Swap(pruned.mutable_initializer());
}

std::vector<std::string> names_or_default(const std::vector<std::string>& given, size_t n, const char* prefix,
                                          const char* what) {
  EMBER_CHECK(given.empty() || given.size() == n, "onnx export: ", given.size(), " ", what, " names for ", n, " ",
              what, "s");
  if (!given.empty()) return given;
  std::vector<std::string> names;
  for (size_t i = 0; i < n; ++i) names.push_back(prefix + std::to_string(i));
  return names;
}

}  // namespace

void export_function(const Forward& forward, const std::vector<Tensor>& example_inputs, const std::string& path,
                     const ExportOptions& options, const nn::Module* names) {
  EMBER_CHECK(options.opset_version == 17, "onnx export: opset_version ", options.opset_version,
              " is not supported; ember writes opset 17");
  EMBER_CHECK(!example_inputs.empty(), "onnx export: needs at least one example input");
  for (const auto& t : example_inputs) EMBER_CHECK(t.defined(), "onnx export: an example input is undefined");
  const auto input_names = names_or_default(options.input_names, example_inputs.size(), "input_", "input");

  std::vector<std::vector<int64_t>> group_of;
  auto symbols = find_symbols(example_inputs, input_names, options, group_of);
  std::vector<Trace> traces;
  traces.push_back(run_traced(forward, example_inputs));
  for (size_t g = 0; g < symbols.size(); ++g) {
    std::vector<Tensor> resized;
    {
      autograd::NoGradGuard no_grad;
      for (size_t i = 0; i < example_inputs.size(); ++i) {
        Tensor x = example_inputs[i];
        for (size_t a = 0; a < group_of[i].size(); ++a)
          if (group_of[i][a] == static_cast<int64_t>(g)) x = resize_axis(x, static_cast<int64_t>(a), symbols[g].variant_size);
        resized.push_back(x);
      }
    }
    traces.push_back(run_traced(forward, resized));
  }
  {
    std::vector<Tensor> rotated;
    {
      autograd::NoGradGuard no_grad;
      for (const auto& x : example_inputs) rotated.push_back(rotate_values(x));
    }
    traces.push_back(run_traced(forward, rotated));
  }
  check_same_ops(traces, symbols);
  const auto output_names = names_or_default(options.output_names, traces[0].outputs.size(), "output_", "output");

  ::onnx::ModelProto model;
  model.set_ir_version(8);
  model.set_producer_name("ember");
  auto* opset = model.add_opset_import();
  opset->set_domain("");
  opset->set_version(options.opset_version);
  auto* graph = model.mutable_graph();
  graph->set_name("ember");
  GraphBuilder g(graph, symbols);
  GraphWriter writer(traces, g, names);
  for (size_t i = 0; i < example_inputs.size(); ++i) {
    std::vector<Tensor> per_trace;
    for (const auto& t : traces) per_trace.push_back(t.inputs[i]);
    set_value_info(graph->add_input(), input_names[i], per_trace, g);
    writer.bind(traces[0].inputs[i], input_names[i]);
  }
  writer.write_events();
  for (size_t o = 0; o < traces[0].outputs.size(); ++o) {
    const Tensor& out = traces[0].outputs[o];
    EMBER_CHECK(out.defined(), "onnx export: output ", o, " of the forward is undefined");
    const std::string value =
        writer.resolve(out, [&](size_t k) { return traces[k].outputs[o]; }, "output " + std::to_string(o));
    g.node_into("Identity", {value}, {output_names[o]});
    std::vector<Tensor> per_trace;
    for (const auto& t : traces) per_trace.push_back(t.outputs[o]);
    set_value_info(graph->add_output(), output_names[o], per_trace, g);
  }
  prune_unused(graph);
  try {
    ::onnx::checker::check_model(model);
  } catch (const std::exception& e) {
    fail("onnx export: the ONNX checker rejects the graph ember wrote (a bug in ember; please report it): ",
         e.what());
  }
  std::string bytes;
  EMBER_CHECK(model.SerializeToString(&bytes), "onnx export: the model could not be serialised (over 2 GB?)");
  write_file_atomic(path, [&](std::ostream& os) { os.write(bytes.data(), static_cast<std::streamsize>(bytes.size())); },
                    "onnx export");
}

void export_model(nn::Module& model, const Tensor& example_input, const std::string& path,
                  const ExportOptions& options) {
  const auto modes = model.training_modes();
  model.eval();
  try {
    export_function([&](const std::vector<Tensor>& in) { return std::vector<Tensor>{model(in[0])}; },
                    {example_input}, path, options, &model);
  } catch (...) {
    model.set_training_modes(modes);
    throw;
  }
  model.set_training_modes(modes);
}

}  // namespace ember::onnx
