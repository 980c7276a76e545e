"""What the harness times: candidates prepared for one (problem, direction).

A candidate only has to turn a problem and direction into a `Runner`: something that computes the
result once (for the correctness check) and hands out a zero-argument call with operands and output
already bound (for timing). ConvForge kernels, the NumPy plan executor, torch, and later simulator or
GPU kernels all fit behind this one interface.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from ..problem import ConvProblem, Direction


class Runner(Protocol):
    info: dict
    """JSON-able facts about what runs (provenance, config, algorithm, ...)."""

    def result(self, operands: tuple[np.ndarray, ...]) -> np.ndarray:
        """The output, computed once, as a NumPy array."""

    def timed_call(self, operands: tuple[np.ndarray, ...]) -> Callable[[], object]:
        """A call that does only the kernel's work: conversions and allocations done beforehand."""


class Candidate(Protocol):
    label: str
    role: str
    """"candidate" or "baseline"."""

    def prepare(self, problem: ConvProblem, direction: Direction) -> Runner:
        """Compile / build for this problem; raise to mark the candidate failed for it."""


def accepts_out(fn: Callable) -> bool:
    """Whether `fn` takes an `out=` keyword (so the harness can pre-allocate the output)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "out" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


@dataclass
class KernelRunner:
    """Runs `fn(*operands[, out=])` on float32 arrays; pre-allocates the output when it can."""

    fn: Callable[..., np.ndarray]
    output_shape: tuple[int, ...]
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        self.uses_out = accepts_out(self.fn)
        self.info.setdefault("preallocated_output", self.uses_out)

    def result(self, operands):
        if not self.uses_out:
            return np.asarray(self.fn(*operands))
        out = np.full(self.output_shape, np.nan, dtype=np.float32)  # poisoned: unwritten slots show
        returned = self.fn(*operands, out=out)
        return out if returned is None else np.asarray(returned)

    def timed_call(self, operands):
        if not self.uses_out:
            return lambda: self.fn(*operands)
        out = np.empty(self.output_shape, dtype=np.float32)
        return lambda: self.fn(*operands, out=out)


def _jsonable(value) -> object:
    """Best-effort plain-JSON copy of a kernel's provenance / config."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "to_dict"):
        return _jsonable(value.to_dict())
    return str(value)


@dataclass
class ConvForgeKernel:
    """A kernel from `convforge.compile(problem, direction, target, algorithm, layout, **options)`."""

    target: str = "host"
    algorithm: str = "auto"
    layout: str = "NCHW"
    options: dict = field(default_factory=dict)
    """Target-specific compile options (e.g. tune=N on the host), passed through unchanged."""
    role: str = "candidate"

    @property
    def label(self) -> str:
        return f"convforge[{self.algorithm}]"

    def prepare(self, problem, direction):
        import convforge

        compile_ = getattr(convforge, "compile", None)
        if compile_ is None:
            raise RuntimeError("convforge.compile is not available in this checkout (no backend yet); "
                               "use --target plan for the NumPy plan executor")
        kernel = compile_(problem, direction, target=self.target, algorithm=self.algorithm, layout=self.layout,
                          **self.options)
        info = {"target": self.target, "algorithm": self.algorithm, "layout": self.layout,
                "options": _jsonable(self.options)}
        for attr in ("provenance", "config", "macs"):
            if hasattr(kernel, attr):
                info[attr] = _jsonable(getattr(kernel, attr))
        return KernelRunner(kernel, problem.operand_shapes(direction)[1], info)


@dataclass
class PlanExecutor:
    """The NumPy float64 plan executor: a slow stand-in that needs no compiler."""

    algorithm: str = "direct"
    role: str = "candidate"

    @property
    def label(self) -> str:
        return f"plan[{self.algorithm}]"

    def prepare(self, problem, direction):
        from ..plan import plan

        chosen = plan(problem, direction, "direct" if self.algorithm == "auto" else self.algorithm)
        info = {"target": "numpy-plan", "algorithm": chosen.algorithm, "macs": chosen.executed_macs}
        return KernelRunner(lambda *ops: chosen.run(*ops).astype(np.float32),
                            problem.operand_shapes(direction)[1], info)


@dataclass
class FunctionCandidate:
    """Any factory (problem, direction) -> callable on float32 operands (optionally with out=)."""

    label: str
    factory: Callable[[ConvProblem, Direction], Callable[..., np.ndarray]]
    role: str = "candidate"

    def prepare(self, problem, direction):
        return KernelRunner(self.factory(problem, direction), problem.operand_shapes(direction)[1],
                            {"factory": getattr(self.factory, "__qualname__", repr(self.factory))})
