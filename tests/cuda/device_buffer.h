// Test helpers for kernels called directly: a device buffer filled from a host vector (gpu::malloc,
// so the simulator's canaries guard it) and seeded random inputs.
#pragma once
#include <random>
#include <vector>

#include "ember/kernels/cuda/portability.h"

namespace ember {

template <class T>
struct DeviceBuffer {
  explicit DeviceBuffer(const std::vector<T>& host) : n(host.size()) {
    p = static_cast<T*>(gpu::malloc(n * sizeof(T)));
    gpu::copy_to_device(p, host.data(), n * sizeof(T));
  }
  ~DeviceBuffer() { gpu::free(p); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  std::vector<T> get() const {
    std::vector<T> h(n);
    gpu::copy_to_host(h.data(), p, n * sizeof(T));
    return h;
  }
  size_t n;
  T* p;
};

inline std::vector<float> random_floats(size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> d(-1, 1);
  std::vector<float> v(n);
  for (auto& x : v) x = d(gen);
  return v;
}

}  // namespace ember
