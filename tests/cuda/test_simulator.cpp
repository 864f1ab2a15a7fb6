// The SIMT simulator's own tests: kernels that must match a CPU computation (tiled GEMM over odd
// shapes, warp-shuffle reduction, atomic histogram, a block scan with ballots and up-shuffles) and
// planted bugs it must report (divergent barrier, early return before a barrier, a shuffle with an
// exited lane, a write past the end of an allocation) or expose (a missing barrier). ctest runs this
// binary with EMBER_SIM_ORDER=forward, reverse and random.
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "device_buffer.h"
#include "ember/core/error.h"
#include "ember/kernels/cuda/portability.h"
#include "sim_kernels.h"

using namespace ember;

namespace {

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("simulator: tiled SGEMM matches the CPU over odd shapes") {
  for (auto [m, n, k] : {std::tuple{1, 1, 1}, {7, 33, 5}, {33, 17, 40}, {64, 48, 31}}) {
    auto a = random_floats(m * k, 1), b = random_floats(k * n, 2);
    DeviceBuffer<float> da(a), db(b), dc(std::vector<float>(m * n, -7.0f));
    simtest::tiled_sgemm(da.p, db.p, dc.p, m, n, k);
    auto c = dc.get();
    for (int i = 0; i < m; ++i)
      for (int j = 0; j < n; ++j) {
        double ref = 0;
        for (int t = 0; t < k; ++t) ref += double(a[i * k + t]) * b[t * n + j];
        INFO("m=" << m << " n=" << n << " k=" << k << " at " << i << "," << j);
        CHECK(c[i * n + j] == doctest::Approx(ref).epsilon(1e-5).scale(k));
      }
  }
}

TEST_CASE("simulator: warp-shuffle reduction and atomic histogram") {
  for (int n : {1, 31, 1023, 5000}) {
    auto x = random_floats(n, 3);
    DeviceBuffer<float> dx(x), out(std::vector<float>{0.0f});
    simtest::warp_reduce_sum(dx.p, out.p, n);
    double ref = 0;
    for (float v : x) ref += v;
    CHECK(out.get()[0] == doctest::Approx(ref).epsilon(1e-4).scale(n));
  }
  const int n = 3001, bins = 37;
  std::vector<int> values(n);
  std::vector<unsigned> ref(bins, 0);
  for (int i = 0; i < n; ++i) {
    values[i] = (i * 7919) % bins;
    ++ref[values[i]];
  }
  DeviceBuffer<int> dv(values);
  DeviceBuffer<unsigned> counts(std::vector<unsigned>(bins, 0));
  simtest::histogram(dv.p, n, counts.p, bins);
  CHECK(counts.get() == ref);
}

TEST_CASE("simulator: block scan with up-shuffles, a ballot and dynamic shared memory") {
  const int n = 150;
  auto x = random_floats(n, 4);
  DeviceBuffer<float> dx(x), out(std::vector<float>(n, 0.0f));
  simtest::block_scan(dx.p, out.p, n);
  auto got = out.get();
  for (int b = 0; b * 64 < n; ++b) {
    double run = 0;
    for (int i = b * 64; i < std::min(n, b * 64 + 64); ++i) {
      run += x[i];
      CHECK(got[i] == doctest::Approx(run).epsilon(1e-5).scale(64));
    }
  }
}

TEST_CASE("simulator: reports divergent barriers, early returns, exited shuffle lanes and overruns") {
  DeviceBuffer<float> out(std::vector<float>(64, 0.0f));
  const std::string divergent = error_of([&] { simtest::bug_divergent_barrier(out.p, 32); });
  CHECK(divergent.find("divergent_barrier_kernel") != std::string::npos);
  CHECK(divergent.find("divergent __syncthreads") != std::string::npos);
  const std::string early = error_of([&] { simtest::bug_early_return(out.p, 40); });
  CHECK(early.find("early_return_kernel") != std::string::npos);
  CHECK(early.find("already exited") != std::string::npos);
  const std::string shuffle = error_of([&] { simtest::bug_shuffle_exited_lane(out.p); });
  CHECK(shuffle.find("shuffle_exited_kernel") != std::string::npos);
  CHECK(shuffle.find("has exited") != std::string::npos);
  DeviceBuffer<float> exact(std::vector<float>(100, 0.0f));
  const std::string overrun = error_of([&] { simtest::bug_out_of_bounds(exact.p, 100); });
  CHECK(overrun.find("out_of_bounds_kernel") != std::string::npos);
  CHECK(overrun.find("past the end of a device allocation of 400 bytes") != std::string::npos);
  // The correct kernels run clean after the failures (the simulator's state recovered).
  auto x = random_floats(64, 5);
  DeviceBuffer<float> dx(x), sum(std::vector<float>{0.0f});
  simtest::warp_reduce_sum(dx.p, sum.p, 64);
  double ref = 0;
  for (float v : x) ref += v;
  CHECK(sum.get()[0] == doctest::Approx(ref).epsilon(1e-4).scale(64));
}

TEST_CASE("simulator: a missing barrier shows up as uninitialised (NaN) shared memory") {
  const int n = 64;
  auto x = random_floats(n, 6);
  DeviceBuffer<float> dx(x), out(std::vector<float>(n, 0.0f));
  simtest::bug_missing_barrier(dx.p, out.p, n);
  auto got = out.get();
  int nan_reads = 0;
  for (float v : got) nan_reads += std::isnan(v);
  // Some thread read a neighbour's slot before the neighbour wrote it, in every thread order.
  CHECK(nan_reads > 0);
}
