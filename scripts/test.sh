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
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEMBER_BUILD_BENCH=OFF -DEMBER_BUILD_EXAMPLES=OFF \
  -DCMAKE_CXX_FLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
cmake --build build-asan -j"$(nproc)" --target ember_sim_tests
ASAN_OPTIONS=detect_leaks=0 EMBER_SIM_ORDER=random ./build-asan/tests/ember_sim_tests
