"""Lower a plan + config to a host program: generated C glue, compute cores and a call list.

Stage rewrites first (`lowered_stages`): a Transform whose scratch feeds exactly one conv-core
operand is fused into that operand's pack (one pass, no scratch); zero fills of the output become
one contiguous clear up front; pointwise cores run over flattened H*W rows.

Per stage:
- `Transform`  one gather loop of its composed map.
- `ZeroFill`   one store loop over its map.
- `ScatterAdd` clear the destination, then one accumulating loop (col2im).
- `Gemm`       pack A and B through their views (padded to the register block), `cf_gemm`, then
               scatter C through its view.
- `ConvCore`   pack x and w through their views into blocked, zero-padded buffers (the stride of
               a 1-tap axis folded into the pack), run the `fwd`, `wgrad` or `spatial` core,
               scatter the result through y's view (e.g. the stride-phase interleave). Rows that
               are structurally zero (trimmed taps, zeros a fused conversion inserted) are skipped
               by the core. A core reads the caller's tensor in place when no padding is needed
               (fwd and spatial: NCHW rows; wgrad: the activations through their strides) and the
               fwd and spatial cores write NCHW in place, so 1x1 layers move no data besides the filter.
               Identical packs are made once: over a batch, the stride phases of bwd_data read their
               taps of one pack of the whole filter (the plan's Lattice hint).
With `slice_sums` (a weight gradient run slice by slice over the batch) the wgrad cores' outputs
are cleared once before the first slice, add up every slice's partial sums, and are scattered to
dW once after the last.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from ...layouts import Condition, Expr, IndexMap
from ...plan import ConvCore, CoreGeometry, Gemm, Operand, Plan, ScatterAdd, Transform, ZeroFill
from .configs import (
    ceil_div,
    default_stage_config,
    dense_rows,
    direct_io,
    stage_spaces,
    unpadded,
    view_strides,
    wgrad_schedule,
)
from .cores import FwdCore, GemmCore, SpatialCore, WgradCore
from .emit import MINMAX, PRELUDE, TILE_HELPERS, Copy, copy_loop, row_major_offset


# ---------------------------------------------------------------------- the program
@dataclass
class Call:
    library: str  # "glue" or the key of a core in Program.cores
    symbol: str
    buffers: tuple[str, ...]
    params: np.ndarray | None = None  # int64 geometry for a core
    mask: np.ndarray | None = None  # uint8 row mask for a core
    when: str = "slice"  # run for each slice of the batch, or once "before" / "after" all slices


@dataclass
class Program:
    glue: list[str] = field(default_factory=list)
    cores: dict[str, str] = field(default_factory=dict)
    scratch: dict[str, int] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    stage_configs: list[dict] = field(default_factory=list)
    packs: dict[str, tuple[str, Copy]] = field(default_factory=dict)  # scratch name -> (source, copy) that filled it
    slice_sums: bool = False  # a weight gradient over one slice of the batch: partial sums add up across slices

    @property
    def glue_source(self) -> str:
        return PRELUDE + MINMAX + TILE_HELPERS + "\n".join(self.glue)

    def copy(self, copy: Copy, dst: str, src: str, when: str = "slice") -> None:
        name = f"cf_copy_{len(self.glue)}"
        self.glue.append(copy_loop(name, copy))
        self.calls.append(Call("glue", name, (dst, src), when=when))

    def pack(self, copy: Copy, name: str, src: str) -> str:
        """A scratch buffer holding `copy` of `src`; an identical pack made earlier is reused."""
        for made, what in self.packs.items():
            if what == (src, copy):
                return made
        self.packs[self.buffer(name, math.prod(copy.shape))] = (src, copy)
        self.copy(copy, name, src)
        return name

    def buffer(self, name: str, elements: int) -> str:
        self.scratch[name] = elements
        return name

    def core(self, core, a: str, b: str, c: str, params: list[int], mask: np.ndarray | None) -> None:
        source = core.source()
        key = f"{type(core).__name__}:{core}"
        self.cores[key] = source
        self.calls.append(Call(key, core.symbol, (a, b, c), np.asarray(params, dtype=np.int64),
                               np.ones(1, np.uint8) if mask is None else mask.astype(np.uint8)))


def lowered_stages(plan: Plan) -> list:
    """The stages a program runs: the plan's, with single-use transforms fused into core reads,
    output lines that read only inserted zeros skipped, the zero fills of the output merged into
    one contiguous clear up front, and 1x1-output cores packing the smaller of image and filter."""
    stages = _fuse_transforms(plan)
    # the cores of a complete set of stride phases are kept as they are: they may share one output
    kept = {id(stages[i]) for i in complete_phases(stages)}
    stages = _merge_zero_fills(plan, _skip_zero_lines(stages, kept))
    return [s if id(s) in kept else _flattened(_pack_smaller_side(s)) for s in stages]


def complete_phases(stages: list) -> set[int]:
    """Indices of the cores that, with others, write every stride phase of one output (each
    core's output_phase hint one coset of the same lattice)."""
    sets: dict[int, list[int]] = {}
    for i, s in enumerate(stages):
        if isinstance(s, ConvCore) and s.output_phase is not None:
            same = next((j for j in sets if stages[j].output_phase.full == s.output_phase.full), i)
            sets.setdefault(same, []).append(i)
    found = set()
    for members in sets.values():
        if len({_cosets(stages[m]) for m in members}) == 1 and len(members) == _cosets(stages[members[0]]) > 1:
            found.update(members)
    return found


def _cosets(stage: ConvCore) -> int:
    """How many phases the output lattice of `stage` has (row step x column step)."""
    return stage.output_phase.rows[1] * stage.output_phase.cols[1]


def _pack_smaller_side(stage):
    """A core with a 1x1 output (the weight gradient of a 1x1 conv) is symmetric in image and
    filter: y[n, k] = sum over (c, r, s) of window[n, c, r, s] * w[k, c, r, s]. The core packs its
    filter and reads the image in place where it can; swap the two when that packs fewer elements
    (vectors then run over the other operand's rows, which must fill whole vectors of 16)."""
    if not isinstance(stage, ConvCore):
        return stage
    g = stage.geometry
    groups, cg, kg = g.groups, g.c // g.groups, g.k // g.groups
    if (g.p, g.q) != (1, 1) or g.n % 16:
        return stage
    window, weights = g.n * g.c * g.r * g.s, g.k * cg * g.r * g.s
    swapped_cost = window + (0 if dense_rows(stage.w.view, 1) else weights)
    if swapped_cost >= weights + (0 if dense_rows(stage.x.view, g.stride[1]) and unpadded(g, 1) else window):
        return stage
    swapped = CoreGeometry(kg, g.c, groups * g.n, g.r, g.s, g.r, g.s, 1, 1, groups=groups)

    def image(kl, c, r, s):  # the filter, one "image" per output channel of a group
        return ((c // cg) * kg + kl, c % cg, r, s)

    def filter_(gn, cl, r, s):  # the input window of every image, one "output channel" per image
        h, ch = _spatial_axis(r * g.dilation[0], g.offset[0], g.input_dilation[0])
        w, cw = _spatial_axis(s * g.dilation[1], g.offset[1], g.input_dilation[1])
        return (gn % g.n, (gn // g.n) * cg + cl, h, w), ch + cw

    def output(kl, gn, i, j):
        return (gn % g.n, (gn // g.n) * kg + kl, i, j)

    def operand(old: Operand, shape, old_shape, fn, name) -> Operand:
        return Operand(old.buffer, old.view.then(IndexMap.build(shape, old_shape, fn, name)))
    return ConvCore(swapped, operand(stage.w, swapped.x_shape, g.w_shape, image, "filter as image"),
                    operand(stage.x, swapped.w_shape, g.x_shape, filter_, "window as filter"),
                    operand(stage.y, swapped.y_shape, g.y_shape, output, "transpose NK"), stage.trim)


def _skip_zero_lines(stages: list, kept: set[int]) -> list:
    """Over a zero-inserted input (fwd_reuse), a 1-tap axis of a core has whole output rows or
    columns that read only inserted zeros (or padding). Compute only the others (every d-th, one
    affine subset) and clear the output first: the core then multiplies no inserted zero on that
    axis. Cores whose id is in `kept` stay whole."""
    lowered = []
    for stage in stages:
        if isinstance(stage, ConvCore) and id(stage) not in kept:
            skipped = _skip_axis(_skip_axis(stage, 0), 1)
            if skipped is not stage:
                lowered.append(ZeroFill(stage.y.buffer, stage.y.view))
            stage = skipped
        lowered.append(stage)
    return lowered


def _skip_axis(stage: ConvCore, axis: int) -> ConvCore:
    g = stage.geometry
    if (g.r, g.s)[axis] != 1 or g.stride[axis] != 1 or g.input_dilation[axis] != 1:
        return stage
    dim, extent, outputs = 2 + axis, g.x_shape[2 + axis], np.arange((g.p, g.q)[axis])
    src = outputs - g.offset[axis]
    inside = (src >= 0) & (src < extent)
    live = outputs[inside][_line_valid(stage.x.view, dim, extent)[src[inside]]]
    steps = np.unique(np.diff(live))
    if len(live) == 0 or len(live) == len(outputs) or len(steps) > 1:
        return stage
    t0, d, m = int(live[0]), int(steps[0]) if len(steps) else 1, len(live)

    def every(shape, start):  # index j along the axis -> start + d * j
        sub = tuple(m if a == dim else e for a, e in enumerate(shape))
        return IndexMap.build(sub, shape, lambda *i: tuple(v * d + start if a == dim else v for a, v in enumerate(i)),
                              f"every {d}th line from {start}")
    size = {"h": m, "p": m} if axis == 0 else {"w": m, "q": m}
    offset = (0, g.offset[1]) if axis == 0 else (g.offset[0], 0)
    return dataclasses.replace(
        stage, geometry=dataclasses.replace(g, offset=offset, **size), output_phase=None,
        x=Operand(stage.x.buffer, stage.x.view.then(every(g.x_shape, t0 - g.offset[axis]))),
        y=Operand(stage.y.buffer, stage.y.view.then(every(g.y_shape, t0))))


def _flattened(stage):
    """A pointwise core (1x1, unit stride, no padding) over H x W is the same core over one row of
    H*W pixels: long vector runs, and operands that are plain NCHW need no pack at all."""
    if not isinstance(stage, ConvCore):
        return stage
    g = stage.geometry
    pointwise = (g.r, g.s, g.stride, g.offset, g.input_dilation) == (1, 1, (1, 1), (0, 0), (1, 1))
    if not pointwise or (g.h, g.w) != (g.p, g.q) or g.h == 1 or stage.x.view.conditions:
        return stage  # (a conditional view may hold zero rows the core skips row by row)
    flat = dataclasses.replace(g, h=1, w=g.h * g.w, p=1, q=g.p * g.q)

    def rows(shape, width):
        return IndexMap.build((shape[0], shape[1], 1, shape[2] * shape[3]), shape,
                              lambda n, c, _, i: (n, c, i // width, i % width), "flatten HW")
    return dataclasses.replace(
        stage, geometry=flat, output_phase=None,
        x=Operand(stage.x.buffer, stage.x.view.then(rows(g.x_shape, g.w))),
        y=Operand(stage.y.buffer, stage.y.view.then(rows(g.y_shape, g.q))))


def _merge_zero_fills(plan: Plan, stages: list) -> list:
    """Phase-wise fills are strided stores; one full clear is contiguous. Valid because the plan's
    writes to its output are disjoint and nothing reads the output."""
    fills = [s for s in stages if isinstance(s, ZeroFill) and s.dst == plan.output]
    if not fills:
        return stages
    shape = plan.buffer(plan.output).shape
    clear = ZeroFill(plan.output, IndexMap.identity(shape, "clear output"))
    return [clear] + [s for s in stages if s not in fills]


def _fuse_transforms(plan: Plan) -> list:
    """Fold a Transform whose scratch result is read once, by a conv-core operand, into that read."""
    stages = list(plan.stages)
    scratch = {b.name for b in plan.buffers if b.role == "scratch"}

    def readers(name):
        found = []
        for i, s in enumerate(stages):
            if isinstance(s, ConvCore):
                found += [(i, role) for role in ("x", "w") if getattr(s, role).buffer == name]
            elif isinstance(s, Gemm):
                found += [(i, role) for role in ("a", "b") if getattr(s, role).buffer == name]
            elif isinstance(s, (Transform, ScatterAdd)) and s.src == name:
                found.append((i, "src"))
        return found

    for t in [s for s in stages if isinstance(s, Transform) and s.dst in scratch]:
        found = readers(t.dst)
        if len(found) == 1 and isinstance(stages[found[0][0]], ConvCore):
            i, role = found[0]
            operand = getattr(stages[i], role)
            fused = {role: Operand(t.src, t.index_map.then(operand.view))}
            if role == "w":
                fused["filter_taps"] = None  # the hint names the filter the transform read
            stages[i] = dataclasses.replace(stages[i], **fused)
            stages.remove(t)
    return stages


def _tail(expr: Expr, limit: int, blocked: int) -> list[Condition]:
    """The condition that keeps a blocked index inside its logical extent (none when blocks fit)."""
    return [Condition(expr, 0, limit)] if blocked != limit else []


def _spatial_axis(x: Expr, offset: int, dilation: int) -> tuple[Expr, list[Condition]]:
    """Packed (padded) row or column -> logical input index; inserted zeros become a condition."""
    shifted = x - offset
    if dilation == 1:
        return shifted, []
    return shifted // dilation, [Condition(shifted % dilation, 0, 1)]


def _line_valid(view: IndexMap, axis: int, extent: int) -> np.ndarray:
    """Which indices along `axis` survive the view's conditions that depend on that axis alone
    (the others: structural zeros, e.g. the inserted zeros of a fused zero insertion)."""
    index = np.arange(extent)
    valid = np.ones(extent, dtype=bool)
    env = [np.zeros(1, dtype=np.int64)] * len(view.out_shape)
    env[axis] = index
    for cond in view.conditions:
        if all(not cond.expr.uses(i) for i in range(len(env)) if i != axis):
            value = np.broadcast_to(cond.expr.evaluate(env), index.shape)
            valid &= (value >= cond.lo) & (value < cond.hi)
    return valid


def _row_mask(g, hp: int, row_step: int, trim: bool, packed: IndexMap, row_axis: int) -> np.ndarray:
    """Packed rows the core may skip: with `trim` the core's own padding and inserted zeros, and
    always the rows that the operand's (fused) conversions make structurally zero."""
    valid = _line_valid(packed, row_axis, hp)
    if trim:
        shifted = np.arange(hp) * row_step - g.offset[0]
        ih = g.input_dilation[0]
        valid &= (shifted % ih == 0) & (shifted // ih >= 0) & (shifted // ih < g.h)
    return valid


def _fwd_filter(stage: ConvCore, w_fn, v: int, kgp: int, cgb: int) -> tuple[Operand, IndexMap, list[int]]:
    """The fwd core's filter pack: (operand packed, pack map, element strides of group, k block,
    c block and c lane, then the taps' t0, tr, ts). Over a batch, a stride phase packs the whole
    filter (one pack shared by the phases: res5a_branch2b_v1.5 N=8 bwd_data 7.4 -> 6.8 ms) and
    reads its own taps of it; a single image reads each phase's taps once, from a compact pack of
    its own (strided taps of a large shared pack cost it more: 1.38 -> 1.42-1.8 ms)."""
    g = stage.geometry
    taps = stage.filter_taps if g.n > 1 else None
    operand = taps.full if taps is not None else stage.w
    (r0, rt), (s0, st) = (taps.rows, taps.cols) if taps is not None else ((0, 1), (0, 1))
    rf, sf = operand.view.out_shape[2:]
    lane = rf * sf * v
    pack = IndexMap.build((g.groups, kgp, cgb, v, rf, sf, v), operand.view.out_shape, w_fn, "pack OI[v]ihw[v]o")
    return operand, pack, [kgp * cgb * v * lane, cgb * v * lane, v * lane, lane, (r0 * sf + s0) * v, rt * sf * v,
                           st * v]


@dataclass
class SharedOutput:
    """The stride phases of one output, all on the fwd core, write their pixels into one blocked
    buffer [N][G][Kgp][H][W'][V] (W' >= W holds the phases' padded columns); one transposing pass
    then writes the caller's output, contiguous rows, instead of one strided scatter per phase."""

    name: str
    full: Operand
    members: list[int]
    shape: tuple[int, int, int, int, int]  # N, G, Kgp, H, W'


def shared_outputs(stages: list, configs: list[dict], v: int) -> dict[int, SharedOutput]:
    """Stage index -> its SharedOutput, for complete sets of stride phases (every phase a fwd-core
    stage with the same output channel blocks)."""
    found: list[SharedOutput] = []
    for i in sorted(complete_phases(stages)):
        stage, config, lattice = stages[i], configs[i], stages[i].output_phase
        if config.get("core") != "fwd" or direct_io(stage, config, v)[1]:
            continue
        g = stage.geometry
        kgp = ceil_div(ceil_div(g.k // g.groups, v), config["kb"]) * config["kb"]
        n, _, h, w = lattice.full.view.out_shape
        width = lattice.cols[0] + lattice.cols[1] * (ceil_div(g.q, config["qb"]) * config["qb"] - 1) + 1
        group = next((o for o in found if o.full == lattice.full), None)
        if group is None:
            found.append(SharedOutput(f"s{i}_phases", lattice.full, [i], (n, g.groups, kgp, h, max(w, width))))
        elif group.shape[2] == kgp:
            group.members.append(i)
            group.shape = (*group.shape[:4], max(group.shape[4], width))
    return {i: o for o in found if len(o.members) == _cosets(stages[o.members[0]]) for i in o.members}


def _scatter(prog: Program, y: Operand, dims: tuple[int, ...], kg: int, ys: str, offset, when: str) -> None:
    """Write a blocked core result [n][group][k block][lane][p][q] (offset: its element offset) to y."""
    n, groups, kgp, kblock, p, q = dims
    # scatter over (n, group, k block, lane, p, q) so both offsets stay affine (transpose tiles apply)
    split = IndexMap.build(dims, (n, groups * kg, p, q),
                           lambda n_, gg, kbk, lane, p_, q_: ((n_, gg * kg + kbk * kblock + lane, p_, q_),
                                                              _tail(kbk * kblock + lane, kg, kgp * kblock)), "split k")
    view = y.view.then(split)
    prog.copy(Copy.scatter(view, offset(*(Expr.var(a, e) for a, e in enumerate(view.out_shape)))), y.buffer, ys,
              when=when)


def _scatter_shared(prog: Program, out: SharedOutput, kg: int, v: int) -> None:
    n, groups, kgp, h, wz = out.shape
    _scatter(prog, out.full, (n, groups, kgp, v, h, out.full.view.out_shape[3]), kg, out.name,
             lambda n_, gg, kbk, lane, p, q: row_major_offset((n_, gg, kbk, p, q, lane), (n, groups, kgp, h, wz, v)),
             "slice")


def _lower_conv(prog: Program, i: int, stage: ConvCore, config: dict, v: int,
                shared: SharedOutput | None = None) -> None:
    g = stage.geometry
    groups, cg, kg = g.groups, g.c // g.groups, g.k // g.groups
    # a 1-tap axis reads every stride-th input: fold the stride into the pack (only read data moves)
    fold = tuple(st if taps == 1 else 1 for st, taps in zip(g.stride, (g.r, g.s)))
    (sh, sw), (dh, dw) = (st // f for st, f in zip(g.stride, fold)), g.dilation
    kgb = ceil_div(kg, v)
    kb = config["kb"]
    x_direct, y_direct = direct_io(stage, config, v)
    kblock = kb if config["core"] == "spatial" else v  # output channels per block of the core's result
    if config["core"] == "spatial":
        kgp, qp = ceil_div(kg, kb), ceil_div(g.q, config["qv"] * v) * config["qv"] * v
    else:
        kgp, qp = ceil_div(kgb, kb) * kb, ceil_div(g.q, config["qb"]) * config["qb"]
    hp, wp = (g.p - 1) * sh + (g.r - 1) * dh + 1, (qp - 1) * sw + (g.s - 1) * dw + 1

    def x_rows(h, w):
        hh, ch = _spatial_axis(h * fold[0], g.offset[0], g.input_dilation[0])
        ww, cw = _spatial_axis(w * fold[1], g.offset[1], g.input_dilation[1])
        return hh, ww, ch + cw

    if config["core"] == "fwd":
        cgb, xl = ceil_div(cg, v), min(cg, v)  # fewer channels than lanes: pack only the real ones

        def x_fn(n, gg, cb, h, w, c):
            hh, ww, conds = x_rows(h, w)
            return (n, gg * cg + cb * xl + c, hh, ww), conds + _tail(cb * xl + c, cg, cgb * xl)
        x_map = IndexMap.build((g.n, groups, cgb, hp, wp, xl), g.x_shape, x_fn, f"pack NCHW[{xl}]c padded")

        def w_fn(gg, kbk, cb, c, r, s, k):
            return (gg * kg + kbk * v + k, cb * v + c, r, s), _tail(kbk * v + k, kg, kgp * v) + _tail(
                cb * v + c, cg, cgb * v)
        w_operand, w_map, w_params = _fwd_filter(stage, w_fn, v, kgp, cgb)
        core = FwdCore(v, config["qb"], kb, sw == 1, config["style"], xl, config["order"],
                       g.stride[1] if x_direct else 0, y_direct, w_operand is not stage.w, shared is not None)
        if x_direct:  # the caller's rows as they are: no padding, the stride walked in place
            (sh, sw), hp, wp = g.stride, g.h, g.w
        y_params = [kgp * g.p * qp * v, g.p * qp * v, qp * v, v, 0]
        if shared is not None:  # this phase's pixels of the blocked output the phases share
            _, _, kgs, hz, wz = shared.shape
            (h0, hs), (w0, ws_) = stage.output_phase.rows, stage.output_phase.cols
            y_params = [kgs * hz * wz * v, hz * wz * v, hs * wz * v, ws_ * v, (h0 * wz + w0) * v]
        params = [g.n, groups, cgb, kgp, hp, wp, g.r, g.s, g.p, qp, sh, sw, dh, dw, cg, kg, g.q, *w_params, *y_params]

        def y_offset(n, gg, kbk, lane, p, q):
            return row_major_offset((n, gg, kbk, p, q, lane), (g.n, groups, kgp, g.p, qp, v))
        y_elements = g.n * groups * kgp * g.p * qp * v
    elif config["core"] == "spatial":
        def x_fn(n, gg, h, c, w):
            hh, ww, conds = x_rows(h, w)
            return (n, gg * cg + c, hh, ww), conds
        x_map = IndexMap.build((g.n, groups, hp, cg, wp), g.x_shape, x_fn, "pack NHCW padded")
        w_operand = stage.w

        def w_fn(gg, kbk, c, r, s, k):
            return (gg * kg + kbk * kb + k, c, r, s), _tail(kbk * kb + k, kg, kgp * kb)
        w_map = IndexMap.build((groups, kgp, cg, g.r, g.s, kb), g.w_shape, w_fn, f"pack O/{kb}IHW{kb}o")
        core = SpatialCore(v, config["qv"], kb, config["style"])
        params = [g.n, groups, cg, kgp * kb, hp, wp, g.r, g.s, g.p, qp, sh, sw, dh, dw]

        def y_offset(n, gg, kbk, lane, p, q):
            return row_major_offset((n, gg, kbk * kb + lane, p, q), (g.n, groups, kgp * kb, g.p, qp))
        y_elements = g.n * groups * kgp * kb * g.p * qp
    else:
        nb = config["nb"]
        nblk = ceil_div(g.n, nb)
        np_ = nblk * nb

        def x_fn(gg, nbk, c, h, w, m):
            hh, ww, conds = x_rows(h, w)
            return (nbk * nb + m, gg * cg + c, hh, ww), conds
        x_map = IndexMap.build((groups, nblk, cg, hp, wp, nb), g.x_shape, x_fn, "pack C[nb]HW padded")
        w_operand = stage.w

        def w_fn(gg, kbk, c, r, s, k):
            return (gg * kg + kbk * v + k, c, r, s), _tail(kbk * v + k, kg, kgp * v)
        w_map = IndexMap.build((groups, kgp, cg, g.r, g.s, v), g.w_shape, w_fn, "pack K[v]-blocked")
        core = WgradCore(v, nb, config["qb"], kb, config["style"], x_direct)
        if x_direct:  # the caller's tensor through its strides: no padding, the stride walked in place
            (sh, sw), hp, wp = g.stride, g.h, g.w
        schedule = wgrad_schedule(g, config, v, kgp // kb, nblk, qp // config["qb"])
        params = [g.n, groups, cg, kgp, hp, wp, g.r, g.s, g.p, qp, sh, sw, dh, dw, cg, np_, *schedule,
                  int(prog.slice_sums), *(view_strides(stage.x.view) if x_direct else ())]

        def y_offset(n, gg, kbk, lane, p, q):
            return row_major_offset((gg, kbk, n, p, q, lane), (groups, kgp, np_, g.p, qp, v))
        y_elements = groups * kgp * np_ * g.p * qp * v

    x_packed = stage.x.view.then(x_map)
    row_axis = 2 if config["core"] == "spatial" else 3
    mask = _row_mask(g, hp, 1 if x_direct else fold[0], stage.trim, x_packed, row_axis)
    if x_direct:
        xs = stage.x.buffer
    else:
        xs = prog.buffer(f"s{i}_x", x_map.elements)
        prog.copy(Copy.gather(x_packed), xs, stage.x.buffer)
    ws = prog.pack(Copy.gather(w_operand.view.then(w_map)), f"s{i}_w", w_operand.buffer)
    if shared is not None:
        ys = shared.name
    else:
        ys = stage.y.buffer if y_direct else prog.buffer(f"s{i}_y", y_elements)
    if prog.slice_sums:  # the slices' partial sums meet in ys: cleared once before the first
        prog.copy(Copy.scatter(IndexMap.identity((y_elements,)), None), ys, ys, when="before")
    prog.core(core, xs, ws, ys, params, mask)
    if y_direct or shared is not None:
        return
    _scatter(prog, stage.y, (g.n, groups, kgp, kblock, g.p, g.q), kg, ys, y_offset,
             "after" if prog.slice_sums else "slice")


def _lower_gemm(prog: Program, i: int, stage: Gemm, config: dict, v: int) -> None:
    mr, nr = config["mr"], config["nr"]
    mp, np_ = ceil_div(stage.m, mr) * mr, ceil_div(stage.n, nr * v) * nr * v
    shape_a, shape_b = (stage.groups, mp, stage.k), (stage.groups, stage.k, np_)
    pad_a = IndexMap.build(shape_a, stage.a.view.out_shape, lambda gg, m, k: (gg, m, k), "pad M")
    pad_b = IndexMap.build(shape_b, stage.b.view.out_shape, lambda gg, k, n: (gg, k, n), "pad N")
    a = prog.buffer(f"s{i}_a", math.prod(shape_a))
    b = prog.buffer(f"s{i}_b", math.prod(shape_b))
    c = prog.buffer(f"s{i}_c", stage.groups * mp * np_)
    prog.copy(Copy.gather(stage.a.view.then(pad_a)), a, stage.a.buffer)
    prog.copy(Copy.gather(stage.b.view.then(pad_b)), b, stage.b.buffer)
    prog.core(GemmCore(v, mr, nr), a, b, c, [stage.groups, mp, np_, stage.k], None)
    view = stage.c.view
    gv, mv, nv = (Expr.var(a_, e) for a_, e in enumerate(view.out_shape))
    prog.copy(Copy.scatter(view, row_major_offset((gv, mv, nv), (stage.groups, mp, np_))), stage.c.buffer, c)


def lower(plan: Plan, stage_configs: list[dict | None] | None, v: int, slice_sums: bool = False) -> Program:
    """The program for `plan`; `stage_configs[i]` configures the i-th stage after fusion (None: heuristic).
    `slice_sums`: the plan is a weight gradient over one slice of the batch, run once per slice."""
    prog = Program(slice_sums=slice_sums)
    stages = lowered_stages(plan)
    configs = list(stage_configs) if stage_configs is not None else [None] * len(stages)
    if len(configs) != len(stages):
        raise ValueError(f"config has {len(configs)} stage entries, the lowered plan has {len(stages)} stages")
    for i, (stage, config) in enumerate(zip(stages, configs)):
        spaces = stage_spaces(stage, v)
        if config is None:
            config = default_stage_config(stage, v)
        elif spaces:
            kind = config.get("core", "gemm")
            if kind not in spaces:
                raise ValueError(f"stage {i}: core {kind!r} does not apply to this stage; "
                                 f"choose one of {sorted(spaces)}")
            config = spaces[kind].check(config)
        prog.stage_configs.append(config or {})
        if slice_sums and (config or {}).get("core") != "wgrad":
            raise ValueError(f"stage {i}: only weight-gradient cores add up partial sums across batch slices")
    shared = shared_outputs(stages, prog.stage_configs, v)
    shapes = {b.name: b.shape for b in plan.buffers}
    for i, (stage, config) in enumerate(zip(stages, prog.stage_configs)):
        if isinstance(stage, Transform):
            prog.copy(Copy.gather(stage.index_map), stage.dst, stage.src)
        elif isinstance(stage, ZeroFill):
            prog.copy(Copy.scatter(stage.index_map, None), stage.dst, stage.dst)
        elif isinstance(stage, ScatterAdd):
            shape = shapes[stage.dst]
            prog.copy(Copy.scatter(IndexMap.identity(shape), None), stage.dst, stage.dst)
            m = stage.index_map
            src = row_major_offset([Expr.var(a, e) for a, e in enumerate(m.out_shape)], m.out_shape)
            prog.copy(Copy.scatter(m, src, accumulate=True), stage.dst, stage.src)
        elif isinstance(stage, Gemm):
            _lower_gemm(prog, i, stage, config, v)
        elif isinstance(stage, ConvCore):
            out = shared.get(i)
            if out is not None and i == out.members[0]:
                prog.buffer(out.name, math.prod(out.shape) * v)
            _lower_conv(prog, i, stage, config, v, out)
            if out is not None and i == out.members[-1]:  # every phase written: one pass to the caller
                _scatter_shared(prog, out, stage.geometry.k // stage.geometry.groups, v)
        else:  # pragma: no cover - the stage kinds are closed
            raise TypeError(f"cannot lower {stage!r}")
    return prog
