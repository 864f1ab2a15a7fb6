#!/usr/bin/env bash
# Builds ember with its tests and runs all of them (ctest). Installs missing Debian packages first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-deps.sh
cmake -S . -B build-test -DCMAKE_BUILD_TYPE=Release -DEMBER_BUILD_TESTS=ON -DEMBER_BUILD_BENCH=OFF
cmake --build build-test -j"$(nproc)"
ctest --test-dir build-test --output-on-failure -j"$(nproc)"
# The SIMT simulator's tests again under AddressSanitizer + UndefinedBehaviorSanitizer (fiber stack
# switches are annotated), in random thread order: overflows, use-after-free and UB in kernels or in
# the simulator itself fail here with the kernel's source line.
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEMBER_CUDA=OFF -DEMBER_BUILD_BENCH=OFF -DEMBER_BUILD_EXAMPLES=OFF \
  -DCMAKE_CXX_FLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
cmake --build build-asan -j"$(nproc)" --target ember_sim_tests
ASAN_OPTIONS=detect_leaks=0 EMBER_SIM_ORDER=random ./build-asan/tests/ember_sim_tests

# The build for GPUs (EMBER_CUDA=ON: kernels by nvcc for sm_80 + sm_90, cuBLAS). On a machine with a
# GPU build-test above already is that build (EMBER_CUDA=AUTO) and ran the CUDA tests on the GPU; here
# they also run under compute-sanitizer. Without a GPU it is built anyway (-O0: only compiling and
# linking are in question) and its CUDA tests check the clear "no GPU" error.
if [ -x /usr/local/cuda/bin/nvcc ]; then
  if [ -f build-test/tests/ember_cuda_tests ]; then
    if command -v compute-sanitizer >/dev/null || [ -x /usr/local/cuda/bin/compute-sanitizer ]; then
      PATH="$PATH:/usr/local/cuda/bin" compute-sanitizer --error-exitcode 1 ./build-test/tests/ember_cuda_tests
    fi
  else
    cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Debug -DEMBER_CUDA=ON -DEMBER_BUILD_BENCH=OFF -DEMBER_BUILD_EXAMPLES=OFF
    cmake --build build-gpu -j"$(nproc)" --target ember_cuda_tests ddp_check  # ddp_check links the NCCL path
    ./build-gpu/tests/ember_cuda_tests
  fi
fi
