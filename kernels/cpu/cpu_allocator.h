// A caching allocator for CPU tensors. Blocks freed by one op are kept and handed to the next op that
// asks for the same size class, instead of going back to the system: a fresh 16 MiB block costs 4096
// page faults on first touch, which measured 2-5x slower softmax/GEMM than the kernels themselves
// (bench/), and small 64-byte-aligned blocks from aligned_alloc cost more than the small ops of a
// batch-8 training step that use them.
#pragma once
#include <cstddef>
#include <cstdint>

namespace ember::kernels {

void* cpu_allocate(size_t nbytes);
void cpu_deallocate(void* ptr, size_t nbytes);
void cpu_empty_cache();

}  // namespace ember::kernels
