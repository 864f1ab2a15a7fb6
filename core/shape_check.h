// Overflow-checked shape arithmetic. Every shape that comes from a user or a file passes through these
// before memory is sized or a view is made from it, so an element count or byte size beyond int64
// is an ember::Error naming the op, never a product that wrapped around to something small.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace ember {

// The number of elements of `shape`; the error names `op` when a size is negative or the product
// does not fit in int64.
int64_t checked_numel(const std::vector<int64_t>& shape, const char* op);
// checked_numel(shape) * itemsize, checked the same way.
int64_t checked_nbytes(const std::vector<int64_t>& shape, size_t itemsize, const char* op);

}  // namespace ember
