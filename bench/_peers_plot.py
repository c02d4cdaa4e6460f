"""Draw bench/results/peers.png from the JSON that bench/peers.py writes.

Runs in the venv bench/peers.py keeps for matplotlib (bench/.peers/plot), not in the
project's venv: matplotlib is not a project dependency.

    bench/.peers/plot/bin/python bench/_peers_plot.py bench/results/peers.json out.png
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

COLORS = {
    "direct": "#9e9e9e",
    "nginx": "#4caf50",
    "switchyard": "#1f77b4",
    "litellm": "#ff7f0e",
    "portkey": "#9467bd",
}


def main(source: Path, target: Path) -> None:
    data = json.loads(source.read_text("utf-8"))
    targets = data["targets"]
    labels = data["labels"]
    concurrency = data["concurrency"]
    rps = {
        (c["target"], c["stream"], c["concurrency"]): c["rps"]
        for c in data["cases"]
        if c["rps"] is not None
    }
    values = [v for v in rps.values() if v]
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.6), sharey=True)
    width = 0.8 / max(1, len(targets))
    for ax, stream in zip(axes, (False, True), strict=True):
        for i, name in enumerate(targets):
            xs, ys = [], []
            for j, c in enumerate(concurrency):
                value = rps.get((name, stream, c))
                if value:
                    xs.append(j + (i - (len(targets) - 1) / 2) * width)
                    ys.append(value)
            bars = ax.bar(xs, ys, width, label=labels[name], color=COLORS.get(name))
            for bar, y in zip(bars, ys, strict=True):
                ax.annotate(
                    f"{y:.0f}",
                    (bar.get_x() + bar.get_width() / 2, y),
                    ha="center",
                    va="bottom",
                    fontsize=7,
                    rotation=90,
                    xytext=(0, 2),
                    textcoords="offset points",
                )
        ax.set_yscale("log")
        if values:
            # Room above the tallest bar for its label.
            ax.set_ylim(min(values) / 2, max(values) * 6)
        ax.set_xticks(range(len(concurrency)), [f"c={c}" for c in concurrency])
        ax.set_title("streaming (24 SSE frames)" if stream else "non-streaming")
        ax.grid(axis="y", which="both", alpha=0.3)
    axes[0].set_ylabel("requests per second (log scale)")
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=len(names), fontsize=9, frameon=False)
    mode = "quick run" if data.get("quick") else "full run"
    fig.suptitle(f"Same canned upstream, gateway pinned to one core ({mode}; higher is better)")
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(target, dpi=120)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
