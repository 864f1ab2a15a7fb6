#!/usr/bin/env bash
# Runs the MNIST example for two short epochs on the optimised CPU backend and again with
# EMBER_BACKEND=reference (the plain-loop backend), and checks that the losses it logged agree: the
# same program, the same numbers, only slower. Usage: backend_agreement.sh MNIST_CNN FIXTURE_DIR WORK_DIR
set -euo pipefail
exe=$1 data=$2 work=$3
rm -rf "$work"
for backend in cpu reference; do
  EMBER_BACKEND=$backend "$exe" --data "$data" --json "$work/no-json" --epochs 2 --batch-size 16 \
    --root "$work/$backend" > "$work.$backend.log"
done
# The last value each run logged in each loss column of its metrics.csv.
status=0
for column in train_loss_epoch val_loss test_loss; do
  cpu=$(awk -F, -v c="$column" 'NR == 1 { for (i = 1; i <= NF; ++i) if ($i == c) k = i; next } $k != "" { v = $k } END { print v }' \
        "$work"/cpu/lightning_logs/version_0/metrics.csv)
  ref=$(awk -F, -v c="$column" 'NR == 1 { for (i = 1; i <= NF; ++i) if ($i == c) k = i; next } $k != "" { v = $k } END { print v }' \
        "$work"/reference/lightning_logs/version_0/metrics.csv)
  verdict=$(awk -v a="$cpu" -v b="$ref" 'BEGIN { d = a - b; if (d < 0) d = -d;
                                                 print (a != "" && d <= 2e-3 * (a < 0 ? -a : a) + 1e-6) ? "agree" : "DIFFER" }')
  echo "$column: cpu $cpu, reference $ref: $verdict"
  [ "$verdict" = agree ] || status=1
done
exit $status
