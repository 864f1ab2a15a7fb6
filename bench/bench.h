// The bench harness: a workload is a name, a unit for its rate, the amount of work per run (FLOPs
// or bytes), and a function that runs it once. Timing is the median of repeated runs after warm-up.
#pragma once
#include <functional>
#include <optional>
#include <string>

namespace ember::bench {

struct Workload {
  std::string name;
  std::string unit;  // "GFLOP/s" or "GB/s"
  double work = 0;   // per run, in FLOP or bytes
};

// Median seconds per call of `run` (after `warmup` calls), repeating until `min_seconds` have passed
// and at least `min_iters` calls were made.
double median_seconds(const std::function<void()>& run, int warmup = 3, int min_iters = 10,
                      double min_seconds = 0.5);

// The same workload built in LibTorch (only when Debian's libtorch-dev is installed) with `threads`
// intra-op threads: the call to time, or an empty function when LibTorch is not available.
std::function<void()> libtorch_workload(const std::string& name, int threads);
bool libtorch_available();
// LibTorch's GEMM checked against plain loops in double, then its GFLOP/s at 1024; nullopt when
// the result is wrong (or LibTorch is absent).
std::optional<double> libtorch_checked_gemm_gflops();

// What this machine can do at most, measured by the bench itself, on all cores: GFLOP/s of float32
// FMA at the CPU kernels' instruction-set level, GB/s of a streaming read (a sum) and of a streaming
// copy (bytes read plus bytes written). Bandwidth-bound rows are reported against the read figure,
// the most the memory delivers.
struct MachineLimits {
  double fma_gflops = 0;
  double read_gbs = 0;
  double copy_gbs = 0;
};
MachineLimits measure_machine_limits();

}  // namespace ember::bench
