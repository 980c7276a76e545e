"""Bar chart of baseline/candidate time ratios per layer, one panel per (direction, batch)."""

from __future__ import annotations

import math
from pathlib import Path

from .report import panels
from .results import Results, geomean


def ratio_chart(results: Results, path: str | Path, label: str | None = None) -> Path:
    """Write a PNG; bars above the line at 1 are layers where the candidate beats the baseline."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    label = label or (results.candidate_labels or [None])[0]
    if label is None:
        raise ValueError("the results hold no candidate to plot")
    keys = panels(results)
    base = next((g.baseline.label for g in results.groups if g.baseline), "baseline")
    most = max(sum(1 for g in results.groups if (g.direction, g.problem.n) == key) for key in keys)
    fig, axes = plt.subplots(len(keys), 1, figsize=(max(6.0, 0.35 * most + 2), 2.8 * len(keys) + 0.6),
                             squeeze=False)
    for ax, (direction, n) in zip(axes[:, 0], keys):
        groups = [g for g in results.groups if (g.direction, g.problem.n) == (direction, n)]
        ratios = [g.ratio(g.entry(label)) if g.entry(label) else math.nan for g in groups]
        finite = [r for r in ratios if math.isfinite(r) and r > 0]
        missing = min(finite + [1.0]) / 2  # failed / untimed layers: a short grey stub, labelled
        heights = [r if math.isfinite(r) and r > 0 else missing for r in ratios]
        colors = ["tab:green" if r >= 1 else "tab:red" if math.isfinite(r) else "lightgray" for r in ratios]
        ax.bar(range(len(groups)), heights, color=colors)
        ax.set_yscale("log")  # ratios: 2x faster and 2x slower are the same distance from 1
        ax.axhline(1.0, color="black", linewidth=0.8)
        for x, r, h in zip(range(len(groups)), ratios, heights):
            ax.annotate(f"{r:.2f}" if math.isfinite(r) else "n/a", (x, h), ha="center", va="bottom", fontsize=6)
        ax.set_xticks(range(len(groups)), [g.layer for g in groups], rotation=60, ha="right", fontsize=7)
        ax.set_ylabel(f"{base} ms / {label} ms", fontsize=8)
        ax.set_title(f"{direction.value}, N={n}: geomean {geomean(ratios):.2f}", fontsize=9)
    settings = results.meta.get("settings", {})
    fig.suptitle(f"{label} vs {base}, {settings.get('threads', '?')} threads\n(timed in the same run, "
                 f"alternating; min over rounds of per-round medians; > 1: {label} faster)", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
