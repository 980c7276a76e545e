"""Accelerator backend: plans for every direction lowered to instruction programs for a target file,
run on the simulator (`convforge.sim`).

`compile_accel(problem, direction, target, algorithm=None, vendor=False, tile=None)`:
* `algorithm` — a plan algorithm the backend lowers (ALGORITHMS); default: the ConvForge choice;
* `vendor=True` — the vendor baseline re-implemented: the vendor's tiling (Gemmini tiled_conv_auto,
  VTA's minimum-DRAM-bytes schedule with channels packed to 16) and the vendor's algorithm;
* `tile` — force one `Tile` for every core; otherwise a small search over legal tiles with the
  timing-only simulator picks it (seeded with the bound-derived tile and the vendor tile).
"""

from __future__ import annotations

from ...plan import plan as make_plan
from ...problem import ConvProblem, Direction
from ...sim.machine import Machine
from ...targets import load
from . import tiling
from .jobs import CoreJob, normalize
from .kernel import AccelKernel, elem_bytes, tensor_dtypes
from .lower import Lowering, Tile

ALGORITHMS = {
    Direction.fwd: ("direct", "trim", "im2col_gemm"),
    Direction.bwd_data: ("phase_split", "fwd_reuse", "gemm_col2im"),
    Direction.bwd_weight: ("phase_split", "direct", "trim", "fwd_reuse", "im2col_gemm"),
}
VENDOR = {  # what the vendor stacks do (reference/targets.md §1.6, §2.7, §3.7)
    "gemmini": {Direction.fwd: "direct", Direction.bwd_data: "fwd_reuse", Direction.bwd_weight: "direct"},
    "vta": {Direction.fwd: "direct", Direction.bwd_data: "fwd_reuse", Direction.bwd_weight: "direct"},
    "davinci": {Direction.fwd: "im2col_gemm", Direction.bwd_data: "gemm_col2im",
                Direction.bwd_weight: "im2col_gemm"},
}


def _emitter(target):
    if target.isa == "gemmini":
        from .emit_gemmini import GemminiEmitter

        return GemminiEmitter(target)
    if target.isa == "vta":
        from .emit_vta import VtaEmitter

        return VtaEmitter(target)
    from .emit_davinci import DavinciEmitter

    return DavinciEmitter(target)


def default_algorithm(p: ConvProblem, direction: Direction, target) -> str:
    if direction is Direction.fwd:
        if target.isa == "vta" and p.c // p.groups < 16 and p.r * p.s > 1:
            return "im2col_gemm"  # fold R*S into the reduction: C*R*S fills the 16-wide block
        return "direct"
    return "phase_split"


def compile_accel(problem: ConvProblem, direction, target="gemmini", algorithm: str | None = None,
                  vendor: bool = False, tile: Tile | None = None, search: bool = True) -> AccelKernel:
    if not isinstance(problem, ConvProblem):
        raise TypeError(f"problem must be a ConvProblem, got {type(problem).__name__}")
    direction = Direction.of(direction)
    t = load(target)
    t.check_dtypes(problem.dtypes)
    if algorithm is None:
        algorithm = VENDOR[t.isa][direction] if vendor else default_algorithm(problem, direction, t)
    if algorithm not in ALGORITHMS[direction]:
        raise ValueError(f"algorithm {algorithm!r} is not lowered for {direction} on accelerators; "
                         f"choose one of {ALGORITHMS[direction]}")
    layouts = {"x": t.layouts["activation"], "w": t.layouts["weight"], "y": t.layouts["activation"]}
    plan = make_plan(problem, direction, algorithm, layouts=layouts)
    emitter = _emitter(t)
    stages = normalize(plan)
    dtypes = tensor_dtypes(plan, stages, problem.dtypes[0], problem.dtypes[2])
    lowering = Lowering(emitter, elem_bytes(dtypes))
    chosen: list[dict] = []
    provenance = set()
    for stage in stages:
        if isinstance(stage, CoreJob):
            core_tile, how = _choose(stage, emitter, t, vendor, tile, search, elem_bytes(dtypes))
            chosen.append(core_tile.as_dict())
            provenance.add(how)
            lowering.core(stage, core_tile)
        else:
            lowering.movement(stage)
    config = {"target": t.name, "algorithm": algorithm, "vendor": vendor, "tiles": chosen}
    return AccelKernel(problem, direction, t, plan, lowering.finish(), layouts, dtypes, config,
                       "+".join(sorted(provenance)) or "no cores", getattr(emitter, "constants", {}))


def _choose(job: CoreJob, emitter, target, vendor: bool, forced: Tile | None, search: bool, eb) -> tuple[Tile, str]:
    g = job.geometry
    if forced is not None:
        return forced.clamp(g), "given"
    if vendor:
        return emitter.vendor_tile(g), "vendor"
    seeds = {"bound-derived": emitter.bound_tile(g)}
    seeds["vendor"] = emitter.vendor_tile(g)
    if not search:
        return seeds["bound-derived"], "bound-derived"
    pool = [(how, s) for how, s in seeds.items()] + [("searched", c) for c in tiling.candidates(g, emitter)]
    best = None
    for how, cand in pool:
        low = Lowering(type(emitter)(target), eb)  # a fresh emitter: lowering state stays apart
        low.core(job, cand)
        stats = Machine(target, None, functional=False, explicit_sync=target.isa == "vta").run(low.finish())
        key = (stats.cycles, stats.dram_bytes)
        if best is None or key < best[0]:
            best = (key, cand, how)
    return best[1], best[2]
