// Hostile and damaged files: safetensors headers and checkpoints made by hand, as an attacker or a
// broken disk would make them. Each must end in an ember::Error that names the file and what is
// wrong with it; none may crash, allocate what the file merely claims, or load garbage.
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "ember/core/atomic_file.h"
#include "helpers.h"

using namespace ember;
using ember::test::check_error;

namespace {

std::string temp_file(const std::string& name) {
  return (ember::test::scratch_root() / ("ember_hostile_" + name)).string();
}

// A safetensors file with this header text and `data_bytes` zero bytes of data.
std::string write_raw(const std::string& name, const std::string& header, size_t data_bytes = 0) {
  const std::string path = temp_file(name);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  const uint64_t len = header.size();
  out.write(reinterpret_cast<const char*>(&len), 8);
  out << header << std::string(data_bytes, '\0');
  return path;
}

void check_bad(const std::string& header, size_t data_bytes, const std::vector<std::string>& parts) {
  const std::string path = write_raw("bad.safetensors", header, data_bytes);
  std::vector<std::string> all = {"load_safetensors", path};
  all.insert(all.end(), parts.begin(), parts.end());
  check_error([&] { nn::load_safetensors(path); }, all);
}

}  // namespace

TEST_CASE("safetensors reader: malformed headers are ember::Errors naming the file and field") {
  const std::string ok = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  CHECK(nn::load_safetensors(write_raw("ok.safetensors", ok, 8)).size() == 1);
  check_bad(std::string(200000, '[') + std::string(200000, ']'), 0, {"nests deeper"});
  check_bad(
      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
      16, {"\"a\" appears twice"});
  check_bad(R"({"__metadata__":[1,2],"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 8,
            {"__metadata__"});
  check_bad(R"({"__metadata__":{"k":3},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 8,
            {"__metadata__", "\"k\""});
  check_bad(
      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
      12, {"overlaps"});
  check_bad(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12, {"belong to no tensor"});
  check_bad(ok, 12, {"trailing bytes"});
  check_bad(ok, 4, {"truncated"});
  check_bad(R"({"a":{"shape":[2],"data_offsets":[0,8]}})", 8, {"\"a\"", "\"dtype\" is missing"});
  check_bad(R"({"a":{"dtype":"F32","shape":[2]}})", 8, {"\"data_offsets\" is missing"});
  check_bad(R"({"a":{"dtype":"F32","shape":"2","data_offsets":[0,8]}})", 8,
            {"\"shape\"", "list of integers"});
  check_bad(R"({"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})", 8, {"\"shape\"", "integer"});
  check_bad(R"({"a":{"dtype":"F32","shape":[1e300],"data_offsets":[0,8]}})", 8, {"\"shape\"", "integer"});
  check_bad(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8, {"negative"});
  check_bad(R"({"a":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,8]}})", 8, {"int64"});
  check_bad(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", 8, {"[begin, end]"});
  check_bad(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,-8]}})", 8, {"[begin, end]"});
  check_bad(R"({"a":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}})", 8, {"Q4"});
  check_bad(R"({"a":7})", 0, {"\"a\"", "object"});
  check_bad(R"([1,2,3])", 0, {"JSON object"});
  check_bad(R"({"a":{"dtype":"F32",)", 0, {"malformed JSON"});
}

TEST_CASE("safetensors reader: lengths and files that are not what they claim") {
  const std::string path = temp_file("short.safetensors");
  { std::ofstream(path, std::ios::binary) << "abc"; }
  check_error([&] { nn::load_safetensors(path); }, {"load_safetensors", "8-byte header length"});
  // A header length of 2^60: refused without allocating it.
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    const uint64_t len = uint64_t{1} << 60;
    out.write(reinterpret_cast<const char*>(&len), 8);
    out << "{}";
  }
  check_error([&] { nn::load_safetensors(path); }, {"load_safetensors", "header length"});
  check_error([] { nn::load_safetensors("/dev/urandom"); }, {"load_safetensors", "not a regular file"});
  check_error([] { nn::load_safetensors(std::filesystem::temp_directory_path().string()); },
              {"load_safetensors", "not a regular file"});
  std::remove(path.c_str());
}

TEST_CASE("safetensors writer: a failed write leaves neither a temp file nor a damaged old file") {
  const std::string path = temp_file("kept.safetensors");
  nn::save_safetensors({{"w", ones({3})}}, path);
  // The parent "directory" is a regular file: the write fails before anything is touched.
  check_error(
      [&] {
        nn::save_safetensors({{"w", zeros({3})}}, path + "/x.safetensors");
      },
      {"save_safetensors", "cannot create the directory"});
  check_error(
      [&] {
        nn::save_safetensors({{"w", ones({1})}, {"w", ones({1})}}, path);
      },
      {"save_safetensors", "twice"});
  CHECK(nn::load_safetensors(path).front().second.equal(ones({3})));
  CHECK_FALSE(std::filesystem::exists(path + ".tmp"));
  // A write that fails half-way (as on a full disk): the old file stays, the temp file goes.
  check_error(
      [&] {
        write_file_atomic(
            path,
            [](std::ostream& out) {
              out << "half";
              out.setstate(std::ios::badbit);
            },
            "test_write");
      },
      {"test_write", "disk full"});
  CHECK(nn::load_safetensors(path).front().second.equal(ones({3})));
  CHECK_FALSE(std::filesystem::exists(path + ".tmp"));
  std::remove(path.c_str());
}
