// Device memory for the CUDA backend through a cache, as PyTorch does: freed blocks are kept in
// per-size free lists and handed out again, so a training loop that allocates the same shapes
// every step stops calling the device allocator after its first step. Sizes are rounded up to 512
// bytes (small) or to 2 MiB granules (large) so similar requests share blocks. empty_cache() returns
// the idle blocks; the statistics are PyTorch's (allocated = in use by tensors, reserved = in use +
// cached, peak = the most ever allocated).
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace ember::kernels::cuda {

struct MemoryStats {
  int64_t allocated = 0, reserved = 0, peak_allocated = 0;
  int64_t device_allocations = 0;  // calls that reached the device allocator
};

class CachingAllocator {
 public:
  void* allocate(size_t bytes);
  void deallocate(void* p);
  void empty_cache();
  MemoryStats stats() const;
  void reset_peak();
  static size_t round_size(size_t bytes);

 private:
  void release_cached();  // with mu_ held

  mutable std::mutex mu_;
  std::map<size_t, std::vector<void*>> free_;  // size class -> idle blocks
  std::unordered_map<void*, size_t> live_;     // block -> size class
  MemoryStats stats_;
};

}  // namespace ember::kernels::cuda
