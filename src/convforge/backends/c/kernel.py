"""`HostKernel`: a lowered plan bound to its loaded libraries, callable on float32 NumPy arrays."""

from __future__ import annotations

import ctypes
import threading

import numpy as np

from ...kernel import Kernel
from ...plan import Plan
from ...problem import ConvProblem, Direction
from . import toolchain
from .lower import Program

ALIGN = 64


def aligned_empty(elements: int) -> np.ndarray:
    raw = np.empty(elements + ALIGN // 4, dtype=np.float32)
    start = (-raw.ctypes.data % ALIGN) // 4
    return raw[start:start + elements]


class HostKernel(Kernel):
    """Runs the program's calls in order, once per batch slice when the plan is that of a slice
    of the batch (`plan.problem.n` images: the caller's activations are walked slice by slice, so a
    slice's packs and partial results stay in cache; a weight gradient's calls marked "before" and
    "after" run once around the slices). Scratch buffers live with the kernel, so calls from
    several Python threads (ctypes releases the GIL) take turns on a lock."""

    contiguous_operands = True  # the C code reads and writes the caller's arrays

    def __init__(self, problem: ConvProblem, direction: Direction, plan: Plan, program: Program,
                 config: dict, provenance: str, layout: str, sanitize: bool = False):
        source = "\n/* ---- core ---- */\n".join([program.glue_source, *program.cores.values()])
        super().__init__(problem, direction, "host", source, config, provenance)
        self.plan, self.program, self.layout = plan, program, layout
        libraries = {"glue": toolchain.load(program.glue_source, sanitize)}
        libraries.update({key: toolchain.load(src, sanitize) for key, src in program.cores.items()})
        self.slices = problem.n // plan.problem.n
        if self.slices * plan.problem.n != problem.n or (
                self.slices > 1 and program.slice_sums != (direction is Direction.bwd_weight)):
            raise ValueError(f"a plan for {plan.problem.n} images does not slice a batch of {problem.n} "
                             f"for {direction}")
        self._sliced = {"x", "y"} if self.slices > 1 else set()  # the activations, batch-major

        def full(name):
            shape = plan.buffer(name).shape
            return (shape[0] * self.slices, *shape[1:]) if name in self._sliced else shape
        self.inputs = [(name, full(name)) for name in plan.inputs]
        self._out_shape = full(plan.output)
        self._scratch = {name: aligned_empty(max(1, n)) for name, n in program.scratch.items()}
        for b in plan.buffers:
            if b.role == "scratch":
                self._scratch[b.name] = aligned_empty(int(np.prod(b.shape)))
        self._lock = threading.Lock()
        self._steps = {"before": [], "slice": [], "after": []}
        for call in program.calls:
            fn = getattr(libraries[call.library], call.symbol)
            fn.restype = None
            extra = () if call.params is None else (call.params, call.mask)
            self._steps[call.when].append((fn, call.buffers, tuple(ctypes.c_void_p(a.ctypes.data) for a in extra),
                                           extra))
        self.stats.update(stages=len(plan.stages), calls=len(program.calls),
                          scratch_bytes=4 * sum(a.size for a in self._scratch.values()),
                          executed_macs=plan.executed_macs * self.slices,
                          useful_macs=plan.useful_macs * self.slices, batch_slices=self.slices)

    @property
    def out_shape(self) -> tuple[int, ...]:
        return self._out_shape

    def __call__(self, a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        arrays = self.check_call(a, b, out)
        if out is None:
            out = np.empty(self._out_shape, dtype=np.float32)
        arrays[self.plan.output] = out
        scratch = {name: ctypes.c_void_p(arr.ctypes.data) for name, arr in self._scratch.items()}
        with self._lock:
            for when, slices in (("before", [0]), ("slice", range(self.slices)), ("after", [0])):
                for i in slices:
                    pointers = {name: ctypes.c_void_p(arr.ctypes.data + (arr.nbytes // self.slices * i
                                                                         if name in self._sliced else 0))
                                for name, arr in arrays.items()}
                    pointers.update(scratch)
                    for fn, buffers, extra, _keep in self._steps[when]:
                        fn(*(pointers[name] for name in buffers), *extra)
        return out
