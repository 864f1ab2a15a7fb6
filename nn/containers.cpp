// Sequential, ModuleList, ModuleDict, ParameterList, ParameterDict.
#include "ember/nn/containers.h"

namespace ember::nn {

namespace {
int64_t wrap_index(int64_t i, size_t n, const char* who) {
  const int64_t size = static_cast<int64_t>(n);
  EMBER_CHECK(i >= -size && i < size, who, ": index ", i, " is out of range for ", size, " entries");
  return i < 0 ? i + size : i;
}
}  // namespace

Sequential::Sequential(std::initializer_list<ModulePtr> modules) : Sequential() {
  for (auto& m : modules) push_back(m);
}

Sequential::Sequential(const std::vector<std::pair<std::string, ModulePtr>>& named) : Sequential() {
  for (auto& [n, m] : named) push_back(n, m);
}

void Sequential::push_back(ModulePtr module) { push_back(std::to_string(cache_.size()), std::move(module)); }

void Sequential::push_back(const std::string& name, ModulePtr module) {
  add_child(name, module);
  cache_.push_back(std::move(module));
}

ModulePtr Sequential::operator[](int64_t index) const {
  return cache_[wrap_index(index, cache_.size(), "Sequential")];
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor y = x;
  for (auto& m : cache_) y = (*m)(y);
  return y;
}

ModuleList::ModuleList(std::initializer_list<ModulePtr> modules) : ModuleList() {
  for (auto& m : modules) push_back(m);
}

void ModuleList::push_back(ModulePtr module) {
  add_child(std::to_string(items_.size()), module);
  items_.push_back(std::move(module));
}

void ModuleList::insert(int64_t index, ModulePtr module) {
  const int64_t n = static_cast<int64_t>(items_.size());
  if (index < 0) index += n;
  EMBER_CHECK(index >= 0 && index <= n, "ModuleList::insert: index ", index, " out of range for ", n,
              " entries");
  items_.insert(items_.begin() + index, std::move(module));
  reindex();
}

void ModuleList::extend(const std::vector<ModulePtr>& modules) {
  for (auto& m : modules) push_back(m);
}

ModulePtr ModuleList::operator[](int64_t index) const {
  return items_[wrap_index(index, items_.size(), "ModuleList")];
}

void ModuleList::reindex() {
  clear_children();
  for (size_t i = 0; i < items_.size(); ++i) add_child(std::to_string(i), items_[i]);
}

ModuleDict::ModuleDict(const std::vector<std::pair<std::string, ModulePtr>>& items) : ModuleDict() {
  for (auto& [k, m] : items) insert(k, m);
}

void ModuleDict::insert(const std::string& key, ModulePtr module) {
  if (contains(key)) replace_module(key, std::move(module));
  else add_child(key, std::move(module));
}

ModulePtr ModuleDict::operator[](const std::string& key) const {
  auto m = find_child(key);
  EMBER_CHECK(m != nullptr, "ModuleDict: no module under key \"", key, "\"");
  return m;
}

std::vector<std::string> ModuleDict::keys() const {
  std::vector<std::string> out;
  for (auto& [k, m] : named_children()) out.push_back(k);
  return out;
}

ModulePtr ModuleDict::pop(const std::string& key) {
  ModulePtr m = (*this)[key];
  auto items = named_children();
  std::vector<std::pair<std::string, ModulePtr>> rest;
  for (auto& kv : items)
    if (kv.first != key) rest.push_back(kv);
  rebuild(rest);
  return m;
}

void ModuleDict::rebuild(const std::vector<std::pair<std::string, ModulePtr>>& items) {
  clear_children();
  for (auto& [k, m] : items) add_child(k, m);
}

ParameterList::ParameterList(std::initializer_list<Tensor> params) : ParameterList() {
  for (auto& p : params) push_back(p);
}

void ParameterList::push_back(Tensor param) {
  register_parameter(std::to_string(count_++), std::move(param));
}

Tensor& ParameterList::operator[](int64_t index) {
  return *find_parameter(std::to_string(wrap_index(index, count_, "ParameterList")));
}

void ParameterDict::insert(const std::string& key, Tensor param) {
  if (Tensor* existing = find_parameter(key)) {
    if (!param.requires_grad()) param.requires_grad_(true);
    *existing = std::move(param);
  } else {
    register_parameter(key, std::move(param));
  }
}

Tensor& ParameterDict::operator[](const std::string& key) {
  Tensor* p = find_parameter(key);
  EMBER_CHECK(p != nullptr, "ParameterDict: no parameter under key \"", key, "\"");
  return *p;
}

std::vector<std::string> ParameterDict::keys() const {
  std::vector<std::string> out;
  for (auto& [k, t] : named_parameters(false)) out.push_back(k);
  return out;
}

}  // namespace ember::nn
