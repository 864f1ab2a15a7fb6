// The SIMT simulator: CUDA's execution model on the CPU, so a kernel file builds with g++ and runs in
// CI. Each CUDA thread is a stackful fiber (64 KiB stack + guard page) switched by a hand-written
// x86-64 context switch; the threads of a block run on one OS thread, blocks spread over OpenMP
// threads. A thread that finishes hands its fiber to the next thread, so kernels without barriers
// never switch context.
//
// What it checks (an ember::Error after the launch, naming the kernel and the source line):
//   - __syncthreads reached at different call sites by threads of one block (divergent barrier),
//     or while other threads of the block have already exited;
//   - warp collectives (__shfl_*_sync, __ballot_sync, __syncwarp) waiting for a lane that exited
//     or that waits elsewhere (a deadlock on real hardware);
//   - writes past the end of a simulator device allocation (sim::device_malloc puts a canary after
//     each one and checks it after every launch).
// What it varies to expose races: EMBER_SIM_ORDER=forward|reverse|random runs a block's threads in
// that order; dynamic shared memory starts filled with NaN bytes.
#pragma once
#include <atomic>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <type_traits>

namespace ember::cuda {
inline constexpr int kWarpSize = 32;
}  // namespace ember::cuda

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
using uint3 = dim3;
using cudaStream_t = void*;

namespace ember::sim {

// What one simulated thread sees. The scheduler points `current()` at it before it runs.
struct ThreadContext {
  dim3 thread_idx, block_idx, block_dim, grid_dim;  // threadIdx, blockIdx, blockDim, gridDim
  int linear = 0;                                   // thread index within the block
};
extern thread_local ThreadContext* g_current;
inline ThreadContext& current() { return *g_current; }

// Runs `body` as a grid: called once per simulated thread with current() set.
void launch(const char* kernel_name, dim3 grid, dim3 block, size_t dynamic_shared_bytes,
            const std::function<void()>& body);

void syncthreads(int line);
void syncwarp(unsigned mask, int line);
// The warp collectives exchange 64-bit payloads; kind: 0 idx, 1 up, 2 down, 3 xor.
uint64_t shuffle(unsigned mask, uint64_t value, int kind, int arg, int width, int line);
unsigned ballot(unsigned mask, bool predicate, int line);
void* dynamic_shared();

// Simulated device memory: host memory with a canary after every allocation.
void* device_malloc(size_t bytes);
void device_free(void* p);
// Throws naming the kernel if any live allocation's canary was overwritten.
void check_canaries(const char* kernel_name);

template <class T>
T shuffle_as(unsigned mask, T v, int kind, int arg, int width, int line) {
  static_assert(sizeof(T) <= 8, "shuffle of a type wider than 64 bits");
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof(T));
  bits = shuffle(mask, bits, kind, arg, width, line);
  T out;
  std::memcpy(&out, &bits, sizeof(T));
  return out;
}

}  // namespace ember::sim

// ---- CUDA's vocabulary ----------------------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __restrict__ __restrict
#define __launch_bounds__(...)
// One copy per block: a block's threads share their OS thread; parallel blocks run on others.
#define __shared__ static thread_local

#define threadIdx (::ember::sim::current().thread_idx)
#define blockIdx (::ember::sim::current().block_idx)
#define blockDim (::ember::sim::current().block_dim)
#define gridDim (::ember::sim::current().grid_dim)

#define __syncthreads() ::ember::sim::syncthreads(__LINE__)
#define __syncwarp(...) ::ember::sim::syncwarp(EMBER_SIM_MASK_OR_ALL(__VA_ARGS__), __LINE__)
#define EMBER_SIM_MASK_OR_ALL(...) (0xffffffffu __VA_OPT__(&(__VA_ARGS__)))
#define __shfl_sync(mask, v, src, ...) \
  ::ember::sim::shuffle_as((mask), (v), 0, (src), EMBER_SIM_WIDTH(__VA_ARGS__), __LINE__)
#define __shfl_up_sync(mask, v, delta, ...) \
  ::ember::sim::shuffle_as((mask), (v), 1, (delta), EMBER_SIM_WIDTH(__VA_ARGS__), __LINE__)
#define __shfl_down_sync(mask, v, delta, ...) \
  ::ember::sim::shuffle_as((mask), (v), 2, (delta), EMBER_SIM_WIDTH(__VA_ARGS__), __LINE__)
#define __shfl_xor_sync(mask, v, lane_mask, ...) \
  ::ember::sim::shuffle_as((mask), (v), 3, (lane_mask), EMBER_SIM_WIDTH(__VA_ARGS__), __LINE__)
#define EMBER_SIM_WIDTH(...) (32 __VA_OPT__(*0 + (__VA_ARGS__)))
#define __ballot_sync(mask, pred) ::ember::sim::ballot((mask), (pred), __LINE__)
#define __any_sync(mask, pred) (::ember::sim::ballot((mask), (pred), __LINE__) != 0)
#define __all_sync(mask, pred) (::ember::sim::ballot((mask), (pred), __LINE__) == (mask))

#define EMBER_LAUNCH(kernel, grid, block, shared_bytes, stream, ...) \
  ::ember::sim::launch(#kernel, dim3(grid), dim3(block), (shared_bytes), [&] { kernel(__VA_ARGS__); })

#define EMBER_ALLOW_DYNAMIC_SHARED(kernel, bytes) ((void)(bytes))

template <class T>
inline T* ember_dynamic_shared() {
  return static_cast<T*>(::ember::sim::dynamic_shared());
}

// Atomics: blocks run on different OS threads, so these are real atomics. They use GCC's __atomic_*_n
// builtins on the value's bits: std::atomic_ref's compare-exchange goes through the generic builtins,
// which ThreadSanitizer takes for plain accesses (false races in the kernel race tests).
namespace ember::sim {
template <class T>
using AtomicBits =
    std::conditional_t<sizeof(T) == 4, uint32_t, std::conditional_t<sizeof(T) == 8, uint64_t, void>>;

// Replaces *address by update(old) atomically unless keep(old); returns old.
template <class T, class Update, class Keep>
inline T atomic_update(T* address, Update update, Keep keep) {
  using Bits = AtomicBits<T>;
  static_assert(!std::is_void_v<Bits>, "atomics on 4- and 8-byte types only");
  auto* bits = reinterpret_cast<Bits*>(address);
  Bits old = __atomic_load_n(bits, __ATOMIC_RELAXED);
  for (;;) {
    const T current = std::bit_cast<T>(old);
    if (keep(current)) return current;
    if (__atomic_compare_exchange_n(bits, &old, std::bit_cast<Bits>(static_cast<T>(update(current))), true,
                                    __ATOMIC_SEQ_CST, __ATOMIC_RELAXED))
      return current;
  }
}
}  // namespace ember::sim

template <class T>
inline T atomicAdd(T* address, T value) {
  return ::ember::sim::atomic_update(
      address, [&](T v) { return v + value; }, [](T) { return false; });
}
template <class T>
inline T atomicSub(T* address, T value) {
  return ::ember::sim::atomic_update(
      address, [&](T v) { return v - value; }, [](T) { return false; });
}
template <class T>
inline T atomicExch(T* address, T value) {
  return ::ember::sim::atomic_update(
      address, [&](T) { return value; }, [](T) { return false; });
}
template <class T>
inline T atomicCAS(T* address, T compare, T value) {
  return ::ember::sim::atomic_update(
      address, [&](T) { return value; }, [&](T v) { return v != compare; });
}
template <class T>
inline T atomicMax(T* address, T value) {
  return ::ember::sim::atomic_update(
      address, [&](T) { return value; }, [&](T v) { return !(v < value); });
}
template <class T>
inline T atomicMin(T* address, T value) {
  return ::ember::sim::atomic_update(
      address, [&](T) { return value; }, [&](T v) { return !(v > value); });
}
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }

// Device math that C++ spells differently.
inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __int_as_float(int v) {
  float f;
  std::memcpy(&f, &v, 4);
  return f;
}
inline int __float_as_int(float f) {
  int v;
  std::memcpy(&v, &f, 4);
  return v;
}
inline int __popc(unsigned v) { return __builtin_popcount(v); }
inline int __ffs(int v) { return __builtin_ffs(v); }
