// Collectives between the processes of a data-parallel run. A ProcessGroup is the set of ranks;
// MPI (Open MPI, launched by mpirun) carries them on the CPU. Every collective runs under a
// watchdog: one that does not complete within the timeout (a rank died or stopped calling it) ends
// every rank with an error naming this rank and the collective, instead of hanging.
//
//   auto world = distributed::world();        // null when not launched with several ranks
//   world->all_reduce(t, ReduceOp::Mean);     // in place
#pragma once
#include <cstdlib>
#include <memory>
#include <string>

#include "ember/core/tensor.h"

namespace ember::distributed {

enum class ReduceOp { Sum, Mean, Max, Min };

class ProcessGroup {
 public:
  virtual ~ProcessGroup() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual int local_rank() const = 0;  // rank among the processes of this machine
  // Whether collectives take tensors on `device` directly (MPI: the CPU; with NCCL: CUDA too).
  virtual bool accepts(Device device) const { return device.is_cpu(); }
  // In place on a contiguous CPU tensor (float32, float64, int64, int32).
  virtual void all_reduce(Tensor& t, ReduceOp op) = 0;
  // Starts an all-reduce (sum) that finishes in wait(); handles complete in the order started.
  virtual int64_t all_reduce_async(Tensor& t) = 0;
  virtual void wait(int64_t handle) = 0;
  virtual void broadcast(Tensor& t, int root) = 0;
  // Every rank's tensor stacked along a new first dimension (same shape on every rank).
  virtual Tensor all_gather(const Tensor& t) = 0;
  virtual void barrier() = 0;
  // Ends every rank now, printing `message` with this rank's number.
  [[noreturn]] virtual void abort(const std::string& message) = 0;
  virtual void set_timeout(double seconds) = 0;
};

// Whether this process was started by mpirun (or another launcher) with more than one rank.
inline bool launched_with_several_ranks() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"})
    if (const char* v = std::getenv(var)) return std::atoi(v) > 1;
  return false;
}
// Whether this ember was built with data-parallel collectives (ember::distributed, over MPI).
bool available();
// The group of all ranks (MPI_COMM_WORLD), made on first use (MPI is initialised then and
// finalised at exit). Null when ember was built without MPI or runs as a single process.
std::shared_ptr<ProcessGroup> world();

// In the GPU build (EMBER_CUDA=ON): a group over the same ranks whose collectives on CUDA tensors run
// on NCCL (bootstrapped over `host`: rank 0's ncclUniqueId is broadcast through MPI) and on the CPU
// through `host`. Elsewhere it returns `host`: the simulated device's memory is host memory and its
// gradients travel through MPI like the CPU's.
std::shared_ptr<ProcessGroup> with_device_collectives(std::shared_ptr<ProcessGroup> host);

}  // namespace ember::distributed
