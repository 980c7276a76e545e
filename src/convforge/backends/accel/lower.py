"""Lowering of normalized plan stages to an instruction program for one target.

A core is tiled over (b, p, q, k) output tiles and (r, s, c) reduction steps; each operand tile lives
in one half of its buffer (double buffering: the next tile loads into the other half while the
engine computes on this one). A tile is loaded only when it differs from the one resident in that
half, so loop order decides reuse. The target-specific parts (where tiles live, which instructions
move and compute them, what fits) are the `Emitter` of each ISA.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import product

import numpy as np

from ...plan.stages import ScatterAdd, Transform, ZeroFill
from ...sim.dma import Box, view_strides
from ...sim.tile import TileShape
from .jobs import CoreJob

AXES = "bpqkcrs"


@dataclass(frozen=True)
class Tile:
    """Tile sizes of a core (batch, output rows, output cols, out channels, in channels, filter rows,
    filter cols) and the order of the output-tile loops (outermost first)."""

    b: int
    p: int
    q: int
    k: int
    c: int
    r: int
    s: int
    order: str = "bpqk"

    def clamp(self, g) -> Tile:
        return Tile(min(self.b, g.n), min(self.p, g.p), min(self.q, g.q), min(self.k, g.k), min(self.c, g.c),
                    min(self.r, g.r), min(self.s, g.s), self.order)

    def as_dict(self) -> dict:
        return {a: getattr(self, a) for a in AXES} | {"order": self.order}


def channel_blocks(frame: np.ndarray, block: int, channel_block_outer: bool, dtype=None) -> np.ndarray:
    """[tb, tc, rows, cols] -> on-chip units of `block` channels (zero-padded), one row each, ordered
    (channel block, b, row, col) when `channel_block_outer` (DaVinci NC1HWC0 slices) else
    (b, channel block, row, col) (VTA NCHW1n16c)."""
    tb, tc, rows, cols = frame.shape
    ncb = -(-tc // block)
    padded = np.zeros((tb, ncb * block, rows, cols), dtype=dtype or frame.dtype)
    padded[:, :tc] = frame
    order = (1, 0, 3, 4, 2) if channel_block_outer else (0, 1, 3, 4, 2)
    return padded.reshape(tb, ncb, block, rows, cols).transpose(order).reshape(-1, block)


def halo(g, tp: int, tq: int, tr: int, ts: int) -> tuple[int, int]:
    return (tp - 1) * g.stride[0] + (tr - 1) * g.dilation[0] + 1, (tq - 1) * g.stride[1] + (ts - 1) * g.dilation[1] + 1


class Lowering:
    """Builds one program from stages; keeps DRAM tensor element sizes for the byte counters."""

    def __init__(self, emitter, elem_bytes: dict[str, int]):
        self.e = emitter
        self.elem_bytes = elem_bytes
        self.program: list = []
        self._strides: dict[int, tuple] = {}

    def box(self, tensor: str, view, starts, sizes, density: float = 1.0) -> Box:
        key = id(view)
        if key not in self._strides:
            self._strides[key] = view_strides(view)
        return Box(tensor, view, tuple(starts), tuple(sizes), self.elem_bytes[tensor], self._strides[key], density)

    def finish(self) -> list:
        """The program, with the ISA's explicit synchronization added where it has one."""
        return self.e.finish(self.program) if hasattr(self.e, "finish") else self.program

    # ------------------------------------------------------------------ cores
    def core(self, job: CoreJob, tile: Tile) -> None:
        g, t = job.geometry, tile.clamp(job.geometry)
        if hasattr(self.e, "check_core"):
            self.e.check_core(g)
        if not self.e.fits(g, t):
            raise ValueError(f"tile {t.as_dict()} does not fit the buffers of target {self.e.target.name}")
        regions = self.e.regions(g, t)
        resident = {"x": [None, None], "w": [None, None]}
        half = {"x": 1, "w": 1, "y": 1}
        ranges = {"b": range(0, g.n, t.b), "p": range(0, g.p, t.p), "q": range(0, g.q, t.q), "k": range(0, g.k, t.k)}
        steps = list(product(range(0, g.r, t.r), range(0, g.s, t.s), range(0, g.c, t.c)))
        for out in product(*(ranges[a] for a in t.order)):
            o = dict(zip(t.order, out))
            b0, p0, q0, k0 = o["b"], o["p"], o["q"], o["k"]
            tb, tp, tq, tk = min(t.b, g.n - b0), min(t.p, g.p - p0), min(t.q, g.q - q0), min(t.k, g.k - k0)
            half["y"] ^= 1
            c_region = regions["y"][half["y"]]
            first = True
            for r0, s0, c0 in steps:
                tr, ts, tc = min(t.r, g.r - r0), min(t.s, g.s - s0), min(t.c, g.c - c0)
                taps = self._taps(job, p0, q0, tp, tq, r0, s0, tr, ts)
                if not taps:
                    continue
                rows, cols = halo(g, tp, tq, tr, ts)
                shape = TileShape(tb, tp, tq, tk, tc, tr, ts, g.stride, g.dilation, taps)
                x_key = (b0, c0, p0, q0, r0, s0, tb, tc, tp, tq, tr, ts)
                w_key = (k0, c0, r0, s0, tk, tc, tr, ts)
                regs = {}
                for name, key, starts, sizes in (
                        ("x", x_key, (b0, c0, p0 * g.stride[0] + r0 * g.dilation[0] - g.offset[0],
                                      q0 * g.stride[1] + s0 * g.dilation[1] - g.offset[1]), (tb, tc, rows, cols)),
                        ("w", w_key, (k0, c0, r0, s0), (tk, tc, tr, ts))):
                    if resident[name][half[name]] != key:
                        if key in resident[name]:
                            half[name] = resident[name].index(key)
                        else:
                            half[name] ^= 1
                            operand = job.x if name == "x" else job.w
                            box = self.box(operand.buffer, operand.view, starts, sizes)
                            loader = self.e.load_x if name == "x" else self.e.load_w
                            self.program += loader(box, regions[name][half[name]], shape)
                            resident[name][half[name]] = key
                    regs[name] = regions[name][half[name]]
                self.program += self.e.compute(regs["x"], regs["w"], c_region, shape, accumulate=not first)
                first = False
            box = self.box(job.y.buffer, job.y.view, (b0, k0, p0, q0), (tb, tk, tp, tq))
            shape = TileShape(tb, tp, tq, tk, 0, 0, 0, g.stride, g.dilation, ())
            if first:  # every tap trimmed away: the outputs are zero
                self.program += self.e.clear(c_region, shape)
            self.program += self.e.store(box, c_region, shape)

    @staticmethod
    def _taps(job: CoreJob, p0, q0, tp, tq, r0, s0, tr, ts) -> tuple[tuple[int, int], ...]:
        """Taps of this reduction step; with trimming only those that meet the input in this tile."""
        g = job.geometry
        if not job.trim:
            return tuple(product(range(tr), range(ts)))

        def meets(o0, n_out, t, stride, dil, off, size):
            lo, hi = o0 * stride + t * dil - off, (o0 + n_out - 1) * stride + t * dil - off
            first = lo if lo >= 0 else lo + ((stride - 1 - lo) // stride) * stride  # first index >= 0
            return first <= hi and first < size

        rows = [i for i in range(tr) if meets(p0, tp, r0 + i, g.stride[0], g.dilation[0], g.offset[0], g.h)]
        cols = [j for j in range(ts) if meets(q0, tq, s0 + j, g.stride[1], g.dilation[1], g.offset[1], g.w)]
        return tuple(product(rows, cols))

    # ------------------------------------------------------------------ data movement
    def movement(self, stage) -> None:
        if isinstance(stage, Transform):
            density = _density(stage.index_map)
            for starts, sizes in _chunks(stage.index_map.out_shape, self.e.staging_elements):
                self._move(stage.src, stage.index_map, stage.dst, starts, sizes, density)
        elif isinstance(stage, ZeroFill):
            for i, (starts, sizes) in enumerate(_chunks(stage.index_map.out_shape, self.e.staging_elements)):
                region = self.e.staging(i % 2, 0, math.prod(sizes))
                self.program += self.e.fill(region)
                self.program += self.e.move_store(self.box(stage.dst, stage.index_map, starts, sizes), region)
        elif isinstance(stage, ScatterAdd):
            self._scatter_add(stage)
        else:
            raise TypeError(f"cannot lower stage {stage!r}")

    def _move(self, src: str, view, dst: str, starts, sizes, density: float) -> None:
        region = self.e.staging(len(self.program) % 2, 0, math.prod(sizes))
        self.program += self.e.move_load(self.box(src, view, starts, sizes, density), region)
        ident = self._identity(view.out_shape)
        self.program += self.e.move_store(self.box(dst, ident, starts, sizes), region)

    def _identity(self, shape):
        from ...layouts import IndexMap

        key = ("identity", shape)
        if key not in self._strides:
            self._strides[key] = IndexMap.identity(shape, "dense")
        return self._strides[key]

    def _scatter_add(self, stage: ScatterAdd) -> None:
        """col2im: dst = 0, then per chunk of one source row (injective into dst): load the source chunk,
        gather the dst elements it adds to, add, scatter them back."""
        m = stage.index_map
        ident_dst = self._identity(m.src_shape)
        for i, (starts, sizes) in enumerate(_chunks(m.src_shape, self.e.staging_elements)):
            region = self.e.staging(i % 2, 0, math.prod(sizes))
            self.program += self.e.fill(region)
            self.program += self.e.move_store(self.box(stage.dst, ident_dst, starts, sizes), region)
        src_ident = self._identity(m.out_shape)
        for i, (starts, sizes) in enumerate(_chunks(m.out_shape, self.e.staging_elements, keep_rows=_leading(m))):
            n = math.prod(sizes)
            a, b = self.e.staging(i % 2, 0, n), self.e.staging(i % 2, 1, n)
            self.program += self.e.move_load(self.box(stage.src, src_ident, starts, sizes), a)
            gather = self.box(stage.dst, m, starts, sizes)
            self.program += self.e.move_load(gather, b)
            self.program += self.e.add(b, a)
            self.program += self.e.move_store(gather, b)


def _chunks(shape, max_elements: int, keep_rows: int = 0):
    """Split a dense box of `shape` into boxes of at most `max_elements`, leading axes first; with
    `keep_rows`, the first `keep_rows` axes are always split to single indices."""
    shape = tuple(shape)
    k = min(keep_rows, len(shape) - 1)
    while k < len(shape) - 1 and math.prod(shape[k + 1:]) > max_elements:
        k += 1
    step = max(1, max_elements // math.prod(shape[k + 1:]))
    for lead in product(*(range(e) for e in shape[:k])):
        for i in range(0, shape[k], step):
            n = min(step, shape[k] - i)
            yield lead + (i,) + (0,) * (len(shape) - k - 1), (1,) * k + (n,) + shape[k + 1:]


def _leading(m) -> int:
    """How many leading axes a scatter-add chunk must fix so that the rest map to distinct elements
    (a chunk is then a read-add-write with no collisions). Checked on the raw coordinates, padding
    included, which can only over-report collisions."""
    for keep in range(len(m.out_shape)):
        if math.prod(m.out_shape[keep:]) > (1 << 22):
            continue  # too big to check; fix more axes
        grid = list(np.ogrid[tuple(slice(0, 1) if a < keep else slice(0, e) for a, e in enumerate(m.out_shape))])
        offset = np.asarray(m.flat_offset().evaluate(grid))
        offset = np.broadcast_to(offset, tuple(1 if a < keep else e for a, e in enumerate(m.out_shape))).ravel()
        if offset.size == np.unique(offset).size:
            return keep
    return len(m.out_shape) - 1


def _density(view, sample: int = 1 << 14) -> float:
    """Fraction of the map's elements that read the source (the rest are inserted zeros / padding):
    exact for small maps, from a fixed random sample of elements for large ones."""
    if not view.conditions:
        return 1.0
    if view.elements <= sample:
        _, mask = view.source_indices()
        return float(np.mean(mask))
    rng = np.random.default_rng(0)
    env = [rng.integers(0, e, sample) for e in view.out_shape]
    ok = np.ones(sample, dtype=bool)
    for cond in view.conditions:
        value = cond.expr.evaluate(env)
        ok &= (value >= cond.lo) & (value < cond.hi)
    return float(np.mean(ok))
