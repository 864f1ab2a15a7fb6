// Tour 01: a tensor is a handle to a TensorImpl (sizes, strides, an offset) over a shared Storage
// (the bytes and the version counter). Views are new TensorImpls over the same storage: nothing is
// copied until an op needs compact memory. Run it and read the strides it prints; it exits non-zero
// if any of them is not what this comment says.
#include <iostream>

#include "ember/ember.h"

using namespace ember;

namespace {
int failures = 0;
void expect(bool ok, const char* what) {
  std::cout << (ok ? "  ok    " : "  WRONG ") << what << "\n";
  if (!ok) ++failures;
}
void show(const char* name, const Tensor& t) {
  std::cout << name << ": sizes " << shape_str(t.sizes()) << ", strides " << shape_str(t.strides())
            << ", offset " << t.storage_offset() << (t.is_contiguous() ? ", contiguous" : ", not contiguous")
            << "\n";
}
}  // namespace

int main() {
  Tensor x = arange(12.0).reshape({3, 4});  // row-major: one row is 4 elements apart
  show("x          ", x);
  expect(x.strides() == Shape{4, 1}, "x [3, 4] has strides [4, 1]");

  Tensor xt = x.t();  // the same bytes read column by column: the strides swap
  show("x.t()      ", xt);
  expect(xt.strides() == Shape{1, 4} && xt.data_ptr() == x.data_ptr(), "t() swaps strides, shares memory");

  Tensor row = x[1];  // select: drops a dim, moves the offset
  show("x[1]       ", row);
  expect(row.storage_offset() == 4, "x[1] starts 4 elements in");

  Tensor cols = x.narrow(1, 1, 2);  // narrow: keeps the row stride, so rows are no longer adjacent
  show("x[:, 1:3]  ", cols);
  expect(!cols.is_contiguous(), "a column slice is not contiguous");

  Tensor wide = tensor({1.0f, 2.0f, 3.0f}).reshape({1, 3}).expand({4, 3});  // stride 0: one row, read 4 times
  show("expand     ", wide);
  expect(wide.stride(0) == 0, "expand repeats a row with stride 0");

  Tensor packed = cols.contiguous();  // the first copy in this program
  show("contiguous ", packed);
  expect(packed.data_ptr() != x.data_ptr() && packed.strides() == Shape{2, 1}, "contiguous() copies");

  // Views share the storage, so a write through one is seen by all, and bumps the version counter
  // that autograd checks its saved tensors against.
  const uint64_t before = x.version();
  row.mul_(10);
  std::cout << "after x[1].mul_(10):\n" << x << "\n";
  expect(x[1][0].item<float>() == 40.0f, "the write through x[1] changed x");
  expect(x.version() == before + 1, "the shared version counter moved by one");
  return failures == 0 ? 0 : 1;
}
