"""Bar chart of baseline/candidate time ratios per layer: one panel per direction (rows) and batch (columns)."""

from __future__ import annotations

import math
from pathlib import Path

from .report import panels
from .results import Results, geomean


def ratio_chart(results: Results, path: str | Path, label: str | None = None) -> Path:
    """Write a PNG. Bars grow up from 1 where the candidate is faster and down where it is slower."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    label = label or (results.candidate_labels or [None])[0]
    if label is None:
        raise ValueError("the results hold no candidate to plot")
    keys = panels(results)
    directions = list(dict.fromkeys(d for d, _ in keys))
    batches = sorted({n for _, n in keys})
    base = (results.labels("baseline") or ["baseline"])[0]
    most = max(sum(1 for g in results.groups if (g.direction, g.problem.n) == key) for key in keys)
    width = max(8.0, len(batches) * (0.3 * most + 1.5))
    fig, axes = plt.subplots(len(directions), len(batches), figsize=(width, 2.8 * len(directions) + 1.0),
                             squeeze=False, sharey=True)
    every = [g.ratio(g.entry(label)) for g in results.groups if g.entry(label)]
    span = max([max(r, 1 / r) for r in every if math.isfinite(r) and r > 0] + [2.0]) * 1.3
    ticks = [2.0 ** e for e in range(-math.ceil(math.log2(span)), math.ceil(math.log2(span)) + 1)]
    for (direction, n), ax in ((key, axes[directions.index(key[0]), batches.index(key[1])]) for key in keys):
        groups = [g for g in results.groups if (g.direction, g.problem.n) == (direction, n)]
        ratios = [g.ratio(g.entry(label)) if g.entry(label) else math.nan for g in groups]
        xs = range(len(groups))
        shown = [r if math.isfinite(r) and r > 0 else 1.0 for r in ratios]
        colors = ["tab:green" if r >= 1 else "tab:red" for r in shown]
        ax.bar(xs, [r - 1.0 for r in shown], bottom=1.0, color=colors)
        ax.set_yscale("log")  # ratios: 2x faster and 2x slower are the same distance from 1
        ax.set_ylim(1 / span, span)  # the same symmetric scale in every panel
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.yaxis.set_major_locator(FixedLocator(ticks))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
        for x, r, h in zip(xs, ratios, shown):
            text = f"{r:.2f}" if math.isfinite(r) else "fail"
            ax.annotate(text, (x, h), ha="center", va="bottom" if h >= 1 else "top", fontsize=6)
        ax.set_xticks(list(xs), [g.layer for g in groups], rotation=60, ha="right", fontsize=7)
        ax.set_ylabel(f"{base} ms / {label} ms", fontsize=8)
        ax.set_title(f"{direction.value}, N={n}: geomean {geomean(ratios):.2f}", fontsize=9)
    for ax in axes.flat:
        if not ax.has_data():
            ax.set_visible(False)
    settings = results.meta.get("settings", {})
    fig.suptitle(f"{label} vs {base}, {settings.get('threads', '?')} threads: timed in the same run, alternating;\n"
                 f"min over rounds of per-round medians; above 1: {label} faster", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
