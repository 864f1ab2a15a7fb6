#!/usr/bin/env bash
# ember on 64-bit Arm: cross-compiles core, nn and optim with their tests (Debian's
# g++-aarch64-linux-gnu; cmake/toolchain-aarch64.cmake) and runs them under qemu-user. The CPU kernels
# take their portable path there and the SIMT simulator its portable context switch (ucontext), so
# this checks exactly what an x86-64 build cannot. The Trainer (protobuf, MPI) is left out: its code
# has no architecture-specific part and the cross packages it would need are not worth the CI time.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-deps.sh --aarch64
cmake -S . -B build-aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-aarch64.cmake -DCMAKE_BUILD_TYPE=Release \
  -DEMBER_BUILD_TRAINER=OFF -DEMBER_BUILD_EXAMPLES=OFF -DEMBER_BUILD_BENCH=OFF -DEMBER_CUDA=OFF
cmake --build build-aarch64 -j"$(nproc)" --target ember_tests ember_sim_tests
run() { qemu-aarch64 -L /usr/aarch64-linux-gnu "$@"; }
# Every test file of core (tensors, ops, autograd, backends, the backend contract), nn and optim.
run build-aarch64/tests/ember_tests --no-intro --no-version \
  -sf='*test_tensor*,*test_ops*,*test_autograd*,*test_backends*,*test_backend_contract*,*test_nn.cpp*,*test_optim*,*test_errors*,*test_cpu_capability*'
# The SIMT simulator and the CUDA kernels on it, switching fibers with ucontext.
EMBER_SIM_ORDER=random OMP_NUM_THREADS=2 run build-aarch64/tests/ember_sim_tests --no-intro --no-version
echo "aarch64: core, nn, optim and simulator tests passed under qemu"
