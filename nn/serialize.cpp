// safetensors reading and writing; see serialize.h.
#include "ember/nn/serialize.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>

#include "ember/autograd/grad_mode.h"
#include "ember/core/atomic_file.h"
#include "ember/core/shape_check.h"
#include "ember/nn/json_read.h"

namespace ember::nn {

namespace {

// The limit the format's reference implementation sets on the header (100 MB): a claimed length
// beyond it is a damaged or hostile file, not a reason to allocate gigabytes.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

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

DType dtype_of_code(const std::string& code, const std::string& what, const std::string& name) {
  if (code == "F32") return kFloat32;
  if (code == "F64") return kFloat64;
  if (code == "I64") return kInt64;
  if (code == "I32") return kInt32;
  if (code == "BOOL") return kBool;
  if (code == "BF16") return kBFloat16;
  if (code == "F16") return kFloat16;
  fail(what, ": tensor \"", name, "\" has dtype ", code, ", which ember does not support");
}

}  // namespace

void save_safetensors(const NamedTensors& tensors, const std::string& path, const Metadata& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  std::vector<Tensor> host;
  std::set<std::string> names;
  size_t offset = 0;
  {
    autograd::NoGradGuard guard;
    for (const auto& [name, t] : tensors) {
      EMBER_CHECK(t.defined(), "save_safetensors: tensor \"", name, "\" is undefined");
      EMBER_CHECK(name != "__metadata__", "save_safetensors: \"__metadata__\" is a reserved name");
      EMBER_CHECK(names.insert(name).second, "save_safetensors: the name \"", name, "\" appears twice");
      Tensor h = t.to(Device::cpu()).contiguous();
      const size_t bytes = h.numel() * h.element_size();
      header[name] = {
          {"dtype", code_of(h.dtype())}, {"shape", h.sizes()}, {"data_offsets", {offset, offset + bytes}}};
      offset += bytes;
      host.push_back(h);
    }
  }
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::string json = header.dump();
  json.append((8 - json.size() % 8) % 8, ' ');  // pad so the data starts 8-byte aligned
  write_file_atomic(
      path,
      [&](std::ostream& out) {
        const uint64_t len = json.size();  // little-endian on every platform ember builds for
        out.write(reinterpret_cast<const char*>(&len), 8);
        out.write(json.data(), static_cast<std::streamsize>(json.size()));
        for (const auto& h : host)
          out.write(static_cast<const char*>(h.data_ptr()),
                    static_cast<std::streamsize>(h.numel() * h.element_size()));
      },
      "save_safetensors");
}

namespace {

// One tensor's entry in the header, checked against the format before any memory is sized from it.
struct Entry {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin, end;
};

Entry read_entry(const std::string& name, const nlohmann::json& info, const std::string& what) {
  const std::string where = what + ": tensor \"" + name + "\"";
  Entry e{name, dtype_of_code(json_field<std::string>(info, "dtype", where), what, name),
          json_field<Shape>(info, "shape", where), 0, 0};
  const auto offsets = json_field<std::vector<int64_t>>(info, "data_offsets", where);
  EMBER_CHECK(offsets.size() == 2 && offsets[0] >= 0 && offsets[1] >= 0, where,
              ": data_offsets must be [begin, end], two offsets >= 0");
  e.begin = static_cast<uint64_t>(offsets[0]);
  e.end = static_cast<uint64_t>(offsets[1]);
  const auto bytes = static_cast<uint64_t>(checked_nbytes(e.shape, itemsize(e.dtype), where.c_str()));
  EMBER_CHECK(e.end >= e.begin && e.end - e.begin == bytes, where, " has data_offsets [", e.begin, ", ",
              e.end, "] that do not fit its ", code_of(e.dtype), " shape ", e.shape, " (", bytes, " bytes)");
  return e;
}

// The format's rules for the data section: the tensors tile it exactly, in offset order, with no
// overlap and no byte that belongs to none of them.
void check_tiling(std::vector<Entry>& entries, uint64_t data_size, const std::string& what) {
  std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t covered = 0;
  for (const Entry& e : entries) {
    EMBER_CHECK(e.begin >= covered, what, ": tensor \"", e.name, "\" at bytes [", e.begin, ", ", e.end,
                ") overlaps the tensor before it");
    EMBER_CHECK(e.begin == covered, what, ": bytes [", covered, ", ", e.begin,
                ") of the data belong to no tensor");
    covered = e.end;
  }
  EMBER_CHECK(covered == data_size, what, ": the header describes ", covered,
              " bytes of data but the file holds ", data_size,
              covered > data_size ? " (truncated)" : " (trailing bytes belong to no tensor)");
}

void read_metadata(const nlohmann::json& meta, Metadata* metadata, const std::string& what) {
  EMBER_CHECK(meta.is_object(), what, ": __metadata__ must be an object of strings, got ", meta.type_name());
  for (auto& [k, v] : meta.items()) {
    EMBER_CHECK(v.is_string(), what, ": __metadata__ value \"", k, "\" must be a string, got ",
                v.type_name());
    if (metadata) (*metadata)[k] = v.get<std::string>();
  }
}

}  // namespace

NamedTensors load_safetensors(const std::string& path, Metadata* metadata) {
  const std::string what = "load_safetensors: " + path;
  std::error_code ec;
  EMBER_CHECK(std::filesystem::is_regular_file(path, ec), what, ": cannot open it (",
              std::filesystem::exists(path, ec) ? "not a regular file" : "no such file", ")");
  const uint64_t file_size = std::filesystem::file_size(path, ec);
  EMBER_CHECK(!ec, what, ": cannot read its size: ", ec.message());
  std::ifstream in(path, std::ios::binary);
  EMBER_CHECK(in.good(), what, ": cannot open it");
  uint64_t header_len = 0;
  EMBER_CHECK(file_size >= 8 && in.read(reinterpret_cast<char*>(&header_len), 8), what,
              ": not a safetensors file (shorter than its 8-byte header length)");
  EMBER_CHECK(header_len <= file_size - 8 && header_len <= kMaxHeaderBytes, what,
              ": not a safetensors file (its header length ", header_len, " exceeds the file's ", file_size,
              " bytes or the format's limit)");
  std::string header_text(header_len, '\0');
  EMBER_CHECK(in.read(header_text.data(), static_cast<std::streamsize>(header_len)), what, " is truncated");
  const nlohmann::json header = parse_json(header_text, what);
  EMBER_CHECK(header.is_object(), what, ": the header must be a JSON object, got ", header.type_name());
  const uint64_t data_start = 8 + header_len, data_size = file_size - data_start;
  std::vector<Entry> entries;
  for (auto& [name, info] : header.items()) {
    if (name == "__metadata__") read_metadata(info, metadata, what);
    else entries.push_back(read_entry(name, info, what));
  }
  check_tiling(entries, data_size, what);
  NamedTensors out;
  for (const Entry& e : entries) {
    Tensor t = empty(e.shape, e.dtype);
    in.seekg(static_cast<std::streamoff>(data_start + e.begin));
    if (e.end > e.begin)
      in.read(static_cast<char*>(t.data_ptr()), static_cast<std::streamsize>(e.end - e.begin));
    EMBER_CHECK(in.good(), what, " is truncated");
    out.emplace_back(e.name, t);
  }
  return out;
}

void save(const Module& module, const std::string& path, const Metadata& metadata) {
  save_safetensors(module.state_dict(), path, metadata);
}

LoadResult load(Module& module, const std::string& path, bool strict) {
  return module.load_state_dict(load_safetensors(path), strict);
}

}  // namespace ember::nn
