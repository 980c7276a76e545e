"""What a benchmark run produced: every raw measurement, JSON round-trippable.

A `Group` is one comparison (one layer, batch and direction) with its `Entry`s: the baseline and
each candidate, timed alternately in the same run. Derived figures (best / typical time, GFLOP/s,
ratios) are computed from the raw per-round call times, never stored separately from them.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field

from ..problem import ConvProblem, Direction

FORMAT = "convforge-bench/1"


@dataclass
class Check:
    """Candidate output against the baseline's (or the reference's) on the same random operands."""

    against: str
    max_rel_err: float
    tolerance: float

    @property
    def ok(self) -> bool:
        return self.max_rel_err <= self.tolerance  # NaN (unwritten output) fails


@dataclass
class Entry:
    label: str
    role: str
    """"candidate" or "baseline"."""
    info: dict = field(default_factory=dict)
    error: str | None = None
    """Why it was not timed (compile failure, exception, wrong result), or None."""
    check: Check | None = None
    rounds: list[list[float]] = field(default_factory=list)
    """Raw seconds per call, one list per round."""

    @property
    def timed(self) -> bool:
        return self.error is None and bool(self.rounds)

    @property
    def round_medians(self) -> list[float]:
        return [statistics.median(r) for r in self.rounds]

    @property
    def best(self) -> float:
        """Minimum over rounds of the per-round median (seconds); NaN if not timed."""
        return min(self.round_medians) if self.timed else math.nan

    @property
    def typical(self) -> float:
        return statistics.median(self.round_medians) if self.timed else math.nan


@dataclass
class Group:
    problem: ConvProblem
    direction: Direction
    repeat: int
    entries: list[Entry]

    @property
    def layer(self) -> str:
        return self.problem.name

    @property
    def baselines(self) -> list[Entry]:
        return [e for e in self.entries if e.role == "baseline"]

    @property
    def baseline(self) -> Entry | None:
        """The first baseline: ratios are against it unless said otherwise."""
        return next(iter(self.baselines), None)

    @property
    def best_baseline(self) -> Entry | None:
        """The fastest timed baseline (e.g. the better of torch NCHW and channels_last for this layer)."""
        timed = [e for e in self.baselines if e.timed]
        return min(timed, key=lambda e: e.best) if timed else None

    @property
    def candidates(self) -> list[Entry]:
        return [e for e in self.entries if e.role == "candidate"]

    def entry(self, label: str) -> Entry | None:
        return next((e for e in self.entries if e.label == label), None)

    def gflops(self, entry: Entry) -> float:
        return self.problem.flops / entry.best / 1e9

    def ratio(self, entry: Entry, baseline: Entry | None = None) -> float:
        """baseline time / entry time (first baseline unless given): > 1 means the entry is faster."""
        base = baseline or self.baseline
        if base is None or not base.timed or not entry.timed:
            return math.nan
        return base.best / entry.best


@dataclass
class Results:
    groups: list[Group]
    meta: dict = field(default_factory=dict)
    """Command line, machine, peak, settings, method: everything needed to reproduce and judge."""

    def labels(self, role: str) -> list[str]:
        """Labels of the entries with this role, in first-seen order."""
        labels: list[str] = []
        for g in self.groups:
            labels += [e.label for e in g.entries if e.role == role and e.label not in labels]
        return labels

    @property
    def candidate_labels(self) -> list[str]:
        """The first is the primary candidate (the per-layer and per-direction tables show it)."""
        return self.labels("candidate")

    def to_dict(self) -> dict:
        return {"format": FORMAT, "meta": self.meta, "groups": [_group_dict(g) for g in self.groups]}

    @classmethod
    def from_dict(cls, data: dict) -> Results:
        if data.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} results file (format={data.get('format')!r})")
        return cls([_group_from(g) for g in data["groups"]], data.get("meta", {}))


def _group_dict(g: Group) -> dict:
    entries = []
    for e in g.entries:
        record = asdict(e)
        if e.check is not None and not math.isfinite(e.check.max_rel_err):
            record["check"]["max_rel_err"] = None  # strict JSON has no NaN / inf: None reads back as NaN
        record["round_medians_s"] = e.round_medians
        record["best_s"] = e.best if e.timed else None
        record["typical_s"] = e.typical if e.timed else None
        entries.append(record)
    return {"layer": g.layer, "problem": str(g.problem), "direction": g.direction.value, "batch": g.problem.n,
            "repeat": g.repeat, "flops": g.problem.flops, "entries": entries}


def _group_from(d: dict) -> Group:
    entries = []
    for e in d["entries"]:
        check = None
        if e.get("check"):
            error = e["check"]["max_rel_err"]
            check = Check(e["check"]["against"], math.nan if error is None else error, e["check"]["tolerance"])
        entries.append(Entry(e["label"], e["role"], e.get("info", {}), e.get("error"), check, e.get("rounds", [])))
    return Group(ConvProblem.parse(d["problem"]), Direction.of(d["direction"]), d.get("repeat", 1), entries)


def geomean(values: list[float]) -> float:
    finite = [v for v in values if v > 0 and math.isfinite(v)]
    return math.exp(sum(math.log(v) for v in finite) / len(finite)) if finite else math.nan
