// HParams: see hparams.h.
#include "ember/trainer/hparams.h"

#include <algorithm>
#include <cctype>
#include <sstream>

#include "ember/nn/json_read.h"

namespace ember::trainer {
namespace {
const char* type_of(const HParam& v) {
  static const char* names[] = {"bool", "int", "double", "string"};
  return names[v.index()];
}
}  // namespace

HParams::HParams(std::initializer_list<std::pair<std::string, HParam>> items) {
  for (auto& [k, v] : items) set(k, v);
}

void HParams::set(const std::string& name, HParam value) {
  for (auto& [k, v] : items_)
    if (k == name) {
      v = std::move(value);
      return;
    }
  items_.emplace_back(name, std::move(value));
}

bool HParams::contains(const std::string& name) const {
  for (auto& [k, v] : items_)
    if (k == name) return true;
  return false;
}

const HParam& HParams::at(const std::string& name) const {
  for (auto& [k, v] : items_)
    if (k == name) return v;
  std::string have;
  for (auto& [k, v] : items_) have += (have.empty() ? "" : ", ") + k;
  EMBER_CHECK(false, "hparams: no hyperparameter \"", name, "\" (have: ", have.empty() ? "none" : have, ")");
  std::abort();
}

template <class T>
T HParams::get(const std::string& name) const {
  const HParam& v = at(name);
  if constexpr (std::is_same_v<T, double> || std::is_same_v<T, float>) {
    if (auto* i = std::get_if<int64_t>(&v)) return static_cast<T>(*i);
    if (auto* d = std::get_if<double>(&v)) return static_cast<T>(*d);
  } else if constexpr (std::is_same_v<T, bool>) {
    if (auto* b = std::get_if<bool>(&v)) return *b;
  } else if constexpr (std::is_integral_v<T>) {
    if (auto* i = std::get_if<int64_t>(&v)) return static_cast<T>(*i);
  } else {
    if (auto* s = std::get_if<std::string>(&v)) return *s;
  }
  EMBER_CHECK(false, "hparams: \"", name, "\" holds a ", type_of(v), ", not the type asked for");
  std::abort();
}

template double HParams::get<double>(const std::string&) const;
template float HParams::get<float>(const std::string&) const;
template bool HParams::get<bool>(const std::string&) const;
template int64_t HParams::get<int64_t>(const std::string&) const;
template int HParams::get<int>(const std::string&) const;
template std::string HParams::get<std::string>(const std::string&) const;

std::string HParams::to_json() const {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  for (auto& [k, v] : items_) std::visit([&, &k = k](const auto& x) { j[k] = x; }, v);
  return j.dump();
}

HParams HParams::from_json(const std::string& text) {
  HParams out;
  nn::parse_json(text, "checkpoint: hparams");         // bounded depth, no duplicate keys, ember::Error
  const auto j = nlohmann::ordered_json::parse(text);  // again, keeping the order they were saved in
  EMBER_CHECK(j.is_object(), "checkpoint: hparams must be a JSON object, got ", j.type_name());
  for (auto it = j.begin(); it != j.end(); ++it) {
    const auto& v = it.value();
    if (v.is_boolean()) out.set(it.key(), v.get<bool>());
    else if (v.is_number_integer()) out.set(it.key(), v.get<int64_t>());
    else if (v.is_number()) out.set(it.key(), v.get<double>());
    else if (v.is_string()) out.set(it.key(), v.get<std::string>());
    else EMBER_CHECK(false, "hparams: \"", it.key(), "\" in the checkpoint is not a plain value");
  }
  return out;
}

std::string to_string(const HParam& v) {
  std::ostringstream os;
  std::visit(
      [&](const auto& x) {
        if constexpr (std::is_same_v<std::decay_t<decltype(x)>, bool>) os << (x ? "true" : "false");
        else os << x;
      },
      v);
  return os.str();
}

// A string YAML would read back as written: otherwise (empty, spaces, newlines, ':' or '#', a leading
// quote or dash, ...) it is written double-quoted with JSON's escapes, which YAML reads the same way.
static std::string yaml_scalar(const HParam& v) {
  const auto* text = std::get_if<std::string>(&v);
  if (!text) return to_string(v);
  const bool plain = !text->empty() && std::all_of(text->begin(), text->end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '/' || c == '-' ||
           c == '+';
  }) && std::isalpha(static_cast<unsigned char>(text->front()));
  return plain ? *text : nlohmann::json(*text).dump();
}

std::string HParams::to_yaml() const {
  std::string out;
  for (auto& [k, v] : items_) out += k + ": " + yaml_scalar(v) + "\n";
  return out;
}

}  // namespace ember::trainer
