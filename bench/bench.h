// The bench harness: a workload is a name, a unit for its rate, the amount of work per run (FLOPs
// or bytes), and a function that runs it once. Timing is the median of repeated runs after warm-up.
#pragma once
#include <functional>
#include <optional>
#include <string>

namespace ember::bench {

struct Workload {
  std::string name;
  std::string unit;     // "GFLOP/s" or "GB/s"
  double work = 0;      // per run, in FLOP or bytes
};

// Median seconds per call of `run` (after `warmup` calls), repeating until `min_seconds` have passed
// and at least `min_iters` calls were made.
double median_seconds(const std::function<void()>& run, int warmup = 3, int min_iters = 10,
                      double min_seconds = 0.5);

// The same workload in LibTorch (built only when Debian's libtorch-dev is installed): the median
// seconds with `threads` intra-op threads, or nullopt when LibTorch is not available.
std::optional<double> libtorch_seconds(const std::string& name, int threads);
bool libtorch_available();

}  // namespace ember::bench
