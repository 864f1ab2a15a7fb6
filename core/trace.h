// Op tracing: while a Tracer is installed on this thread, every op reports itself (its name, input and
// output tensors and the arguments that are not tensors) as one Event. ONNX export (onnx/) installs a
// tracer, runs a forward and turns the events into a graph. An op that calls other ops opens an OpScope
// so that only the outermost op reports: linear is one event, not a matmul and an add.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "ember/core/tensor.h"
#include "ember/core/trace.h"

namespace ember::trace {

// The arguments of an op that are not tensors, by name.
struct Attrs {
  std::map<std::string, std::vector<int64_t>> ints{};
  std::map<std::string, double> floats{};
  std::map<std::string, std::string> strings{};
};

struct Event {
  std::string op;              // ember's name for the op ("add", "linear", "layer_norm", ...)
  std::vector<Tensor> inputs;  // undefined tensors stand for absent optional inputs
  std::vector<Tensor> outputs;
  Attrs attrs;
};

class Tracer {
 public:
  virtual ~Tracer() = default;
  virtual void on_event(Event event) = 0;
  // `self` now holds `value`'s result (an in-place op wrote it).
  virtual void on_inplace(const Tensor& self, const Tensor& value) = 0;
};

// Installs `tracer` on this thread for the guard's lifetime.
class TracerGuard {
 public:
  explicit TracerGuard(Tracer* tracer);
  ~TracerGuard();
  TracerGuard(const TracerGuard&) = delete;
  TracerGuard& operator=(const TracerGuard&) = delete;

 private:
  Tracer* previous_;
  int previous_depth_;
};

// True when a tracer is installed and no traced op is running (a call made now would be reported).
bool recording();

// Opened at the start of a traced op: ops it calls while the scope lives do not report themselves.
class OpScope {
 public:
  OpScope();
  ~OpScope();
  OpScope(const OpScope&) = delete;
  OpScope& operator=(const OpScope&) = delete;
  // Whether this op is the outermost one under a tracer, i.e. whether record() reports.
  bool recording() const { return outermost_; }
  void record(const char* op, std::vector<Tensor> inputs, std::vector<Tensor> outputs, Attrs attrs = {});
  // For in-place ops: `self` now holds `value`.
  void record_inplace(const Tensor& self, const Tensor& value);

 private:
  bool outermost_;
};

// Runs `run` (which computes op(inputs)) as one traced op: the usual way an op reports itself is
//   if (trace::recording()) return trace::traced("op", {x}, {...}, [&] { return op(x, ...); });
template <class Run>
Tensor traced(const char* op, std::vector<Tensor> inputs, Attrs attrs, Run&& run) {
  OpScope scope;
  Tensor out = run();
  scope.record(op, std::move(inputs), {out}, std::move(attrs));
  return out;
}

// Called by autograd::record for every differentiable op; reports only at the outermost level, so
// it names the ops that have no OpScope of their own.
void on_autograd_record(const char* op, const std::vector<Tensor>& inputs,
                        const std::vector<Tensor>& outputs);

}  // namespace ember::trace
