// Shared test helpers: run an op on the CPU backend and on the reference backend and compare, build
// non-contiguous inputs, and wrap gradcheck for doctest.
#pragma once
#include <doctest/doctest.h>

#include <ember/ember.h>
#include <ember/kernels/backend.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <string>

namespace ember::test {

// A scratch directory of this process's own, removed when it exits: ctest runs the same test cases
// in several processes at once (per case, per CPU level, on the simulated device), which must not
// share files.
struct ScratchRoot {
  std::filesystem::path path;
  ~ScratchRoot() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};
inline const std::filesystem::path& scratch_root() {
  static const ScratchRoot root{[] {
    auto p = std::filesystem::temp_directory_path() / ("ember_tests_" + std::to_string(getpid()));
    std::filesystem::create_directories(p);
    return p;
  }()};
  return root.path;
}

// The sizes every elementwise test walks through: empty, one, small odd, just past a SIMD width,
// and past the CPU backend's threading threshold when combined with other dims.
inline const std::vector<int64_t> kOddSizes = {0, 1, 7, 33, 1023};

// Runs f once on the CPU backend and once on the reference backend (same inputs), and checks the
// results agree. Returns the CPU result for further checks.
inline Tensor check_against_reference(const std::function<Tensor()>& f, double rtol = 1e-5,
                                      double atol = 1e-6) {
  Tensor fast = f();
  Tensor ref;
  {
    kernels::ScopedBackend use_reference(DeviceType::CPU, kernels::reference_backend());
    ref = f();
  }
  REQUIRE(fast.sizes() == ref.sizes());
  REQUIRE(fast.dtype() == ref.dtype());
  const bool ok = allclose(fast, ref, rtol, atol, /*equal_nan=*/true);
  if (!ok) {
    INFO("cpu:       " << to_string(fast));
    INFO("reference: " << to_string(ref));
    CHECK(ok);
  }
  return fast;
}

// A tensor with the given shape whose memory is laid out transposed (not contiguous when it has 2+
// dims with sizes > 1).
inline Tensor non_contiguous_randn(const Shape& shape, DType dtype = kFloat32) {
  if (shape.size() < 2) {
    Shape doubled = shape;
    if (!doubled.empty()) doubled.back() *= 2;
    Tensor t = randn(doubled, dtype);
    return shape.empty() ? t : t.slice(-1, 0, std::nullopt, 2);
  }
  Shape rev(shape.rbegin(), shape.rend());
  Shape dims;
  for (int64_t i = static_cast<int64_t>(shape.size()) - 1; i >= 0; --i) dims.push_back(i);
  return randn(rev, dtype).permute(dims);
}

inline void check_gradcheck(const autograd::GradcheckFn& fn, const autograd::variable_list& inputs,
                            autograd::GradcheckOptions opts = {}) {
  auto r = autograd::gradcheck(fn, inputs, opts);
  INFO(r.message);
  CHECK(r.ok);
}

inline Tensor randn64(const Shape& shape, bool grad = true) {
  Tensor t = randn(shape, kFloat64);
  if (grad) t.requires_grad_();
  return t;
}

// Checks that f throws ember::Error whose message contains every one of `parts`.
inline void check_error(const std::function<void()>& f, const std::vector<std::string>& parts) {
  try {
    f();
    FAIL("expected an ember::Error");
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const auto& p : parts) {
      INFO("message: " << msg << "\nmissing: " << p);
      CHECK(msg.find(p) != std::string::npos);
    }
  }
}

}  // namespace ember::test
