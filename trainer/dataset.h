// Datasets: an indexable collection of examples. A Dataset<Example> answers size() and get(i);
// TensorDataset pairs tensors along their first dimension (example i is {t[i] for each t}) and can
// also hand out a whole batch in one gather, which is what DataLoader uses when it can.
#pragma once
#include <array>
#include <cstdint>
#include <vector>

#include "ember/core/error.h"
#include "ember/core/ops.h"

namespace ember::data {

template <class Example>
class Dataset {
 public:
  using example_type = Example;
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  virtual Example get(int64_t index) const = 0;
};

template <size_t N>
class TensorDataset : public Dataset<std::array<Tensor, N>> {
 public:
  using Example = std::array<Tensor, N>;
  explicit TensorDataset(Example tensors) : tensors_(std::move(tensors)) {
    for (auto& t : tensors_) {
      EMBER_CHECK(t.defined() && t.dim() > 0, "TensorDataset: every tensor needs a first dimension");
      EMBER_CHECK(t.size(0) == tensors_[0].size(0),
                  "TensorDataset: size mismatch between tensors: ", tensors_[0].sizes(), " and ", t.sizes(),
                  " differ in their first dimension");
    }
  }
  template <class... T>
  requires(sizeof...(T) == N &&
           (std::is_convertible_v<T, Tensor> && ...)) explicit TensorDataset(T... tensors)
      : TensorDataset(Example{Tensor(tensors)...}) {}

  int64_t size() const override { return tensors_[0].size(0); }
  Example get(int64_t index) const override {
    EMBER_CHECK(index >= 0 && index < size(), "TensorDataset: index ", index, " out of range for ", size(),
                " examples");
    Example out;
    for (size_t i = 0; i < N; ++i) out[i] = tensors_[i].select(0, index);
    return out;
  }
  // The examples at `indices`, already stacked (one gather per tensor instead of one copy each).
  Example get_batch(const std::vector<int64_t>& indices) const {
    Tensor idx = tensor(indices, {static_cast<int64_t>(indices.size())});
    Example out;
    for (size_t i = 0; i < N; ++i) out[i] = index_select(tensors_[i], 0, idx);
    return out;
  }
  const Example& tensors() const { return tensors_; }

 private:
  Example tensors_;
};

template <class... T>
TensorDataset(T...) -> TensorDataset<sizeof...(T)>;

}  // namespace ember::data
