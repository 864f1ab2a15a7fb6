// Samplers: see sampler.h.
#include "ember/trainer/sampler.h"

#include <numeric>

#include "ember/core/error.h"

namespace ember::data {
namespace {

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// A uniform draw from [0, bound) without modulo bias (Lemire's multiply-and-reject).
// The full 128-bit product (a GCC/Clang extension on every 64-bit target ember builds for).
__extension__ typedef unsigned __int128 uint128;

uint64_t bounded(uint64_t& state, uint64_t bound) {
  while (true) {
    const uint128 m = static_cast<uint128>(splitmix64(state)) * bound;
    const uint64_t low = static_cast<uint64_t>(m);
    if (low >= (-bound) % bound) return static_cast<uint64_t>(m >> 64);
  }
}

}  // namespace

std::vector<int64_t> permutation(int64_t n, uint64_t seed, uint64_t stream) {
  std::vector<int64_t> p(n);
  std::iota(p.begin(), p.end(), 0);
  uint64_t state = seed ^ (stream * 0xD1B54A32D192ED03ull);
  for (int64_t i = n - 1; i > 0; --i) std::swap(p[i], p[bounded(state, static_cast<uint64_t>(i) + 1)]);
  return p;
}

std::vector<int64_t> SequentialSampler::indices(int64_t) const {
  std::vector<int64_t> p(n_);
  std::iota(p.begin(), p.end(), 0);
  return p;
}

std::vector<int64_t> RandomSampler::indices(int64_t epoch) const { return permutation(n_, seed_, epoch); }

DistributedSampler::DistributedSampler(int64_t n, Options o) : n_(n), o_(o) {
  EMBER_CHECK(o_.num_replicas >= 1 && o_.rank >= 0 && o_.rank < o_.num_replicas, "DistributedSampler: rank ",
              o_.rank, " is not in [0, ", o_.num_replicas, ")");
  per_rank_ = o_.drop_last ? n_ / o_.num_replicas : (n_ + o_.num_replicas - 1) / o_.num_replicas;
}

std::vector<int64_t> DistributedSampler::indices(int64_t epoch) const {
  std::vector<int64_t> order(n_);
  if (o_.shuffle) order = permutation(n_, o_.seed, epoch);
  else std::iota(order.begin(), order.end(), 0);
  const int64_t total = per_rank_ * o_.num_replicas;
  if (total > n_) {  // pad by repeating the head (as often as needed when n < num_replicas)
    for (int64_t i = 0; static_cast<int64_t>(order.size()) < total; ++i) order.push_back(order[i % n_]);
  }
  order.resize(total);
  std::vector<int64_t> mine;
  for (int64_t i = o_.rank; i < total; i += o_.num_replicas) mine.push_back(order[i]);
  return mine;
}

}  // namespace ember::data
