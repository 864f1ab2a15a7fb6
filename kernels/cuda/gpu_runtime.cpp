// The CUDA runtime on a real GPU (see device_runtime.h), used by the build for GPUs (EMBER_CUDA=ON).
//
// All of ember's device work is ordered on one stream per process: kernels (gpu::stream() in
// portability.h), cuBLAS calls and copies. A copy from the host goes through a pinned (page-locked)
// staging buffer, so cudaMemcpyAsync can return before the transfer ends: the caller may free its
// host memory at once, and the next use of the staging buffer waits on an event for the last
// transfer out of it. A copy to the host waits for the stream, since the caller reads the result.
// Errors from the runtime and cuBLAS become ember::Error naming the call.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "ember/core/error.h"
#include "ember/kernels/cuda/device_runtime.h"

namespace ember::kernels::cuda::runtime {
namespace {

void check(cudaError_t status, const char* call) {
  if (status != cudaSuccess) fail("cuda: ", call, " failed: ", cudaGetErrorString(status));
}
void check(cublasStatus_t status, const char* call) {
  if (status != CUBLAS_STATUS_SUCCESS)
    fail("cuda: ", call, " failed: cuBLAS status ", static_cast<int>(status));
}

// The count and, when it is zero, why. Any error here (no driver, no device) means "no GPU"; the
// count is only written on success, so it starts at 0.
struct Probe {
  int count = 0;
  std::string reason;
};
const Probe& probe() {
  static const Probe p = [] {
    Probe r;
    const cudaError_t status = cudaGetDeviceCount(&r.count);
    if (status != cudaSuccess) {
      r.count = 0;
      r.reason = std::string("cudaGetDeviceCount: ") + cudaGetErrorString(status);
    } else if (r.count == 0) {
      r.reason = "the CUDA runtime found no GPU";
    }
    return r;
  }();
  return p;
}

constexpr size_t kStagingBytes = size_t(32) << 20;  // copies larger than this go in chunks

struct Device {
  cudaStream_t stream = nullptr;
  cublasHandle_t blas = nullptr;
  bool allow_tf32 = false;
  std::mutex staging_mu;
  void* staging = nullptr;             // pinned host memory, kStagingBytes
  cudaEvent_t staging_free = nullptr;  // recorded after the last transfer out of `staging`

  Device() {
    EMBER_CHECK(probe().count > 0, "cuda: no GPU: ", probe().reason);
    // One process per GPU: under mpirun, the rank on this machine picks the GPU that is its cuda:0.
    int index = 0;
    for (const char* var : {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "LOCAL_RANK"})
      if (const char* v = std::getenv(var)) {
        index = std::atoi(v) % probe().count;
        break;
      }
    check(cudaSetDevice(index), "cudaSetDevice");
    // A blocking stream: work on the legacy default stream (plain cudaMemcpy) still waits for ours.
    check(cudaStreamCreate(&stream), "cudaStreamCreate");
    check(cublasCreate(&blas), "cublasCreate");
    check(cublasSetStream(blas, stream), "cublasSetStream");
    check(cudaMallocHost(&staging, kStagingBytes), "cudaMallocHost (pinned staging buffer)");
    check(cudaEventCreateWithFlags(&staging_free, cudaEventDisableTiming), "cudaEventCreate");
  }
  // Not destroyed: the process's exit releases the context, and static destruction order against
  // the CUDA runtime's own teardown is unspecified.
};

Device& device() {
  static Device* d = new Device();
  return *d;
}

int as_int(int64_t v, const char* what) {
  EMBER_CHECK(v >= 0 && v <= INT_MAX, "cuda gemm: ", what, " = ", v, " is beyond cuBLAS's 32-bit sizes");
  return static_cast<int>(v);
}

}  // namespace

const char* name() { return "cuda"; }
bool available() { return probe().count > 0; }
std::string unavailable_reason() {
  return "no usable GPU (" + probe().reason +
         "); this build (EMBER_CUDA=ON) runs ember's kernels on the GPU, a "
         "build with -DEMBER_CUDA=OFF has the simulated device (EMBER_CUDA_SIM=1) instead";
}
int device_count() { return probe().count; }
bool built_for_gpu() { return true; }
void enable_simulated_device() {
  fail(
      "cuda::enable_simulated_device: this build runs ember's kernels on the GPU (EMBER_CUDA=ON); the "
      "simulated "
      "device is in builds configured with -DEMBER_CUDA=OFF");
}

void* device_malloc(size_t bytes) {
  void* p = nullptr;
  if (cudaMalloc(&p, bytes) != cudaSuccess) {
    (void)cudaGetLastError();  // out of memory is reported by returning null; clear it
    return nullptr;
  }
  return p;
}

void device_free(void* p) { check(cudaFree(p), "cudaFree"); }

void copy_to_device(void* dst, const void* host_src, size_t bytes) {
  Device& d = device();
  std::lock_guard<std::mutex> lock(d.staging_mu);
  for (size_t done = 0; done < bytes; done += kStagingBytes) {
    const size_t chunk = std::min(kStagingBytes, bytes - done);
    check(cudaEventSynchronize(d.staging_free), "cudaEventSynchronize");  // the last transfer left it
    std::memcpy(d.staging, static_cast<const char*>(host_src) + done, chunk);
    check(cudaMemcpyAsync(static_cast<char*>(dst) + done, d.staging, chunk, cudaMemcpyHostToDevice, d.stream),
          "cudaMemcpyAsync (host to device)");
    check(cudaEventRecord(d.staging_free, d.stream), "cudaEventRecord");
  }
}

void copy_to_host(void* host_dst, const void* src, size_t bytes) {
  Device& d = device();
  std::lock_guard<std::mutex> lock(d.staging_mu);
  for (size_t done = 0; done < bytes; done += kStagingBytes) {
    const size_t chunk = std::min(kStagingBytes, bytes - done);
    check(cudaMemcpyAsync(d.staging, static_cast<const char*>(src) + done, chunk, cudaMemcpyDeviceToHost,
                          d.stream),
          "cudaMemcpyAsync (device to host)");
    check(cudaStreamSynchronize(d.stream), "cudaStreamSynchronize (device to host copy)");
    std::memcpy(static_cast<char*>(host_dst) + done, d.staging, chunk);
  }
}

void synchronize() {
  if (available()) check(cudaStreamSynchronize(device().stream), "cudaStreamSynchronize");
}

void* stream_handle() { return device().stream; }

void set_allow_tf32(bool on) {
  Device& d = device();
  d.allow_tf32 = on;
  check(cublasSetMathMode(d.blas, on ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH),
        "cublasSetMathMode");
}
bool allow_tf32() { return available() && device().allow_tf32; }

// Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: cuBLAS gets B first, and each
// row-major leading dimension is the column-major one of the transposed matrix.
void gemm(const GemmArgs& g, const void* a, const void* b, void* c) {
  const DType dt = g.dtype;
  const bool trans_a = g.trans_a, trans_b = g.trans_b;
  const int64_t m = g.m, n = g.n, k = g.k, lda = g.lda, ldb = g.ldb, ldc = g.ldc, batch = g.batch;
  const int64_t stride_a = g.stride_a, stride_b = g.stride_b, stride_c = g.stride_c;
  const double alpha = g.alpha, beta = g.beta;
  if (m == 0 || n == 0 || batch == 0) return;
  Device& d = device();
  const cublasOperation_t op_b = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                          op_a = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  const int M = as_int(n, "n"), N = as_int(m, "m"), K = as_int(k, "k"), count = as_int(batch, "batch");
  // With k == 0 the operands are never read, but cuBLAS still wants leading dimensions of at least 1.
  const int LDB = as_int(std::max<int64_t>(1, ldb), "ldb"), LDA = as_int(std::max<int64_t>(1, lda), "lda"),
            LDC = as_int(std::max<int64_t>(1, ldc), "ldc");
  if (is_half(dt)) {  // 16-bit operands and result, float32 accumulation (tensor cores)
    const cudaDataType_t type = dt == kBFloat16 ? CUDA_R_16BF : CUDA_R_16F;
    const float fa = static_cast<float>(alpha), fb = static_cast<float>(beta);
    check(cublasGemmStridedBatchedEx(d.blas, op_b, op_a, M, N, K, &fa, b, type, LDB, stride_b, a, type, LDA,
                                     stride_a, &fb, c, type, LDC, stride_c, count, CUBLAS_COMPUTE_32F,
                                     CUBLAS_GEMM_DEFAULT),
          "cublasGemmStridedBatchedEx (16-bit)");
  } else if (dt == kFloat64) {
    check(cublasDgemmStridedBatched(d.blas, op_b, op_a, M, N, K, &alpha, static_cast<const double*>(b), LDB,
                                    stride_b, static_cast<const double*>(a), LDA, stride_a, &beta,
                                    static_cast<double*>(c), LDC, stride_c, count),
          "cublasDgemmStridedBatched");
  } else {
    const float fa = static_cast<float>(alpha), fb = static_cast<float>(beta);
    check(cublasSgemmStridedBatched(d.blas, op_b, op_a, M, N, K, &fa, static_cast<const float*>(b), LDB,
                                    stride_b, static_cast<const float*>(a), LDA, stride_a, &fb,
                                    static_cast<float*>(c), LDC, stride_c, count),
          "cublasSgemmStridedBatched");
  }
}

}  // namespace ember::kernels::cuda::runtime

// The stream every kernel is launched on, and the launch check (portability.h).
namespace ember::gpu {
cudaStream_t stream() { return kernels::cuda::runtime::device().stream; }
void check_launch(const char* kernel) {
  const cudaError_t status = cudaGetLastError();
  if (status != cudaSuccess) fail("cuda: launching ", kernel, " failed: ", cudaGetErrorString(status));
}
}  // namespace ember::gpu
