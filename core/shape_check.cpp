// Implementation of shape_check.h: multiplications through __builtin_mul_overflow.
#include "ember/core/shape_check.h"

#include "ember/core/error.h"

namespace ember {

int64_t checked_numel(const std::vector<int64_t>& shape, const char* op) {
  int64_t n = 1;
  bool overflow = false;
  for (int64_t s : shape) {
    EMBER_CHECK(s >= 0, op, ": negative dimension in shape ", shape);
    overflow = overflow || __builtin_mul_overflow(n, s, &n);
  }
  // A zero anywhere makes the product 0 whatever came before it, as it is for the tensor itself.
  for (int64_t s : shape)
    if (s == 0) return 0;
  EMBER_CHECK(!overflow, op, ": shape ", shape, " has more elements than int64 can count");
  return n;
}

int64_t checked_nbytes(const std::vector<int64_t>& shape, size_t itemsize, const char* op) {
  int64_t bytes = 0;
  EMBER_CHECK(!__builtin_mul_overflow(checked_numel(shape, op), static_cast<int64_t>(itemsize), &bytes), op,
              ": shape ", shape, " needs more bytes than int64 can count");
  return bytes;
}

}  // namespace ember
