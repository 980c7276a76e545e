"""`AccelKernel`: a lowered program for a simulated accelerator, callable on NumPy arrays."""

from __future__ import annotations

import numpy as np

from ...layouts import get as get_layout
from ...problem import DTYPE_BYTES, ConvProblem, Direction
from ...sim.machine import NUMPY, Machine, Stats

POISON = {"i8": 0x5A, "i32": 0x5A5A5A5A, "f16": np.nan, "f32": np.nan}


class AccelKernel:
    """Runs on the target's simulator. Attributes as convforge's `Kernel`: source, config, provenance,
    macs, stats (the last run's counters; filled by a timing-only run at compile time)."""

    def __init__(self, problem: ConvProblem, direction: Direction, target, plan, program: list,
                 layouts: dict[str, str], dtypes: dict[str, str], config: dict, provenance: str,
                 constants: dict[str, np.ndarray] | None = None):
        self.problem, self.direction, self.target, self.plan = problem, direction, target, plan
        self.program = program
        self.layouts, self.dtypes = layouts, dtypes
        self.config, self.provenance = config, provenance
        self.constants = dict(constants or {})  # program data in DRAM (VTA micro-op tables)
        self.macs = problem.macs
        self.algorithm = plan.algorithm
        self.stats: Stats = self.simulate(timing_only=True)

    @property
    def source(self) -> str:
        return "\n".join(f"{i:6d}  [{ins.engine:>7}] {ins.text()}{_sync(ins)}" for i, ins in enumerate(self.program))

    def simulate(self, dram: dict[str, np.ndarray] | None = None, timing_only: bool = False) -> Stats:
        m = Machine(self.target, None if timing_only else dram, functional=not timing_only,
                    explicit_sync=self.target.isa == "vta")
        stats = m.run(self.program)
        stats.useful_macs = self.problem.useful_macs
        return stats

    def __call__(self, *operands: np.ndarray) -> np.ndarray:
        plan = self.plan
        if len(operands) != 2:
            raise TypeError(f"{self.direction} kernel takes 2 operands ({', '.join(plan.inputs)}), got {len(operands)}")
        in_dtype = self.dtypes["input"]
        dram: dict[str, np.ndarray] = {}
        logical = {"x": self.problem.x_shape, "w": self.problem.w_shape, "y": self.problem.y_shape}
        for name, array in zip(plan.inputs, operands):
            if not isinstance(array, np.ndarray):
                raise TypeError(f"operand {name} must be a numpy.ndarray, got {type(array).__name__}")
            if array.dtype != NUMPY[in_dtype]:
                raise TypeError(f"operand {name} must have dtype {np.dtype(NUMPY[in_dtype])} on target "
                                f"{self.target.name}, got {array.dtype}")
            if array.shape != logical[name]:
                raise ValueError(f"operand {name} must have shape {logical[name]}, got {array.shape}")
            dram[name] = get_layout(self.layouts[name]).pack(array).astype(NUMPY[in_dtype])
        for b in plan.buffers:
            if b.role != "input":
                dt = self.dtypes[b.name]
                dram[b.name] = np.full(b.shape, POISON[dt], dtype=NUMPY[dt])
        dram.update(self.constants)
        out = plan.output
        planes = self.target.isa == "vta" and self.dtypes[out] == "i32"
        if planes:  # VTA stores only bytes: the int32 result arrives as four byte planes
            for j in range(4):
                dram[f"{out}@{j}"] = np.full(dram[out].shape, 0x5A, dtype=np.uint8)
        self.stats = self.simulate(dram)
        if planes:
            stacked = np.stack([dram[f"{out}@{j}"] for j in range(4)], axis=-1)
            dram[out] = np.ascontiguousarray(stacked).view("<i4")[..., 0]
        return get_layout(self.layouts[out]).unpack(dram[out], logical[out]).astype(NUMPY[self.dtypes["acc"]])

    def __repr__(self) -> str:
        return (f"AccelKernel({self.problem}, {self.direction}, target={self.target.name}, "
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
