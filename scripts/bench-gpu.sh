#!/usr/bin/env bash
# The GPU bench on cuda:0: builds ember for the GPU (EMBER_CUDA=ON) and
# runs bench/cuda_bench. Needs a machine with an NVIDIA GPU and the CUDA toolkit at /usr/local/cuda.
# Results: build-gpu-bench/cuda_bench.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-deps.sh
cmake -S . -B build-gpu-bench -DCMAKE_BUILD_TYPE=Release -DEMBER_CUDA=ON -DEMBER_BUILD_TESTS=OFF \
  -DEMBER_BUILD_EXAMPLES=OFF -DEMBER_BUILD_BENCH=ON
cmake --build build-gpu-bench -j"$(nproc)" --target cuda_bench
nvidia-smi -L || true
./build-gpu-bench/bench/cuda_bench --json build-gpu-bench/cuda_bench.jsonl
