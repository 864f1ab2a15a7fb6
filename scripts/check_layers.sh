#!/usr/bin/env bash
# Checks that ember's includes follow its layers, lowest first:
#   kernels  <-  core + autograd  <-  nn  <-  optim, onnx  <-  trainer
# A folder may include its own headers and those of the layers below it, never those above. core
# and autograd are one layer: every op records its own graph node. Two refinements: kernels see only
# core's plain-type headers (dtypes, devices, errors), and nn and optim do not include kernels at
# all: they reach fused kernels through core/fused_ops.h. Prints each offending include; exits 1 if
# there is any.
set -euo pipefail
cd "$(dirname "$0")/.."

allowed() {  # allowed <folder> <included folder> <included header path>
  local from=$1 to=$2 header=$3
  case $from in
    kernels) [[ $to == kernels || $header =~ ^core/(dtype|device|error)\.h$ ]] ;;
    core|autograd) [[ $to == kernels || $to == core || $to == autograd ]] ;;
    nn) [[ $to == core || $to == autograd || $to == nn ]] ;;
    optim) [[ $to == core || $to == autograd || $to == nn || $to == optim ]] ;;
    onnx) [[ $to == core || $to == autograd || $to == nn || $to == onnx ]] ;;
    trainer) true ;;
  esac
}

bad=0
for folder in kernels core autograd nn optim onnx trainer; do
  while IFS=: read -r file line text; do
    header=$(sed -E 's/.*#include [<"]ember\/([^">]+)[">].*/\1/' <<<"$text")
    to=${header%%/*}
    if ! allowed "$folder" "$to" "$header"; then
      echo "$file:$line: $folder/ may not include ember/$header"
      bad=1
    fi
  done < <(grep -rnE '#include [<"]ember/[a-z_]+/' "$folder" --include='*.h' --include='*.cpp' --include='*.cu' || true)
done
if [[ $bad == 0 ]]; then echo "check_layers: every include points down the layers"; fi
exit $bad
