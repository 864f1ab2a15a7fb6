#!/usr/bin/python3
"""Plots the curves of a CSVLogger run (metrics.csv) to a PNG: losses on the left axis, accuracies
on the right, each series against the training step it was logged at.

    plot_metrics.py path/to/metrics.csv [out.png]
"""
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    path = sys.argv[1]
    out = sys.argv[2] if len(sys.argv) > 2 else path.rsplit(".", 1)[0] + ".png"
    series = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            step = float(row["step"])
            for key, value in row.items():
                if key in ("step", "epoch") or value in ("", None):
                    continue
                series.setdefault(key, []).append((step, float(value)))
    fig, left = plt.subplots(figsize=(9, 5))
    right = left.twinx()
    colors = plt.get_cmap("tab10").colors
    keys = [k for k in sorted(series) if not k.startswith("lr-")]
    for i, key in enumerate(keys):
        xs, ys = zip(*series[key])
        axis = right if "acc" in key else left
        style = "-" if key.endswith("_step") else ("s--" if "acc" in key else "o-")
        axis.plot(xs, ys, style, label=key, color=colors[i % len(colors)], linewidth=1, markersize=3,
                  alpha=0.5 if key.endswith("_step") else 1.0)
    left.set_xlabel("step")
    left.set_ylabel("loss")
    left.set_yscale("log")
    right.set_ylabel("accuracy")
    handles = left.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    labels = left.get_legend_handles_labels()[1] + right.get_legend_handles_labels()[1]
    left.legend(handles, labels, loc="center right")
    left.set_title(path)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    print(f"plot: {out}")


if __name__ == "__main__":
    main()
