// ThreadSanitizer over ember's CUDA kernels (ctest: kernel_races). This binary is built with
// -fsanitize=thread and the simulator with its TSan annotations (EMBER_SIM_TSAN), so every simulated
// CUDA thread is its own TSan thread and the only happens-before edges are CUDA's (launch, barriers,
// warp collectives, kernel end): a shared- or global-memory access pair with no barrier between them
// is reported as a data race, whatever order the simulator happened to run the threads in.
// Every kernel family runs here once on small shapes that still cover several blocks, partial tiles
// and partial warps; a report fails the test run (TSan's exit code). The planted missing barrier
// (skipped unless asked for) must be reported: ctest runs it expecting TSan's "data race".
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <numeric>
#include <vector>

#include "device_buffer.h"
#include "ember/kernels/cuda/cuda_kernels.h"
#include "sim_kernels.h"

using namespace ember;
namespace k = ember::kernels;
namespace kc = ember::kernels::cuda;

TEST_CASE("races: the simulator's test kernels") {
  const int m = 19, n = 21, kk = 35;
  DeviceBuffer<float> a(random_floats(m * kk, 1)), b(random_floats(kk * n, 2)), c{std::vector<float>(m * n)};
  simtest::tiled_sgemm(a.p, b.p, c.p, m, n, kk);
  DeviceBuffer<float> x(random_floats(300, 3)), sum{std::vector<float>(1, 0.0f)},
      scanned{std::vector<float>(300)};
  simtest::warp_reduce_sum(x.p, sum.p, 300);
  simtest::block_scan(x.p, scanned.p, 300);
  std::vector<int> values(500);
  for (int i = 0; i < 500; ++i) values[i] = i * 7 % 13;
  DeviceBuffer<int> dv(values);
  DeviceBuffer<unsigned> counts{std::vector<unsigned>(13, 0)};
  simtest::histogram(dv.p, 500, counts.p, 13);
  const auto got = counts.get();
  CHECK(std::accumulate(got.begin(), got.end(), 0u) == 500u);
}

TEST_CASE("races: elementwise, reductions, softmax, scans and index kernels") {
  const int64_t rows = 5, cols = 37, total = rows * cols;
  DeviceBuffer<float> x(random_floats(total, 4)), y(random_floats(total, 5)), out{std::vector<float>(total)};
  kc::fill(kFloat32, out.p, total, Scalar(1.5));
  kc::unary(k::UnaryOp::Tanh, kFloat32, x.p, out.p, total, 0, 0);
  const int64_t sizes[2] = {rows, cols}, row_major[2] = {cols, 1}, broadcast_row[2] = {0, 1};
  kc::binary(k::BinaryOp::Mul, kFloat32, x.p, y.p, out.p, kc::make_strided(sizes, row_major, broadcast_row));
  DeviceBuffer<float> per_row{std::vector<float>(rows)}, per_col{std::vector<float>(cols)};
  kc::reduce(k::ReduceOp::Sum, kFloat32, x.p, per_row.p, rows, cols, 1);
  kc::reduce(k::ReduceOp::Max, kFloat32, x.p, per_col.p, 1, rows, cols);
  DeviceBuffer<int64_t> arg{std::vector<int64_t>(rows)};
  kc::reduce(k::ReduceOp::ArgMax, kFloat32, x.p, arg.p, rows, cols, 1);
  kc::softmax(kFloat32, x.p, out.p, rows, cols, false);
  const auto p = out.get();
  CHECK(std::accumulate(p.begin(), p.begin() + cols, 0.0) == doctest::Approx(1.0).epsilon(1e-5));
  kc::cumsum(kFloat32, x.p, out.p, rows, cols, 1);
  std::vector<int64_t> idx = {3, 0, 4, 4};
  DeviceBuffer<int64_t> didx(idx);
  DeviceBuffer<float> picked{std::vector<float>(4 * cols)};
  kc::index_select(kFloat32, x.p, rows, didx.p, 4, picked.p, 1, cols);
  kc::index_add(kFloat32, out.p, rows, didx.p, 4, picked.p, 1, cols, 1.0);
  DeviceBuffer<int64_t> order{std::vector<int64_t>(total)};
  kc::sort(kFloat32, x.p, order.p, rows, cols, true);
}

TEST_CASE("races: layer norm, optimizer, random, im2col and attention kernels") {
  const int64_t rows = 6, cols = 45;
  DeviceBuffer<float> x(random_floats(rows * cols, 6)), w(random_floats(cols, 7)), b(random_floats(cols, 8)),
      y{std::vector<float>(rows * cols)}, mean{std::vector<float>(rows)}, rstd{std::vector<float>(rows)},
      dy(random_floats(rows * cols, 9)), dx{std::vector<float>(rows * cols)}, dw{std::vector<float>(cols)},
      db{std::vector<float>(cols)};
  kc::layer_norm_forward(kFloat32, x.p, w.p, b.p, rows, cols, 1e-5, y.p, mean.p, rstd.p);
  kc::layer_norm_backward(kFloat32, x.p, w.p, mean.p, rstd.p, dy.p, rows, cols, dx.p, dw.p, db.p);

  k::UpdateSpec adam{k::OptimizerKind::Adam};
  adam.lr = 1e-3;
  DeviceBuffer<float> m1{std::vector<float>(cols)}, m2{std::vector<float>(cols)};
  kc::optimizer_update(kFloat32, adam, cols, w.p, b.p, m1.p, m2.p, nullptr);
  kc::random_normal(kFloat32, y.p, rows * cols, 7, 0, 0.0, 1.0);

  k::WindowGeometry g{2, 7, 6, 3, 3, 1, 1, 2, 1, 1, 1, 4, 6};
  DeviceBuffer<float> image(random_floats(2 * 2 * 7 * 6, 10)), columns{std::vector<float>(2 * 18 * 24)},
      back{std::vector<float>(2 * 2 * 7 * 6)};
  kc::im2col(kFloat32, image.p, columns.p, g, 2);
  kc::col2im(kFloat32, columns.p, back.p, g, 2);

  // Batch norm: blocks of 256 threads reducing 3 * 2 * 50 values per channel; max pooling with
  // overlapping windows (the backward gathers each pixel's windows).
  DeviceBuffer<float> bx(random_floats(3 * 4 * 50, 16)), by{std::vector<float>(3 * 4 * 50)},
      bstats{std::vector<float>(3 * 4)}, bdx{std::vector<float>(3 * 4 * 50)}, bw(random_floats(4, 17));
  kc::batch_norm_forward(kFloat32, bx.p, bw.p, nullptr, 3, 4, 50, 1e-5, by.p, bstats.p, bstats.p + 4,
                         bstats.p + 8);
  kc::batch_norm_backward(kFloat32, bx.p, bw.p, bstats.p, bstats.p + 8, by.p, 3, 4, 50, bdx.p, nullptr,
                          nullptr);
  k::WindowGeometry pool{1, 7, 6, 3, 3, 1, 1, 1, 1, 1, 1, 7, 6};
  DeviceBuffer<float> pooled{std::vector<float>(2 * 42)}, unpooled{std::vector<float>(2 * 42)};
  DeviceBuffer<int64_t> where{std::vector<int64_t>(2 * 42)};
  kc::max_pool2d_forward(kFloat32, image.p, pool, 2, pooled.p, where.p);
  kc::max_pool2d_backward(kFloat32, pooled.p, where.p, pool, 2, unpooled.p);
  for (float value : unpooled.get()) CHECK(std::isfinite(value));

  // Two batches, 33 queries and 20 keys: partial 16-row tiles on both sides; causal.
  const k::AttentionShape a{2, 33, 20, 12, 7, 0.3, true};
  DeviceBuffer<float> q(random_floats(2 * 33 * 12, 11)), kk(random_floats(2 * 20 * 12, 12)),
      v(random_floats(2 * 20 * 7, 13)), o{std::vector<float>(2 * 33 * 7)}, lse{std::vector<float>(2 * 33)},
      go(random_floats(2 * 33 * 7, 14)), gq{std::vector<float>(2 * 33 * 12)},
      gk{std::vector<float>(2 * 20 * 12)}, gv{std::vector<float>(2 * 20 * 7)};
  kc::attention_forward(kFloat32, a, q.p, kk.p, v.p, nullptr, {}, o.p, lse.p);
  kc::attention_backward(kFloat32, a, q.p, kk.p, v.p, nullptr, {}, o.p, go.p, lse.p, gq.p, gk.p, gv.p);
  for (float value : gv.get()) CHECK(std::isfinite(value));
}

TEST_CASE("races: a planted missing barrier is reported" * doctest::skip()) {
  const int n = 64;
  DeviceBuffer<float> x(random_floats(n, 15)), out{std::vector<float>(n, 0.0f)};
  simtest::bug_missing_barrier(x.p, out.p, n);
}
