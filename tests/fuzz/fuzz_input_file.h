// Shared by the fuzz targets: ember's readers take paths, so each input is first written to a file
// of this process's own, and every call is made the way a user makes it: an ember::Error is the
// correct answer to a bad file; any other exception escapes and libFuzzer reports it as a finding.
#pragma once
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

namespace ember::fuzz {

inline std::string write_input(const uint8_t* data, size_t size, const char* suffix) {
  static const std::string path =
      (std::filesystem::temp_directory_path() / ("ember_fuzz_" + std::to_string(getpid()) + suffix)).string();
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) __builtin_trap();
  if (size) std::fwrite(data, 1, size, f);
  std::fclose(f);
  return path;
}

}  // namespace ember::fuzz
