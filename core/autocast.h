// Automatic mixed precision, PyTorch's torch.autocast. Inside an AutocastGuard for a device type and a
// 16-bit dtype, ops on tensors of that device type choose their precision:
//   - ops that gain from 16-bit floats - mm, bmm, matmul, linear (and so convolutions and attention
//     projections) - cast float32 inputs down to the autocast dtype;
//   - ops that need float32's range or precision - softmax, log_softmax, layer_norm, group_norm,
//     scaled_dot_product_attention and the losses - cast 16-bit inputs up to float32;
//   - everything else runs in the widest input type, by ordinary type promotion.
// The casts are autograd ops, so float32 parameters get float32 gradients. float64 is never cast.
// 16-bit floats are storage formats in ember (arithmetic happens in float32 and results are rounded),
// so autocast reproduces 16-bit numerics - rounding, float16 overflow - on every backend; the speed of
// 16-bit tensor cores needs the GPU build's 16-bit GEMM, which is not there yet.
#pragma once
#include "ember/core/device.h"
#include "ember/core/dtype.h"

namespace ember {

class Tensor;

class AutocastGuard {
 public:
  // Autocast for tensors on `device_type`, in `dtype` (kBFloat16 or kFloat16); enabled = false turns
  // it off inside the scope (as torch.autocast(enabled=False) does).
  explicit AutocastGuard(DeviceType device_type, DType dtype = kBFloat16, bool enabled = true);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool prev_enabled_;
  DeviceType prev_device_;
  DType prev_dtype_;
};

// Whether autocast is on for this thread (for tensors on `device_type`), and its dtype.
bool is_autocast_enabled(DeviceType device_type);
DType autocast_dtype();

namespace autocast {
// For an op of the 16-bit list: whether any operand is a float32 tensor autocast applies to, and the
// operand cast down (other tensors unchanged).
bool should_lower(const Tensor& a, const Tensor& b);
bool should_lower(const Tensor& a, const Tensor& b, const Tensor& c);
Tensor lower(const Tensor& t);
// For an op of the float32 list: whether the input is a 16-bit tensor autocast applies to, and the
// tensor cast up to float32 (others unchanged).
bool should_raise(const Tensor& t);
Tensor raise(const Tensor& t);
}  // namespace autocast

}  // namespace ember
