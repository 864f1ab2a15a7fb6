#!/usr/bin/env bash
# The bench suite: builds ember and runs every workload side by side with
# LibTorch. Installs missing Debian packages (LibTorch included) first. Results: build/bench.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-deps.sh --bench
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DEMBER_BUILD_TESTS=OFF -DEMBER_BUILD_BENCH=ON
cmake --build build -j"$(nproc)"
# LibTorch's OpenBLAS is fastest here with its core-type overrides unset (shared/BENCH.md).
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE ./build/bench/ember_bench --json build/bench.jsonl
