// Samplers decide which examples an epoch visits and in what order. The order of an epoch is a pure
// function of (seed, epoch), so a run resumed from a checkpoint sees exactly the batches the
// uninterrupted run would have seen.
//   SequentialSampler   0, 1, ..., n-1
//   RandomSampler       a permutation drawn from (seed, epoch)
//   DistributedSampler  this rank's share: the (optionally shuffled) order padded by repeating its
//                       head to a multiple of the number of replicas, then every num_replicas-th
//                       index from `rank` on (PyTorch's layout); drop_last trims instead of padding.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

namespace ember::data {

class Sampler {
 public:
  virtual ~Sampler() = default;
  virtual std::vector<int64_t> indices(int64_t epoch) const = 0;
  virtual int64_t size() const = 0;
};

class SequentialSampler : public Sampler {
 public:
  explicit SequentialSampler(int64_t n) : n_(n) {}
  std::vector<int64_t> indices(int64_t epoch) const override;
  int64_t size() const override { return n_; }

 private:
  int64_t n_;
};

class RandomSampler : public Sampler {
 public:
  RandomSampler(int64_t n, uint64_t seed) : n_(n), seed_(seed) {}
  std::vector<int64_t> indices(int64_t epoch) const override;
  int64_t size() const override { return n_; }

 private:
  int64_t n_;
  uint64_t seed_;
};

class DistributedSampler : public Sampler {
 public:
  struct Options {
    int64_t num_replicas = 1;
    int64_t rank = 0;
    bool shuffle = true;
    uint64_t seed = 0;
    bool drop_last = false;
  };
  DistributedSampler(int64_t n, Options options);
  std::vector<int64_t> indices(int64_t epoch) const override;
  int64_t size() const override { return per_rank_; }
  const Options& options() const { return o_; }

 private:
  int64_t n_, per_rank_;
  Options o_;
};

// A permutation of 0..n-1 that depends only on (seed, stream): Fisher-Yates driven by SplitMix64,
// the same on every platform and standard library.
std::vector<int64_t> permutation(int64_t n, uint64_t seed, uint64_t stream);

}  // namespace ember::data
