// Which backend serves which device. The CPU is served by the OpenMP backend compiled for the
// instruction-set level this process runs at (cpu_capability.h), or by the plain-loop reference
// backend when the environment says EMBER_BACKEND=reference (to step through an op in a debugger, or
// to check a suspicious result); a ScopedBackend (used by tests) swaps in another for the current
// thread.
#include "ember/kernels/backend.h"

#include <cstdlib>
#include <string>

#include "ember/core/error.h"
#include "ember/kernels/cpu/cpu_backend.h"
#include "ember/kernels/cuda/cuda_backend.h"
#include "ember/kernels/reference/reference_backend.h"

namespace ember::kernels {
namespace {
thread_local Backend* cpu_override = nullptr;
}

Backend& reference_backend() {
  static ReferenceBackend backend;
  return backend;
}

Backend& cpu_backend_for(CpuCapability capability) {
  if (!cpu_capability_available(capability))
    fail("cpu backend: the ", cpu_capability_name(capability),
         " kernels cannot run here (this CPU and build "
         "support up to ",
         cpu_capability_name(cpu_supported_capability()), ")");
  switch (capability) {
#if EMBER_CPU_ISA_LEVELS >= 2
    case CpuCapability::Avx512: return isa_avx512::cpu_backend_instance();
#endif
#if EMBER_CPU_ISA_LEVELS >= 1
    case CpuCapability::Avx2: return isa_avx2::cpu_backend_instance();
#endif
    default: return isa_default::cpu_backend_instance();
  }
}

Backend& cpu_backend() {
  static Backend& backend = cpu_backend_for(cpu_capability());
  return backend;
}

Backend& backend_from_environment() {
  const char* env = std::getenv("EMBER_BACKEND");
  const std::string name = env ? env : "";
  if (name.empty() || name == "cpu") return cpu_backend();
  if (name == "reference") return reference_backend();
  fail("EMBER_BACKEND=", name, " is not a CPU backend: use cpu (the default) or reference");
}

Backend& default_cpu_backend() {
  static Backend& backend = backend_from_environment();
  return backend;
}

Backend& backend_for(Device device) {
  if (device.is_cpu()) return cpu_override ? *cpu_override : default_cpu_backend();
  if (Backend* cuda = cuda_backend_or_null(); cuda && device.index == 0) return *cuda;
  if (device.index != 0 && cuda_backend_or_null())
    fail("backend: device ", device.str(),
         " is not available: ember drives one GPU per process (cuda:0); "
         "use one process per GPU (strategy \"ddp\")");
  fail("backend: device ", device.str(), " is not available: ", cuda::unavailable_reason());
}

ScopedBackend::ScopedBackend(DeviceType type, Backend& backend) : type_(type) {
  if (type != DeviceType::CPU) fail("ScopedBackend: only the CPU backend can be swapped");
  previous_ = cpu_override;
  cpu_override = &backend;
}

ScopedBackend::~ScopedBackend() { cpu_override = previous_; }

}  // namespace ember::kernels
