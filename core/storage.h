// Storage owns one block of device memory; TensorImpls view it through sizes, strides and an offset.
// Several tensors (a tensor and its views) share one Storage, and with it one version counter, so
// an in-place write through any of them is seen by autograd's checks on all of them.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

#include "ember/core/device.h"

namespace ember {

namespace kernels {
class Backend;
}

class Storage {
 public:
  // Allocates nbytes on the device through its backend.
  Storage(size_t nbytes, Device device);
  // Wraps memory the caller owns; `deleter` (may be empty) runs when the last tensor lets go.
  Storage(void* data, size_t nbytes, Device device, std::function<void(void*)> deleter);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }
  // Bumped by every in-place write; shared by all views of this storage.
  uint64_t version() const { return version_; }
  void bump_version() { ++version_; }

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  Device device_;
  kernels::Backend* backend_ = nullptr;  // who allocated data_ (null for wrapped memory)
  std::function<void(void*)> deleter_;
  uint64_t version_ = 0;
};

}  // namespace ember
