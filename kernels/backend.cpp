// Which backend serves which device. The CPU is served by the OpenMP backend unless a ScopedBackend
// (used by tests) swaps in another, e.g. the reference backend, for the current thread.
#include "ember/kernels/backend.h"

#include "ember/core/error.h"
#include "ember/kernels/cpu/cpu_backend.h"
#include "ember/kernels/reference/reference_backend.h"

namespace ember::kernels {
namespace {
thread_local Backend* cpu_override = nullptr;
}

Backend& reference_backend() {
  static ReferenceBackend backend;
  return backend;
}

Backend& cpu_backend() {
  static CpuBackend backend;
  return backend;
}

Backend& backend_for(Device device) {
  if (device.is_cpu()) return cpu_override ? *cpu_override : cpu_backend();
  fail("backend: device ", device.str(),
       " is not available: this build of ember has no CUDA backend (configure with EMBER_CUDA=ON on "
       "a machine with the CUDA toolkit)");
}

ScopedBackend::ScopedBackend(DeviceType type, Backend& backend) : type_(type) {
  if (type != DeviceType::CPU) fail("ScopedBackend: only the CPU backend can be swapped");
  previous_ = cpu_override;
  cpu_override = &backend;
}

ScopedBackend::~ScopedBackend() { cpu_override = previous_; }

}  // namespace ember::kernels
