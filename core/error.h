// ember::Error is the one exception type the library throws for user mistakes (wrong shape, dtype,
// device, index). Messages always start with the op's name, so a user reading a failure knows which
// call went wrong; `shape_str` formats shapes the way PyTorch prints them: [32, 16].
#pragma once
#include <array>
#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace ember {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

std::string shape_str(const std::vector<int64_t>& shape);
// "(a, b)": a kernel size, stride or padding pair as PyTorch prints it.
std::string pair_str(const std::array<int64_t, 2>& pair);

namespace detail {
inline void append(std::ostringstream&) {}
template <class T, class... Rest>
void append(std::ostringstream& os, const T& first, const Rest&... rest) {
  if constexpr (std::is_same_v<T, std::vector<int64_t>>) os << shape_str(first);
  else os << first;
  append(os, rest...);
}
}  // namespace detail

// Builds a message from pieces (shapes are formatted as [a, b]) and throws ember::Error.
template <class... Parts>
[[noreturn]] void fail(const Parts&... parts) {
  std::ostringstream os;
  detail::append(os, parts...);
  throw Error(os.str());
}

}  // namespace ember

// EMBER_CHECK(cond, "op: ", "message ", shape, ...) throws ember::Error when cond is false.
#define EMBER_CHECK(cond, ...)               \
  do {                                       \
    if (!(cond)) ::ember::fail(__VA_ARGS__); \
  } while (0)
