// NCCL collectives for CUDA tensors (GPU build): see with_device_collectives in distributed.h. The
// communicator is made once per process from rank 0's ncclUniqueId, broadcast over the MPI group.
// Collectives are queued on ember's CUDA stream, so the kernels before and after them are ordered
// without host synchronisation; waiting (wait(), and the blocking collectives) polls the stream
// against the group's timeout and aborts every rank, naming the collective, when it runs out.
// CPU tensors and barrier() go to the MPI group.
#include <cuda_runtime.h>
#include <nccl.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "ember/core/error.h"
#include "ember/core/ops.h"
#include "ember/kernels/cuda/device_runtime.h"
#include "ember/trainer/distributed.h"

namespace ember::distributed {
namespace {

ncclDataType_t nccl_type(DType t) {
  switch (t) {
    case kFloat32: return ncclFloat32;
    case kFloat64: return ncclFloat64;
    case kInt64: return ncclInt64;
    case kInt32: return ncclInt32;
    case kBFloat16: return ncclBfloat16;
    case kFloat16: return ncclFloat16;
    default: fail("distributed (NCCL): dtype ", dtype_name(t), " is not supported by collectives");
  }
}

ncclRedOp_t nccl_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::Mean: return ncclAvg;
    case ReduceOp::Max: return ncclMax;
    case ReduceOp::Min: return ncclMin;
    default: return ncclSum;
  }
}

void check(ncclResult_t r, const char* call) {
  if (r != ncclSuccess) fail("distributed (NCCL): ", call, " failed: ", ncclGetErrorString(r));
}

class NcclProcessGroup : public ProcessGroup {
 public:
  explicit NcclProcessGroup(std::shared_ptr<ProcessGroup> host) : host_(std::move(host)) {
    stream_ = static_cast<cudaStream_t>(kernels::cuda::runtime::stream_handle());
    ncclUniqueId id{};
    if (host_->rank() == 0) check(ncclGetUniqueId(&id), "ncclGetUniqueId");
    static_assert(sizeof(ncclUniqueId) % sizeof(int32_t) == 0);
    Tensor bytes = zeros({static_cast<int64_t>(sizeof(ncclUniqueId) / sizeof(int32_t))}, kInt32);
    std::memcpy(bytes.data_ptr(), &id, sizeof id);
    host_->broadcast(bytes, 0);
    std::memcpy(&id, bytes.data_ptr(), sizeof id);
    check(ncclCommInitRank(&comm_, host_->size(), id, host_->rank()), "ncclCommInitRank");
  }
  ~NcclProcessGroup() override { ncclCommDestroy(comm_); }

  int rank() const override { return host_->rank(); }
  int size() const override { return host_->size(); }
  int local_rank() const override { return host_->local_rank(); }
  bool accepts(Device device) const override { return device.is_cpu() || device.is_cuda(); }
  void set_timeout(double seconds) override {
    timeout_ = seconds;
    host_->set_timeout(seconds);
  }
  void barrier() override { host_->barrier(); }
  [[noreturn]] void abort(const std::string& message) override {
    ncclCommAbort(comm_);
    host_->abort(message);  // MPI_Abort: does not return
    std::_Exit(1);
  }

  void all_reduce(Tensor& t, ReduceOp op) override {
    if (t.device().is_cpu()) return host_->all_reduce(t, op);
    check_device(t, "all_reduce");
    check(ncclAllReduce(t.data_ptr(), t.data_ptr(), t.numel(), nccl_type(t.dtype()), nccl_op(op), comm_,
                        stream_),
          "ncclAllReduce");
    finish("all_reduce");
  }
  int64_t all_reduce_async(Tensor& t) override {
    if (t.device().is_cpu()) return host_->all_reduce_async(t) * 2;  // even handles: MPI's
    check_device(t, "all_reduce_async");
    check(ncclAllReduce(t.data_ptr(), t.data_ptr(), t.numel(), nccl_type(t.dtype()), ncclSum, comm_, stream_),
          "ncclAllReduce");
    return 1;  // odd: queued on the stream, ordered before everything queued after it
  }
  void wait(int64_t handle) override {
    if (handle % 2 == 0) return host_->wait(handle / 2);
    finish("all_reduce (gradient bucket)");
  }
  void broadcast(Tensor& t, int root) override {
    if (t.device().is_cpu()) return host_->broadcast(t, root);
    check_device(t, "broadcast");
    check(ncclBroadcast(t.data_ptr(), t.data_ptr(), t.numel(), nccl_type(t.dtype()), root, comm_, stream_),
          "ncclBroadcast");
    finish("broadcast");
  }
  Tensor all_gather(const Tensor& t) override {
    if (t.device().is_cpu()) return host_->all_gather(t);
    Tensor src = t.contiguous();
    Shape shape = src.sizes();
    shape.insert(shape.begin(), size());
    Tensor out = empty(shape, TensorOptions(src.dtype()).set_device(src.device()));
    check(ncclAllGather(src.data_ptr(), out.data_ptr(), src.numel(), nccl_type(src.dtype()), comm_, stream_),
          "ncclAllGather");
    finish("all_gather");
    return out;
  }

 private:
  static void check_device(const Tensor& t, const char* what) {
    EMBER_CHECK(t.defined() && t.is_contiguous() && t.device().is_cuda(), "distributed.", what,
                ": expected a contiguous CPU or CUDA tensor");
  }
  // Waits for the stream (and so the collective) within the timeout; a hung peer ends every rank.
  void finish(const char* what) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_);
    for (;;) {
      const cudaError_t status = cudaStreamQuery(stream_);
      if (status == cudaSuccess) return;
      if (status != cudaErrorNotReady)
        fail("distributed (NCCL): ", what, " failed: ", cudaGetErrorString(status));
      ncclResult_t async = ncclSuccess;
      ncclCommGetAsyncError(comm_, &async);
      if (async != ncclSuccess) abort(std::string("NCCL ") + what + " failed: " + ncclGetErrorString(async));
      if (std::chrono::steady_clock::now() > deadline)
        abort(std::string("collective ") + what + " did not complete within " +
              std::to_string(static_cast<int64_t>(timeout_)) +
              " s (another rank failed or stopped calling it)");
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }

  std::shared_ptr<ProcessGroup> host_;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  double timeout_ = 1800;
};

}  // namespace

std::shared_ptr<ProcessGroup> with_device_collectives(std::shared_ptr<ProcessGroup> host) {
  if (!host) return host;
  return std::make_shared<NcclProcessGroup>(std::move(host));
}

}  // namespace ember::distributed
