// Containers that register what they hold, so parameters inside them show up in parameters(),
// state_dict(), to() and train()/eval() — unlike a plain std::vector of layers, which the module
// tree cannot see. Names follow PyTorch: list entries are "0", "1", ...; dict entries their keys.
#pragma once
#include <initializer_list>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "ember/nn/module.h"

namespace ember::nn {

using ModulePtr = std::shared_ptr<Module>;

// Runs its children in order, feeding each one's output to the next.
class Sequential : public Module {
 public:
  Sequential() : Module("Sequential") {}
  Sequential(std::initializer_list<ModulePtr> modules);
  explicit Sequential(const std::vector<std::pair<std::string, ModulePtr>>& named);
  void push_back(ModulePtr module);
  void push_back(const std::string& name, ModulePtr module);
  ModulePtr operator[](int64_t index) const;
  size_t size() const { return children().size(); }
  std::vector<ModulePtr>::const_iterator begin() const { return cache_.begin(); }
  std::vector<ModulePtr>::const_iterator end() const { return cache_.end(); }
  Tensor forward(const Tensor& x) override;

 private:
  std::vector<ModulePtr> cache_;
};

class ModuleList : public Module {
 public:
  ModuleList() : Module("ModuleList") {}
  ModuleList(std::initializer_list<ModulePtr> modules);
  void push_back(ModulePtr module);
  void insert(int64_t index, ModulePtr module);
  void extend(const std::vector<ModulePtr>& modules);
  ModulePtr operator[](int64_t index) const;
  template <class M>
  std::shared_ptr<M> at(int64_t index) const {
    auto m = std::dynamic_pointer_cast<M>((*this)[index]);
    EMBER_CHECK(m != nullptr, "ModuleList::at: entry ", index, " is a ", (*this)[index]->type_name(),
                ", not the requested type");
    return m;
  }
  size_t size() const { return items_.size(); }
  std::vector<ModulePtr>::const_iterator begin() const { return items_.begin(); }
  std::vector<ModulePtr>::const_iterator end() const { return items_.end(); }

 private:
  void reindex();  // children are named by position, so inserting renames those after it
  std::vector<ModulePtr> items_;
};

class ModuleDict : public Module {
 public:
  ModuleDict() : Module("ModuleDict") {}
  ModuleDict(const std::vector<std::pair<std::string, ModulePtr>>& items);
  // Inserts, or replaces the module under an existing key (keeping its position).
  void insert(const std::string& key, ModulePtr module);
  bool contains(const std::string& key) const { return find_child(key) != nullptr; }
  ModulePtr operator[](const std::string& key) const;
  ModulePtr pop(const std::string& key);
  std::vector<std::string> keys() const;
  std::vector<ModulePtr> values() const { return children(); }
  std::vector<std::pair<std::string, ModulePtr>> items() const { return named_children(); }
  size_t size() const { return children().size(); }

 private:
  void rebuild(const std::vector<std::pair<std::string, ModulePtr>>& items);
};

class ParameterList : public Module {
 public:
  ParameterList() : Module("ParameterList") {}
  ParameterList(std::initializer_list<Tensor> params);
  void push_back(Tensor param);
  Tensor& operator[](int64_t index);
  size_t size() const { return count_; }

 private:
  size_t count_ = 0;
};

class ParameterDict : public Module {
 public:
  ParameterDict() : Module("ParameterDict") {}
  void insert(const std::string& key, Tensor param);
  bool contains(const std::string& key) { return find_parameter(key) != nullptr; }
  Tensor& operator[](const std::string& key);
  std::vector<std::string> keys() const;
  size_t size() const { return named_parameters(false).size(); }
};

}  // namespace ember::nn
