"""`Kernel`: what `compile()` returns on every target: a callable with its provenance."""

from __future__ import annotations

from typing import Any

import numpy as np

from .problem import ConvProblem, Direction


class Kernel:
    """A compiled convolution for one (problem, direction, layout) on one target.

    Call it on the operands in `convforge.reference` order (fwd(x, w), bwd_data(dy, w),
    bwd_weight(x, dy)); pass `out=` to write into an existing array. `provenance` says how the
    config was chosen ("heuristic", "measured: best of N candidates", "cached measurement", ...).
    """

    def __init__(self, problem: ConvProblem, direction: Direction, target: str, source: str,
                 config: dict[str, Any], provenance: str):
        self.problem = problem
        self.direction = direction
        self.target = target
        self.source = source
        self.config = config
        self.provenance = provenance
        self.stats: dict[str, Any] = {}

    @property
    def out_shape(self) -> tuple[int, ...]:
        """Shape of the result (and of `out=`) in the caller's layout."""
        raise NotImplementedError

    @property
    def macs(self) -> int:
        """Useful multiply-adds of one call (the same for every direction and algorithm)."""
        return self.problem.useful_macs

    def __call__(self, a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} {self.direction} {self.problem} target={self.target} "
                f"algorithm={self.config.get('algorithm')} ({self.provenance})>")
