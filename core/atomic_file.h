// Writing a file so that a reader never sees it half-written: the bytes go to `<path>.tmp`, which is
// renamed over `path` only once they are all on disk. When anything fails (the directory cannot be
// made, the disk is full, the rename is refused) the temporary file is removed, the old `path` (if
// any) is left as it was, and an ember::Error names the op, the file and the reason.
#pragma once
#include <functional>
#include <iosfwd>
#include <string>

namespace ember {

// Creates the parent directories of `path`, then runs `write` on a binary stream to `<path>.tmp`
// and renames it to `path`. `op` opens every error message ("save_safetensors", "CSVLogger", ...).
void write_file_atomic(const std::string& path, const std::function<void(std::ostream&)>& write,
                       const char* op);

// Creates `dir` and its parents; an ember::Error naming `op` when that is impossible (a path
// component is a regular file, no permission).
void create_directories_or_fail(const std::string& dir, const char* op);

}  // namespace ember
