// Stand-in when LibTorch is not installed: the bench prints an empty LibTorch column.
#include "bench.h"

namespace ember::bench {
bool libtorch_available() { return false; }
std::function<void()> libtorch_workload(const std::string&, int) { return {}; }
std::optional<double> libtorch_checked_gemm_gflops() { return std::nullopt; }
}  // namespace ember::bench
