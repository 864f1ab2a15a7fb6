// AutocastGuard and the casts ops ask for: see autocast.h. The state is per thread, as autograd's
// grad mode is: a DataLoader worker never sees the training thread's autocast.
#include "ember/core/autocast.h"

#include "ember/core/error.h"
#include "ember/core/tensor.h"

namespace ember {
namespace {
struct State {
  bool enabled = false;
  DeviceType device = DeviceType::CPU;
  DType dtype = kBFloat16;
};
thread_local State t_state;

bool applies_to(const Tensor& t) {
  return t_state.enabled && t.defined() && t.device().type == t_state.device;
}
}  // namespace

AutocastGuard::AutocastGuard(DeviceType device_type, DType dtype, bool enabled)
    : prev_enabled_(t_state.enabled), prev_device_(t_state.device), prev_dtype_(t_state.dtype) {
  EMBER_CHECK(is_half(dtype), "autocast: the dtype must be bfloat16 or float16, got ", dtype_name(dtype));
  t_state = State{enabled, device_type, dtype};
}

AutocastGuard::~AutocastGuard() { t_state = State{prev_enabled_, prev_device_, prev_dtype_}; }

bool is_autocast_enabled(DeviceType device_type) { return t_state.enabled && t_state.device == device_type; }
DType autocast_dtype() { return t_state.dtype; }

namespace autocast {

bool should_lower(const Tensor& a, const Tensor& b, const Tensor& c) {
  for (const Tensor* t : {&a, &b, &c})
    if (applies_to(*t) && t->dtype() == kFloat32) return true;
  return false;
}
bool should_lower(const Tensor& a, const Tensor& b) { return should_lower(a, b, Tensor()); }

Tensor lower(const Tensor& t) { return applies_to(t) && t.dtype() == kFloat32 ? t.to(t_state.dtype) : t; }

bool should_raise(const Tensor& t) { return applies_to(t) && is_half(t.dtype()); }

Tensor raise(const Tensor& t) { return should_raise(t) ? t.to(kFloat32) : t; }

}  // namespace autocast
}  // namespace ember
