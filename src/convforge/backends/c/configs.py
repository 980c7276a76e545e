"""Config spaces of the generated stages and the heuristic that ranks their points.

Each stage kind declares its knobs as a `Space` (what a tuner searches); `ranked_stage_configs`
orders a stage's points by a small cost model: padding waste, loads per FMA in the register block,
and the pack passes a choice needs (a moved element priced in multiply-adds, higher once the
activations no longer fit in cache). `default_stage_config` is its first choice.
"""

from __future__ import annotations

import math

from ...layouts import Expr, IndexMap
from ...plan import ConvCore, Gemm
from ...problem import Direction
from .cores import STYLES
from .emit import row_major_offset
from .space import Knob, Space

REGISTERS = 32  # zmm/ymm registers; the accumulator block plus loaded operands must fit
# multiply-adds per element moved by a pack pass: cheap while the activations stay in cache, a
# memory-bound pass beyond (measured on ResNet-50 1x1 layers, N=1 vs N=8)
MOVE_COST_CACHED, MOVE_COST_MEMORY, CACHED_BYTES = 10, 60, 16 << 20
SPATIAL_PENALTY = 1.6  # the spatial core's FMA rate relative to the blocked core (measured)
SLICE_BYTES = 4 << 20  # activations and packs of one batch slice (measured: conv1 N=8 bwd_data 19 -> 15 ms)
# a weight gradient is sliced only when its packs are this large (measured on ResNet-50 N=8: conv1, 29 MB of
# packs, and res3a_branch2{a,b}_v1.5, 12-16 MB, ran 3-10 % faster sliced; 1x1 layers with 3-6 MB 4-15 % slower)
WGRAD_SLICE_PACKS = 12 << 20
L2_BYTES = 1 << 20  # per core: an operand larger than this is re-read from L3 each time a task order sweeps it
TASKS_PER_CORE = 16  # parallel tasks a core wants per run, enough for a dynamic schedule to balance
WIDE_TILE = 12  # output columns a fwd tile needs to read and write NCHW rows in place (48 of a 64-byte line)


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


# ---------------------------------------------------------------------- config spaces
def style_knob(v: int) -> Knob:
    return Knob("style", STYLES if v == 16 else STYLES[:1], "GCC vector extensions or AVX-512 intrinsics")


def fwd_space(v: int) -> Space:
    return Space("conv_fwd", (
        Knob("core", ("fwd",)),
        style_knob(v),
        Knob("qb", (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 14, 16, 24, 28), "output columns per register block"),
        Knob("kb", (1, 2, 3, 4), f"output channel blocks of {v} per register block"),
        Knob("order", ("nkp", "knp", "npk"), "task loop order (image, k-block group, output row), outer first"),
    ), lambda c: c["qb"] * c["kb"] + c["kb"] <= REGISTERS - 1)  # + one broadcast register


def wgrad_space(v: int) -> Space:
    return Space("conv_wgrad", (
        Knob("core", ("wgrad",)),
        style_knob(v),
        Knob("nb", (1, 2, 3, 4, 6, 8, 12), "core-batch rows (dW input channels) per register block"),
        Knob("qb", (1, 2, 3, 4, 5, 7), "output taps per register block"),
        Knob("kb", (1, 2), f"output channel blocks of {v} per register block"),
    ), lambda c: 2 <= c["nb"] * c["qb"] * c["kb"] <= 28 or c["nb"] * c["qb"] * c["kb"] == 1)


def spatial_space(v: int) -> Space:
    return Space("conv_spatial", (
        Knob("core", ("spatial",)),
        style_knob(v),
        Knob("qv", (1, 2, 3, 4, 5, 6, 7, 8), f"vectors of {v} output columns per register block"),
        Knob("kb", (1, 2, 3, 4, 6, 8), "output channels per register block"),
    ), lambda c: c["qv"] * c["kb"] + c["kb"] + 1 <= REGISTERS)


def gemm_space() -> Space:
    return Space("gemm", (Knob("mr", (1, 2, 4, 6, 8)), Knob("nr", (1, 2, 3))),
                 lambda c: c["mr"] * c["nr"] + c["nr"] <= REGISTERS - 2)


def unit_columns(g) -> bool:
    """Consecutive output columns read consecutive packed columns (a 1-tap axis folds its stride)."""
    return g.stride[1] == 1 or g.s == 1


def stage_spaces(stage, v: int) -> dict[str, Space]:
    if isinstance(stage, ConvCore):
        spaces = {"fwd": fwd_space(v), "wgrad": wgrad_space(v)}
        if unit_columns(stage.geometry):
            spaces["spatial"] = spatial_space(v)
        return spaces
    if isinstance(stage, Gemm):
        return {"gemm": gemm_space()}
    return {}


def default_stage_config(stage, v: int) -> dict | None:
    """The heuristic: the register block with the best ratio of FMAs to loads, with little padding."""
    ranked = ranked_stage_configs(stage, v, 1)
    return ranked[0] if ranked else None


def ranked_stage_configs(stage, v: int, count: int) -> list[dict]:
    """The `count` best configs of a stage by the cost formula (the other core kind included)."""
    if isinstance(stage, Gemm):
        first = {"mr": 6, "nr": 2 if stage.n > v else 1}
        return [first] + [c for c in gemm_space() if c != first and c["mr"] >= 4][:count - 1]
    if not isinstance(stage, ConvCore):
        return []
    g = stage.geometry
    kgb = ceil_div(g.k // g.groups, v)
    if g.r * g.s > g.p * g.q:  # the weight-gradient shape: a huge filter, a tiny output
        def wcost(c):
            if kgb % c["kb"] and c["kb"] > 1:
                return float("inf"), 0
            waste = (ceil_div(g.n, c["nb"]) * c["nb"] / g.n) * (ceil_div(g.q, c["qb"]) * c["qb"] / g.q) \
                * (ceil_div(kgb, c["kb"]) * c["kb"] / kgb) * kgb * v / (g.k // g.groups)
            block = c["nb"] * c["qb"] * c["kb"]
            loads = c["kb"] + c["nb"] * c["qb"]  # every broadcast FMA reads memory: keep loads <= FMAs
            return waste * max(1.0, loads / block) * (1 + 2 / block) + moves(c), -block
    else:
        wcost = None

    kg = g.k // g.groups
    lanes = kgb * v / kg  # vector lanes per useful output channel
    dense = g.n * g.k * (g.c // g.groups) * g.r * g.s * g.p * g.q

    def moves(c):
        """Pack and unpack passes in units of the core's work."""
        x_direct, y_direct = direct_io(stage, c, v)
        elements = (0 if x_direct else math.prod(g.x_shape)) + (0 if y_direct else math.prod(g.y_shape))
        cached = 4 * (math.prod(g.x_shape) + math.prod(g.y_shape)) < CACHED_BYTES
        return (MOVE_COST_CACHED if cached else MOVE_COST_MEMORY) * elements / dense

    def fcost(c):
        if kgb % c["kb"] and c["kb"] > 1:  # padded channel blocks cost FMAs and a slower weight pack
            return float("inf"), 0
        waste = (ceil_div(g.q, c["qb"]) * c["qb"] / g.q) * (ceil_div(kgb, c["kb"]) * c["kb"] / kgb) * lanes
        block, loads = c["qb"] * c["kb"], c["qb"] + c["kb"]
        sweeps = MOVE_COST_CACHED * rereads(g, c, v) / dense
        return waste * max(1.0, loads / block) * (1 + 4 / block) + moves(c) + sweeps, -c["kb"]

    def scost(c):
        width = c["qv"] * v
        waste = (ceil_div(g.q, width) * width / g.q) * (ceil_div(kg, c["kb"]) * c["kb"] / kg)
        block, loads = c["qv"] * c["kb"], c["qv"] + c["kb"]
        return waste * max(1.0, loads / block) * (1 + 4 / block) * SPATIAL_PENALTY + moves(c), -block

    def top(space, cost, n):  # intrinsics rank just behind the same block in vector extensions
        cost = (lambda c, base=cost: (base(c)[0] * (1.001 if c["style"] != STYLES[0] else 1), base(c)[1]))
        return sorted(((cost(c), i, c) for i, c in enumerate(space) if cost(c)[0] != float("inf")),
                      key=lambda t: t[:2])[:n]
    if wcost is not None:  # the weight-gradient shape: mostly wgrad blocks, one fwd block for contrast
        return [c for *_, c in top(wgrad_space(v), wcost, max(1, count - 1))] + \
            [c for *_, c in top(fwd_space(v), fcost, 1 if count > 1 else 0)]
    ranked = top(fwd_space(v), fcost, count)
    if unit_columns(g):
        ranked = sorted(ranked + top(spatial_space(v), scost, count), key=lambda t: t[0])
    return [c for *_, c in ranked[:count]]


def batch_slices(plan, program) -> int:
    """How many slices of the batch the kernel runs one after the other: when the program packs
    activations and the batch's activations and packs overflow SLICE_BYTES, slices small enough
    to fit (a divisor of N), so that every pack is read back from cache. Each slice re-touches the
    weights: fwd and bwd_data re-pack the filter (a transposing pass: sliced while the filter is at
    most 1/8 of a slice's bytes); a weight gradient made only of wgrad cores, with packs of at least
    WGRAD_SLICE_PACKS, keeps its partial sums in the core's output across slices (a plain pass:
    sliced while dW is at most 1/2 of a slice's bytes)."""
    reduces = plan.direction is Direction.bwd_weight
    weight_sized = "_y" if reduces else "_w"  # the scratch that scales with the weights, not the batch
    packs = sum(n for name, n in program.scratch.items() if not name.endswith(weight_sized))
    if plan.problem.n == 1 or not packs or (reduces and any(c.get("core") != "wgrad" for c in program.stage_configs)):
        return 1
    weights = sum(b.nbytes for b in plan.buffers if b.name == "w")
    batch = sum(b.nbytes for b in plan.buffers) - weights + 4 * packs
    n = plan.problem.n
    slices = next(k for k in range(1, n + 1) if n % k == 0 and (batch / k <= SLICE_BYTES or k == n))
    if reduces and 4 * packs < WGRAD_SLICE_PACKS:  # small packs gain little; each slice costs a parallel
        return 1  # region, a partial-sum round trip and a tail of unbalanced tasks
    return slices if weights * (2 if reduces else 8) <= batch / slices else 1


def wgrad_schedule(g, config: dict, v: int, kgroups: int, nblk: int, qblocks: int) -> tuple[int, int]:
    """Reduction rows per chunk (the filter slice of one k-block group fills half of L2) and core-batch
    spans per k-block group (just enough tasks to balance: each span re-reads the filter).
    Measured on ResNet-50 N=8 weight gradients: L2-sized chunks beat L1-sized ones (longer
    streams), 16 tasks beat one task per register block (res5x_branch2b 4.4 vs 5.0 ms)."""
    chunk = max(1, L2_BYTES // 2 // (4 * config["kb"] * v * g.s))
    spans = min(nblk, ceil_div(TASKS_PER_CORE, g.groups * kgroups * g.p * qblocks))
    return chunk, spans


def rereads(g, config: dict, v: int) -> int:
    """Operand elements the fwd core's task order reads again from beyond L2 (first reads excluded):
    `npk` sweeps all weights per row tile, `nkp` the image per k-block group and the weights per
    image, `knp` the whole batch per k-block group."""
    cg, kg = g.c // g.groups, g.k // g.groups
    image, weights = cg * g.h * g.w, kg * cg * g.r * g.s  # per image and group
    kgroups, tiles = ceil_div(ceil_div(kg, v), config["kb"]), g.p * ceil_div(g.q, config["qb"])

    def spill(elements: int, times: int) -> int:
        return 0 if 4 * elements <= L2_BYTES else elements * (times - 1)
    per_group = {"npk": spill(weights, g.n * tiles),
                 "nkp": g.n * spill(image, kgroups) + spill(weights, g.n),
                 "knp": spill(g.n * image, kgroups)}[config["order"]]
    return g.groups * per_group


def is_plain(view: IndexMap) -> bool:
    """The view reads its buffer in its own row-major order: the buffer itself, reshaped."""
    vars_ = [Expr.var(i, e) if e > 1 else Expr.constant(0) for i, e in enumerate(view.out_shape)]
    return (not view.conditions and math.prod(view.out_shape) == math.prod(view.src_shape)
            and view.flat_offset().substitute(vars_) == row_major_offset(vars_, view.out_shape))


def view_strides(view: IndexMap) -> tuple[int, ...] | None:
    """Per-axis element strides of a view that is one affine walk from element 0, else None."""
    strides = view.strides()
    origin = view.flat_offset().substitute([Expr.constant(0)] * len(view.out_shape))
    if view.conditions or None in strides or origin != Expr.constant(0):
        return None
    return strides


def dense_rows(view: IndexMap, column_step: int) -> bool:
    """The view walks its buffer affinely with unit steps along its rows: readable in place."""
    strides = view_strides(view)
    return strides is not None and strides[3] * column_step == 1


def unpadded(g, qb: int) -> bool:
    """The core reads only real input pixels with whole register tiles per row: no pack needed."""
    return g.input_dilation == (1, 1) and g.offset == (0, 0) and g.q % qb == 0 and (
        (g.p - 1) * g.stride[0] + (g.r - 1) * g.dilation[0] < g.h
        and (g.q - 1) * g.stride[1] + (g.s - 1) * g.dilation[1] < g.w)


def direct_io(stage: ConvCore, config: dict, v: int) -> tuple[bool, bool]:
    """Whether the core can read x and write y in the caller's buffers (no pack passes)."""
    g = stage.geometry
    if config.get("core") == "fwd":  # in place, a register tile touches qb columns of every channel plane:
        wide = config["qb"] >= WIDE_TILE  # narrower tiles leave most of each cache line to other tasks
        return wide and is_plain(stage.x.view) and unpadded(g, config["qb"]), wide and is_plain(stage.y.view)
    if config.get("core") == "wgrad":  # x through its strides (the transposed activations of dW), when
        in_place = dense_rows(stage.x.view, g.stride[1])  # its rows are dense: k-block groups re-read them
        return in_place and unpadded(g, config["qb"]) and g.n % config["nb"] == 0, False
    if config.get("core") != "spatial":
        return False, False
    # no padded columns: packed rows are the caller's rows; with one input row (h == 1) the packed
    # [N][G][H][C][W] layout is the caller's NCHW
    whole_rows = g.q % (config["qv"] * v) == 0
    x_plain = whole_rows and is_plain(stage.x.view) and (
        g.r, g.s, g.stride, g.offset, g.input_dilation, g.h, g.w) == (1, 1, (1, 1), (0, 0), (1, 1), 1, g.q)
    y_plain = whole_rows and is_plain(stage.y.view) and (g.k // g.groups) % config["kb"] == 0
    return x_plain, y_plain
