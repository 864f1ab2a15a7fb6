// Implementation of json_read.h.
#include "ember/nn/json_read.h"

#include <set>
#include <vector>

namespace ember::nn {
namespace {

// The deepest nesting in `text`, counting brackets outside string literals; stops early past the limit.
int json_depth(const std::string& text) {
  int depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    else if (c == '[' || c == '{') deepest = std::max(deepest, ++depth);
    else if (c == ']' || c == '}') --depth;
    if (deepest > kMaxJsonDepth) break;
  }
  return deepest;
}

}  // namespace

int64_t json_to_int(const nlohmann::json& v, const std::string& where) {
  EMBER_CHECK(v.is_number_integer(), where, " must be an integer, got ", v.dump().substr(0, 80));
  if (v.is_number_unsigned())
    EMBER_CHECK(v.get<uint64_t>() <= static_cast<uint64_t>(INT64_MAX), where, " is beyond int64: ", v.dump());
  return v.get<int64_t>();
}

std::vector<int64_t> json_to_ints(const nlohmann::json& v, const std::string& where) {
  EMBER_CHECK(v.is_array(), where, " must be a list of integers, got ", v.type_name());
  std::vector<int64_t> out;
  for (const auto& x : v) out.push_back(json_to_int(x, where));
  return out;
}

nlohmann::json parse_json(const std::string& text, const std::string& what) {
  EMBER_CHECK(json_depth(text) <= kMaxJsonDepth, what, ": the JSON nests deeper than ", kMaxJsonDepth,
              " levels; no ember file does, so it is damaged or hostile");
  // One set of keys per open object: a key seen twice in the same object is an error.
  std::vector<std::set<std::string>> open_objects;
  auto on_event = [&](int, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    using E = nlohmann::json::parse_event_t;
    if (event == E::object_start) open_objects.emplace_back();
    else if (event == E::object_end) open_objects.pop_back();
    else if (event == E::key && !open_objects.back().insert(parsed.get<std::string>()).second)
      fail(what, ": the key \"", parsed.get<std::string>(), "\" appears twice in one JSON object");
    return true;
  };
  try {
    return nlohmann::json::parse(text, on_event);
  } catch (const nlohmann::json::exception& e) {
    fail(what, ": malformed JSON: ", e.what());
  }
}

}  // namespace ember::nn
