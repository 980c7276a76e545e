"""Gemmini emitter: where tiles live in the scratchpad / accumulator and which instructions move them.

Scratchpad: [A0 | A1 | B0 | B1] (input and weight tiles, double-buffered); accumulator: [C0 | C1].
Data-movement stages stage through the accumulator (int32 rows; mvin widens int8).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from ...sim.gemmini import GatherLoad, LoopConvEx, a_units, b_units, c_frame
from ...sim.machine import Region
from ...sim.ops import Add, Fill, Load, Store
from ...sim.tile import TileShape
from .lower import Tile, halo
from .vendor_plans import PIXEL_REPEATS, TAP_PACKING


def pixel_repeats(view) -> int:
    """The repeat factor of a first-layer view (1 for any other view)."""
    for part in view.parts:
        if part.startswith(f"{PIXEL_REPEATS} x"):
            return int(part.rsplit("x", 1)[1])
    return 1


def _rows_inside(box, s: TileShape) -> tuple[tuple[int, int], ...]:
    """Per filter row of a stride-1 tile, the output rows [lo, hi) whose input row lies inside the
    operand (the halo box starts at input row box.starts[2])."""
    height, top, dh = box.view.out_shape[2], box.starts[2], s.dilation[0]
    ranges = []
    for r in range(s.tr):
        lo, hi = max(0, -(top + r * dh)), min(s.tp, height - top - r * dh)
        ranges.append((lo, max(lo, hi)))
    return tuple(ranges)


def runs_per_pixel(view, c0: int, tc: int, lanes: int) -> tuple[int, int]:
    """(mvin rows, elements read) for channels [c0, c0+tc) of one interior output pixel of a packed
    im2col view. A spad row of `lanes` channels is assembled from the maximal runs of consecutive DRAM
    addresses in it; an mvin writes `len` elements at lane offset pr*len (pixel_repeats' column shift),
    so a run starting at lane o goes in pieces whose length divides their start (see `aligned_pieces`)."""
    env = [np.array([0]), np.arange(c0, c0 + tc)] + [np.array([e // 2]) for e in view.out_shape[2:]]
    offsets = np.broadcast_to(view.flat_offset().evaluate(env), (tc,)).astype(np.int64)
    valid = np.ones(tc, dtype=bool)
    for cond in view.conditions:
        value = np.broadcast_to(cond.expr.evaluate(env), (tc,))
        valid &= (value >= cond.lo) & (value < cond.hi)
    runs: list[list[int]] = []  # [start lane, length]
    for i, (ok, off) in enumerate(zip(valid, offsets)):
        lane = (c0 + i) % lanes
        if ok and runs and lane > 0 and valid[i - 1] and off == offsets[i - 1] + 1:
            runs[-1][1] += 1
        elif ok:
            runs.append([lane, 1])
    return sum(aligned_pieces(start, length) for start, length in runs), int(valid.sum())


def aligned_pieces(start: int, length: int) -> int:
    """mvins for `length` elements at lane `start`: each takes the longest piece whose length divides
    its start lane (any length at lane 0)."""
    pieces = 0
    while length:
        piece = length if start == 0 else max(d for d in range(1, length + 1) if start % d == 0)
        start, length, pieces = start + piece, length - piece, pieces + 1
    return pieces


def flat_units(frame: np.ndarray, lanes: int) -> np.ndarray:
    """A dense chunk packed row after row (the staging layout of data-movement stages)."""
    flat = frame.ravel()
    out = np.zeros(-(-flat.size // lanes) * lanes, dtype=frame.dtype)
    out[:flat.size] = flat
    return out.reshape(-1, lanes)


def unflat(units: np.ndarray, sizes) -> np.ndarray:
    return units.ravel()[:math.prod(sizes)].reshape(sizes)


MAX_WINDOW_COPIES = 9  # filter taps of a flat tile: one mvin sequence each (a 3x3 filter, or a filter tile)


class GemminiEmitter:
    """`vendor_loops`: the execute loop is LoopConv's (pairs never span output rows). Otherwise a stride-1
    core with 1x1, narrow or short tiles (see `flat`) runs flat (explicit preload/compute pairs instead
    of loop_conv_ws): A holds one window copy per filter tap (the DMA loads each), so every tap's pairs
    take DIM-row chunks of all the tile's output pixels and skip the rows that read padding only."""

    def __init__(self, target, vendor_loops: bool = False):
        self.target = target
        self.vendor_loops = vendor_loops
        self.dim = target.intrinsic["n"]
        self.spad, self.acc = target.buffers["spad"], target.buffers["acc"]
        self.quarter = self.acc.depth // 4
        self.staging_elements = self.quarter * self.acc.lanes
        self.flat_core = False  # the form of the core being lowered (set by `regions`)
        self.p_ranges: dict[int, tuple[tuple[int, int], ...]] = {}  # A region start -> rows per filter row

    # ------------------------------------------------------------------ footprints
    def flat(self, g, t: Tile) -> bool:
        """Flat pays where LoopConv's row-bound pairs waste array rows (a tile narrower than the array) or
        where whole filter rows read padding (tiles of one or two output rows at the image border); a
        1x1 tile's halo already is its only window."""
        short = (t.q < self.dim or t.p <= 2) and t.r * t.s <= MAX_WINDOW_COPIES
        return not self.vendor_loops and g.stride == (1, 1) and (t.r * t.s == 1 or short)

    def units(self, g, t: Tile) -> dict[str, int]:
        rows, cols = halo(g, t.p, t.q, t.r, t.s)
        ncb, nkb = -(-t.c // self.dim), -(-t.k // self.dim)
        x = t.b * t.p * t.q * t.r * t.s if self.flat(g, t) else t.b * rows * cols
        return {"x": ncb * x, "w": nkb * t.r * t.s * t.c, "y": nkb * t.b * t.p * t.q}

    def fits(self, g, t: Tile) -> bool:
        u = self.units(g, t)
        return 2 * (u["x"] + u["w"]) <= self.spad.depth and 2 * u["y"] <= self.acc.depth

    def regions(self, g, t: Tile) -> dict[str, list[Region]]:
        self.flat_core = self.flat(g, t)
        u = self.units(g, t)
        a, b, c = u["x"], u["w"], u["y"]
        return {"x": [Region("spad", 0, a), Region("spad", a, a)],
                "w": [Region("spad", 2 * a, b), Region("spad", 2 * a + b, b)],
                "y": [Region("acc", 0, c), Region("acc", c, c)]}

    # ------------------------------------------------------------------ cores
    def _blocks(self, s: TileShape) -> tuple[int, int]:
        return -(-s.tc // self.dim), -(-s.tk // self.dim)

    def _a_rows(self, s: TileShape) -> int:
        ncb, _ = self._blocks(s)
        return ncb * s.tb * (s.tp * s.tq * s.tr * s.ts if self.flat_core else s.rows * s.cols)

    def load_x(self, box, region, s: TileShape):
        dst, arrange = Region(region.buffer, region.start, self._a_rows(s)), lambda f: a_units(f, self.dim)
        if self.flat_core:
            self.p_ranges[region.start] = _rows_inside(box, s)
            if s.tr * s.ts > 1:
                return self._tap_copies(box, dst, s)
        if any(part.startswith(TAP_PACKING) for part in box.view.parts):
            runs, elements = runs_per_pixel(box.view, box.starts[1], s.tc, self.dim)
            pixels = s.tb * s.rows * s.cols
            return [GatherLoad("mvin", "LD", "dram_to_spad", dst, box, arrange, primitives=pixels * runs,
                               nbytes=pixels * elements * box.elem_bytes, runs=pixels * runs)]
        repeats = pixel_repeats(box.view)  # the DMA reads each pixel once; the spad writes repeat it
        if repeats > 1:
            box = dataclasses.replace(box, density=box.density / repeats)
        return [Load("mvin", "LD", "dram_to_spad", dst, box, arrange, primitives=-(-dst.count // self.dim))]

    def _tap_copies(self, box, dst: Region, s: TileShape):
        """One mvin sequence per filter tap: the tp x tq input window that tap reads (stride 1)."""
        per_tap = dst.count // (s.tr * s.ts)
        (dh, dw), (b0, c0, h0, w0) = s.dilation, box.starts
        loads = []
        for r in range(s.tr):
            for t in range(s.ts):
                window = dataclasses.replace(box, starts=(b0, c0, h0 + r * dh, w0 + t * dw),
                                             sizes=(s.tb, s.tc, s.tp, s.tq))
                region = Region(dst.buffer, dst.start + (r * s.ts + t) * per_tap, per_tap)
                loads.append(Load("mvin", "LD", "dram_to_spad", region, window, lambda f: a_units(f, self.dim),
                                  primitives=-(-per_tap // self.dim)))
        return loads

    def load_w(self, box, region, s: TileShape):
        _, nkb = self._blocks(s)
        n = nkb * s.tr * s.ts * s.tc
        return [Load("mvin", "LD", "dram_to_spad", Region(region.buffer, region.start, n), box,
                     lambda f: b_units(f, self.dim), primitives=-(-n // self.dim))]

    def _c(self, region, s: TileShape) -> Region:
        return Region(region.buffer, region.start, -(-s.tk // self.dim) * s.tb * s.tp * s.tq)

    def compute(self, x, w, y, s: TileShape, accumulate: bool):
        _, nkb = self._blocks(s)
        a = Region(x.buffer, x.start, self._a_rows(s))
        b = Region(w.buffer, w.start, nkb * s.tr * s.ts * s.tc)
        ranges = self.p_ranges[x.start] if self.flat_core else ()
        return [LoopConvEx(a, b, self._c(y, s), s, accumulate, self.dim, self.flat_core, ranges)]

    def clear(self, region, s: TileShape):
        return [Fill("preload_zero", "EX", self._c(region, s), self.target.timing["zero_row_cycles"])]

    def store(self, box, region, s: TileShape):
        c = self._c(region, s)
        return [Store("mvout", "ST", "acc_to_dram", c, box,
                      lambda u: c_frame(u, self.dim, s.tb, s.tk, s.tp, s.tq), primitives=-(-c.count // self.dim))]

    # ------------------------------------------------------------------ data movement
    def staging(self, half: int, slot: int, elements: int) -> Region:
        return Region("acc", (2 * half + slot) * self.quarter, -(-elements // self.acc.lanes))

    def move_load(self, box, region):
        return [Load("mvin", "LD", "dram_to_acc", region, box, lambda f: flat_units(f, self.acc.lanes),
                     primitives=-(-region.count // self.dim))]

    def move_store(self, box, region):
        return [Store("mvout", "ST", "acc_to_dram", region, box, lambda u: unflat(u, box.sizes),
                      primitives=-(-region.count // self.dim))]

    def fill(self, region):
        return [Fill("mvin_zero", "LD", region, self.target.timing["zero_row_cycles"])]

    def add(self, dst, src):
        return [Add("mvin_accumulate", "LD", dst, src, self.target.timing["add_lanes_per_cycle"])]

    # ------------------------------------------------------------------ tile seeds
    def vendor_tile(self, g) -> Tile:
        from .tiling import tiled_conv_auto

        return tiled_conv_auto(g, self)

    def bound_tile(self, g) -> Tile:
        from .tiling import bound_tile

        return bound_tile(g, self, self.spad.depth // 2 * self.dim, self.acc.depth // 2 * self.dim)
