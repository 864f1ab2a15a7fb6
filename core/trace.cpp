// The thread-local tracer state behind core/trace.h: one pointer and one nesting depth per thread, so an
// untraced program pays a single load per op.
#include "ember/core/trace.h"

namespace ember::trace {

namespace {
thread_local Tracer* current = nullptr;
thread_local int depth = 0;
}  // namespace

TracerGuard::TracerGuard(Tracer* tracer) : previous_(current), previous_depth_(depth) {
  current = tracer;
  depth = 0;
}

TracerGuard::~TracerGuard() {
  current = previous_;
  depth = previous_depth_;
}

bool recording() { return current != nullptr && depth == 0; }

// Qualified: inside OpScope, plain recording() would be the member function.
OpScope::OpScope() : outermost_(trace::recording()) { ++depth; }

OpScope::~OpScope() { --depth; }

void OpScope::record(const char* op, std::vector<Tensor> inputs, std::vector<Tensor> outputs, Attrs attrs) {
  if (!outermost_) return;
  // The scope is still open while the tracer runs, so ops the tracer itself calls do not report.
  current->on_event({op, std::move(inputs), std::move(outputs), std::move(attrs)});
}

void on_autograd_record(const char* op, const std::vector<Tensor>& inputs,
                        const std::vector<Tensor>& outputs) {
  if (!recording()) return;
  ++depth;
  struct Restore {
    ~Restore() { --depth; }
  } restore;
  current->on_event({op, inputs, outputs, {}});
}

void OpScope::record_inplace(const Tensor& self, const Tensor& value) {
  if (outermost_) current->on_inplace(self, value);
}

}  // namespace ember::trace
