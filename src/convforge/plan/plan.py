"""`Plan`: a short list of stages computing one direction of one problem, with its costs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..problem import DTYPE_BYTES, ConvProblem, Direction
from .stages import Buffer, ConvCore, Gemm, Stage, Transform


@dataclass(frozen=True)
class Plan:
    problem: ConvProblem
    direction: Direction
    algorithm: str
    buffers: tuple[Buffer, ...]
    stages: tuple[Stage, ...]
    inputs: tuple[str, str]
    output: str

    def buffer(self, name: str) -> Buffer:
        for b in self.buffers:
            if b.name == name:
                return b
        raise KeyError(name)

    # ------------------------------------------------------------------ costs
    @property
    def executed_macs(self) -> int:
        """Multiply-adds the stages perform, zeros included."""
        return sum(s.executed_macs for s in self.stages)

    @property
    def useful_macs(self) -> int:
        """Multiply-adds with no structural zero (padding, inserted zeros): the same in every plan."""
        return self.problem.useful_macs

    @property
    def waste(self) -> float:
        return self.executed_macs / self.useful_macs

    @property
    def transform_bytes(self) -> int:
        """Bytes read and written by the non-arithmetic stages (layout transforms, col2im, fills)."""
        acc = DTYPE_BYTES[self.problem.dtypes[2]]
        return sum(s.moved_elements for s in self.stages) * acc

    @property
    def scratch_bytes(self) -> int:
        return sum(b.nbytes for b in self.buffers if b.role == "scratch")

    @property
    def transforms(self) -> tuple[Transform, ...]:
        return tuple(s for s in self.stages if isinstance(s, Transform))

    @property
    def cores(self) -> tuple[ConvCore | Gemm, ...]:
        return tuple(s for s in self.stages if isinstance(s, (ConvCore, Gemm)))

    # ------------------------------------------------------------------ execution
    def run(self, *operands: np.ndarray) -> np.ndarray:
        """Execute with NumPy in float64: the semantic model every backend must match."""
        from .executor import execute

        return execute(self, operands)

    # ------------------------------------------------------------------ display
    def describe(self) -> str:
        from .describe import describe

        return describe(self)
