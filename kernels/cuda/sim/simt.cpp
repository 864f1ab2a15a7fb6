// The SIMT simulator's runtime: fibers, the per-block scheduler, barriers, warp collectives and the
// simulated device heap. See simt.h for what it does and checks.
#include "ember/kernels/cuda/sim/simt.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <deque>
#include <map>
#include <mutex>
#include <numeric>
#include <random>
#include <sstream>
#include <vector>

#include "ember/core/error.h"

// ---- the context switch ------------------------------------------------------------------------------
// ember_sim_switch(save, load) saves the running context in *save and resumes `load`. On x86-64 it is
// a few lines of assembly (a fiber switch costs what a function call does, and kernels switch at
// every __syncthreads); elsewhere, or with EMBER_SIM_UCONTEXT defined, it is POSIX's swapcontext,
// slower but portable (aarch64 and any other Linux target).
#if defined(__x86_64__) && !defined(EMBER_SIM_UCONTEXT)
#define EMBER_SIM_ASM_SWITCH 1
// The assembly pushes the callee-saved registers (and the SSE/x87 control words) on the current
// stack, stores the stack pointer in *save, switches to `load` and pops the same set. A new fiber's
// stack is laid out so that the first switch to it "returns" into ember_sim_fiber_start, which calls
// ember_sim_fiber_entry(r12).
extern "C" void ember_sim_switch(void** save, void* load);
extern "C" void ember_sim_fiber_start();
asm(R"(
  .text
  .globl ember_sim_switch
  .type ember_sim_switch,@function
ember_sim_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $16, %rsp
  stmxcsr 8(%rsp)
  fnstcw (%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  fldcw (%rsp)
  ldmxcsr 8(%rsp)
  addq $16, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size ember_sim_switch, .-ember_sim_switch

  .globl ember_sim_fiber_start
  .type ember_sim_fiber_start,@function
ember_sim_fiber_start:
  movq %r12, %rdi
  call ember_sim_fiber_entry
  ud2
  .size ember_sim_fiber_start, .-ember_sim_fiber_start
)");
#else
#include <ucontext.h>
// Each fiber's `sp` points at its own ucontext_t; the scheduler's contexts live in this thread's
// storage (one block runs per OS thread at a time).
thread_local ucontext_t t_scheduler_context;
extern "C" void ember_sim_switch(void** save, void* load) {
  if (*save == nullptr) *save = &t_scheduler_context;
  swapcontext(static_cast<ucontext_t*>(*save), static_cast<ucontext_t*>(load));
}
#endif

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define EMBER_SIM_ASAN 1
#endif

// ThreadSanitizer as a race detector for kernels (EMBER_SIM_TSAN: this file compiled without
// -fsanitize=thread, the kernels with it). Every simulated CUDA thread gets its own TSan context, and
// switching between them carries no synchronisation, so two threads of a block that touch the same
// memory with no barrier between them are a reported race even though one OS thread ran both. The
// happens-before edges are exactly CUDA's: the launch before every thread, each __syncthreads (all
// arrivals before all departures), each warp collective, every thread before the launch returns.
// The simulator's own bookkeeping is not instrumented, so it is invisible to TSan.
#if defined(EMBER_SIM_TSAN)
#include <sanitizer/tsan_interface.h>
#define EMBER_SIM_TSAN_ONLY(...) __VA_ARGS__
#else
#define EMBER_SIM_TSAN_ONLY(...)
#endif

namespace ember::sim {

thread_local ThreadContext* g_current = nullptr;

namespace {

constexpr size_t kStackBytes = 64 << 10;

struct Fiber {
  void* memory = nullptr;  // guard page + stack
  size_t bytes = 0;
  void* sp = nullptr;
#if !EMBER_SIM_ASM_SWITCH
  ucontext_t context;
#endif
};

enum class Wait { None, Barrier, Warp };

struct SimThread {
  ThreadContext ctx;
  Fiber* fiber = nullptr;
  Wait wait = Wait::None;
  int line = 0;
  bool finished = false;
  void* tsan = nullptr;  // this thread's TSan context (EMBER_SIM_TSAN)
  char tsan_sync = 0;    // the address its warp-collective arrivals release on
  // a pending warp collective
  unsigned mask = 0;
  uint64_t value = 0, result = 0;
  int kind = 0, arg = 0, width = 32;
};

struct Block {
  std::vector<SimThread> threads;
  std::vector<int> order;
  size_t next_unstarted = 0;
  std::deque<int> runnable;
  int live = 0;
  int running = -1;
  const std::function<void()>* body = nullptr;
  std::vector<unsigned char> dynamic_shared;
  std::vector<Fiber*> fibers;   // every fiber this block used
  std::vector<Fiber*> retired;  // EMBER_SIM_TSAN: fibers whose one thread finished, idle after the block
  std::string error;
  void* scheduler_sp = nullptr;
  void* scheduler_tsan = nullptr;  // the OS thread's TSan context
  // Addresses TSan synchronises on: launch start, barriers, thread exits.
  char sync_start = 0, sync_barrier = 0, sync_end = 0;
};

#if defined(EMBER_SIM_TSAN)
// Makes `waiter` acquire what was released at `sync` when a barrier or collective completes - at that
// moment, before anyone moved on - by briefly switching to its TSan context; then back to `current`.
void tsan_acquire_for(SimThread& waiter, void* sync, void* current) {
  __tsan_switch_to_fiber(waiter.tsan, __tsan_switch_to_fiber_no_sync);
  __tsan_acquire(sync);
  __tsan_switch_to_fiber(current, __tsan_switch_to_fiber_no_sync);
}
#endif

thread_local Block* t_block = nullptr;

void free_fiber(Fiber* f);

// Each OS thread keeps the fibers it finished with for the next block; they are unmapped when the
// thread ends (LeakSanitizer would otherwise report the pool of the main thread at exit).
struct FiberPool : std::vector<Fiber*> {
  ~FiberPool() {
    for (Fiber* f : *this) free_fiber(f);
  }
};
thread_local FiberPool t_idle;

#if EMBER_SIM_ASM_SWITCH
// Initial frame: control words, six registers (r12 = the fiber), then the start address placed so
// that the stack is 16-byte aligned when ember_sim_fiber_start calls into C++.
void start_context(Fiber* f, size_t) {
  auto top = reinterpret_cast<uintptr_t>(f->memory) + f->bytes;
  top &= ~uintptr_t(15);
  // The return address sits at 8 (mod 16): after `ret` the stack is 16-aligned, and the call in
  // ember_sim_fiber_start leaves C++ the usual 8 (mod 16) at function entry.
  auto* slot = reinterpret_cast<uint64_t*>(top - 24);
  slot[0] = reinterpret_cast<uint64_t>(&ember_sim_fiber_start);
  uint64_t* regs = slot - 6;  // r15 r14 r13 r12 rbx rbp (popped in this order)
  regs[0] = regs[1] = regs[2] = regs[4] = regs[5] = 0;
  regs[3] = reinterpret_cast<uint64_t>(f);  // r12
  uint64_t* control = regs - 2;
  control[0] = 0x037F;  // x87 control word
  control[1] = 0x1F80;  // MXCSR
  f->sp = control;
}
#else
// makecontext passes int arguments only, so the fiber being started is handed over in a thread_local.
thread_local Fiber* t_starting_fiber = nullptr;
extern "C" void ember_sim_fiber_entry(Fiber* f);  // below, outside this namespace (C linkage: one function)
void fiber_trampoline() { ember_sim_fiber_entry(t_starting_fiber); }
void start_context(Fiber* f, size_t page) {
  getcontext(&f->context);
  f->context.uc_stack.ss_sp = static_cast<char*>(f->memory) + page;
  f->context.uc_stack.ss_size = f->bytes - page;
  f->context.uc_link = nullptr;
  makecontext(&f->context, fiber_trampoline, 0);
  f->sp = &f->context;
}
#endif

Fiber* new_fiber() {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  auto* f = new Fiber;
  f->bytes = kStackBytes + page;
  f->memory = mmap(nullptr, f->bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  EMBER_CHECK(f->memory != MAP_FAILED, "simulator: cannot map a fiber stack");
  mprotect(f->memory, page, PROT_NONE);  // a stack overflow faults instead of corrupting memory
#if EMBER_SIM_ASAN
  // The mapping may reuse addresses of an old fiber stack whose redzones ASan still remembers.
  ASAN_UNPOISON_MEMORY_REGION(static_cast<char*>(f->memory) + page, f->bytes - page);
#endif
  start_context(f, page);
  return f;
}

void free_fiber(Fiber* f) {
#if EMBER_SIM_ASAN
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  ASAN_UNPOISON_MEMORY_REGION(static_cast<char*>(f->memory) + page, f->bytes - page);
#endif
  munmap(f->memory, f->bytes);
  delete f;
}

// AddressSanitizer must be told about every stack switch, or it reports the fibers' stacks as
// overflows of the OS thread's. The scheduler's own stack is learnt from the first switch back.
#if EMBER_SIM_ASAN
thread_local const void* t_scheduler_stack = nullptr;
thread_local size_t t_scheduler_stack_size = 0;
#endif

// Switches from the scheduler to a fiber.
void enter_fiber(Fiber* f, void** scheduler_sp) {
#if !EMBER_SIM_ASM_SWITCH
  t_starting_fiber = f;  // read only by a fiber's first run
#endif
#if EMBER_SIM_ASAN
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  void* fake = nullptr;
  __sanitizer_start_switch_fiber(&fake, static_cast<char*>(f->memory) + page, f->bytes - page);
  ember_sim_switch(scheduler_sp, f->sp);
  __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#else
  ember_sim_switch(scheduler_sp, f->sp);
#endif
}

// Switches from a fiber back to the scheduler; returns when the fiber is resumed.
void leave_fiber(Fiber* f) {
  EMBER_SIM_TSAN_ONLY(__tsan_switch_to_fiber(t_block->scheduler_tsan, __tsan_switch_to_fiber_no_sync));
#if EMBER_SIM_ASAN
  void* fake = nullptr;
  __sanitizer_start_switch_fiber(&fake, t_scheduler_stack, t_scheduler_stack_size);
  ember_sim_switch(&f->sp, t_block->scheduler_sp);
  __sanitizer_finish_switch_fiber(fake, &t_scheduler_stack, &t_scheduler_stack_size);
#else
  ember_sim_switch(&f->sp, t_block->scheduler_sp);
#endif
}

// Back to the block's scheduler; returns when this fiber is resumed.
void yield(Fiber* f) { leave_fiber(f); }

std::string order_name() {
  const char* v = std::getenv("EMBER_SIM_ORDER");
  return v ? v : "forward";
}

void fail_block(Block& b, const std::string& message) {
  if (b.error.empty()) b.error = message;
}

// A warp collective can finish once every lane of its mask waits at the same call site.
bool try_complete_warp(Block& b, int thread) {
  SimThread& me = b.threads[thread];
  const int warp = me.ctx.linear / 32, n = static_cast<int>(b.threads.size());
  for (int lane = 0; lane < 32; ++lane) {
    if (!(me.mask >> lane & 1u)) continue;
    const int t = warp * 32 + lane;
    if (t >= n) {
      fail_block(b, "warp collective at line " + std::to_string(me.line) + " names lane " +
                        std::to_string(lane) + " in its mask, which does not exist in a block of " +
                        std::to_string(n) + " threads");
      return false;
    }
    const SimThread& other = b.threads[t];
    if (other.finished) {
      fail_block(b, "warp collective at line " + std::to_string(me.line) + " waits for lane " +
                        std::to_string(lane) + " (thread " + std::to_string(t) +
                        "), which has exited: a deadlock on a GPU");
      return false;
    }
    if (other.wait != Wait::Warp || other.line != me.line || other.mask != me.mask) return false;
  }
  // Everyone is here: compute each lane's result, then release the others.
  for (int lane = 0; lane < 32; ++lane) {
    if (!(me.mask >> lane & 1u)) continue;
    SimThread& t = b.threads[warp * 32 + lane];
    const int base = lane & ~(t.width - 1);
    int src = lane;
    switch (t.kind) {
      case 0: src = base + (t.arg & (t.width - 1)); break;
      case 1: src = lane - t.arg >= base ? lane - t.arg : lane; break;
      case 2: src = lane + t.arg < base + t.width ? lane + t.arg : lane; break;
      case 3: src = (lane ^ t.arg) < base + t.width ? lane ^ t.arg : lane; break;
      default: break;
    }
    if (t.kind == -1) {  // ballot
      uint64_t bits = 0;
      for (int l = 0; l < 32; ++l)
        if ((me.mask >> l & 1u) && b.threads[warp * 32 + l].value) bits |= uint64_t(1) << l;
      t.result = bits;
    } else if (t.kind >= 0) {
      t.result = (me.mask >> src & 1u) ? b.threads[warp * 32 + src].value : t.value;
    }
  }
#if defined(EMBER_SIM_TSAN)
  // Each lane acquires every lane's arrival (and so everything those lanes did before it).
  for (int lane = 0; lane < 32; ++lane) {
    if (!(me.mask >> lane & 1u)) continue;
    for (int from = 0; from < 32; ++from)
      if (me.mask >> from & 1u)
        tsan_acquire_for(b.threads[warp * 32 + lane], &b.threads[warp * 32 + from].tsan_sync,
                         b.scheduler_tsan);
  }
#endif
  for (int lane = 0; lane < 32; ++lane) {
    if (!(me.mask >> lane & 1u)) continue;
    const int t = warp * 32 + lane;
    b.threads[t].wait = Wait::None;
    if (t != thread) b.runnable.push_back(t);
  }
  return true;
}

// Nothing can run and some threads wait: release a barrier everyone reached, or report why not.
void resolve(Block& b) {
  std::map<int, std::vector<int>> at_line;
  int exited = 0, warp_waiters = 0;
  for (size_t t = 0; t < b.threads.size(); ++t) {
    const SimThread& s = b.threads[t];
    if (s.finished) ++exited;
    else if (s.wait == Wait::Barrier) at_line[s.line].push_back(static_cast<int>(t));
    else if (s.wait == Wait::Warp) ++warp_waiters;
  }
  std::ostringstream os;
  if (warp_waiters > 0) {
    for (size_t t = 0; t < b.threads.size(); ++t) {
      const SimThread& w = b.threads[t];
      if (w.wait != Wait::Warp) continue;
      os << "warp collective at line " << w.line << " (thread " << t << ") can never complete: ";
      const int warp = w.ctx.linear / 32;
      int exited_lane = -1;
      for (int lane = 0; lane < 32 && exited_lane < 0; ++lane)
        if ((w.mask >> lane & 1u) && b.threads[warp * 32 + lane].finished) exited_lane = lane;
      if (exited_lane >= 0) os << "lane " << exited_lane << " of its mask has exited";
      else os << "lanes of its mask wait elsewhere";
      os << " (a deadlock on a GPU)";
      break;
    }
    fail_block(b, os.str());
    return;
  }
  if (at_line.size() > 1) {
    os << "divergent __syncthreads: threads of one block wait at different barriers:";
    for (auto& [line, ts] : at_line)
      os << " line " << line << " (" << ts.size() << " threads, first " << ts[0] << ")";
    fail_block(b, os.str());
    return;
  }
  if (exited > 0) {
    os << "__syncthreads at line " << at_line.begin()->first << " waits for " << exited
       << " thread(s) of the block that already exited (an early return before a barrier)";
    fail_block(b, os.str());
    return;
  }
  for (int t : b.order)
    if (b.threads[t].wait == Wait::Barrier) {
      EMBER_SIM_TSAN_ONLY(tsan_acquire_for(b.threads[t], &b.sync_barrier, b.scheduler_tsan));
      b.threads[t].wait = Wait::None;
      b.runnable.push_back(t);
    }
}

void run_block(Block& b) {
  t_block = &b;
  EMBER_SIM_TSAN_ONLY(b.scheduler_tsan = __tsan_get_current_fiber(); __tsan_release(&b.sync_start));
  while (b.error.empty()) {
    Fiber* next = nullptr;
    if (!b.runnable.empty()) {
      const int t = b.runnable.front();
      b.runnable.pop_front();
      b.running = t;
      g_current = &b.threads[t].ctx;
      next = b.threads[t].fiber;
      EMBER_SIM_TSAN_ONLY(__tsan_switch_to_fiber(b.threads[t].tsan, __tsan_switch_to_fiber_no_sync));
    } else if (b.next_unstarted < b.order.size()) {
      if (t_idle.empty()) t_idle.push_back(new_fiber());
      next = t_idle.back();
      t_idle.pop_back();
      b.fibers.push_back(next);
    } else if (b.live > 0) {
      resolve(b);
      continue;
    } else {
      break;
    }
    enter_fiber(next, &b.scheduler_sp);
  }
  t_idle.insert(t_idle.end(), b.retired.begin(), b.retired.end());
  if (!b.error.empty()) {
    // Fibers stopped mid-kernel are never resumed: drop them (idle ones stay in the pool).
    for (Fiber* f : b.fibers)
      if (std::find(t_idle.begin(), t_idle.end(), f) == t_idle.end()) free_fiber(f);
  }
  EMBER_SIM_TSAN_ONLY(__tsan_acquire(&b.sync_end);
                      for (SimThread& s
                           : b.threads) if (s.tsan) __tsan_destroy_fiber(s.tsan));
  t_block = nullptr;
  g_current = nullptr;
}

struct Heap {
  std::mutex mu;
  std::map<unsigned char*, size_t> live;
};
Heap& heap() {
  static Heap* h = new Heap;  // never destroyed: device memory may be freed during static destruction
  return *h;
}
constexpr size_t kCanary = 64;
constexpr unsigned char kCanaryByte = 0xCD;

}  // namespace
}  // namespace ember::sim

// Where every fiber starts: runs not-yet-started threads one after another, then idles.
extern "C" void ember_sim_fiber_entry(ember::sim::Fiber* f) {
  using namespace ember::sim;
#if EMBER_SIM_ASAN
  // First run of this fiber: complete the switch the scheduler started, learning its stack.
  __sanitizer_finish_switch_fiber(nullptr, &t_scheduler_stack, &t_scheduler_stack_size);
#endif
  for (;;) {
    Block& b = *t_block;
    while (b.error.empty() && b.next_unstarted < b.order.size()) {
      const int t = b.order[b.next_unstarted++];
      SimThread& s = b.threads[t];
      s.fiber = f;
      b.running = t;
      g_current = &s.ctx;
      EMBER_SIM_TSAN_ONLY(s.tsan = __tsan_create_fiber(0);
                          __tsan_switch_to_fiber(s.tsan, __tsan_switch_to_fiber_no_sync);
                          __tsan_acquire(&b.sync_start));
      (*b.body)();
      // The simulator's bookkeeping runs in the scheduler's context, never a CUDA thread's.
      EMBER_SIM_TSAN_ONLY(__tsan_release(&b.sync_end);
                          __tsan_switch_to_fiber(b.scheduler_tsan, __tsan_switch_to_fiber_no_sync));
      s.finished = true;
      s.fiber = nullptr;
      --b.live;
#if defined(EMBER_SIM_TSAN)
      // One CUDA thread per stack per block: TSan would take the next thread's reuse of this stack's
      // slots for a race with the finished one.
      break;
#endif
    }
#if defined(EMBER_SIM_TSAN)
    b.retired.push_back(f);
#else
    t_idle.push_back(f);
#endif
    leave_fiber(f);
  }
}

namespace ember::sim {

void launch(const char* kernel_name, dim3 grid, dim3 block, size_t dynamic_shared_bytes,
            const std::function<void()>& body) {
  const int64_t n_blocks = int64_t(grid.x) * grid.y * grid.z;
  const int threads = static_cast<int>(block.x * block.y * block.z);
  EMBER_CHECK(threads >= 1 && threads <= 1024, kernel_name, ": a block of ", threads,
              " threads (1 to 1024 allowed)");
  EMBER_CHECK(dynamic_shared_bytes <= (228u << 10), kernel_name, ": ", dynamic_shared_bytes,
              " bytes of dynamic shared memory is more than a GPU block can have");
  const std::string order = order_name();
  std::string first_error;
  std::mutex error_mu;
  char launch_sync = 0;  // TSan: the launch happens before every block, every block before its return
  EMBER_SIM_TSAN_ONLY(__tsan_release(&launch_sync));
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t blk = 0; blk < n_blocks; ++blk) {
    EMBER_SIM_TSAN_ONLY(__tsan_acquire(&launch_sync));
    Block b;
    b.body = &body;
    b.threads.resize(threads);
    const dim3 bidx(static_cast<unsigned>(blk % grid.x), static_cast<unsigned>(blk / grid.x % grid.y),
                    static_cast<unsigned>(blk / (int64_t(grid.x) * grid.y)));
    for (int t = 0; t < threads; ++t) {
      ThreadContext& c = b.threads[t].ctx;
      c.thread_idx = dim3(t % block.x, t / block.x % block.y, t / (block.x * block.y));
      c.block_idx = bidx;
      c.block_dim = block;
      c.grid_dim = grid;
      c.linear = t;
    }
    b.order.resize(threads);
    std::iota(b.order.begin(), b.order.end(), 0);
    if (order == "reverse") std::reverse(b.order.begin(), b.order.end());
    else if (order == "random")
      std::shuffle(b.order.begin(), b.order.end(), std::mt19937_64(static_cast<uint64_t>(blk) * 7919 + 1));
    b.live = threads;
    b.dynamic_shared.assign(dynamic_shared_bytes, 0xFF);  // NaN bytes: reading before writing shows
    run_block(b);
    if (!b.error.empty()) {
      std::lock_guard<std::mutex> lock(error_mu);
      if (first_error.empty()) {
        std::ostringstream os;
        os << "block (" << bidx.x << ", " << bidx.y << ", " << bidx.z << "): " << b.error;
        first_error = os.str();
      }
    }
    EMBER_SIM_TSAN_ONLY(__tsan_release(&launch_sync));
  }
  EMBER_SIM_TSAN_ONLY(__tsan_acquire(&launch_sync));
  (void)launch_sync;
  EMBER_CHECK(first_error.empty(), kernel_name, ": ", first_error);
  check_canaries(kernel_name);
}

void syncthreads(int line) {
  Block& b = *t_block;
  SimThread& me = b.threads[b.running];
  me.wait = Wait::Barrier;
  me.line = line;
  Fiber* f = me.fiber;
  EMBER_SIM_TSAN_ONLY(__tsan_release(&b.sync_barrier));  // acquired by all when it completes (resolve)
  yield(f);
}

static uint64_t collective(int kind, unsigned mask, uint64_t value, int arg, int width, int line) {
  Block& b = *t_block;
  const int thread = b.running;
  SimThread& me = b.threads[thread];
  const int lane = me.ctx.linear % 32;
  // Release this lane's arrival, then do the bookkeeping in the scheduler's context.
  EMBER_SIM_TSAN_ONLY(__tsan_release(&me.tsan_sync);
                      __tsan_switch_to_fiber(b.scheduler_tsan, __tsan_switch_to_fiber_no_sync));
  if (!(mask >> lane & 1u)) {
    fail_block(b, "warp collective at line " + std::to_string(line) + " called by lane " +
                      std::to_string(lane) + ", which its mask does not include");
    yield(me.fiber);
  }
  if (width < 1 || width > 32 || (width & (width - 1))) {
    fail_block(b, "warp shuffle at line " + std::to_string(line) + " with width " + std::to_string(width) +
                      " (a power of two up to 32)");
    yield(me.fiber);
  }
  me.wait = Wait::Warp;
  me.mask = mask;
  me.value = value;
  me.kind = kind;
  me.arg = arg;
  me.width = width;
  me.line = line;
  if (!try_complete_warp(b, thread)) {
    yield(me.fiber);  // the scheduler resumes it in its own context
  } else {
    EMBER_SIM_TSAN_ONLY(__tsan_switch_to_fiber(me.tsan, __tsan_switch_to_fiber_no_sync));
  }
  b.running = thread;  // resumed (or completed without waiting)
  return me.result;
}

void syncwarp(unsigned mask, int line) { collective(-2, mask, 0, 0, 32, line); }

uint64_t shuffle(unsigned mask, uint64_t value, int kind, int arg, int width, int line) {
  return collective(kind, mask, value, arg, width, line);
}

unsigned ballot(unsigned mask, bool predicate, int line) {
  return static_cast<unsigned>(collective(-1, mask, predicate ? 1 : 0, 0, 32, line));
}

void* dynamic_shared() {
  Block& b = *t_block;
  return b.dynamic_shared.empty() ? nullptr : b.dynamic_shared.data();
}

void* device_malloc(size_t bytes) {
  auto* p = static_cast<unsigned char*>(std::aligned_alloc(256, (bytes + kCanary + 255) / 256 * 256));
  EMBER_CHECK(p != nullptr, "simulator: out of memory allocating ", bytes, " bytes");
  std::memset(p + bytes, kCanaryByte, kCanary);
  std::lock_guard<std::mutex> lock(heap().mu);
  heap().live[p] = bytes;
  return p;
}

void device_free(void* p) {
  if (!p) return;
  {
    std::lock_guard<std::mutex> lock(heap().mu);
    heap().live.erase(static_cast<unsigned char*>(p));
  }
  std::free(p);
}

void check_canaries(const char* kernel_name) {
  std::lock_guard<std::mutex> lock(heap().mu);
  for (auto& [p, bytes] : heap().live)
    for (size_t k = 0; k < kCanary; ++k)
      if (p[bytes + k] != kCanaryByte) {
        std::memset(p + bytes, kCanaryByte, kCanary);  // report once
        EMBER_CHECK(false, kernel_name, ": wrote past the end of a device allocation of ", bytes,
                    " bytes (byte ", bytes + k, " changed)");
      }
}

}  // namespace ember::sim
