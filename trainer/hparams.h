// Hyperparameters: the named plain values a model was built with (sizes, rates, flags, names). A
// LightningModule stores them with save_hyperparameters(); they go into every checkpoint and the
// loggers, and load_from_checkpoint<Model>(path) rebuilds the model by passing them back to
// Model's constructor. Insertion-ordered; values are bool, integer, real or string.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "ember/core/error.h"

namespace ember::trainer {

using HParam = std::variant<bool, int64_t, double, std::string>;

class HParams {
 public:
  HParams() = default;
  HParams(std::initializer_list<std::pair<std::string, HParam>> items);

  void set(const std::string& name, HParam value);
  bool contains(const std::string& name) const;
  const HParam& at(const std::string& name) const;
  // Typed access; an integer reads as a double too. Errors name the key and the stored type.
  template <class T>
  T get(const std::string& name) const;
  template <class T>
  T get(const std::string& name, T fallback) const {
    return contains(name) ? get<T>(name) : fallback;
  }

  const std::vector<std::pair<std::string, HParam>>& items() const { return items_; }
  bool empty() const { return items_.empty(); }
  size_t size() const { return items_.size(); }

  std::string to_json() const;
  static HParams from_json(const std::string& text);
  // "name: value" lines (hparams.yaml style).
  std::string to_yaml() const;

 private:
  std::vector<std::pair<std::string, HParam>> items_;
};

// Value as it is written in logs: true, 3, 0.001, adam.
std::string to_string(const HParam& v);

}  // namespace ember::trainer
