// The bench harness's timing: see bench.h.
#include <algorithm>
#include <chrono>
#include <vector>

#include "bench.h"

namespace ember::bench {

double median_seconds(const std::function<void()>& run, int warmup, int min_iters, double min_seconds) {
  using clock = std::chrono::steady_clock;
  for (int i = 0; i < warmup; ++i) run();
  std::vector<double> times;
  const auto start = clock::now();
  while (static_cast<int>(times.size()) < min_iters ||
         std::chrono::duration<double>(clock::now() - start).count() < min_seconds) {
    const auto t0 = clock::now();
    run();
    times.push_back(std::chrono::duration<double>(clock::now() - t0).count());
    if (times.size() >= 1000) break;
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace ember::bench
