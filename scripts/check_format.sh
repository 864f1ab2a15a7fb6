#!/usr/bin/env bash
# Checks that every C++ and CUDA file follows .clang-format (Debian's clang-format 14: another
# version may lay some lines out differently). Prints what would change; exits 1 if anything would.
#   scripts/check_format.sh        check
#   scripts/check_format.sh --fix  reformat the files in place
set -euo pipefail
cd "$(dirname "$0")/.."
files=()
while IFS= read -r -d '' f; do files+=("$f"); done < <(
  find autograd bench core examples kernels nn optim tests trainer ember.h \
    -name build -prune -o -type f \( -name '*.cpp' -o -name '*.h' -o -name '*.cu' -o -name '*.cuh' \) -print0)
if [[ "${1:-}" == "--fix" ]]; then
  clang-format-14 -i "${files[@]}"
else
  clang-format-14 --dry-run --Werror "${files[@]}"
  echo "ember: ${#files[@]} C++ files follow .clang-format"
fi
