"""DaVinci emitter: feature-map and weight tiles in L1 halves (NC1HWC0, FRACTAL_Z), the img2col
matrix in an L0A half (load3d), weight fractals in an L0B half (load2d), results in an L0C half,
moved to UB and written to GM. Data-movement stages (im2col in software, zero insertion, col2im)
run through UB on MTE2 / V / MTE3.
"""

from __future__ import annotations

import math

import numpy as np

from ...sim.davinci import F, Load2d, Load3d, Mmad, Move, l0a_units, l0b_units, l0c_units
from ...sim.machine import Region
from ...sim.ops import Add, Fill, Load, Store
from ...sim.tile import TileShape
from .emit_gemmini import flat_units, unflat
from .lower import Tile, channel_blocks, halo


def fmap_units(frame: np.ndarray) -> np.ndarray:
    """[tb, tc, rows, cols] -> L1 units (c1, b, row, col) x C0 (NC1HWC0 slices, one per channel block)."""
    return channel_blocks(frame, F, channel_block_outer=True, dtype=np.float16)


def fractal_z_units(frame: np.ndarray) -> np.ndarray:
    """[tk, tc, tr, ts] -> L1 units ((c1, r, s), n, ) x C0: FRACTAL_Z [(c1*R + r)*S + s][n1][n0][c0]."""
    tk, tc, tr, ts = frame.shape
    ncb, nkb = -(-tc // F), -(-tk // F)
    padded = np.zeros((nkb * F, ncb * F, tr, ts), dtype=np.float16)
    padded[:tk, :tc] = frame
    return padded.reshape(nkb * F, ncb, F, tr, ts).transpose(1, 3, 4, 0, 2).reshape(-1, F)


def out_frame(units: np.ndarray, s: TileShape) -> np.ndarray:
    """zN rows (n1, m1*16) x n0 -> output frame [tb, tk, tp, tq] (per image this is NC1HWC0)."""
    nkb, mm = -(-s.tk // F), s.tb * s.tp * s.tq
    rows = units.reshape(nkb, -1, F)[:, :mm]  # [n1, m, n0]
    return rows.reshape(nkb, s.tb, s.tp, s.tq, F).transpose(1, 0, 4, 2, 3).reshape(s.tb, nkb * F, s.tp, s.tq)[:, :s.tk]


def _aligned(units: int) -> int:
    return -(-units // F) * F


def _balanced(total: int, most: int) -> int:
    """The even step size for `total` items taken at most `most` at a time."""
    return -(-total // -(-total // max(1, most)))


class DavinciEmitter:
    dim = F

    def __init__(self, target):
        self.target = target
        b = target.buffers
        self.l1, self.l0a, self.l0b, self.l0c, self.ub = b["L1"], b["L0A"], b["L0B"], b["L0C"], b["UB"]
        self.quarter = self.ub.depth // 4
        self.staging_elements = self.quarter * F
        self._half = {"L0A": 1, "L0B": 1, "UB": 1}
        self.out_engine = target.path("l0c_to_ub").engine

    # ------------------------------------------------------------------ footprints
    def units(self, g, t: Tile) -> dict[str, int]:
        """L1 holds the whole tile (every channel block and tap); L0A/L0B/L0C hold one cube step, at
        least one 16-channel block and one tap (`step_size` takes as many as fit)."""
        rows, cols = halo(g, t.p, t.q, t.r, t.s)
        ncb, nkb = -(-t.c // F), -(-t.k // F)
        step = TileShape(t.b, t.p, t.q, t.k, min(t.c, F), 1, 1, g.stride, g.dilation, ((0, 0),))
        return {"x": t.b * ncb * rows * cols, "w": ncb * t.r * t.s * nkb * F, "L0A": l0a_units(step),
                "L0B": l0b_units(step), "L0C": l0c_units(step)}

    def fits(self, g, t: Tile) -> bool:
        u = self.units(g, t)
        mkn = self.target.limits["max_mad_mkn"]
        return (2 * (u["x"] + u["w"]) <= self.l1.depth and 2 * _aligned(u["L0A"]) <= self.l0a.depth
                and 2 * _aligned(u["L0B"]) <= self.l0b.depth and 2 * _aligned(u["L0C"]) <= self.l0c.depth
                and 2 * u["L0C"] <= self.ub.depth and t.b * t.p * t.q <= mkn and t.k <= mkn)

    def step_size(self, s: TileShape) -> tuple[int, int]:
        """(channel blocks, taps) of one cube step: as many 16-deep slices (block x tap) as the L0A /
        L0B halves and the mmad k field hold; all taps of a block first, then several blocks, each
        count balanced over the steps (9 taps at most 4 a step -> 3, 3, 3)."""
        one = TileShape(s.tb, s.tp, s.tq, s.tk, F, 1, 1, s.stride, s.dilation, ((0, 0),))
        slices = max(1, min(self.l0a.depth // 2 // l0a_units(one), self.l0b.depth // 2 // l0b_units(one),
                            self.target.limits["max_mad_mkn"] // F))
        taps, blocks = len(s.taps), -(-s.tc // F)
        if slices < taps:
            return 1, _balanced(taps, slices)
        return _balanced(blocks, slices // taps), taps

    def regions(self, g, t: Tile) -> dict[str, list[Region]]:
        u = self.units(g, t)
        x, w, c = u["x"], u["w"], _aligned(u["L0C"])
        return {"x": [Region("L1", 0, x), Region("L1", x, x)],
                "w": [Region("L1", 2 * x, w), Region("L1", 2 * x + w, w)],
                "y": [Region("L0C", 0, c), Region("L0C", c, c)]}

    def _next(self, buffer: str, units: int) -> Region:
        """Alternate halves of an L0 buffer / UB (double buffering)."""
        self._half[buffer] ^= 1
        depth = self.target.buffers[buffer].depth
        return Region(buffer, self._half[buffer] * (depth // 2), units)

    # ------------------------------------------------------------------ cores
    def load_x(self, box, region, s: TileShape):
        n = s.tb * -(-s.tc // F) * s.rows * s.cols
        return [Load("copy_gm_to_cbuf", "MTE2", "gm_to_l1", Region("L1", region.start, n), box, fmap_units)]

    def load_w(self, box, region, s: TileShape):
        n = -(-s.tc // F) * s.tr * s.ts * -(-s.tk // F) * F
        return [Load("copy_gm_to_cbuf", "MTE2", "gm_to_l1", Region("L1", region.start, n), box, fractal_z_units)]

    def compute(self, x, w, y, s: TileShape, accumulate: bool):
        """Cube steps over (run of channel blocks, run of taps): img2col of those blocks' slices for
        those taps, their weight fractals, one mmad accumulating into the tile's L0C half."""
        ncb, nkb = -(-s.tc // F), -(-s.tk // F)
        x_block, w_block = s.tb * s.rows * s.cols, s.tr * s.ts * nkb * F
        c = Region("L0C", y.start, l0c_units(s))
        blocks, taps = self.step_size(s)
        program = []
        for cb in range(0, ncb, blocks):
            nb = min(blocks, ncb - cb)
            for first in range(0, len(s.taps), taps):
                step = TileShape(s.tb, s.tp, s.tq, s.tk, min(nb * F, s.tc - cb * F), s.tr, s.ts, s.stride,
                                 s.dilation, s.taps[first:first + taps])
                a, b = self._next("L0A", l0a_units(step)), self._next("L0B", l0b_units(step))
                program += [Load3d(Region("L1", x.start + cb * x_block, nb * x_block), a, step),
                            Load2d(Region("L1", w.start + cb * w_block, nb * w_block), b, step),
                            Mmad(a, b, c, step, accumulate or cb > 0 or first > 0)]
        return program

    def clear(self, region, s: TileShape):
        return [Fill("mmad.init", "M", Region("L0C", region.start, l0c_units(s)), 1.0 / F)]

    def store(self, box, region, s: TileShape):
        c = Region("L0C", region.start, l0c_units(s))
        ub = self._next("UB", c.count)
        return [Move("l0c_to_ub", c, ub, self.l0c.unit_bytes, self.out_engine, "copy_matrix_cc_to_ubuf"),
                Store("copy_ubuf_to_gm", "MTE3", "ub_to_gm", ub, box, lambda u: out_frame(u, s))]

    # ------------------------------------------------------------------ data movement
    def staging(self, half: int, slot: int, elements: int) -> Region:
        return Region("UB", (2 * half + slot) * self.quarter, -(-elements // F))

    def move_load(self, box, region):
        return [Load("copy_gm_to_ubuf", "MTE2", "gm_to_ub", region, box, lambda f: flat_units(f, F))]

    def move_store(self, box, region):
        return [Store("copy_ubuf_to_gm", "MTE3", "ub_to_gm", region, box, lambda u: unflat(u, box.sizes))]

    def fill(self, region):
        t = self.target.timing
        return [Fill("vector_dup", "V", region, self.ub.unit_bytes / t["vector_bytes_per_cycle"])]

    def add(self, dst, src):
        t = self.target.timing
        return [Add("vadd", "V", dst, src, t["vector_bytes_per_cycle"] / 4, t["vector_fixed_cycles"])]

    # ------------------------------------------------------------------ tile seeds
    def candidates(self, g, limit: int = 24) -> list[Tile]:
        """The legal tiles of the shared config space, ranked by this target's own estimate (which
        misses the pipes' overlap, so a wider pool than the shared default goes to the simulator)."""
        from .tiling import candidates

        return sorted(candidates(g, self, limit=10 ** 6), key=lambda t: self.estimate(g, t))[:limit]

    def estimate(self, g, t: Tile) -> float:
        """Busy cycles of the busiest pipe (MTE2 loads, MTE1 img2col/load2d, M cube, MTE3 stores) for
        full tiles: a ranking that knows cube steps, their fixed costs and the DMA fixed costs."""
        from .tiling import traffic

        tiles = math.prod(-(-getattr(g, a if a != "b" else "n") // getattr(t, a)) for a in "bpqk")
        steps = -(-g.r // t.r) * -(-g.s // t.s) * -(-g.c // t.c)
        ncb, nkb, m1 = -(-t.c // F), -(-t.k // F), -(-t.b * t.p * t.q // F)
        taps = t.r * t.s
        shape = TileShape(t.b, t.p, t.q, t.k, t.c, t.r, t.s, g.stride, g.dilation, ((0, 0),) * taps)
        blocks, per_step = self.step_size(shape)
        cube_steps = tiles * steps * -(-ncb // blocks) * -(-taps // per_step)
        tm, path = self.target.timing, self.target.path
        m = cube_steps * tm["mmad_fixed_cycles"] + tiles * steps * ncb * m1 * taps * nkb * tm["cube_cycles_per_fractal"]
        mte1 = tiles * steps * ncb * taps * (m1 * F * 32 / path("l1_to_l0a").bytes_per_cycle
                                            + nkb * F * 32 / path("l1_to_l0b").bytes_per_cycle)
        load = path("gm_to_l1")
        loaded = traffic(g, t) - 4 * g.n * g.k * g.p * g.q  # x and w tile elements (fp16)
        mte2 = loaded * 2 / load.bytes_per_cycle + 2 * tiles * steps * load.fixed_cycles
        store = path("ub_to_gm")
        mte3 = g.n * g.k * g.p * g.q * 4 / store.bytes_per_cycle + tiles * store.fixed_cycles
        return max(m, mte1, mte2, mte3)

    def vendor_tile(self, g) -> Tile:
        """AKG's default when a shape is not in its table: 16-wide cuts of M, K, N (one fractal per step)."""
        from .tiling import _shrink

        rows = max(1, min(g.p, -(-F // g.q)))
        return _shrink(g, self, Tile(1, rows, g.q, F, F, g.r, g.s, "bpqk"))

    def bound_tile(self, g) -> Tile:
        from .tiling import bound_tile

        return bound_tile(g, self, self.l1.depth // 2 * F, self.l0c.depth // 2 * F)
