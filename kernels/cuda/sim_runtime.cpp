// The simulated device (see device_runtime.h): its memory is host memory from the simulator's heap
// (each block followed by a canary the simulator checks after every launch), copies are memcpy, work
// runs in order as it is issued, and GEMM is the CPU backend's. It exists once switched on, by
// EMBER_CUDA_SIM=1 in the environment or cuda::enable_simulated_device().
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "ember/kernels/backend.h"
#include "ember/kernels/cuda/device_runtime.h"
#include "ember/kernels/cuda/sim/simt.h"

namespace ember::kernels::cuda::runtime {
namespace {
std::atomic<bool> g_enabled{false};
std::atomic<bool> g_allow_tf32{false};

bool enabled_by_environment() {
  static const bool on = [] {
    const char* v = std::getenv("EMBER_CUDA_SIM");
    return v && (std::strcmp(v, "1") == 0 || std::strcmp(v, "ON") == 0 || std::strcmp(v, "on") == 0);
  }();
  return on;
}
}  // namespace

const char* name() { return "cuda (simulated)"; }
bool available() { return enabled_by_environment() || g_enabled.load(); }
std::string unavailable_reason() {
  return "this build of ember runs its CUDA kernels on the SIMT simulator (configured with EMBER_CUDA=OFF or "
         "without nvcc); set EMBER_CUDA_SIM=1 to use the simulated device as cuda:0, or build with "
         "-DEMBER_CUDA=ON on a machine with a GPU";
}
int device_count() { return available() ? 1 : 0; }
bool built_for_gpu() { return false; }
void enable_simulated_device() { g_enabled = true; }

void* device_malloc(size_t bytes) { return sim::device_malloc(bytes); }
void device_free(void* p) { sim::device_free(p); }
// memcpy needs valid pointers even for 0 bytes; an empty tensor may have none.
void copy_to_device(void* dst, const void* host_src, size_t bytes) {
  if (bytes) std::memcpy(dst, host_src, bytes);
}
void copy_to_host(void* host_dst, const void* src, size_t bytes) {
  if (bytes) std::memcpy(host_dst, src, bytes);
}
void synchronize() {}
void* stream_handle() { return nullptr; }
void set_allow_tf32(bool on) { g_allow_tf32 = on; }
bool allow_tf32() { return g_allow_tf32; }

// 16-bit operands are widened to float32 for the CPU's GEMM and the result rounded back, as cuBLAS
// accumulates them in float32.
void gemm(const GemmArgs& g, const void* a, const void* b, void* c) {
  const DType dt = g.dtype;
  if (!is_half(dt)) {
    cpu_backend().gemm(g, a, b, c);
    return;
  }
  const int64_t m = g.m, n = g.n, k = g.k, batch = g.batch;
  // Each stored operand's extent in elements, up to its last batch's last element.
  auto extent = [&](int64_t rows, int64_t cols, int64_t ld, int64_t stride) {
    return rows == 0 || cols == 0 || batch == 0 ? 0 : (batch - 1) * stride + (rows - 1) * ld + cols;
  };
  const int64_t na = g.trans_a ? extent(k, m, g.lda, g.stride_a) : extent(m, k, g.lda, g.stride_a);
  const int64_t nb = g.trans_b ? extent(n, k, g.ldb, g.stride_b) : extent(k, n, g.ldb, g.stride_b);
  const int64_t nc = extent(m, n, g.ldc, g.stride_c);
  std::vector<float> fa(na), fb(nb), fc(nc);
  Backend& cpu = cpu_backend();
  cpu.cast(dt, a, kFloat32, fa.data(), na);
  cpu.cast(dt, b, kFloat32, fb.data(), nb);
  cpu.cast(dt, c, kFloat32, fc.data(), nc);  // also when beta = 0: elements between C's rows round-trip
  GemmArgs wide = g;
  wide.dtype = kFloat32;
  cpu.gemm(wide, fa.data(), fb.data(), fc.data());
  cpu.cast(kFloat32, fc.data(), dt, c, nc);
}

}  // namespace ember::kernels::cuda::runtime
