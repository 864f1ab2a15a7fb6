#!/usr/bin/env python3
"""Bar chart of ember's speedup over LibTorch per bench workload (ember_bench --plot calls this).

usage: plot_bench.py BENCH.jsonl OUT.png
Reads the JSON lines ember_bench writes; bars above 1 are workloads where ember is faster. The title
names the CPU and the CPU kernels' level of the run.
"""
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(src, out):
    rows = [json.loads(line) for line in open(src) if line.strip()]
    rows = [r for r in rows if r.get("speedup") is not None]
    if not rows:
        sys.exit("plot_bench: no rows with a LibTorch figure in " + src)
    names = [r["name"] for r in rows]
    speedups = [r["speedup"] for r in rows]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    colors = ["#2a7" if s >= 1 else "#d54" for s in speedups]
    ax.bar(names, speedups, color=colors)
    ax.axhline(1.0, color="black", linewidth=0.8)
    for i, s in enumerate(speedups):
        ax.text(i, s, f"{s:.2f}x", ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("speedup over LibTorch (LibTorch ms / ember ms)")
    ax.set_title(f"ember vs LibTorch on {rows[0].get('cpu', '?')} (kernels: {rows[0].get('capability', '?')})")
    plt.xticks(rotation=35, ha="right")
    fig.tight_layout()
    tmp = out + ".tmp.png"
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, out)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
