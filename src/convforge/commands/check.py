"""Run every algorithm of every direction against the float64 reference and print a pass/fail table.

Give one DESCRIPTOR, or --suite NAME for a shipped shape list. Operands are fresh uniform random
values in [-1, 1); the tolerance is 1e-10 relative to the largest reference magnitude.
"""

from __future__ import annotations

import argparse

import numpy as np
from rich.console import Console
from rich.progress import track
from rich.table import Table

from .. import reference
from ..plan import algorithms, plan
from ..problem import ConvProblem, Direction

TOLERANCE = 1e-10


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("descriptor", nargs="?", help="one problem (ConvForge or benchdnn syntax)")
    parser.add_argument("--suite", help="a shipped shape list: resnet18, resnet50, deepbench")
    parser.add_argument("--batch", type=int, help="override the batch size of every problem")
    parser.add_argument("--directions", default="fwd,bwd_data,bwd_weight")
    parser.add_argument("--seed", type=int, default=0)


def problems(args: argparse.Namespace) -> list[ConvProblem]:
    if bool(args.descriptor) == bool(args.suite):
        raise ValueError("give either a DESCRIPTOR or --suite NAME")
    if args.suite:
        from ..suites import load

        chosen = load(args.suite)
    else:
        chosen = [ConvProblem.parse(args.descriptor)]
    return [p.with_batch(args.batch) for p in chosen] if args.batch else chosen


def relative_error(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-300))


def run(args: argparse.Namespace) -> int:
    directions = [Direction.of(d) for d in args.directions.split(",")]
    rng = np.random.default_rng(args.seed)
    table = Table("problem", "direction", "algorithm", "rel. error", "executed/useful MACs", "result")
    failures = 0
    cases = [(p, d) for p in problems(args) for d in directions]
    for p, d in track(cases, description="checking", transient=True):
        operands = reference.random_operands(p, d, rng)
        want = reference.compute(p, d, *operands)
        for name in algorithms(d):
            candidate = plan(p, d, name)
            err = relative_error(candidate.run(*operands), want)
            ok = err < TOLERANCE  # NaN (an unwritten element) fails too
            failures += not ok
            table.add_row(p.name or str(p), str(d), name, f"{err:.1e}", f"{candidate.waste:.2f}",
                          "[green]pass[/]" if ok else "[red]FAIL[/]")
    console = Console()
    if not console.is_terminal:
        console.width = 200  # logs and CI: keep full descriptors
    console.print(table)
    total = len(table.rows)
    console.print(f"{total - failures} passed, {failures} failed")
    return 1 if failures else 0
