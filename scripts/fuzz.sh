#!/usr/bin/env bash
# Fuzzes ember's file readers with libFuzzer under AddressSanitizer + UndefinedBehaviorSanitizer:
# the safetensors reader, the checkpoint reader (with the callback and optimizer states the Trainer
# restores) and the JSON state readers. Each target starts from a seed corpus of valid files that
# tests/fuzz/make_seed_corpus.cpp writes with ember itself, and runs for SECONDS (default 60). Any
# crash, leak, sanitizer report, timeout or exception other than ember::Error fails the script;
# libFuzzer writes the input that caused it to build-fuzz/findings/ (replay it:
# build-fuzz/tests/fuzz/<target> <file>).
#   scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
bash scripts/setup-deps.sh --fuzz
cmake -S . -B build-fuzz -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEMBER_CUDA=OFF \
  -DEMBER_BUILD_TESTS=OFF -DEMBER_BUILD_BENCH=OFF -DEMBER_BUILD_EXAMPLES=OFF -DEMBER_BUILD_FUZZERS=ON \
  -DEMBER_SANITIZE=fuzzer-no-link,address,undefined > /dev/null
cmake --build build-fuzz -j"$(nproc)" --target fuzz_safetensors fuzz_checkpoint fuzz_json_state make_seed_corpus
rm -rf build-fuzz/corpus build-fuzz/findings && mkdir -p build-fuzz/findings
ASAN_OPTIONS=detect_leaks=0 build-fuzz/tests/fuzz/make_seed_corpus build-fuzz/corpus
for target in fuzz_safetensors fuzz_checkpoint fuzz_json_state; do
  echo "ember: fuzzing $target for ${seconds}s"
  log="build-fuzz/findings/$target.log"
  if ! OMP_NUM_THREADS=1 ASAN_OPTIONS=allocator_may_return_null=1 "build-fuzz/tests/fuzz/$target" \
      -max_total_time="$seconds" -timeout=20 -rss_limit_mb=3072 -max_len=65536 -print_final_stats=1 \
      -artifact_prefix="build-fuzz/findings/$target-" "build-fuzz/corpus/$target" > "$log" 2>&1; then
    tail -n 60 "$log"
    echo "ember: $target found a problem (above; the input is in build-fuzz/findings/)"
    exit 1
  fi
  grep -E "^(Done|stat::number_of_executed_units)" "$log" || tail -n 3 "$log"
done
echo "ember: the fuzz targets ran ${seconds}s each without findings"
