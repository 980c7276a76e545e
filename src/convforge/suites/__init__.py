"""Benchmark suites: lists of conv shapes shipped as CSV files next to this module.

Each file starts with `#` comment lines recording where the shapes come from and how they were
converted, then a header row with explicit fields (see `FIELDS`). Extra columns (such as
ResNet-50's `repeat_v1_5`) are kept in `SuiteRow.extra`.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from importlib import resources

from ..problem import ConvProblem

FIELDS = ("name", "repeat", "n", "c", "h", "w", "k", "r", "s", "stride_h", "stride_w", "pad_top",
          "pad_bottom", "pad_left", "pad_right", "dilation_h", "dilation_w", "groups")


@dataclass(frozen=True)
class SuiteRow:
    """One shape of a suite: the problem and how often the network uses it."""

    problem: ConvProblem
    repeat: int
    extra: dict[str, str] = field(default_factory=dict)


def names() -> list[str]:
    """The suites shipped with ConvForge."""
    files = resources.files(__package__).iterdir()
    return sorted(f.name[:-4] for f in files if f.name.endswith(".csv"))


def provenance(name: str) -> str:
    """The comment block at the top of a suite file."""
    lines = _text(name).splitlines()
    return "\n".join(line.lstrip("# ").rstrip() for line in lines if line.startswith("#"))


def rows(name: str, batch: int | None = None) -> list[SuiteRow]:
    """Every row of suite `name`, with the batch replaced by `batch` when given."""
    if batch is not None and (isinstance(batch, bool) or not isinstance(batch, int) or batch < 1):
        raise ValueError(f"batch must be a positive int, got {batch!r}")
    body = "\n".join(line for line in _text(name).splitlines() if not line.startswith("#"))
    reader = csv.DictReader(io.StringIO(body))
    missing = [f for f in FIELDS if f not in (reader.fieldnames or [])]
    if missing:
        raise ValueError(f"suite {name!r} lacks the columns {missing}")
    return [_row(name, line_no, record, batch) for line_no, record in enumerate(reader, 1)]


def load(name: str, batch: int | None = None) -> list[ConvProblem]:
    """The problems of suite `name` (batch as in the file unless `batch` is given)."""
    return [row.problem for row in rows(name, batch)]


def _text(name: str) -> str:
    if name not in names():
        raise ValueError(f"unknown suite {name!r}; available: {', '.join(names())}")
    return resources.files(__package__).joinpath(f"{name}.csv").read_text(encoding="utf-8")


def _row(suite: str, line_no: int, record: dict[str, str], batch: int | None) -> SuiteRow:
    try:
        v = {f: int(record[f]) for f in FIELDS if f != "name"}
    except ValueError as error:
        raise ValueError(f"suite {suite!r} row {line_no}: {error}") from None
    problem = ConvProblem(
        batch if batch is not None else v["n"], v["c"], v["k"], v["h"], v["w"], v["r"], v["s"],
        stride=(v["stride_h"], v["stride_w"]),
        padding=(v["pad_top"], v["pad_bottom"], v["pad_left"], v["pad_right"]),
        dilation=(v["dilation_h"], v["dilation_w"]), groups=v["groups"], name=record["name"])
    extra = {key: value for key, value in record.items() if key not in FIELDS}
    return SuiteRow(problem, v["repeat"], extra)
