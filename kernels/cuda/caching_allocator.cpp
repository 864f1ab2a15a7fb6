// CachingAllocator: see caching_allocator.h.
#include "ember/kernels/cuda/caching_allocator.h"

#include <algorithm>

#include "ember/core/error.h"
#include "ember/kernels/cuda/device_runtime.h"

namespace ember::kernels::cuda {

size_t CachingAllocator::round_size(size_t bytes) {
  constexpr size_t kSmall = 512, kLargeFrom = 1 << 20, kGranule = 2 << 20;
  if (bytes < kLargeFrom) return std::max<size_t>(kSmall, (bytes + kSmall - 1) / kSmall * kSmall);
  return (bytes + kGranule - 1) / kGranule * kGranule;
}

void* CachingAllocator::allocate(size_t bytes) {
  const size_t size = round_size(bytes);
  std::lock_guard<std::mutex> lock(mu_);
  void* p = nullptr;
  auto it = free_.find(size);
  if (it != free_.end() && !it->second.empty()) {
    p = it->second.back();
    it->second.pop_back();
  } else {
    p = runtime::device_malloc(size);
    if (!p) {  // out of device memory: give the idle cached blocks back and try once more
      release_cached();
      p = runtime::device_malloc(size);
    }
    EMBER_CHECK(p != nullptr, "cuda: out of memory allocating ", size, " bytes (", stats_.reserved,
                " reserved; try cuda::empty_cache())");
    stats_.reserved += static_cast<int64_t>(size);
    ++stats_.device_allocations;
  }
  live_[p] = size;
  stats_.allocated += static_cast<int64_t>(size);
  stats_.peak_allocated = std::max(stats_.peak_allocated, stats_.allocated);
  return p;
}

void CachingAllocator::deallocate(void* p) {
  if (!p) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = live_.find(p);
  EMBER_CHECK(it != live_.end(), "cuda: freeing a pointer the caching allocator did not hand out");
  stats_.allocated -= static_cast<int64_t>(it->second);
  free_[it->second].push_back(p);
  live_.erase(it);
}

void CachingAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(mu_);
  release_cached();
}

void CachingAllocator::release_cached() {
  for (auto& [size, blocks] : free_) {
    for (void* p : blocks) runtime::device_free(p);
    stats_.reserved -= static_cast<int64_t>(size * blocks.size());
  }
  free_.clear();
}

MemoryStats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void CachingAllocator::reset_peak() {
  std::lock_guard<std::mutex> lock(mu_);
  stats_.peak_allocated = stats_.allocated;
}

}  // namespace ember::kernels::cuda
