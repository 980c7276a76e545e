"""Suite selection for `convforge sim --suite`: the shipped shape lists (`convforge.suites`) with an
optional row filter, so a table can name exactly the rows it covers.

A spec is `NAME` (every row of the suite) or `NAME:v1` (only the rows that occur in the network's
first version, `repeat > 0`: ResNet-50 v1's 20 distinct shapes without the six v1.5-only rows).
"""

from __future__ import annotations

from ... import suites
from ...problem import ConvProblem

FILTERS = {"v1": lambda row: row.repeat > 0}


def load(spec: str, batch: int) -> list[ConvProblem]:
    """The problems of suite spec `spec` at batch size `batch`, in file order."""
    name, _, selector = spec.partition(":")
    if selector and selector not in FILTERS:
        raise ValueError(f"suite spec {spec!r}: unknown row filter {selector!r}; choose one of {sorted(FILTERS)}")
    keep = FILTERS.get(selector, lambda row: True)
    return [row.problem for row in suites.rows(name, batch) if keep(row)]
