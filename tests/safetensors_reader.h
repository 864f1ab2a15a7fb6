// A small safetensors reader for the parity fixtures (8-byte little-endian header length, JSON
// header of {name: {dtype, shape, data_offsets}}, raw little-endian data). Test-only: the library's
// own safetensors support arrives with nn (save/load of weights).
#pragma once
#include <ember/ember.h>

#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

namespace ember::test {

inline std::map<std::string, Tensor> read_safetensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EMBER_CHECK(in.good(), "read_safetensors: cannot open ", path);
  uint64_t header_len = 0;
  in.read(reinterpret_cast<char*>(&header_len), 8);
  std::string header(header_len, '\0');
  in.read(header.data(), static_cast<std::streamsize>(header_len));
  auto meta = nlohmann::json::parse(header);
  std::string body((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::map<std::string, Tensor> out;
  for (auto& [name, info] : meta.items()) {
    if (name == "__metadata__") continue;
    const std::string dt = info["dtype"];
    DType dtype = dt == "F32" ? kFloat32 : dt == "F64" ? kFloat64 : kInt64;
    Shape shape = info["shape"].get<Shape>();
    const size_t begin = info["data_offsets"][0], end = info["data_offsets"][1];
    Tensor t = empty(shape, dtype);
    EMBER_CHECK(end - begin == t.numel() * t.element_size(), "read_safetensors: bad size for ", name);
    if (end > begin) std::memcpy(t.data_ptr(), body.data() + begin, end - begin);
    out[name] = t;
  }
  return out;
}

}  // namespace ember::test
