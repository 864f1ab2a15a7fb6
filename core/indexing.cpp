// t.index({...}): Python-style indexing. Integers select (dropping the dim), Slices slice, None adds a
// dim, Ellipsis stands for the dims not mentioned; an int64 tensor picks entries along its dim (one
// per call), a bool tensor over all remaining dims selects the true positions (masked_select).
#include "ember/core/ops.h"
#include "ember/core/ops/internal.h"

namespace ember {
using namespace detail;

TensorIndex::TensorIndex(int64_t i) : kind_(Kind::Integer), integer_(i) {}
TensorIndex::TensorIndex(Slice s) : kind_(Kind::Slice), slice_(s) {}
TensorIndex::TensorIndex(NoneIndex) : kind_(Kind::None) {}
TensorIndex::TensorIndex(EllipsisIndex) : kind_(Kind::Ellipsis) {}
TensorIndex::TensorIndex(const Tensor& t) : kind_(Kind::Tensor), tensor_(std::make_shared<Tensor>(t)) {}

Tensor Tensor::index(std::initializer_list<TensorIndex> indices) const {
  return index(std::vector<TensorIndex>(indices));
}

Tensor Tensor::index(const std::vector<TensorIndex>& indices) const {
  int64_t consumed = 0, ellipses = 0;
  for (const auto& ix : indices) {
    if (ix.kind() == TensorIndex::Kind::Ellipsis) ++ellipses;
    else if (ix.kind() == TensorIndex::Kind::Tensor && ix.tensor().dtype() == kBool)
      consumed += ix.tensor().dim();
    else if (ix.kind() != TensorIndex::Kind::None) ++consumed;
  }
  EMBER_CHECK(ellipses <= 1, "index: an index can only have a single ellipsis");
  EMBER_CHECK(consumed <= dim(), "index: too many indices for a tensor of shape ", sizes(), " (", consumed,
              " indexed dims)");
  Tensor out = *this;
  int64_t d = 0;  // the dim of `out` the next index applies to
  for (const auto& ix : indices) {
    switch (ix.kind()) {
      case TensorIndex::Kind::Integer: out = out.select(d, ix.integer()); break;
      case TensorIndex::Kind::Slice: {
        const Slice& s = ix.slice();
        out = out.slice(d, s.start, s.stop, s.step);
        ++d;
        break;
      }
      case TensorIndex::Kind::None:
        out = out.unsqueeze(d);
        ++d;
        break;
      case TensorIndex::Kind::Ellipsis: d += dim() - consumed; break;
      case TensorIndex::Kind::Tensor: {
        const Tensor& t = ix.tensor();
        if (t.dtype() == kBool) {
          EMBER_CHECK(d == 0 && t.dim() == out.dim(),
                      "index: a bool mask must cover all dims of "
                      "the tensor (mask shape ",
                      t.sizes(), ", tensor shape ", out.sizes(), ")");
          for (int64_t i = 0; i < t.dim(); ++i)
            EMBER_CHECK(t.size(i) == out.size(i), "index: mask of shape ", t.sizes(),
                        " does not match the indexed tensor's shape ", out.sizes());
          out = out.masked_select(t);
          d = 1;
        } else {
          Tensor picked = out.index_select(d, t.reshape({-1}));
          Shape shape(out.sizes().begin(), out.sizes().begin() + d);
          shape.insert(shape.end(), t.sizes().begin(), t.sizes().end());
          shape.insert(shape.end(), out.sizes().begin() + d + 1, out.sizes().end());
          out = picked.reshape(shape);
          d += t.dim();
        }
        break;
      }
    }
  }
  return out;
}

Tensor& Tensor::index_put_(const std::vector<TensorIndex>& indices, const Tensor& value) {
  for (const auto& ix : indices)
    EMBER_CHECK(ix.kind() != TensorIndex::Kind::Tensor,
                "index_put_: tensor indices are not supported; use index_add/scatter/masked_fill");
  Tensor target = index(indices);
  EMBER_CHECK(value.dim() <= target.dim() &&
                  broadcast_shapes(value.sizes(), target.sizes(), "index_put_") == target.sizes(),
              "index_put_: a value of shape ", value.sizes(),
              " cannot be written into the indexed region of shape ", target.sizes(), " (tensor of shape ",
              sizes(), ")");
  target.copy_(value);
  return *this;
}

Tensor& Tensor::index_put_(const std::vector<TensorIndex>& indices, Scalar value) {
  Tensor v = scalar_tensor(value, TensorOptions(dtype()).set_device(device()));
  return index_put_(indices, v);
}

}  // namespace ember
