"""Timing on a noisy shared host: alternating rounds, per-round medians, minimum over rounds.

Host contention moves timings by up to 2x between rounds a minute apart (reference/baseline.md), so
kernels that are compared are never timed in separate blocks: every round visits every case once,
and within one comparison group (one layer, batch and direction) the members run back to back, in
reversed order on odd rounds so neither always runs right after the other. A case's figure is the
minimum over rounds of its per-round median: the uncontended time. The median over rounds is kept as
the "typical" time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

Clock = Callable[[], float]
"""Returns seconds; `time.perf_counter` in real runs, a fake in tests."""


@dataclass(frozen=True)
class Policy:
    """How much to call each case per round (defaults follow reference/baseline.md)."""

    rounds: int = 5
    warmup: int = 3
    min_calls: int = 10
    min_seconds: float = 0.2
    max_calls: int = 100

    def __post_init__(self):
        for name in ("rounds", "min_calls", "max_calls"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if isinstance(self.warmup, bool) or not isinstance(self.warmup, int) or self.warmup < 0:
            raise ValueError(f"warmup must be an int >= 0, got {self.warmup!r}")
        if not self.min_seconds >= 0:
            raise ValueError(f"min_seconds must be >= 0, got {self.min_seconds!r}")
        if self.max_calls < self.min_calls:
            raise ValueError(f"max_calls ({self.max_calls}) must be >= min_calls ({self.min_calls})")


@dataclass
class Case:
    """One thing to time: a zero-argument call with its operands and output already bound."""

    key: str
    call: Callable[[], object]
    rounds: list[list[float]] = field(default_factory=list)
    """Raw per-call seconds, one list per round."""


class Group(Protocol):
    """Cases compared with each other; `open` binds their calls (allocates operands), `close` frees them."""

    cases: Sequence[Case]

    def open(self) -> None: ...

    def close(self) -> None: ...


@dataclass
class StaticGroup:
    """A group whose calls are bound once and for all."""

    cases: Sequence[Case]

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass


def time_calls(call: Callable[[], object], policy: Policy, clock: Clock = time.perf_counter) -> list[float]:
    """Warm up, then time single calls until both min_calls and min_seconds are reached."""
    for _ in range(policy.warmup):
        call()
    times: list[float] = []
    while len(times) < policy.max_calls and (len(times) < policy.min_calls or sum(times) < policy.min_seconds):
        start = clock()
        call()
        times.append(clock() - start)
    return times


def order(group: Group, round_index: int) -> list[Case]:
    """Visiting order of a group's cases in one round: reversed on odd rounds."""
    return list(reversed(group.cases)) if round_index % 2 else list(group.cases)


def run_rounds(groups: Sequence[Group], policy: Policy, clock: Clock = time.perf_counter,
               on_case: Callable[[Case], None] | None = None,
               on_round: Callable[[int], None] | None = None) -> None:
    """Time every case once per round, `policy.rounds` times, appending to `Case.rounds`.

    `on_round(i)` runs before round i (e.g. a contention probe); `on_case` after each case.
    """
    for round_index in range(policy.rounds):
        if on_round is not None:
            on_round(round_index)
        for group in groups:
            if not group.cases:
                continue
            group.open()
            try:
                for case in order(group, round_index):
                    case.rounds.append(time_calls(case.call, policy, clock))
                    if on_case is not None:
                        on_case(case)
            finally:
                group.close()
