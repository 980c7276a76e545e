"""Tables from results: per-layer comparison, per-direction geomeans, algorithms side by side.

Tables are built once as plain rows of strings (`Table`) and rendered either to the terminal (rich)
or to Markdown, so both outputs always say the same thing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..problem import Direction
from .results import Results, geomean


@dataclass
class Table:
    title: str
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def method_note(meta: dict) -> str:
    """One sentence saying how the numbers were taken (printed under the tables)."""
    s = meta.get("settings", {})
    policy = s.get("policy", {})
    against = " and ".join(b for b in s.get("against", []) if b != "none") or "no baseline"
    return (f"{against} and the candidates were timed in the same run, alternating: in each of "
            f"{policy.get('rounds', '?')} rounds every comparison's members ran back to back (order reversed "
            f"on odd rounds), each {policy.get('warmup', '?')} warm-up calls then >= {policy.get('min_calls', '?')} "
            f"timed calls (>= {policy.get('min_seconds', '?')} s); ms = minimum over rounds of the per-round "
            f"median; {s.get('threads', '?')} threads. ratio = baseline ms / candidate ms (> 1: candidate faster).")


def contention_note(meta: dict) -> str:
    """How busy the host was: the FMA probe run before each round, as % of the peak ("" if not probed)."""
    peak = _peak(meta)
    probes = [r["fma_probe_gflops"] for r in meta.get("rounds", []) if "fma_probe_gflops" in r]
    if not probes or not peak:
        return ""
    busy = sum(g < 0.9 * peak for g in probes)
    share = ", ".join(f"{100 * g / peak:.0f}%" for g in probes)
    return (f"FMA probe before each round, as % of peak: {share}; {busy} of {len(probes)} round(s) ran on a busy "
            "host (below 90%).")


def _ms(seconds: float) -> str:
    return "-" if not math.isfinite(seconds) else f"{seconds * 1e3:.3f}"


def _num(value: float, fmt: str) -> str:
    return "-" if value is None or not math.isfinite(value) else format(value, fmt)


def _peak(meta: dict) -> float | None:
    peak = meta.get("peak") or {}
    threads = str(meta.get("settings", {}).get("threads"))
    return (peak.get("gflops") or {}).get(threads)


def layer_table(results: Results, label: str) -> Table:
    """One row per (layer, batch, direction) for candidate `label` against the baseline(s)."""
    peak = _peak(results.meta)
    bases = results.labels("baseline") or ["baseline"]
    several = len(bases) > 1
    headers = ["layer", "N", "direction", "GFLOP", f"{label} ms"] + [f"{b} ms" for b in bases]
    headers += [f"{label} GFLOP/s", f"{bases[0]} GFLOP/s", "% peak", f"ratio vs {bases[0]}"]
    headers += ["ratio vs best baseline"] if several else []
    table = Table(f"{label} vs {' / '.join(bases)}", headers + ["note"])
    for g in results.groups:
        entry = g.entry(label)
        if entry is None:
            continue
        first = g.baseline
        gf = g.gflops(entry) if entry.timed else math.nan
        row = [g.layer, str(g.problem.n), g.direction.value, f"{g.problem.flops / 1e9:.3f}", _ms(entry.best)]
        row += [_ms(g.entry(b).best if g.entry(b) else math.nan) for b in bases]
        row += [_num(gf, ".1f"), _num(g.gflops(first) if first is not None and first.timed else math.nan, ".1f"),
                _num(100 * gf / peak if peak else math.nan, ".0f"), _num(g.ratio(entry), ".2f")]
        row += [_num(g.ratio(entry, g.best_baseline), ".2f")] if several else []
        notes = [e.error for e in [entry, *g.baselines] if e.error]
        table.rows.append(row + [_short(notes[0] if notes else "")])
    if peak:
        table.notes.append(f"% peak: of the measured FMA peak {peak:.1f} GFLOP/s "
                           f"({results.meta['settings']['threads']} threads, {results.meta['peak'].get('isa')}).")
    over = [g.layer for g in results.groups for e in g.entries if peak and e.timed and g.gflops(e) > peak]
    if over:
        table.notes.append(f"WARNING: {len(over)} timing(s) exceed the measured peak ({', '.join(sorted(set(over)))}): "
                           "the FMA probe never ran on a quiet host, so % peak is overstated; re-run when the "
                           "host is idle (the cached peak keeps the best reading ever seen).")
    if several:
        table.notes.append("ratio vs best baseline: against the fastest baseline of each layer.")
    table.notes += _failures(results, {label, *bases})
    return table


def direction_table(results: Results, label: str) -> Table:
    """Geomean of ratios per direction (and batch), and the repeat-weighted total-time ratio."""
    several = len(results.labels("baseline")) > 1
    table = Table(f"{label}: summary per direction",
                  ["direction", "N", "layers timed", "geomean ratio", "min ratio", "max ratio",
                   "network ratio (repeat-weighted)"] + (["geomean vs best baseline"] if several else []))
    for direction, n in panels(results):
        groups = [g for g in results.groups if g.direction is direction and g.problem.n == n]
        pairs = [(g, g.entry(label)) for g in groups if g.entry(label) is not None]
        ratios = [g.ratio(e) for g, e in pairs if math.isfinite(g.ratio(e))]
        row = [direction.value, str(n), f"{len(ratios)}/{len(pairs)}", _num(geomean(ratios), ".2f"),
               _num(min(ratios, default=math.nan), ".2f"), _num(max(ratios, default=math.nan), ".2f"),
               _num(_weighted_ratio(pairs), ".2f")]
        row += [_num(geomean([g.ratio(e, g.best_baseline) for g, e in pairs]), ".2f")] if several else []
        table.rows.append(row)
    table.notes.append("ratios against the first baseline; network ratio = sum(repeat x baseline ms) / "
                       "sum(repeat x candidate ms) over the layers both timed, where repeat counts the layer's "
                       "uses in its network.")
    return table


def panels(results: Results) -> list[tuple[Direction, int]]:
    """(direction, batch) pairs present, in direction order fwd, bwd_data, bwd_weight."""
    order = list(Direction)
    return sorted({(g.direction, g.problem.n) for g in results.groups}, key=lambda k: (order.index(k[0]), k[1]))


def _weighted_ratio(pairs: list) -> float:
    timed = [(g, e) for g, e in pairs if math.isfinite(g.ratio(e)) and g.repeat > 0]
    base = sum(g.repeat * g.baseline.best for g, _ in timed)
    cand = sum(g.repeat * e.best for g, e in timed)
    return base / cand if cand > 0 else math.nan


def algorithm_table(results: Results) -> Table:
    """Every candidate and baseline side by side per (layer, batch, direction), fastest candidate marked."""
    labels, bases = results.candidate_labels, results.labels("baseline")
    table = Table("algorithms side by side (ms)",
                  ["layer", "N", "direction", *labels, *bases, "fastest", "fastest ratio"])
    for g in results.groups:
        cells = []
        for lab in labels + bases:
            e = g.entry(lab)
            cells.append("n/a" if e is None else ("fail" if e.error else _ms(e.best)))
        timed = [e for e in g.candidates if e.timed]
        fastest = min(timed, key=lambda e: e.best) if timed else None
        table.rows.append([g.layer, str(g.problem.n), g.direction.value, *cells,
                           fastest.label if fastest else "-", _num(g.ratio(fastest), ".2f") if fastest else "-"])
    table.notes += ["n/a: the algorithm does not apply to the direction; fail: see below; fastest ratio: "
                    "against the first baseline."]
    table.notes += _failures(results, {*labels, *bases})
    return table


def _failures(results: Results, labels: set, limit: int = 50) -> list[str]:
    """Full error messages of the entries with these labels (the table cells only say "fail")."""
    lines = [f"{g.layer} N={g.problem.n} {g.direction.value} {e.label}: {e.error}"
             for g in results.groups for e in g.entries if e.error and e.label in labels]
    return lines[:limit] + ([f"... and {len(lines) - limit} more (see the JSON)"] if len(lines) > limit else [])


def tables(results: Results) -> list[Table]:
    """The per-layer and per-direction tables of the primary candidate, plus algorithms side by side."""
    labels = results.candidate_labels
    if not labels:
        return []
    out = [layer_table(results, labels[0]), direction_table(results, labels[0])]
    if len(labels) > 1:
        out.append(algorithm_table(results))
    return out


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def to_markdown(table: Table) -> str:
    numeric = [all(_is_number(row[i]) for row in table.rows) for i in range(len(table.headers))]
    lines = [f"### {table.title}", "", "| " + " | ".join(table.headers) + " |",
             "|" + "|".join("---:" if num else "---" for num in numeric) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in table.rows]
    lines += [""] + [f"* {note}" for note in table.notes]
    return "\n".join(lines) + "\n"


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return cell in ("-", "n/a", "fail")
    return True


def to_rich(table: Table):
    from rich.markup import escape
    from rich.table import Table as RichTable

    rich_table = RichTable(title=escape(table.title), caption=escape("\n".join(table.notes)),
                           caption_justify="left")
    numeric = [all(_is_number(row[i]) for row in table.rows) for i in range(len(table.headers))]
    for header, num in zip(table.headers, numeric):
        rich_table.add_column(escape(header), justify="right" if num else "left")
    for row in table.rows:
        rich_table.add_row(*map(escape, row))
    return rich_table


def markdown_section(results: Results) -> str:
    """A BENCHMARKS.md section: machine, exact command, method, tables."""
    meta = results.meta
    machine = meta.get("machine", {})
    peak = meta.get("peak") or {}
    settings = meta.get("settings", {})
    lines = [f"## {settings.get('suite', '?')}: {', '.join(meta.get('settings', {}).get('directions', []))}, "
             f"N = {', '.join(map(str, settings.get('batch', [])))}", "",
             "```", meta.get("command", "convforge bench"), "```", "",
             f"Run {meta.get('started', '?')} – {meta.get('finished', '?')} on {machine.get('cpu', '?')} "
             f"({machine.get('cpus', '?')} CPUs visible), Python {machine.get('python', '?')}, "
             f"NumPy {machine.get('numpy', '?')}, torch {machine.get('torch', '?')}; "
             f"load average {machine.get('loadavg_start', '?')} at start, {machine.get('loadavg_end', '?')} at end.",
             ""]
    if peak.get("gflops"):
        per = ", ".join(f"{t} thread(s) {g:.1f}" for t, g in peak["gflops"].items())
        lines += [f"Measured FMA peak ({peak.get('isa')}): {per} GFLOP/s ({peak.get('source')}).", ""]
    lines += [method_note(meta), ""]
    if contention_note(meta):
        lines += [contention_note(meta), ""]
    lines += [to_markdown(t) for t in tables(results)]
    return "\n".join(lines)
