"""`AccelKernel`: a lowered program for a simulated accelerator, callable on NumPy arrays."""

from __future__ import annotations

import numpy as np

from ...kernel import Kernel
from ...layouts import get as get_layout
from ...problem import DTYPE_BYTES, ConvProblem, Direction
from ...sim.machine import NUMPY, Machine, Stats

POISON = {"i8": 0x5A, "i32": 0x5A5A5A5A, "f16": np.nan, "f32": np.nan}


class AccelKernel(Kernel):
    """Runs on the target's simulator. Beyond `Kernel`: `accelerator` (the loaded target file),
    `program` (its instructions; `source` is their listing), `stats` (the last run's counters, a
    `sim.machine.Stats`; filled by a timing-only run at compile time) and `simulate`."""

    def __init__(self, problem: ConvProblem, direction: Direction, target, plan, program: list,
                 layouts: dict[str, str], dtypes: dict[str, str], config: dict, provenance: str,
                 constants: dict[str, np.ndarray] | None = None):
        super().__init__(problem, direction, target.name, None, config, provenance)
        self.accelerator, self.plan, self.program = target, plan, program
        self.layouts, self.dtypes = layouts, dtypes
        self.constants = dict(constants or {})  # program data in DRAM (VTA micro-op tables)
        self.algorithm = plan.algorithm
        self._logical = {"x": problem.x_shape, "w": problem.w_shape, "y": problem.y_shape}
        self.inputs = [(name, self._logical[name]) for name in plan.inputs]
        self.in_dtype, self.out_dtype = np.dtype(NUMPY[dtypes["input"]]), np.dtype(NUMPY[dtypes["acc"]])
        self.stats: Stats = self.simulate(timing_only=True)

    @property
    def out_shape(self) -> tuple[int, ...]:
        return self._logical[self.plan.output]

    def render_source(self) -> str:
        return "\n".join(f"{i:6d}  [{ins.engine:>7}] {ins.text()}{_sync(ins)}" for i, ins in enumerate(self.program))

    def simulate(self, dram: dict[str, np.ndarray] | None = None, timing_only: bool = False) -> Stats:
        m = Machine(self.accelerator, None if timing_only else dram, functional=not timing_only,
                    explicit_sync=self.accelerator.isa == "vta")
        stats = m.run(self.program)
        stats.useful_macs = self.problem.useful_macs
        return stats

    def __call__(self, a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        arrays = self.check_call(a, b, out)
        dram: dict[str, np.ndarray] = {name: get_layout(self.layouts[name]).pack(array).astype(self.in_dtype)
                                       for name, array in arrays.items()}
        for buffer in self.plan.buffers:
            if buffer.role != "input":
                dt = self.dtypes[buffer.name]
                dram[buffer.name] = np.full(buffer.shape, POISON[dt], dtype=NUMPY[dt])
        dram.update(self.constants)
        result = self.plan.output
        planes = self.accelerator.isa == "vta" and self.dtypes[result] == "i32"
        if planes:  # VTA stores only bytes: the int32 result arrives as four byte planes
            for j in range(4):
                dram[f"{result}@{j}"] = np.full(dram[result].shape, 0x5A, dtype=np.uint8)
        self.stats = self.simulate(dram)
        if planes:
            stacked = np.stack([dram[f"{result}@{j}"] for j in range(4)], axis=-1)
            dram[result] = np.ascontiguousarray(stacked).view("<i4")[..., 0]
        value = get_layout(self.layouts[result]).unpack(dram[result], self.out_shape).astype(self.out_dtype)
        if out is None:
            return value
        out[...] = value
        return out

    def __repr__(self) -> str:
        return (f"AccelKernel({self.problem}, {self.direction}, target={self.target}, "
                f"algorithm={self.algorithm}, cycles={self.stats.cycles:.0f})")


def tensor_dtypes(plan, stages, input_dtype: str, acc_dtype: str) -> dict[str, str]:
    """Element type of every DRAM tensor: inputs and what is moved from them keep the input type;
    results of cores and col2im are accumulator-typed."""
    from ...plan.stages import ScatterAdd, Transform

    dtypes = {name: input_dtype for name in plan.inputs}
    for b in plan.buffers:
        if b.role != "input":
            dtypes.setdefault(b.name, acc_dtype)
    for stage in stages:
        if isinstance(stage, Transform):
            dtypes[stage.dst] = dtypes[stage.src] if stage.dst != plan.output else acc_dtype
        elif isinstance(stage, ScatterAdd):
            dtypes[stage.dst] = acc_dtype
    dtypes[plan.output] = acc_dtype
    dtypes["input"], dtypes["acc"] = input_dtype, acc_dtype
    return dtypes


def elem_bytes(dtypes: dict[str, str]) -> dict[str, int]:
    return {k: DTYPE_BYTES[v] for k, v in dtypes.items()}


def _sync(ins) -> str:
    parts = [f"pop {q}" for q in ins.pops] + [f"push {q}" for q in ins.pushes]
    return f"  [{', '.join(parts)}]" if parts else ""
