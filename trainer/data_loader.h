// DataLoader: turns a Dataset into batches. Options follow PyTorch: batch_size, shuffle (a seeded
// RandomSampler), drop_last, a custom sampler (e.g. DistributedSampler), a collate function, and
// worker threads that prepare batches ahead of the training loop (num_workers, prefetch_factor).
//
// The default collate stacks tensors along a new first dimension: an Example that is a Tensor, a
// std::array of tensors or a std::tuple whose tensor fields are stacked. Plain fields of a tuple
// (a task name, a flag, a number) must be equal across the batch and are passed through; a batch
// mixing them needs a custom collate, and gets a clear error otherwise.
//
// Batches come out in sampler order whatever the number of workers, and the order of an epoch
// depends only on (seed, epoch), so runs are reproducible and resumable mid-epoch (start_epoch's
// `skip` skips batches without loading them).
#pragma once
#include <condition_variable>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <tuple>
#include <type_traits>
#include <vector>

#include "ember/core/error.h"
#include "ember/core/generator.h"
#include "ember/core/ops.h"
#include "ember/trainer/dataset.h"
#include "ember/trainer/sampler.h"

namespace ember::data {

struct DataLoaderOptions {
  int64_t batch_size = 1;
  bool shuffle = false;
  bool drop_last = false;
  int num_workers = 0;      // 0: batches are made on the calling thread
  int prefetch_factor = 2;  // batches each worker may have ready ahead of the consumer
  // Shuffle seed; when unset it is drawn from the CPU generator when the loader is made, so
  // manual_seed / seed_everything before building the loader makes the order reproducible.
  std::optional<uint64_t> seed{};
  std::shared_ptr<Sampler> sampler{};  // replaces shuffle's RandomSampler / the SequentialSampler
};

namespace detail {

template <class T>
struct is_tensor_array : std::false_type {};
template <size_t N>
struct is_tensor_array<std::array<Tensor, N>> : std::true_type {};
template <class T>
struct is_tuple : std::false_type {};
template <class... T>
struct is_tuple<std::tuple<T...>> : std::true_type {};

template <class F>
F collate_field(std::vector<F>& fields, size_t index) {
  if constexpr (std::is_same_v<F, Tensor>) {
    return stack(fields, 0);
  } else {
    for (auto& f : fields)
      EMBER_CHECK(f == fields[0], "DataLoader: default collate: tuple field ", index,
                  " is not a tensor and differs within a batch; pass a collate function that "
                  "says how to combine it");
    return fields[0];
  }
}

template <class E>
E default_collate(std::vector<E>&& examples) {
  EMBER_CHECK(!examples.empty(), "DataLoader: cannot collate an empty batch");
  if constexpr (std::is_same_v<E, Tensor>) {
    return stack(examples, 0);
  } else if constexpr (is_tensor_array<E>::value) {
    E out;
    for (size_t i = 0; i < out.size(); ++i) {
      std::vector<Tensor> column;
      column.reserve(examples.size());
      for (auto& e : examples) column.push_back(e[i]);
      out[i] = stack(column, 0);
    }
    return out;
  } else if constexpr (is_tuple<E>::value) {
    return [&]<size_t... I>(std::index_sequence<I...>) {
      auto column = [&]<size_t J>(std::integral_constant<size_t, J>) {
        std::vector<std::tuple_element_t<J, E>> fields;
        fields.reserve(examples.size());
        for (auto& e : examples) fields.push_back(std::get<J>(e));
        return collate_field(fields, J);
      };
      return E{column(std::integral_constant<size_t, I>{})...};
    }
    (std::make_index_sequence<std::tuple_size_v<E>>{});
  } else {
    static_assert(sizeof(E) == 0, "DataLoader: no default collate for this example type; pass one");
  }
}

}  // namespace detail

template <class Example, class Batch = Example>
class DataLoader {
 public:
  using example_type = Example;
  using batch_type = Batch;
  using Collate = std::function<Batch(std::vector<Example>&&)>;

  template <class D>
  DataLoader(std::shared_ptr<D> dataset, DataLoaderOptions options = {}, Collate collate = nullptr)
      : dataset_(std::move(dataset)), o_(std::move(options)), collate_(std::move(collate)) {
    const bool custom_collate = static_cast<bool>(collate_);
    EMBER_CHECK(o_.batch_size >= 1, "DataLoader: batch_size must be >= 1, got ", o_.batch_size);
    EMBER_CHECK(o_.num_workers >= 0 && o_.prefetch_factor >= 1,
                "DataLoader: num_workers must be >= 0 and prefetch_factor >= 1");
    if (!collate_) {
      if constexpr (std::is_same_v<Batch, Example>) collate_ = detail::default_collate<Example>;
      else EMBER_CHECK(false, "DataLoader: a batch type different from the example type needs a collate");
    }
    // TensorDataset-like datasets gather a whole batch at once when the default collate is used.
    if constexpr (requires(const D& d, const std::vector<int64_t>& i) {
                    { d.get_batch(i) } -> std::convertible_to<Batch>;
                  }) {
      if (!custom_collate) {
        auto* d = static_cast<const D*>(dataset_.get());
        gather_ = [d](const std::vector<int64_t>& idx) { return Batch(d->get_batch(idx)); };
      }
    }
    if (!o_.sampler) {
      const int64_t n = dataset_->size();
      if (o_.shuffle) {
        shuffle_seed_ = o_.seed ? *o_.seed : draw_seed();
        o_.sampler = std::make_shared<RandomSampler>(n, shuffle_seed_);
      } else {
        o_.sampler = std::make_shared<SequentialSampler>(n);
      }
    }
  }

  // Batches per epoch.
  int64_t size() const {
    const int64_t n = o_.sampler->size(), b = o_.batch_size;
    return o_.drop_last ? n / b : (n + b - 1) / b;
  }
  int64_t batch_size() const { return o_.batch_size; }
  const DataLoaderOptions& options() const { return o_; }
  const Sampler& sampler() const { return *o_.sampler; }
  // Replaces the sampler (the Trainer installs a DistributedSampler this way).
  void set_sampler(std::shared_ptr<Sampler> s) { o_.sampler = std::move(s); }
  // The seed of shuffle's order (0 without shuffle); equal on every rank that seeded alike.
  uint64_t shuffle_seed() const { return shuffle_seed_; }
  const Dataset<Example>& dataset() const { return *dataset_; }

  // One pass over the data.
  class Reader {
   public:
    Reader(const DataLoader& dl, int64_t epoch, int64_t skip) : dl_(dl) {
      const std::vector<int64_t> order = dl.o_.sampler->indices(epoch);
      const int64_t n = static_cast<int64_t>(order.size()), b = dl.o_.batch_size;
      for (int64_t start = 0; start < n; start += b) {
        const int64_t end = std::min(n, start + b);
        if (end - start < b && dl.o_.drop_last) break;
        batches_.emplace_back(order.begin() + start, order.begin() + end);
      }
      next_ = std::min<int64_t>(std::max<int64_t>(skip, 0), batches_.size());
      if (dl.o_.num_workers > 0) start_workers();
    }
    ~Reader() { stop_workers(); }
    Reader(const Reader&) = delete;
    Reader& operator=(const Reader&) = delete;

    int64_t position() const { return next_; }
    std::optional<Batch> next() {
      if (next_ >= static_cast<int64_t>(batches_.size())) return std::nullopt;
      const int64_t k = next_++;
      if (workers_.empty()) return dl_.make_batch(batches_[k]);
      std::unique_lock<std::mutex> lock(mu_);
      consumed_ = k;
      changed_.notify_all();
      changed_.wait(lock, [&] { return ready_.count(k) > 0; });
      Slot slot = std::move(ready_[k]);
      ready_.erase(k);
      consumed_ = k + 1;
      changed_.notify_all();
      if (slot.error) std::rethrow_exception(slot.error);
      return std::move(slot.batch);
    }

   private:
    struct Slot {
      std::optional<Batch> batch;
      std::exception_ptr error;
    };
    void start_workers() {
      const int w = dl_.o_.num_workers;
      consumed_ = next_;
      const int64_t first = next_;  // read here: next() moves next_ while the threads start
      for (int i = 0; i < w; ++i) workers_.emplace_back([this, first, i, w] { work(first + i, w); });
    }
    void work(int64_t first, int num_workers) {
      const int64_t ahead = static_cast<int64_t>(num_workers) * dl_.o_.prefetch_factor;
      for (int64_t k = first; k < static_cast<int64_t>(batches_.size()); k += num_workers) {
        {
          std::unique_lock<std::mutex> lock(mu_);
          changed_.wait(lock, [&] { return stop_ || k < consumed_ + ahead; });
          if (stop_) return;
        }
        Slot slot;
        try {
          slot.batch = dl_.make_batch(batches_[k]);
        } catch (...) {
          slot.error = std::current_exception();
        }
        std::lock_guard<std::mutex> lock(mu_);
        ready_[k] = std::move(slot);
        changed_.notify_all();
      }
    }
    void stop_workers() {
      {
        std::lock_guard<std::mutex> lock(mu_);
        stop_ = true;
      }
      changed_.notify_all();
      for (auto& t : workers_) t.join();
      workers_.clear();
    }

    const DataLoader& dl_;
    std::vector<std::vector<int64_t>> batches_;
    int64_t next_ = 0;
    std::vector<std::thread> workers_;
    std::mutex mu_;
    std::condition_variable changed_;
    std::map<int64_t, Slot> ready_;
    int64_t consumed_ = 0;
    bool stop_ = false;
  };

  // Starts a pass over epoch `epoch` (the sampler's order for it), skipping `skip` batches.
  std::unique_ptr<Reader> start_epoch(int64_t epoch, int64_t skip = 0) const {
    return std::make_unique<Reader>(*this, epoch, skip);
  }

  // Range-for support: each loop is the next epoch (0, 1, ...), like a PyTorch loader whose
  // RandomSampler draws a fresh order every time it is iterated.
  class iterator {
   public:
    iterator() = default;
    explicit iterator(std::shared_ptr<Reader> r) : reader_(std::move(r)) { advance(); }
    const Batch& operator*() const { return *current_; }
    iterator& operator++() {
      advance();
      return *this;
    }
    bool operator!=(const iterator& other) const {
      return current_.has_value() != other.current_.has_value();
    }

   private:
    void advance() { current_ = reader_ ? reader_->next() : std::nullopt; }
    std::shared_ptr<Reader> reader_;
    std::optional<Batch> current_;
  };
  iterator begin() { return iterator(std::shared_ptr<Reader>(start_epoch(iteration_++))); }
  iterator end() { return iterator(); }

 private:
  static uint64_t draw_seed() {
    Generator& g = Generator::for_device(Device::cpu());
    return g.seed() * 0x9E3779B97F4A7C15ull + g.take(1);
  }
  Batch make_batch(const std::vector<int64_t>& indices) const {
    if (gather_) return gather_(indices);
    std::vector<Example> examples;
    examples.reserve(indices.size());
    for (int64_t i : indices) examples.push_back(dataset_->get(i));
    return collate_(std::move(examples));
  }

  std::shared_ptr<const Dataset<Example>> dataset_;
  DataLoaderOptions o_;
  Collate collate_;
  std::function<Batch(const std::vector<int64_t>&)> gather_;
  int64_t iteration_ = 0;
  uint64_t shuffle_seed_ = 0;
};

template <class D>
DataLoader(std::shared_ptr<D>, DataLoaderOptions = {}) -> DataLoader<typename D::example_type>;

}  // namespace ember::data
