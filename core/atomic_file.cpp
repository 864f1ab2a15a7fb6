// Implementation of atomic_file.h.
#include "ember/core/atomic_file.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <system_error>

#include "ember/core/error.h"

namespace ember {
namespace fs = std::filesystem;

void create_directories_or_fail(const std::string& dir, const char* op) {
  if (dir.empty()) return;
  std::error_code ec;
  fs::create_directories(dir, ec);
  EMBER_CHECK(!ec && fs::is_directory(dir, ec), op, ": cannot create the directory ", dir, ": ",
              ec ? ec.message() : "a file of that name is in the way");
}

void write_file_atomic(const std::string& path, const std::function<void(std::ostream&)>& write,
                       const char* op) {
  const fs::path p(path);
  if (p.has_parent_path()) create_directories_or_fail(p.parent_path().string(), op);
  const std::string tmp = path + ".tmp";
  std::string problem;
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out.good()) fail(op, ": cannot open ", tmp, " for writing: ", std::strerror(errno));
    try {
      write(out);
    } catch (...) {
      out.close();
      std::remove(tmp.c_str());
      throw;
    }
    out.flush();
    if (!out.good()) problem = "writing failed (disk full?)";
    out.close();
    if (problem.empty() && out.fail()) problem = "closing failed (disk full?)";
  }
  std::error_code ec;
  if (problem.empty()) {
    fs::rename(tmp, path, ec);
    if (ec) problem = "cannot rename it to " + path + ": " + ec.message();
  }
  if (!problem.empty()) {
    fs::remove(tmp, ec);  // the old file, if any, is untouched; the half-written one goes
    fail(op, ": ", tmp, ": ", problem);
  }
}

}  // namespace ember
