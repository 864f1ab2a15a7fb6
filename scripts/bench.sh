#!/usr/bin/env bash
# The bench suite: builds ember (the default, portable build) and runs every workload in ember and in
# LibTorch, each in its own process; LibTorch under each OpenBLAS configuration valid on this CPU,
# its best per row. Installs missing Debian packages (LibTorch and matplotlib included) first.
# Results: build/bench.jsonl, build/bench.md, build/bench.png. Arguments go to ember_bench
# (e.g. --filter sgemm,mlp; --help).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-deps.sh --bench
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DEMBER_BUILD_TESTS=OFF -DEMBER_BUILD_BENCH=ON
cmake --build build -j"$(nproc)" --target ember_bench
./build/bench/ember_bench --json build/bench.jsonl --markdown build/bench.md --plot build/bench.png "$@"
