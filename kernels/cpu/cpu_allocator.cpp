// Size-class caching for large CPU blocks; see cpu_allocator.h.
#include "ember/kernels/cpu/cpu_allocator.h"

#include <sys/mman.h>

#include <bit>
#include <cstdlib>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "ember/core/error.h"

namespace ember::kernels {
namespace {

constexpr size_t kMaxCached = size_t{1} << 30;  // keep at most 1 GiB of free blocks

// Rounds up to one of 8 steps between consecutive powers of two (at most 12.5% waste).
size_t size_class(size_t n) {
  const size_t top = std::bit_floor(n);
  const size_t step = std::max<size_t>(top / 8, 64);
  return (n + step - 1) / step * step;
}

struct Cache {
  std::mutex mu;
  std::unordered_map<size_t, std::vector<void*>> free_blocks;
  size_t cached_bytes = 0;  // in free_blocks, bounded by kMaxCached
};

Cache& cache() {
  static Cache* c = new Cache;  // never destroyed: tensors may be freed during static destruction
  return *c;
}

constexpr size_t kHugePage = size_t{2} << 20;

// Blocks of 2 MiB and more are aligned to 2 MiB and offered to the kernel for transparent huge pages
// (where THP is in "madvise" mode, the default on many distributions, nothing is huge without the
// advice): a streaming kernel over a 64 MiB tensor otherwise takes a TLB miss every 4 KiB, which
// halved sum_16M's bandwidth on the 2-core Zen 5 machines.
void* raw_alloc(size_t n) {
  const bool huge = n >= kHugePage;
  const size_t align = huge ? kHugePage : 64;
  const size_t bytes = (std::max<size_t>(n, 1) + align - 1) / align * align;  // aligned_alloc's rule
  void* p = std::aligned_alloc(align, bytes);
  if (!p) fail("allocate: out of memory allocating ", n, " bytes on the CPU");
#if defined(MADV_HUGEPAGE)
  if (huge) madvise(p, bytes, MADV_HUGEPAGE);
#endif
  return p;
}

}  // namespace

void* cpu_allocate(size_t nbytes) {
  const size_t cls = size_class(nbytes);
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mu);
    auto it = c.free_blocks.find(cls);
    if (it != c.free_blocks.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      c.cached_bytes -= cls;
      return p;
    }
  }
  return raw_alloc(cls);
}

void cpu_deallocate(void* ptr, size_t nbytes) {
  if (!ptr) return;
  const size_t cls = size_class(nbytes);
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  if (c.cached_bytes + cls > kMaxCached) {
    std::free(ptr);
    return;
  }
  c.free_blocks[cls].push_back(ptr);
  c.cached_bytes += cls;
}

void cpu_empty_cache() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  for (auto& [cls, blocks] : c.free_blocks)
    for (void* p : blocks) std::free(p);
  c.free_blocks.clear();
  c.cached_bytes = 0;
}

}  // namespace ember::kernels
