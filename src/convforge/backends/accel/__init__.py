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

import math

from ...plan import plan as make_plan
from ...problem import ConvProblem, Direction
from ...sim.machine import Machine
from ...targets import load
from . import tiling
from .jobs import CoreJob, normalize
from .kernel import AccelKernel, elem_bytes, tensor_dtypes
from .lower import Lowering, Tile
from .vendor_plans import GEMMINI_PLANS, PIXEL_REPEATS, davinci_gemm_col2im, few_channels

ALGORITHMS = {
    Direction.fwd: ("direct", "trim", "im2col_gemm"),
    Direction.bwd_data: ("phase_split", "fwd_reuse", "gemm_col2im", "direct", "trim"),  # direct/trim: stride 1
    Direction.bwd_weight: ("phase_split", "direct", "trim", "fwd_reuse", "im2col_gemm"),
}
EXTRA = {"gemmini": {Direction.fwd: tuple(GEMMINI_PLANS)}}  # target-specific forms (vendor_plans)
# the tile search lowers and simulates candidates (best estimate first) until it has spent this many
# instructions: a few seconds of host time per core, whatever the layer size
SEARCH_INSTRUCTIONS = 200_000
VENDOR = {  # what the vendor stacks do (reference/targets.md §1.6, §2.7, §3.7)
    "gemmini": {Direction.fwd: "direct", Direction.bwd_data: "fwd_reuse", Direction.bwd_weight: "direct"},
    "vta": {Direction.fwd: "direct", Direction.bwd_data: "fwd_reuse", Direction.bwd_weight: "direct"},
    "davinci": {Direction.fwd: "im2col_gemm", Direction.bwd_data: "gemm_col2im",
                Direction.bwd_weight: "im2col_gemm"},
}


def _emitter(target, vendor: bool = False):
    if target.isa == "gemmini":
        from .emit_gemmini import GemminiEmitter

        return GemminiEmitter(target, vendor_loops=vendor)
    if target.isa == "vta":
        from .emit_vta import VtaEmitter

        return VtaEmitter(target)
    from .emit_davinci import DavinciEmitter

    return DavinciEmitter(target)


def vendor_algorithm(p: ConvProblem, direction: Direction, target) -> str:
    """What the vendor stack runs. Gemmini's transposed conv uses input_dilation = stride by index math:
    at stride 1 that is a plain conv with flipped, transposed weights (views, `direct`); at stride 2 we
    materialize the zero insertion (`fwd_reuse`), as the lowering has no on-chip input dilation.
    Forward convs with C <= DIM / 2 take tiled_conv's first-layer path (`pixel_repeats`)."""
    isa = target.isa
    if isa == "gemmini" and direction is Direction.bwd_data and p.stride == (1, 1):
        return "direct"
    if isa == "gemmini" and direction is Direction.fwd and few_channels(p, target.intrinsic["k"]):
        return PIXEL_REPEATS
    return VENDOR[isa][direction]


def lowered(direction: Direction, isa: str) -> tuple[str, ...]:
    """The algorithms compile_accel lowers for `direction` on an ISA (generic plans, then the ISA's own)."""
    return ALGORITHMS[direction] + EXTRA.get(isa, {}).get(direction, ())


def compile_accel(problem: ConvProblem, direction, target="gemmini", algorithm: str | None = None,
                  vendor: bool = False, tile: Tile | None = None, search: bool = True) -> AccelKernel:
    """A kernel for `problem` / `direction` on `target` (a shipped name or a .toml path).

    With no `algorithm` (and not `vendor`), every algorithm the backend lowers for the direction is
    compiled and the one the timing-only simulator finds fastest is kept (provenance says which)."""
    if not isinstance(problem, ConvProblem):
        raise TypeError(f"problem must be a ConvProblem, got {type(problem).__name__}")
    direction = Direction.of(direction)
    t = load(target)
    t.check_dtypes(problem.dtypes)
    if algorithm is not None and algorithm not in lowered(direction, t.isa):
        raise ValueError(f"algorithm {algorithm!r} is not lowered for {direction} on {t.name}; "
                         f"choose one of {lowered(direction, t.isa)}")
    if vendor:
        return _compile(problem, direction, t, algorithm or vendor_algorithm(problem, direction, t), True,
                        tile, search)
    if algorithm is not None:
        return _compile(problem, direction, t, algorithm, False, tile, search)
    best, errors = None, []
    for name in lowered(direction, t.isa):
        if name == "trim" or (name == "direct" and direction is not Direction.fwd):
            continue  # phase_split trims and covers them
        try:
            kernel = _compile(problem, direction, t, name, False, tile, search)
        except ValueError as err:
            errors.append(f"{name}: {err}")
            continue
        if best is None or kernel.stats.cycles < best.stats.cycles:
            best = kernel
    if best is None:
        raise ValueError(f"no algorithm lowers {problem} {direction} on {t.name}: {'; '.join(errors)}")
    best.provenance = f"auto({best.algorithm}): {best.provenance}"
    return best


def _compile(problem: ConvProblem, direction: Direction, t, algorithm: str, vendor: bool, tile: Tile | None,
             search: bool) -> AccelKernel:
    layouts = {"x": t.layouts["activation"], "w": t.layouts["weight"], "y": t.layouts["activation"]}
    if t.isa == "davinci" and algorithm == "gemm_col2im":
        plan = davinci_gemm_col2im(problem, layouts)  # AKG's fractal column layout
    elif t.isa == "gemmini" and algorithm in GEMMINI_PLANS:
        plan = GEMMINI_PLANS[algorithm](problem, layouts, t.intrinsic["k"])
    else:
        plan = make_plan(problem, direction, algorithm, layouts=layouts)
    emitter = _emitter(t, vendor)
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
    try:
        seeds["vendor"] = emitter.vendor_tile(g)
    except ValueError:
        pass  # the vendor's schedule has no tile for this core (e.g. VTA with a 56x56 "filter")
    ranked = emitter.candidates(g) if hasattr(emitter, "candidates") else tiling.candidates(g, emitter)
    pool = [(how, s) for how, s in seeds.items()] + [("searched", c) for c in ranked]
    if not search:  # rank by the analytic estimate only (no simulation)
        how, cand = min(pool, key=lambda e: tiling.estimate(g, e[1], emitter.dim))
        return cand, how
    estimate = getattr(emitter, "estimate", None)
    if estimate is not None:  # likely winners first, so that losers are given up early
        pool.sort(key=lambda e: estimate(g, e[1]))
    results, fastest, spent = [], math.inf, 0
    for how, cand in pool:
        if results and spent >= SEARCH_INSTRUCTIONS:
            break
        if estimate is not None and estimate(g, cand) > 2 * fastest:
            continue  # its busiest engine alone needs about twice the best makespan found
        low = Lowering(type(emitter)(target), eb)  # a fresh emitter: lowering state stays apart
        low.core(job, cand)
        program = low.finish()
        spent += len(program)
        stats = Machine(target, None, functional=False, explicit_sync=target.isa == "vta").run(
            program, give_up_after=fastest * 1.005)
        if stats is not None:
            results.append((stats.cycles, stats.dram_bytes, cand, how))
            fastest = min(fastest, stats.cycles)
    # within 0.5% of the fastest, move the fewest DRAM bytes
    _, _, cand, how = min((r for r in results if r[0] <= fastest * 1.005), key=lambda r: (r[1], r[0]))
    return cand, how
