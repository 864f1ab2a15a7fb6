// Stand-in when LibTorch is not installed: the bench prints an empty LibTorch column.
#include "bench.h"

namespace ember::bench {
bool libtorch_available() { return false; }
std::optional<double> libtorch_seconds(const std::string&, int) { return std::nullopt; }
}  // namespace ember::bench
