"""`Kernel`: what `compile()` returns on every target: a callable with its provenance."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .problem import ConvProblem, Direction


def check_array(name: str, array: Any, shape: tuple[int, ...], dtype, writable: bool = False,
                contiguous: bool = False) -> np.ndarray:
    """`array` as a kernel accepts it, or TypeError / ValueError naming `name` and what is wrong."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(array).__name__}")
    if array.dtype != np.dtype(dtype):
        raise TypeError(f"{name} must have dtype {np.dtype(dtype)}, got {array.dtype}")
    if array.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {array.shape}")
    if contiguous and not array.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous (use numpy.ascontiguousarray)")
    if writable and not array.flags.writeable:
        raise ValueError(f"{name} must be writeable")
    return array


class Kernel:
    """A compiled convolution for one (problem, direction, layout) on one target.

    Call it on the operands in `convforge.reference` order (fwd(x, w), bwd_data(dy, w),
    bwd_weight(x, dy)); pass `out=` to write into an existing array. `provenance` says how the
    config was chosen ("heuristic", "measured: best of N candidates", "cached measurement", ...).
    `stats` maps counter names to values (the host's plan counts; a simulator's last run).

    Subclasses set `inputs` ((name, shape) of the two operands in call order), `in_dtype`,
    `out_dtype` and `out_shape`; `source` may be given as None and rendered on first use by
    `render_source` (an accelerator's instruction listing can be long).
    """

    contiguous_operands = False  # True when the kernel reads the caller's memory directly

    def __init__(self, problem: ConvProblem, direction: Direction, target: str, source: str | None,
                 config: dict[str, Any], provenance: str):
        self.problem = problem
        self.direction = direction
        self.target = target
        self._source = source
        self.config = config
        self.provenance = provenance
        self.stats: Mapping[str, Any] = {}
        self.inputs: list[tuple[str, tuple[int, ...]]] = []
        self.in_dtype = self.out_dtype = np.dtype(np.float32)

    @property
    def source(self) -> str:
        """The generated program: C source on the host, the instruction listing on an accelerator."""
        if self._source is None:
            self._source = self.render_source()
        return self._source

    def render_source(self) -> str:
        raise NotImplementedError

    @property
    def out_shape(self) -> tuple[int, ...]:
        """Shape of the result (and of `out=`) in the caller's layout."""
        raise NotImplementedError

    @property
    def macs(self) -> int:
        """Useful multiply-adds of one call (the same for every direction and algorithm)."""
        return self.problem.useful_macs

    def check_call(self, a: Any, b: Any, out: Any = None) -> dict[str, np.ndarray]:
        """The operands by name, after checking them and `out` (none overlapping `out`)."""
        arrays = {name: check_array(f"operand {name!r}", array, shape, self.in_dtype,
                                    contiguous=self.contiguous_operands)
                  for (name, shape), array in zip(self.inputs, (a, b))}
        if out is not None:
            check_array("out", out, self.out_shape, self.out_dtype, writable=True, contiguous=self.contiguous_operands)
            if any(np.shares_memory(out, array) for array in arrays.values()):
                raise ValueError("out must not overlap the operands")
        return arrays

    def __call__(self, a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} {self.direction} {self.problem} target={self.target} "
                f"algorithm={self.config.get('algorithm')} ({self.provenance})>")
