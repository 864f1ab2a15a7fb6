// The MPI ProcessGroup: see distributed.h. Collectives are blocking MPI calls (MPI_Allreduce,
// MPI_Bcast, MPI_Allgather) except all_reduce_async (MPI_Iallreduce), which lets gradient buckets
// travel while backward is still running. A watchdog thread aborts the job when a collective has
// been in flight longer than the timeout.
#include "ember/trainer/distributed.h"

#include <mpi.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <map>
#include <mutex>
#include <thread>

#include "ember/core/error.h"
#include "ember/core/ops.h"

namespace ember::distributed {
namespace {

MPI_Datatype mpi_type(DType t) {
  switch (t) {
    case kFloat32: return MPI_FLOAT;
    case kFloat64: return MPI_DOUBLE;
    case kInt64: return MPI_INT64_T;
    case kInt32: return MPI_INT32_T;
    default: EMBER_CHECK(false, "distributed: dtype ", dtype_name(t), " is not supported by collectives");
  }
  return MPI_FLOAT;
}

MPI_Op mpi_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::Max: return MPI_MAX;
    case ReduceOp::Min: return MPI_MIN;
    default: return MPI_SUM;
  }
}

void check_tensor(const Tensor& t, const char* what) {
  EMBER_CHECK(t.defined() && t.is_contiguous() && t.device().is_cpu(), "distributed.", what,
              ": expected a contiguous CPU tensor");
}

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

class MPIProcessGroup : public ProcessGroup {
 public:
  MPIProcessGroup() {
    int provided = 0;
    MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    MPI_Comm local;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &local);
    MPI_Comm_rank(local, &local_rank_);
    MPI_Comm_free(&local);
    if (const char* t = std::getenv("EMBER_DDP_TIMEOUT")) timeout_ = std::atof(t);
    watchdog_ = std::thread([this] { watch(); });
  }
  ~MPIProcessGroup() override {
    stop_ = true;
    if (watchdog_.joinable()) watchdog_.join();
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Finalize();
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_rank() const override { return local_rank_; }
  void set_timeout(double seconds) override { timeout_ = seconds; }

  void all_reduce(Tensor& t, ReduceOp op) override {
    check_tensor(t, "all_reduce");
    Guard g(*this, "all_reduce");
    MPI_Allreduce(MPI_IN_PLACE, t.data_ptr(), static_cast<int>(t.numel()), mpi_type(t.dtype()), mpi_op(op),
                  MPI_COMM_WORLD);
    if (op == ReduceOp::Mean) t.div_(static_cast<double>(size_));
  }

  int64_t all_reduce_async(Tensor& t) override {
    check_tensor(t, "all_reduce_async");
    MPI_Request request;
    MPI_Iallreduce(MPI_IN_PLACE, t.data_ptr(), static_cast<int>(t.numel()), mpi_type(t.dtype()), MPI_SUM,
                   MPI_COMM_WORLD, &request);
    std::lock_guard<std::mutex> lock(mu_);
    requests_[next_handle_] = request;
    return next_handle_++;
  }

  void wait(int64_t handle) override {
    MPI_Request request;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = requests_.find(handle);
      EMBER_CHECK(it != requests_.end(), "distributed.wait: unknown handle ", handle);
      request = it->second;
      requests_.erase(it);
    }
    Guard g(*this, "all_reduce (gradient bucket)");
    MPI_Wait(&request, MPI_STATUS_IGNORE);
  }

  void broadcast(Tensor& t, int root) override {
    check_tensor(t, "broadcast");
    Guard g(*this, "broadcast");
    MPI_Bcast(t.data_ptr(), static_cast<int>(t.numel()), mpi_type(t.dtype()), root, MPI_COMM_WORLD);
  }

  Tensor all_gather(const Tensor& t) override {
    Tensor src = t.contiguous();
    check_tensor(src, "all_gather");
    Shape shape = src.sizes();
    shape.insert(shape.begin(), size_);
    Tensor out = empty(shape, src.dtype());
    Guard g(*this, "all_gather");
    MPI_Allgather(src.data_ptr(), static_cast<int>(src.numel()), mpi_type(src.dtype()), out.data_ptr(),
                  static_cast<int>(src.numel()), mpi_type(src.dtype()), MPI_COMM_WORLD);
    return out;
  }

  void barrier() override {
    Guard g(*this, "barrier");
    MPI_Barrier(MPI_COMM_WORLD);
  }

  [[noreturn]] void abort(const std::string& message) override {
    // One write: a line sent in pieces can interleave with the launcher's own abort report.
    const std::string line = "ember: rank " + std::to_string(rank_) + " of " + std::to_string(size_) + ": " +
                             message + "; ending all ranks\n";
    [[maybe_unused]] const ssize_t written = ::write(STDERR_FILENO, line.data(), line.size());
    MPI_Abort(MPI_COMM_WORLD, 1);
    std::_Exit(1);
  }

 private:
  // Marks a collective as in flight for the watchdog.
  struct Guard {
    Guard(MPIProcessGroup& g, const char* what) : g(g) {
      g.what_ = what;
      g.started_ = now();
    }
    ~Guard() { g.started_ = 0; }
    MPIProcessGroup& g;
  };

  void watch() {
    while (!stop_) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      const double started = started_;
      if (started > 0 && now() - started > timeout_)
        abort(std::string("collective ") + what_.load() + " did not complete within " +
              std::to_string(static_cast<int64_t>(timeout_)) +
              " s (another rank failed or stopped calling it)");
    }
  }

  int rank_ = 0, size_ = 1, local_rank_ = 0;
  std::atomic<double> timeout_{1800};
  std::atomic<double> started_{0};
  std::atomic<const char*> what_{""};
  std::atomic<bool> stop_{false};
  std::thread watchdog_;
  std::mutex mu_;
  std::map<int64_t, MPI_Request> requests_;
  int64_t next_handle_ = 0;
};

}  // namespace

bool available() { return true; }

std::shared_ptr<ProcessGroup> world() {
  static std::shared_ptr<ProcessGroup> group = [] {
    std::shared_ptr<ProcessGroup> g;
    if (launched_with_several_ranks()) g = std::make_shared<MPIProcessGroup>();
    return g;
  }();
  return group;
}

}  // namespace ember::distributed
