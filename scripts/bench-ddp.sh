#!/usr/bin/env bash
# Data-parallel bench: encoder_step on 1 rank x 2 threads vs 2 ranks x 1 thread (same global batch),
# and all-reduce bandwidth of ember's gradient path beside MPI_Allreduce. Results: build/bench-ddp.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DEMBER_BUILD_TESTS=OFF -DEMBER_BUILD_BENCH=ON
cmake --build build -j"$(nproc)" --target ddp_bench
out=build/bench-ddp.jsonl
OMP_NUM_THREADS=2 ./build/bench/ddp_bench | tee "$out"
OMP_NUM_THREADS=1 mpirun -np 2 --oversubscribe --allow-run-as-root --bind-to none \
  -x OMP_NUM_THREADS ./build/bench/ddp_bench | tee -a "$out"
