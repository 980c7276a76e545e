"""The benchmark harness: prepare every candidate, check it, then time all of them in alternating rounds.

Phases:
1. prepare: each baseline and candidate is compiled / built for each (problem, direction); a
   failure is recorded on that entry (typed message) and the run goes on.
2. check: on fresh random float32 operands, every output (poisoned with NaN beforehand when it is
   written into `out=`) is compared with the first baseline's, or with the float64 reference when
   there is no baseline. A wrong result is recorded and that entry is not timed.
3. time: `timing.run_rounds` over all groups; operands are regenerated (same seed) each time a
   group's turn comes, so memory holds one group's tensors at a time.

The clock is a parameter: wall time (`time.perf_counter`) for host and GPU kernels (a GPU runner's
call synchronizes), or a simulator's cycle counter converted to seconds for accelerator kernels, so
the same rounds, statistics and reports serve every target.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .. import reference
from ..problem import ConvProblem, Direction
from .candidates import Candidate, Runner
from .results import Check, Entry, Group, Results
from .timing import Case, Clock, Policy, run_rounds

TOLERANCE = 1e-3
"""Max |candidate - expected| / max |expected| accepted for float32 kernels."""


@dataclass
class Job:
    """One problem to benchmark, with how often its network uses it."""

    problem: ConvProblem
    repeat: int = 1


@dataclass
class _Timed:
    """A group during timing: its results plus the prepared runners of its timed entries."""

    group: Group
    runners: dict[str, Runner]
    seed: int
    cases: list[Case]

    def open(self) -> None:
        operands = self.operands()
        for case in self.cases:
            case.call = self.runners[case.key].timed_call(operands)

    def close(self) -> None:
        for case in self.cases:
            case.call = _released

    def operands(self) -> tuple[np.ndarray, ...]:
        rng = np.random.default_rng(self.seed)
        return reference.random_operands(self.group.problem, self.group.direction, rng, dtype=np.float32)


def _released() -> None:
    raise RuntimeError("a case was called outside its group's turn")


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def relative_error(got: np.ndarray, want: np.ndarray) -> float:
    if got.shape != want.shape:
        return math.inf
    scale = max(float(np.max(np.abs(want))), 1e-30)
    return float(np.max(np.abs(got.astype(np.float64) - want))) / scale


def prepare(jobs: Sequence[Job], directions: Sequence[Direction],
            candidates_for: Callable[[Direction], Sequence[Candidate]], baselines: Sequence[Candidate] = (),
            seed: int = 0, on_step: Callable[[str], None] | None = None) -> list[_Timed]:
    """Phases 1 and 2 for every (job, direction); returns the groups ready to time."""
    timed: list[_Timed] = []
    for job in jobs:
        for direction in directions:
            members = list(baselines) + list(candidates_for(direction))
            group = Group(job.problem, direction, job.repeat, [])
            state = _Timed(group, {}, seed + len(timed), [])
            operands = state.operands()
            expected, against = None, "float64 reference"
            for member in members:
                if on_step is not None:
                    on_step(f"{job.problem.name} {direction.value} {member.label}")
                entry = Entry(member.label, member.role)
                group.entries.append(entry)
                try:
                    runner = member.prepare(job.problem, direction)
                    entry.info = dict(runner.info)
                    result = np.asarray(runner.result(operands))
                except Exception as exc:  # noqa: BLE001 - one failing candidate must not stop the run
                    entry.error = _error(exc)
                    continue
                if member.role == "baseline" and expected is None:
                    expected, against = result.astype(np.float64), member.label
                else:
                    if expected is None:
                        expected = reference.compute(job.problem, direction, *operands)
                    entry.check = Check(against, relative_error(result, expected), TOLERANCE)
                    if not entry.check.ok:
                        entry.error = (f"WrongResult: max relative error {entry.check.max_rel_err:.3g} "
                                       f"against {against} exceeds {TOLERANCE:g}")
                        continue
                state.runners[member.label] = runner
                state.cases.append(Case(member.label, _released))
            timed.append(state)
    return timed


def measure(timed: Sequence[_Timed], policy: Policy, clock: Clock = time.perf_counter,
            on_case: Callable[[Case], None] | None = None,
            on_round: Callable[[int], None] | None = None) -> list[Group]:
    """Phase 3: alternating rounds over all groups, filling each entry's raw rounds as they finish.

    Entries share their round lists with the cases, so `on_round` sees every finished round (for
    checkpoints). On Ctrl-C the rounds finished by every case are kept and the partial one dropped,
    so the comparison stays alternating; the caller sees fewer rounds than asked for.
    """
    cases = [case for state in timed for case in state.cases]
    for state in timed:
        for case in state.cases:
            state.group.entry(case.key).rounds = case.rounds
    try:
        run_rounds(timed, policy, clock, on_case, on_round)
    except KeyboardInterrupt:
        complete = min((len(case.rounds) for case in cases), default=0)
        for case in cases:
            del case.rounds[complete:]
    return [state.group for state in timed]


def run(jobs: Sequence[Job], directions: Sequence[Direction | str],
        candidates_for: Callable[[Direction], Sequence[Candidate]], baselines: Sequence[Candidate],
        policy: Policy, clock: Clock = time.perf_counter, seed: int = 0, meta: dict | None = None) -> Results:
    """Prepare, check and time everything (no progress display: see the bench command for that)."""
    dirs = [Direction.of(d) for d in directions]
    groups = measure(prepare(jobs, dirs, candidates_for, baselines, seed), policy, clock)
    return Results(groups, dict(meta or {}))
