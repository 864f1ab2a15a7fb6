// TensorImpl is what a Tensor handle points to: a view (sizes, strides, offset, dtype) over a shared
// Storage, plus optional autograd metadata. Copying a Tensor copies the handle, never the data.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "ember/core/dtype.h"
#include "ember/core/storage.h"

namespace ember {

namespace autograd {
struct AutogradMeta;
}

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  std::vector<int64_t> sizes;
  std::vector<int64_t> strides;  // in elements
  int64_t offset = 0;            // in elements
  DType dtype = kFloat32;
  bool is_view = false;  // made by a view op from another tensor (in-place rules differ)
  // For a view: the tensor that owns its storage (a view of a view points at the first owner). An
  // in-place write through the view rewrites the owner's autograd history (see commit_inplace).
  std::shared_ptr<TensorImpl> view_base;
  std::shared_ptr<autograd::AutogradMeta> autograd;  // null until the tensor joins a graph

  int64_t numel() const {
    int64_t n = 1;
    for (auto s : sizes) n *= s;
    return n;
  }
  void* data() const {
    return static_cast<char*>(storage->data()) + offset * static_cast<int64_t>(itemsize(dtype));
  }
};

}  // namespace ember
