// Reading JSON that came from a file (a safetensors header, a checkpoint's metadata, a callback's
// saved state) as a hostile file would be read: the nesting depth is bounded before parsing, so a
// header of 200,000 '[' cannot exhaust the stack; duplicate keys are an error, not "last one wins";
// and every problem, from a syntax error to a field of the wrong type, is an ember::Error that names
// the file (`what`) and the field, never an exception of the JSON library.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "ember/core/error.h"

namespace ember::nn {

// The deepest nesting of arrays and objects any ember file holds is far below this.
inline constexpr int kMaxJsonDepth = 64;

// Parses `text`; `what` opens every error ("load_safetensors: model.safetensors").
nlohmann::json parse_json(const std::string& text, const std::string& what);

// `v` as an int64, or an ember::Error naming `where` (a float, a string, or beyond int64's range).
int64_t json_to_int(const nlohmann::json& v, const std::string& where);
// `v` as a list of int64 (a shape, a pair of offsets), checked element by element.
std::vector<int64_t> json_to_ints(const nlohmann::json& v, const std::string& where);

// obj[key] converted to T; an ember::Error naming `what` and `key` when obj is not an object, the
// key is missing or the value does not convert. Numbers are checked before conversion: the JSON
// library casts a float to an integer type without a range check.
template <class T>
T json_field(const nlohmann::json& obj, const char* key, const std::string& what) {
  EMBER_CHECK(obj.is_object(), what, ": expected a JSON object holding \"", key, "\", got ", obj.type_name());
  auto it = obj.find(key);
  EMBER_CHECK(it != obj.end(), what, ": the field \"", key, "\" is missing");
  const std::string where = what + ": the field \"" + key + "\"";
  if constexpr (std::is_same_v<T, bool>) {
    EMBER_CHECK(it->is_boolean(), where, " must be true or false, got ", it->type_name());
    return it->template get<bool>();
  } else if constexpr (std::is_same_v<T, uint64_t>) {  // seeds use all 64 bits
    EMBER_CHECK(it->is_number_unsigned(), where, " must be an integer >= 0, got ", it->dump().substr(0, 80));
    return it->template get<uint64_t>();
  } else if constexpr (std::is_integral_v<T>) {
    const int64_t v = json_to_int(*it, where);
    EMBER_CHECK(std::is_signed_v<T> || v >= 0, where, " must not be negative, got ", v);
    return static_cast<T>(v);
  } else if constexpr (std::is_same_v<T, std::vector<int64_t>>) {
    return json_to_ints(*it, where);
  } else {
    try {
      return it->template get<T>();
    } catch (const nlohmann::json::exception& e) {
      fail(where, " holds ", it->dump().substr(0, 80), ", which is not what ember expects there (", e.what(),
           ")");
    }
  }
}

}  // namespace ember::nn
