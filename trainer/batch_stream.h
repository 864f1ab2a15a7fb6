// BatchStream: the Trainer's view of a loader together with the module that consumes its batches.
// The loops in trainer.cpp are ordinary compiled code that only knows "start an epoch, fetch the
// next batch, run the step of this stage on it"; the one place that knows the user's batch type is
// the small adapter template here, made when fit/validate/test/predict is called.
//
// Any range of batches is a loader (a std::vector of batches, say); a data::DataLoader is driven
// through start_epoch so its order follows the epoch and a resumed run can skip batches without
// loading them.
#pragma once
#include <array>
#include <iterator>
#include <memory>
#include <optional>
#include <tuple>
#include <type_traits>
#include <vector>

#include "ember/trainer/lightning_module.h"
#include "ember/trainer/sampler.h"

namespace ember::trainer {

enum class Stage { Train, Validate, Test, Predict };

class BatchStream {
 public:
  virtual ~BatchStream() = default;
  virtual int64_t size() const = 0;                        // batches per epoch
  virtual void begin(int64_t epoch, int64_t skip) = 0;     // start a pass, skipping `skip` batches
  virtual bool next() = 0;                                 // load the next batch; false at the end
  virtual int64_t batch_size() const = 0;                  // of the current batch
  virtual Tensor run(Stage stage, int64_t batch_idx) = 0;  // the module's step on the current batch
  // Data parallelism: from now on this stream yields rank `rank`'s share of `world` equal shares
  // (a DistributedSampler for a DataLoader - shuffled like the loader when `train` - and every
  // world-th batch, padded by wrapping around, for a plain range). Returns how many examples or
  // batches were repeated to make the shares equal.
  virtual int64_t distribute(int rank, int world, bool train) = 0;
  // Batches are moved to this device as they are fetched (the Trainer's accelerator).
  void set_device(Device d) { device_ = d; }

 protected:
  Device device_ = Device::cpu();
};

namespace detail {

template <class B>
int64_t infer_batch_size(const B& batch) {
  if constexpr (std::is_convertible_v<const B&, const Tensor&>) {
    const Tensor& t = batch;
    return t.defined() && t.dim() > 0 ? t.size(0) : 1;
  } else if constexpr (requires { std::tuple_size<B>::value; }) {
    int64_t found = -1;
    std::apply(
        [&](const auto&... field) {
          auto one = [&](const auto& f) {
            if (found >= 0) return;
            if constexpr (std::is_convertible_v<decltype(f), const Tensor&>) {
              const Tensor& t = f;
              if (t.defined() && t.dim() > 0) found = t.size(0);
            }
          };
          (one(field), ...);
        },
        batch);
    return found >= 0 ? found : 1;
  } else if constexpr (requires {
                         batch.begin();
                         batch.size();
                       }) {
    if constexpr (std::is_convertible_v<decltype(*batch.begin()), const Tensor&>) {
      for (const Tensor& t : batch)
        if (t.defined() && t.dim() > 0) return t.size(0);
    }
    return 1;
  } else {
    return 1;  // a struct: log(..., {.batch_size = n}) gives the weight explicitly
  }
}

// Moves the tensors of a batch (a tensor, an array / tuple of them, a vector of them) to `device`;
// plain values stay as they are.
template <class B>
void move_batch(B& batch, Device device) {
  if constexpr (std::is_same_v<B, Tensor>) {
    if (batch.defined() && batch.device() != device) batch = batch.to(device);
  } else if constexpr (requires { std::tuple_size<B>::value; }) {
    std::apply([&](auto&... field) { (move_batch(field, device), ...); }, batch);
  } else if constexpr (requires {
                         batch.begin();
                         batch.end();
                         typename B::value_type;
                       }) {
    if constexpr (std::is_same_v<typename B::value_type, Tensor>)
      for (Tensor& t : batch) move_batch(t, device);
  }
}

template <class M, class Batch>
Tensor run_step(M& module, Stage stage, const Batch& batch, int64_t batch_idx) {
  switch (stage) {
    case Stage::Train: return module.training_step(batch, batch_idx);
    case Stage::Validate: return module.validation_step(batch, batch_idx);
    case Stage::Test: return module.test_step(batch, batch_idx);
    case Stage::Predict: return module.predict_step(batch, batch_idx);
  }
  return {};
}

// A data::DataLoader (anything with start_epoch and size).
template <class M, class L>
class LoaderStream : public BatchStream {
 public:
  LoaderStream(M& module, std::shared_ptr<L> loader) : module_(module), loader_(std::move(loader)) {}
  int64_t size() const override { return loader_->size(); }
  void begin(int64_t epoch, int64_t skip) override {
    reader_.reset();
    reader_ = loader_->start_epoch(epoch, skip);
  }
  int64_t distribute(int rank, int world, bool train) override {
    if (dynamic_cast<const data::DistributedSampler*>(&loader_->sampler())) return 0;  // the user's own
    loader_ = std::make_shared<L>(*loader_);  // the user's loader keeps its sampler
    const int64_t n = loader_->dataset().size();
    loader_->set_sampler(std::make_shared<data::DistributedSampler>(
        n, data::DistributedSampler::Options{.num_replicas = world,
                                             .rank = rank,
                                             .shuffle = train && loader_->options().shuffle,
                                             .seed = loader_->shuffle_seed()}));
    return (n + world - 1) / world * world - n;
  }
  bool next() override {
    auto b = reader_->next();
    if (!b) return false;
    current_.emplace(std::move(*b));
    move_batch(*current_, device_);
    return true;
  }
  int64_t batch_size() const override { return infer_batch_size(*current_); }
  Tensor run(Stage stage, int64_t batch_idx) override {
    return run_step(module_, stage, *current_, batch_idx);
  }

 private:
  M& module_;
  std::shared_ptr<L> loader_;
  std::unique_ptr<typename L::Reader> reader_;
  std::optional<typename M::Batch> current_;
};

// Any other range of batches.
template <class M, class R>
class RangeStream : public BatchStream {
 public:
  RangeStream(M& module, std::shared_ptr<R> range) : module_(module), range_(std::move(range)) {}
  int64_t size() const override {
    const int64_t n = static_cast<int64_t>(std::distance(std::begin(*range_), std::end(*range_)));
    return world_ > 1 ? (n + world_ - 1) / world_ : n;
  }
  void begin(int64_t, int64_t skip) override {
    it_ = std::begin(*range_);
    position_ = 0;
    skip_to(skip);
  }
  bool next() override {
    if (world_ > 1) {  // this rank's batches: rank, rank + world, ... wrapping around
      const int64_t n = static_cast<int64_t>(std::distance(std::begin(*range_), std::end(*range_)));
      if (position_ >= size() || n == 0) return false;
      auto it = std::begin(*range_);
      std::advance(it, (rank_ + position_ * world_) % n);
      current_.emplace(*it);
      move_batch(*current_, device_);
      ++position_;
      return true;
    }
    if (it_ == std::end(*range_)) return false;
    current_.emplace(*it_);
    move_batch(*current_, device_);
    ++it_;
    return true;
  }
  int64_t distribute(int rank, int world, bool) override {
    rank_ = rank;
    world_ = world;
    const int64_t n = static_cast<int64_t>(std::distance(std::begin(*range_), std::end(*range_)));
    return (n + world - 1) / world * world - n;
  }
  int64_t batch_size() const override { return infer_batch_size(*current_); }
  Tensor run(Stage stage, int64_t batch_idx) override {
    return run_step(module_, stage, *current_, batch_idx);
  }

 private:
  M& module_;
  void skip_to(int64_t skip) {
    if (world_ > 1) {
      position_ = skip;
      return;
    }
    for (int64_t i = 0; i < skip && it_ != std::end(*range_); ++i) ++it_;
  }
  std::shared_ptr<R> range_;
  decltype(std::begin(*range_)) it_;
  int64_t position_ = 0;
  int rank_ = 0, world_ = 1;
  std::optional<typename M::Batch> current_;
};

// Keeps an rvalue loader alive inside the stream; an lvalue one is referred to.
template <class L>
std::shared_ptr<std::remove_cvref_t<L>> hold(L&& loader) {
  using D = std::remove_cvref_t<L>;
  if constexpr (std::is_lvalue_reference_v<L>)
    return std::shared_ptr<D>(std::shared_ptr<D>{}, const_cast<D*>(&loader));
  else return std::make_shared<D>(std::move(loader));
}

template <class M, class L>
std::unique_ptr<BatchStream> make_stream(M& module, L&& loader) {
  using D = std::remove_cvref_t<L>;
  if constexpr (requires(const D& d) {
                  d.start_epoch(0, 0);
                  d.size();
                }) {
    return std::make_unique<LoaderStream<M, D>>(module, hold(std::forward<L>(loader)));
  } else {
    static_assert(
        requires(D & d) {
          std::begin(d);
          std::end(d);
        },
        "Trainer: a loader must be a range of batches or a data::DataLoader");
    return std::make_unique<RangeStream<M, D>>(module, hold(std::forward<L>(loader)));
  }
}

}  // namespace detail
}  // namespace ember::trainer
