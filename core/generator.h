// The random generator of a device: a seed and an offset into the Philox stream. Every random op
// takes `n` numbers from the current offset and advances it, so a seeded program draws the same
// values on any number of threads.
#pragma once
#include <cstdint>

#include "ember/core/device.h"

namespace ember {

struct GeneratorState {
  uint64_t seed = 0;
  uint64_t offset = 0;
};

class Generator {
 public:
  static Generator& for_device(Device device);
  void manual_seed(uint64_t seed) { state_ = {seed, 0}; }
  uint64_t seed() const { return state_.seed; }
  // Reserves n counters and returns the first.
  uint64_t take(uint64_t n) {
    uint64_t first = state_.offset;
    state_.offset += n;
    return first;
  }
  GeneratorState get_state() const { return state_; }
  void set_state(GeneratorState s) { state_ = s; }

 private:
  GeneratorState state_{67280421310721ull, 0};
};

}  // namespace ember
