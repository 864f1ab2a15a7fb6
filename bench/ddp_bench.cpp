// Data-parallel bench: run under `mpirun -np 2` with one thread per rank,
// and as one process with two threads, by scripts/bench-ddp.sh.
//   encoder_step   one training step of ember_bench's encoder_step (global batch 32: each of
//                  N ranks takes 32/N sequences), gradients averaged by the GradientReducer
//   allreduce_N    float32 all-reduce of N bytes: ember's GradientReducer path (copy into a bucket,
//                  MPI_Iallreduce, wait, copy out) beside MPI_Allreduce and bare MPI_Iallreduce on
//                  the same buffer (osu_allreduce's measurement)
// Prints one JSON line per workload (rank 0).
#include <mpi.h>
#include <omp.h>

#include <cstdio>
#include <iostream>

#include <ember/ember.h>
#include "bench.h"
#include "bench_models.h"

using namespace ember;

int main() {
  auto group = distributed::world();
  const int rank = group ? group->rank() : 0, world = group ? group->size() : 1;
  const int threads = omp_get_max_threads();
  auto report = [&](const std::string& name, double ms, const std::string& extra) {
    if (rank == 0)
      std::printf("{\"name\": \"%s\", \"ranks\": %d, \"threads_per_rank\": %d, \"ms\": %.3f%s}\n",
                  name.c_str(), world, threads, ms, extra.c_str());
  };

  manual_seed(0);
  auto model = std::make_shared<bench::EncoderLM>();
  auto opt = std::make_shared<optim::Adam>(model->parameters(), optim::AdamOptions{.lr = 1e-3});
  std::shared_ptr<trainer::GradientReducer> reducer;
  if (group) {
    for (auto& p : model->parameters()) {
      Tensor t = p.detach();
      group->broadcast(t, 0);
    }
    reducer = trainer::GradientReducer::create(group, model->parameters());
  }
  const int64_t local_batch = 32 / world;
  Tensor tokens = randint(1000, {64, local_batch}), targets = randint(1000, {64, local_batch});
  auto step = [&] {
    opt->zero_grad();
    Tensor logits = (*model)(tokens);
    Tensor loss = nn::functional::cross_entropy(logits.reshape({-1, 1000}), targets.reshape({-1}));
    if (reducer) reducer->arm(true);
    loss.backward();
    if (reducer) reducer->finish();
    opt->step();
  };
  // Every rank runs the same number of steps (the harness's stopping rule could differ per rank).
  const double s = bench::median_seconds(step, 3, 20, 0.0);
  report("encoder_step", 1e3 * s, ", \"k_tokens_per_s\": " + std::to_string(64 * 32 / s / 1e3));

  if (!group) return 0;
  for (int64_t bytes : {int64_t(4) << 10, int64_t(256) << 10, int64_t(4) << 20, int64_t(32) << 20}) {
    const int64_t n = bytes / 4;
    Tensor grad = randn({n});
    Tensor bucket = zeros({n});
    auto ember_path = [&] {
      bucket.copy_(grad);
      const int64_t h = group->all_reduce_async(bucket);
      group->wait(h);
      grad.copy_(bucket / static_cast<double>(world));
    };
    auto mpi_path = [&] {
      MPI_Allreduce(MPI_IN_PLACE, bucket.data_ptr(), static_cast<int>(n), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    };
    auto mpi_nonblocking = [&] {
      MPI_Request r;
      MPI_Iallreduce(MPI_IN_PLACE, bucket.data_ptr(), static_cast<int>(n), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD,
                     &r);
      MPI_Wait(&r, MPI_STATUS_IGNORE);
    };
    const double e = bench::median_seconds(ember_path, 3, 30, 0.0);
    const double m = bench::median_seconds(mpi_path, 3, 30, 0.0);
    const double mi = bench::median_seconds(mpi_nonblocking, 3, 30, 0.0);
    // Bus bandwidth as osu/nccl-tests define it for all-reduce: 2 (N-1)/N x bytes / time.
    const double factor = 2.0 * (world - 1) / world * static_cast<double>(bytes) / 1e9;
    report("allreduce_" + std::to_string(bytes), 1e3 * e,
           ", \"ember_busbw_GBps\": " + std::to_string(factor / e) + ", \"mpi_ms\": " +
               std::to_string(1e3 * m) + ", \"mpi_busbw_GBps\": " + std::to_string(factor / m) +
               ", \"mpi_iallreduce_ms\": " + std::to_string(1e3 * mi));
  }
  return 0;
}
