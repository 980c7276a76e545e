"""compile() for target "host": choose an algorithm and configs, lower, build, bind."""

from __future__ import annotations

from typing import Any

from ...layouts import get as get_layout
from ...plan import algorithms, plan as make_plan
from ...problem import ConvProblem, Direction
from . import toolchain
from .kernel import HostKernel
from .lower import lower

ACTIVATION_LAYOUTS = ("NCHW", "NHWC", "NCHW16c", "NCHW8c")


def heuristic_algorithm(problem: ConvProblem, direction: Direction) -> str:
    """No inserted zeros ever multiplied: stride phases for strided bwd_data, trimmed direct otherwise."""
    if direction is Direction.bwd_data and problem.stride != (1, 1):
        return "phase_split"
    return "trim"


def check_layout(layout: Any) -> str:
    if not isinstance(layout, str):
        raise TypeError(f"layout must be a str, got {type(layout).__name__}")
    if layout not in ACTIVATION_LAYOUTS:
        raise ValueError(f"layout must be one of {list(ACTIVATION_LAYOUTS)} for target 'host', got {layout!r}")
    get_layout(layout)
    return layout


def compile_host(problem: ConvProblem, direction: Direction, algorithm: str = "auto", layout: str = "NCHW",
                 config: dict | None = None, sanitize: bool = False) -> HostKernel:
    if problem.dtypes != ("f32", "f32", "f32", "f32"):
        raise ValueError(f"target 'host' supports float32 only (dtypes f32,f32,f32,f32), got {problem.dtypes}")
    layout = check_layout(layout)
    if config is not None and not isinstance(config, dict):
        raise TypeError(f"config must be a dict, got {type(config).__name__}")
    config = dict(config or {})
    unknown = set(config) - {"algorithm", "stages"}
    if unknown:
        raise ValueError(f"config: unknown keys {sorted(unknown)}; allowed 'algorithm', 'stages'")
    if "algorithm" in config:
        if algorithm not in ("auto", config["algorithm"]):
            raise ValueError(f"algorithm {algorithm!r} contradicts config algorithm {config['algorithm']!r}")
        algorithm = config["algorithm"]
    provenance = []
    if algorithm == "auto":
        algorithm = heuristic_algorithm(problem, direction)
        provenance.append(f"algorithm {algorithm} by heuristic")
    elif algorithm not in algorithms(direction):
        raise ValueError(f"algorithm must be 'auto' or one of {algorithms(direction)} for {direction}, "
                         f"got {algorithm!r}")
    plan = make_plan(problem, direction, algorithm, {"x": layout, "y": layout})
    toolchain.compiler()  # a clear error before any work when there is no compiler
    program = lower(plan, config.get("stages"), toolchain.vector_width())
    provenance.append("stage configs given" if config.get("stages") else "stage configs by heuristic")
    chosen = {"algorithm": algorithm, "stages": program.stage_configs}
    return HostKernel(problem, direction, plan, program, chosen, "; ".join(provenance), layout, sanitize)
