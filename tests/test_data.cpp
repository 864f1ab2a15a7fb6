// Data loading: DataLoader batching, shuffling, workers, collate and samplers; the MNIST IDX reader
// and the JSON-to-IDX conversion.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "ember/ember.h"
#include "helpers.h"

using namespace ember;
using ember::test::check_error;
namespace fs = std::filesystem;

namespace {
std::shared_ptr<data::TensorDataset<2>> counting_dataset(int64_t n) {
  Tensor x = arange(n, kFloat32).reshape({n, 1});
  Tensor y = arange(n, kInt64);
  return std::make_shared<data::TensorDataset<2>>(x, y);
}

std::vector<int64_t> labels_of(data::DataLoader<std::array<Tensor, 2>>& dl, int64_t epoch) {
  std::vector<int64_t> out;
  auto reader = dl.start_epoch(epoch);
  while (auto b = reader->next()) {
    Tensor y = (*b)[1].contiguous();
    for (int64_t i = 0; i < y.numel(); ++i) out.push_back(y.data_ptr<int64_t>()[i]);
  }
  return out;
}
}  // namespace

TEST_CASE("DataLoader: batch sizes, drop_last and the number of batches") {
  auto ds = counting_dataset(10);
  data::DataLoader dl(ds, {.batch_size = 4});
  CHECK(dl.size() == 3);
  std::vector<int64_t> sizes;
  for (const auto& b : dl) sizes.push_back(b[0].size(0));
  CHECK(sizes == std::vector<int64_t>{4, 4, 2});
  data::DataLoader dropping(ds, {.batch_size = 4, .drop_last = true});
  CHECK(dropping.size() == 2);
  CHECK(labels_of(dropping, 0) == std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7});
  check_error([&] { data::DataLoader bad(ds, {.batch_size = 0}); }, {"DataLoader", "batch_size"});
}

TEST_CASE("DataLoader: shuffle visits every example once, per-epoch order depends on (seed, epoch) only") {
  auto ds = counting_dataset(37);
  data::DataLoader a(ds, {.batch_size = 5, .shuffle = true, .seed = 7});
  data::DataLoader b(ds, {.batch_size = 5, .shuffle = true, .seed = 7});
  auto e0 = labels_of(a, 0), e1 = labels_of(a, 1);
  CHECK(std::set<int64_t>(e0.begin(), e0.end()).size() == 37);
  CHECK(e0.size() == 37);
  CHECK(e0 != e1);
  CHECK(labels_of(b, 1) == e1);
  std::vector<int64_t> sorted = e0;
  std::sort(sorted.begin(), sorted.end());
  CHECK(sorted != e0);  // actually shuffled
  // Skipping batches on resume gives the tail of the same order.
  auto reader = a.start_epoch(1, 3);
  auto first = reader->next();
  REQUIRE(first);
  CHECK((*first)[1].data_ptr<int64_t>()[0] == e1[15]);
}

TEST_CASE("DataLoader: worker threads give the same batches in the same order, and forward errors") {
  auto ds = counting_dataset(53);
  data::DataLoader serial(ds, {.batch_size = 4, .shuffle = true, .seed = 3});
  data::DataLoader threaded(
      ds, {.batch_size = 4, .shuffle = true, .num_workers = 3, .prefetch_factor = 2, .seed = 3});
  for (int64_t epoch = 0; epoch < 3; ++epoch) CHECK(labels_of(serial, epoch) == labels_of(threaded, epoch));
  // A collate that fails on one batch: the error reaches the consumer.
  using Ex = std::array<Tensor, 2>;
  data::DataLoader<Ex> failing(ds, {.batch_size = 10, .num_workers = 2}, [](std::vector<Ex>&& ex) {
    EMBER_CHECK(ex[0][1].item<int64_t>() != 20, "collate: planted failure");
    return data::detail::default_collate(std::move(ex));
  });
  check_error(
      [&] {
        for (const auto& b : failing) (void)b;
      },
      {"planted failure"});
}

TEST_CASE("DataLoader: default collate of tuples with plain fields, custom collate") {
  struct Tagged : data::Dataset<std::tuple<Tensor, std::string, int64_t>> {
    int64_t size() const override { return 6; }
    std::tuple<Tensor, std::string, int64_t> get(int64_t i) const override {
      return {full({2}, double(i)), i < 3 ? "a" : "b", 1};
    }
  };
  auto ds = std::make_shared<Tagged>();
  data::DataLoader grouped(ds, {.batch_size = 3});
  std::vector<std::string> tags;
  for (const auto& [x, tag, one] : grouped) {
    CHECK(x.sizes() == Shape{3, 2});
    tags.push_back(tag);
  }
  CHECK(tags == std::vector<std::string>{"a", "b"});
  data::DataLoader mixed(ds, {.batch_size = 4});
  check_error(
      [&] {
        for (const auto& b : mixed) (void)b;
      },
      {"collate", "field 1", "differs"});
  using Ex = std::tuple<Tensor, std::string, int64_t>;
  data::DataLoader<Ex, Tensor> summed(ds, {.batch_size = 6}, [](std::vector<Ex>&& ex) {
    std::vector<Tensor> xs;
    for (auto& e : ex) xs.push_back(std::get<0>(e));
    return stack(xs).sum();
  });
  for (const Tensor& total : summed) CHECK(total.item<float>() == doctest::Approx(2 * 15));
}

TEST_CASE("DistributedSampler: equal shares, padding by repetition, every index covered") {
  const int64_t n = 10;
  std::vector<int64_t> all;
  for (int64_t rank = 0; rank < 3; ++rank) {
    data::DistributedSampler s(n, {.num_replicas = 3, .rank = rank, .shuffle = true, .seed = 5});
    auto idx = s.indices(2);
    CHECK(static_cast<int64_t>(idx.size()) == 4);  // ceil(10 / 3)
    all.insert(all.end(), idx.begin(), idx.end());
  }
  CHECK(all.size() == 12);
  CHECK(std::set<int64_t>(all.begin(), all.end()).size() == 10);
  data::DistributedSampler trimmed(n, {.num_replicas = 3, .rank = 0, .shuffle = false, .drop_last = true});
  CHECK(trimmed.indices(0) == std::vector<int64_t>{0, 3, 6});
  check_error([] { data::DistributedSampler bad(4, {.num_replicas = 2, .rank = 2}); }, {"rank 2"});
}

TEST_CASE("MNIST: IDX files round-trip, JSON digits convert to IDX with a held-out split") {
  const fs::path dir = ember::test::scratch_root() / "ember_mnist_test";
  fs::remove_all(dir);
  fs::create_directories(dir / "json");
  // Ten digit files with 5 tiny images each whose pixels encode (digit, image).
  for (int d = 0; d < 10; ++d) {
    std::ofstream out(dir / "json" / (std::to_string(d) + ".json"));
    out << "{\"data\":[";
    for (int img = 0; img < 5; ++img)
      for (int k = 0; k < 784; ++k)
        out << (img || k ? "," : "") << (k == 0 ? d / 10.0 : k == 1 ? img / 10.0 : 0.0);
    out << "]}";
  }
  auto counts = data::convert_mnist_json((dir / "json").string(), (dir / "idx").string(), 5);
  CHECK(counts.train == 40);
  CHECK(counts.test == 10);
  auto train = data::mnist((dir / "idx").string(), true);
  auto test = data::mnist((dir / "idx").string(), false);
  CHECK(train->size() == 40);
  CHECK(test->size() == 10);
  auto [x, y] = test->get(3);
  CHECK(x.sizes() == Shape{1, 28, 28});
  // Pixel 0 holds digit/10 scaled to a byte and back; it must agree with the label.
  CHECK(x.flatten()[0].item<float>() == doctest::Approx(std::lround(y.item<int64_t>() / 10.0 * 255) / 255.0));
  CHECK(x.flatten()[1].item<float>() ==
        doctest::Approx(std::lround(0.4 * 255) / 255.0));  // img 4 is the test one
  std::set<int64_t> labels;
  for (int64_t i = 0; i < 10; ++i) labels.insert(test->get(i)[1].item<int64_t>());
  CHECK(labels.size() == 10);
  Tensor raw = data::read_idx((dir / "idx" / "train-labels-idx1-ubyte").string(), kInt64);
  CHECK(raw.sizes() == Shape{40});
  check_error([&] { data::mnist(dir.string(), true); }, {"mnist", "train-images"});
  check_error([&] { data::write_idx((dir / "bad").string(), tensor({300.0})); }, {"write_idx", "300"});
  fs::remove_all(dir);
}
