#!/usr/bin/env bash
# Builds ember with its tests and runs all of them (ctest). Installs missing Debian packages first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-deps.sh
# The layers: no include points up (kernels <- core + autograd <- nn <- optim <- trainer).
bash scripts/check_layers.sh
# The layout (.clang-format).
bash scripts/check_format.sh
# EMBER_WERROR=ON (set by CI) makes any compiler warning an error in this build of every file (the
# sanitizer, Arm and fuzzing builds below print theirs without failing).
cmake -S . -B build-test -DCMAKE_BUILD_TYPE=Release -DEMBER_BUILD_TESTS=ON -DEMBER_BUILD_BENCH=OFF \
  -DEMBER_WERROR="${EMBER_WERROR:-OFF}"
cmake --build build-test -j"$(nproc)"
ctest --test-dir build-test --output-on-failure -j"$(nproc)"
# 64-bit Arm: core, nn and optim cross-compiled and their tests run under qemu-user.
bash scripts/test-aarch64.sh
# Everything again under AddressSanitizer + UndefinedBehaviorSanitizer (EMBER_SANITIZE): the library
# and every test, overflows, use-after-free and undefined behaviour anywhere fail with the source
# line. The SIMT simulator's tests run once more there in random thread order (its fiber stack
# switches are annotated for ASan).
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEMBER_CUDA=OFF -DEMBER_BUILD_BENCH=OFF -DEMBER_BUILD_EXAMPLES=OFF \
  -DEMBER_SANITIZE=address,undefined
cmake --build build-asan -j"$(nproc)"
ASAN_OPTIONS=allocator_may_return_null=1:detect_leaks=1 ctest --test-dir build-asan --output-on-failure -j"$(nproc)"
ASAN_OPTIONS=detect_leaks=0 EMBER_SIM_ORDER=random ./build-asan/tests/ember_sim_tests

# The file readers fuzzed (clang's libFuzzer under ASan + UBSan), 60 seconds per target.
bash scripts/fuzz.sh 60

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
