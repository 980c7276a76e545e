"""compile() for target "host": choose an algorithm and configs, lower, build, bind."""

from __future__ import annotations

import dataclasses
from typing import Any

from ...layouts import get as get_layout
from ...plan import algorithms
from ...plan import plan as make_plan
from ...problem import ConvProblem, Direction
from . import measure, toolchain
from .configs import batch_slices, ranked_stage_configs
from .kernel import HostKernel
from .lower import lower, lowered_stages

ACTIVATION_LAYOUTS = ("NCHW", "NHWC", "NCHW16c", "NCHW8c")


def heuristic_algorithm(problem: ConvProblem, direction: Direction) -> str:
    """No inserted zero ever multiplied: stride phases for strided bwd_data; for strided 1x1
    bwd_weight too (the single phase reads only the strided input); trimmed direct otherwise
    (bwd_weight of a strided RxS filter reads the input through the core's dilation, no zeros)."""
    strided = direction is not Direction.fwd and problem.stride != (1, 1)
    if strided and (direction is Direction.bwd_data or (problem.r, problem.s) == (1, 1)):
        return "phase_split"
    return "trim"


def candidate_algorithms(problem: ConvProblem, direction: Direction) -> list[str]:
    """The heuristic's choice first, then the other algorithms that multiply no inserted zero."""
    first = heuristic_algorithm(problem, direction)
    others = ["trim", "direct"]
    if problem.stride != (1, 1) and direction is not Direction.fwd:
        others.append("phase_split")
    return [first] + [a for a in others if a != first and a in algorithms(direction)]


def check_layout(layout: Any) -> str:
    if not isinstance(layout, str):
        raise TypeError(f"layout must be a str, got {type(layout).__name__}")
    if layout not in ACTIVATION_LAYOUTS:
        raise ValueError(f"layout must be one of {list(ACTIVATION_LAYOUTS)} for target 'host', got {layout!r}")
    get_layout(layout)
    return layout


def _check_config(config: Any) -> dict:
    if config is not None and not isinstance(config, dict):
        raise TypeError(f"config must be a dict, got {type(config).__name__}")
    config = dict(config or {})
    unknown = set(config) - {"algorithm", "stages"}
    if unknown:
        raise ValueError(f"config: unknown keys {sorted(unknown)}; allowed 'algorithm', 'stages'")
    return config


def _build(problem, direction, layout, config, provenance, sanitize) -> HostKernel:
    layouts = {"x": layout, "y": layout}
    plan = make_plan(problem, direction, config["algorithm"], layouts)
    program = lower(plan, config.get("stages"), toolchain.vector_width())
    slices = batch_slices(plan, program)
    if slices > 1:
        plan = make_plan(dataclasses.replace(problem, n=problem.n // slices), direction, config["algorithm"], layouts)
        program = lower(plan, config.get("stages"), toolchain.vector_width(), direction is Direction.bwd_weight)
    chosen = {"algorithm": config["algorithm"], "stages": program.stage_configs}
    return HostKernel(problem, direction, plan, program, chosen, provenance, layout, sanitize)


def candidates(problem: ConvProblem, direction: Direction, layout: str, algs: list[str], count: int) -> list[dict]:
    """Up to `count` configs: per algorithm, the i-th best register block of every core stage."""
    v = toolchain.vector_width()
    per_algorithm = max(1, count // len(algs))
    found: list[dict] = []
    for alg in algs:
        stages = lowered_stages(make_plan(problem, direction, alg, {"x": layout, "y": layout}))
        ranked = [ranked_stage_configs(s, v, per_algorithm) for s in stages]
        depth = max([len(r) for r in ranked] + [1])
        for i in range(min(depth, per_algorithm)):
            found.append({"algorithm": alg, "stages": [r[min(i, len(r) - 1)] if r else None for r in ranked]})
    return found[:count]


def compile_host(problem: ConvProblem, direction: Direction, algorithm: str = "auto", layout: str = "NCHW",
                 config: dict | None = None, sanitize: bool = False, tune: int = 0) -> HostKernel:
    """`tune=N` measures up to N (<= 32) candidates and remembers the winner in the cache folder;
    later compiles of the same problem reuse it. `config` pins the algorithm and stage configs."""
    if problem.dtypes != ("f32", "f32", "f32", "f32"):
        raise ValueError(f"target 'host' supports float32 only (dtypes f32,f32,f32,f32), got {problem.dtypes}")
    layout = check_layout(layout)
    config = _check_config(config)
    if isinstance(tune, bool) or not isinstance(tune, int) or not 0 <= tune <= measure.MAX_CANDIDATES:
        raise ValueError(f"tune must be an int in [0, {measure.MAX_CANDIDATES}], got {tune!r}")
    if "algorithm" in config:
        if algorithm not in ("auto", config["algorithm"]):
            raise ValueError(f"algorithm {algorithm!r} contradicts config algorithm {config['algorithm']!r}")
        algorithm = config["algorithm"]
    if algorithm != "auto" and algorithm not in algorithms(direction):
        raise ValueError(f"algorithm must be 'auto' or one of {algorithms(direction)} for {direction}, "
                         f"got {algorithm!r}")
    toolchain.compiler()  # a clear error before any work when there is no compiler
    if config.get("stages") is not None:
        if algorithm == "auto":
            raise ValueError("config with 'stages' needs an explicit algorithm")
        return _build(problem, direction, layout, {"algorithm": algorithm, "stages": config["stages"]},
                      "config given by the caller", sanitize)
    key = measure.record_key(problem, direction, layout) + f"|{algorithm}"
    record = measure.lookup(key)
    if record is not None and record.get("requested", 0) >= tune:
        try:
            return _build(problem, direction, layout, record["config"],
                          f"measured earlier: best of {record['candidates']} candidates (cached)", sanitize)
        except (ValueError, KeyError, TypeError):
            pass  # a record from an older config space: measure or fall back to the heuristic
    algs = candidate_algorithms(problem, direction) if algorithm == "auto" else [algorithm]
    if tune:
        found = candidates(problem, direction, layout, algs, tune)
        kernel, count = measure.best_of(found, lambda c: _build(problem, direction, layout, c, "", sanitize))
        measure.remember(key, {"config": kernel.config, "candidates": count, "requested": tune})
        kernel.provenance = f"measured: best of {count} candidates"
        return kernel
    how = f"algorithm {algs[0]} by heuristic" if algorithm == "auto" else f"algorithm {algorithm} given"
    return _build(problem, direction, layout, {"algorithm": algs[0], "stages": None},
                  f"{how}; stage configs by heuristic", sanitize)
