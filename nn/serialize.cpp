// safetensors reading and writing; see serialize.h.
#include "ember/nn/serialize.h"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "ember/autograd/grad_mode.h"

namespace ember::nn {

namespace {

const char* code_of(DType t) {
  switch (t) {
    case kFloat32: return "F32";
    case kFloat64: return "F64";
    case kInt64: return "I64";
    case kInt32: return "I32";
    case kBool: return "BOOL";
    case kBFloat16: return "BF16";
    case kFloat16: return "F16";
  }
  return "?";
}

DType dtype_of_code(const std::string& code, const std::string& path, const std::string& name) {
  if (code == "F32") return kFloat32;
  if (code == "F64") return kFloat64;
  if (code == "I64") return kInt64;
  if (code == "I32") return kInt32;
  if (code == "BOOL") return kBool;
  if (code == "BF16") return kBFloat16;
  if (code == "F16") return kFloat16;
  fail("load_safetensors: tensor \"", name, "\" in ", path, " has dtype ", code,
       ", which ember does not support");
}

}  // namespace

void save_safetensors(const NamedTensors& tensors, const std::string& path, const Metadata& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  std::vector<Tensor> host;
  size_t offset = 0;
  {
    autograd::NoGradGuard guard;
    for (const auto& [name, t] : tensors) {
      EMBER_CHECK(t.defined(), "save_safetensors: tensor \"", name, "\" is undefined");
      EMBER_CHECK(name != "__metadata__", "save_safetensors: \"__metadata__\" is a reserved name");
      Tensor h = t.to(Device::cpu()).contiguous();
      const size_t bytes = h.numel() * h.element_size();
      header[name] = {{"dtype", code_of(h.dtype())}, {"shape", h.sizes()},
                      {"data_offsets", {offset, offset + bytes}}};
      offset += bytes;
      host.push_back(h);
    }
  }
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::string json = header.dump();
  json.append((8 - json.size() % 8) % 8, ' ');  // pad so the data starts 8-byte aligned
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    EMBER_CHECK(out.good(), "save_safetensors: cannot open ", tmp, " for writing");
    const uint64_t len = json.size();  // little-endian on every platform ember builds for
    out.write(reinterpret_cast<const char*>(&len), 8);
    out.write(json.data(), static_cast<std::streamsize>(json.size()));
    for (const auto& h : host)
      out.write(static_cast<const char*>(h.data_ptr()),
                static_cast<std::streamsize>(h.numel() * h.element_size()));
    out.flush();
    EMBER_CHECK(out.good(), "save_safetensors: writing ", tmp, " failed (disk full?)");
  }
  EMBER_CHECK(std::rename(tmp.c_str(), path.c_str()) == 0, "save_safetensors: cannot rename ", tmp,
              " to ", path);
}

NamedTensors load_safetensors(const std::string& path, Metadata* metadata) {
  std::ifstream in(path, std::ios::binary);
  EMBER_CHECK(in.good(), "load_safetensors: cannot open ", path);
  in.seekg(0, std::ios::end);
  const uint64_t file_size = static_cast<uint64_t>(in.tellg());
  in.seekg(0);
  uint64_t header_len = 0;
  in.read(reinterpret_cast<char*>(&header_len), 8);
  EMBER_CHECK(in.good() && header_len <= file_size - 8, "load_safetensors: ", path,
              " is not a safetensors file (bad header length)");
  std::string header_text(header_len, '\0');
  in.read(header_text.data(), static_cast<std::streamsize>(header_len));
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(header_text);
  } catch (const std::exception& e) {
    fail("load_safetensors: ", path, " has a malformed JSON header: ", e.what());
  }
  const uint64_t data_start = 8 + header_len, data_size = file_size - data_start;
  std::vector<std::pair<uint64_t, std::pair<std::string, Tensor>>> entries;
  for (auto& [name, info] : header.items()) {
    if (name == "__metadata__") {
      if (metadata)
        for (auto& [k, v] : info.items()) (*metadata)[k] = v.is_string() ? v.get<std::string>() : v.dump();
      continue;
    }
    const DType dt = dtype_of_code(info.at("dtype").get<std::string>(), path, name);
    const Shape shape = info.at("shape").get<Shape>();
    const uint64_t begin = info.at("data_offsets")[0], end = info.at("data_offsets")[1];
    Tensor t = empty(shape, dt);
    const uint64_t bytes = t.numel() * t.element_size();
    EMBER_CHECK(end >= begin && end - begin == bytes && end <= data_size, "load_safetensors: tensor \"",
                name, "\" in ", path, " has data_offsets [", begin, ", ", end, "] that do not fit its ",
                code_of(dt), " shape ", shape, " or the file");
    in.seekg(static_cast<std::streamoff>(data_start + begin));
    if (bytes) in.read(static_cast<char*>(t.data_ptr()), static_cast<std::streamsize>(bytes));
    EMBER_CHECK(in.good(), "load_safetensors: ", path, " is truncated");
    entries.push_back({begin, {name, t}});
  }
  std::sort(entries.begin(), entries.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  NamedTensors out;
  for (auto& e : entries) out.push_back(std::move(e.second));
  return out;
}

void save(const Module& module, const std::string& path, const Metadata& metadata) {
  save_safetensors(module.state_dict(), path, metadata);
}

LoadResult load(Module& module, const std::string& path, bool strict) {
  return module.load_state_dict(load_safetensors(path), strict);
}

}  // namespace ember::nn
