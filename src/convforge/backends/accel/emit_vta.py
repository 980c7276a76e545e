"""VTA emitter: tiles in inp / wgt / acc halves, GEMM micro-op loops for the conv taps, int32 results
stored as four byte planes (VTA stores only the low 8 bits of acc: ALU SHR 8 between the stores).

GEMM per input-channel block: the micro-ops enumerate the tile's output pixels (b, kb, p, q) and the
two loop levels walk the filter rows and columns, so one instruction covers every tap (see `compute`
for the per-row form used when the micro-ops do not fit). Consecutive micro-ops write different acc
entries.
"""

from __future__ import annotations

import math
from dataclasses import replace
from itertools import product

import numpy as np

from ...layouts import IndexMap
from ...sim.dma import Box
from ...sim.machine import Region
from ...sim.ops import Fill, Load, Store
from ...sim.tile import TileShape
from ...sim.vta import Alu, Gemm, pack_uops
from .emit_gemmini import flat_units, unflat
from .lower import Tile, channel_blocks, halo
from .tokens import insert_tokens

BLOCK = 16


def inp_units(frame: np.ndarray) -> np.ndarray:
    """[tb, tc, rows, cols] -> entries (b, cb, row, col) x 16 channels (NCHW1n16c)."""
    return channel_blocks(frame, BLOCK, channel_block_outer=False)


def acc_frame(units: np.ndarray, tb: int, tk: int, tp: int, tq: int) -> np.ndarray:
    """acc entries (b, kb, p, q) x 16 -> output frame [tb, tk, tp, tq]."""
    nkb = -(-tk // BLOCK)
    return units.reshape(tb, nkb, tp, tq, BLOCK).transpose(0, 1, 4, 2, 3).reshape(tb, nkb * BLOCK, tp, tq)[:, :tk]


def wgt_units(frame: np.ndarray) -> np.ndarray:
    """[tk, tc, tr, ts] -> entries (kb, cb, r, s) x 16x16 [out][in] (OIHW16o16i)."""
    tk, tc, tr, ts = frame.shape
    nkb, ncb = -(-tk // BLOCK), -(-tc // BLOCK)
    padded = np.zeros((nkb * BLOCK, ncb * BLOCK, tr, ts), dtype=frame.dtype)
    padded[:tk, :tc] = frame
    return padded.reshape(nkb, BLOCK, ncb, BLOCK, tr, ts).transpose(0, 2, 4, 5, 1, 3).reshape(-1, BLOCK * BLOCK)


class VtaEmitter:
    dim = BLOCK

    def __init__(self, target):
        self.target = target
        b = target.buffers
        self.inp, self.wgt, self.acc, self.uop = b["inp"], b["wgt"], b["acc"], b["uop"]
        self.quarter = self.acc.depth // 4
        self.staging_elements = self.quarter * BLOCK
        self.constants: dict[str, np.ndarray] = {}
        self._uop_tables: dict[tuple, str] = {}
        self._views: dict[tuple, IndexMap] = {}
        self._uop_resident = [None, None]
        self._uop_half = 1

    # ------------------------------------------------------------------ footprints
    def units(self, g, t: Tile) -> dict[str, int]:
        """Buffer entries of one tile; "uop" is the largest single GEMM (the row form's micro-ops)."""
        rows, cols = halo(g, t.p, t.q, t.r, t.s)
        ncb, nkb = -(-t.c // BLOCK), -(-t.k // BLOCK)
        return {"x": t.b * ncb * rows * cols, "w": nkb * ncb * t.r * t.s, "y": t.b * nkb * t.p * t.q,
                "uop": t.b * nkb * t.q, "cols": cols}

    def fits(self, g, t: Tile) -> bool:
        u = self.units(g, t)
        lim = self.target.limits
        return (2 * u["x"] <= self.inp.depth and 2 * u["w"] <= self.wgt.depth and 2 * u["y"] <= self.acc.depth
                and 2 * u["uop"] <= self.uop.depth and g.stride[0] * u["cols"] < (1 << lim["src_factor_bits"])
                and t.q < (1 << lim["dst_factor_bits"]))

    def check_core(self, g) -> None:
        """LOAD pads at most max_pad rows / columns on each side."""
        pad = self.target.limits["max_pad"]
        over = (g.offset[0], g.offset[1], (g.p - 1) * g.stride[0] + (g.r - 1) * g.dilation[0] - g.offset[0] - g.h + 1,
                (g.q - 1) * g.stride[1] + (g.s - 1) * g.dilation[1] - g.offset[1] - g.w + 1)
        if max(over) > pad:
            raise ValueError(f"VTA LOAD pads at most limits.max_pad={pad} rows/columns per side; this core "
                             f"needs {max(over)} (use an algorithm that materializes the padding)")

    def regions(self, g, t: Tile) -> dict[str, list[Region]]:
        u = self.units(g, t)
        return {"x": [Region("inp", 0, u["x"]), Region("inp", u["x"], u["x"])],
                "w": [Region("wgt", 0, u["w"]), Region("wgt", u["w"], u["w"])],
                "y": [Region("acc", 0, u["y"]), Region("acc", u["y"], u["y"])]}

    # ------------------------------------------------------------------ cores
    def load_x(self, box, region, s: TileShape):
        n = s.tb * -(-s.tc // BLOCK) * s.rows * s.cols
        return [Load("LOAD.inp", "LOAD", "dram_to_inp", Region("inp", region.start, n), box, inp_units,
                     primitives=s.tb * -(-s.tc // BLOCK))]

    def load_w(self, box, region, s: TileShape):
        n = -(-s.tk // BLOCK) * -(-s.tc // BLOCK) * s.tr * s.ts
        return [Load("LOAD.wgt", "LOAD", "dram_to_wgt", Region("wgt", region.start, n), box, wgt_units,
                     primitives=-(-s.tk // BLOCK) * -(-s.tc // BLOCK))]

    def _y(self, region, s: TileShape) -> Region:
        return Region("acc", region.start, s.tb * -(-s.tk // BLOCK) * s.tp * s.tq)

    def compute(self, x, w, y, s: TileShape, accumulate: bool):
        """GEMMs for one reduction step, in the form with fewer instructions that the uop memory holds:

        * tap form: micro-ops enumerate the tile's output pixels (b, kb, p, q); the two loop levels walk
          two of (channel block, filter row, filter column), the two that leave the fewest GEMMs (a 1x1
          core loops over channel blocks, a backward-weight core over its many taps);
        * row form: micro-ops enumerate (b, kb, q), iter_out walks the output rows, iter_in the filter
          columns, one GEMM per (channel block, filter row, run of columns).
        Either way consecutive micro-ops write different acc entries (no pipeline read-after-write)."""
        ncb, nkb = -(-s.tc // BLOCK), -(-s.tk // BLOCK)
        half = self.uop.depth // 2
        rows = sorted({r for r, _ in s.taps})
        cols = sorted({c for _, c in s.taps})
        if len(s.taps) != len(rows) * len(cols):
            raise ValueError(f"VTA lowering expects a grid of taps, got {s.taps}")
        lim = self.target.limits
        (sh, sw), (dh, dw) = s.stride, s.dilation

        def fits(src_step: int, wgt_step: int) -> bool:
            return src_step < (1 << lim["src_factor_bits"]) and wgt_step < (1 << lim["wgt_factor_bits"])

        # loop axes: (runs (first, step, count), src units per step, wgt units per step)
        blocks = (_runs(list(range(ncb)), lambda d: fits(d * s.rows * s.cols, d * s.tr * s.ts)), s.rows * s.cols,
                  s.tr * s.ts)
        taps_rows = (_runs(rows, lambda d: fits(d * dh * s.cols, d * s.ts)), dh * s.cols, s.ts)
        taps_cols = (_runs(cols, lambda d: fits(d * dw, d)), dw, 1)
        if s.tb * nkb * s.tp * s.tq <= half:  # tap form
            b, kb, p, q = (a.ravel() for a in np.meshgrid(np.arange(s.tb), np.arange(nkb), np.arange(s.tp),
                                                            np.arange(s.tq), indexing="ij"))
            dst = y.start + ((b * nkb + kb) * s.tp + p) * s.tq + q
            pixel = p * sh * s.cols + q * sw
            axes = _two_loops([blocks, taps_rows, taps_cols])
            output_rows = None
        else:  # row form: output rows in iter_out, filter columns in iter_in
            b, kb, q = (a.ravel() for a in np.meshgrid(np.arange(s.tb), np.arange(nkb), np.arange(s.tq),
                                                         indexing="ij"))
            dst = y.start + (b * nkb + kb) * s.tp * s.tq + q
            pixel = q * sw
            axes = [_singles(blocks), _singles(taps_rows), taps_cols]
            output_rows = (s.tp, s.tq, sh * s.cols)
        jobs = []  # (uop words, iter_out, iter_in, dst/src/wgt factors, MACs)
        for (cb0, cbs, ncbs), (r0, rs, nr), (c0, cs, nc) in product(*(runs for runs, _, _ in axes)):
            src = x.start + (b * ncb + cb0) * s.rows * s.cols + r0 * dh * s.cols + c0 * dw + pixel
            wgt = w.start + ((kb * ncb + cb0) * s.tr + r0) * s.ts + c0
            words = pack_uops(dst, src, wgt)
            chans = sum(min(BLOCK, s.tc - (cb0 + i * cbs) * BLOCK) for i in range(ncbs))
            macs = s.tb * s.tp * s.tq * s.tk * chans * nr * nc
            looped = [(n, st * su, st * wu) for (n, st), (_, su, wu) in zip(((ncbs, cbs), (nr, rs), (nc, cs)), axes)
                      if n > 1]
            if output_rows is not None:
                tp, tq, step = output_rows
                n, src_f, wgt_f = looped[0] if looped else (1, 0, 0)
                jobs.append((words, tp, n, (tq, 0), (step, src_f), (0, wgt_f), macs))
            else:
                (n1, s1, w1), (n2, s2, w2) = (looped + [(1, 0, 0), (1, 0, 0)])[:2]
                jobs.append((words, n1, n2, (0, 0), (s1, s2), (w1, w2), macs))
        out = [] if accumulate else [Fill("GEMM.reset", "COMPUTE", self._y(y, s), self.target.timing["gemm_ii"])]
        x_region = Region("inp", x.start, s.tb * ncb * s.rows * s.cols)
        w_region = Region("wgt", w.start, nkb * ncb * s.tr * s.ts)
        while jobs:  # as many GEMMs as one uop table (a uop half) holds
            n, size = 0, 0
            while n < len(jobs) and size + jobs[n][0].size <= half:
                size += jobs[n][0].size
                n += 1
            batch, jobs = jobs[:n], jobs[n:]
            out += self._uops(np.concatenate([j[0] for j in batch]))
            pos = self._uop_half * half
            for words, iter_out, iter_in, dst_f, src_f, wgt_f, macs in batch:
                out.append(Gemm(pos, pos + words.size, iter_out, iter_in, dst_f, src_f, wgt_f,
                                self._y(y, s), x_region, w_region, macs))
                pos += words.size
        return out

    def _uops(self, table: np.ndarray):
        """Load a micro-op table into a uop half unless it is resident there."""
        key = table.tobytes()
        if key in self._uop_resident:
            self._uop_half = self._uop_resident.index(key)
            return []
        self._uop_half ^= 1
        self._uop_resident[self._uop_half] = key
        name = self._uop_tables.setdefault(key, f"uops{len(self._uop_tables)}")
        self.constants[name] = table
        view = self._views.setdefault(table.shape, IndexMap.identity(table.shape, "uops"))  # one index per shape
        box = Box(name, view, (0,), table.shape, 4, ((1, table.size),))
        region = Region("uop", self._uop_half * (self.uop.depth // 2), table.size)
        return [Load("LOAD.uop", "COMPUTE", "dram_to_uop", region, box, lambda f: f.reshape(-1, 1))]

    def clear(self, region, s: TileShape):
        return [Fill("GEMM.reset", "COMPUTE", self._y(region, s), self.target.timing["gemm_ii"])]

    def store(self, box, region, s: TileShape):
        acc = self._y(region, s)
        return self._planes(box, acc, lambda u: acc_frame(u, s.tb, s.tk, s.tp, s.tq))

    def _planes(self, box: Box, acc: Region, unarrange):
        """Store acc through the out buffer: one byte plane for int8 tensors, four for int32."""
        out = Region("out", acc.start, acc.count)
        if box.elem_bytes == 1:
            return [Alu(acc, out, 0), Store("STORE", "STORE", "out_to_dram", out, box, unarrange)]
        program = []
        for j in range(box.elem_bytes):
            plane = Box(f"{box.tensor}@{j}", box.view, box.starts, box.sizes, 1, box.strides, box.density)
            program += [Alu(acc, out, 8 if j else 0), Store("STORE", "STORE", "out_to_dram", out, plane, unarrange)]
        return program

    # ------------------------------------------------------------------ data movement
    def staging(self, half: int, slot: int, elements: int) -> Region:
        return Region("acc", (2 * half + slot) * self.quarter, -(-elements // BLOCK))

    def move_load(self, box, region):
        if box.elem_bytes != 1:
            raise ValueError(f"VTA cannot read back the int32 tensor {box.tensor!r} (it stores only byte "
                             f"planes); choose an algorithm without int32 transforms (phase_split, direct)")
        return [Load("LOAD.acc8", "COMPUTE", "dram_to_acc", region, box, lambda f: flat_units(f, BLOCK))]

    def move_store(self, box, region):
        return self._planes(box, region, lambda u: unflat(u, box.sizes))

    def fill(self, region):
        return [Fill("GEMM.reset", "COMPUTE", region, self.target.timing["gemm_ii"])]

    def add(self, dst, src):
        raise ValueError("col2im (gemm_col2im) is not lowered on VTA: it needs int32 read-back; use phase_split")

    # ------------------------------------------------------------------ program
    def finish(self, program: list) -> list:
        return insert_tokens(program)

    def candidates(self, g, extra: int = 8) -> list[Tile]:
        """The shared pool, after `extra` tiles from the shared config space with each tile also grown
        to the largest power-of-two batch that fits (a backward-weight core's batch is the input
        channels), ranked by the shared estimate plus the fixed cycles of the instructions a tile
        costs (DMA latency per LOAD / STORE, pipeline fill per GEMM / ALU): fewer, bigger
        instructions win the ties the shared estimate leaves."""
        from .tiling import candidates, estimate

        shared = candidates(g, self)
        pool = set(candidates(g, self, limit=10 ** 6))
        for t in list(pool):
            b = t.b
            while b * 2 <= g.n and self.fits(g, replace(t, b=b * 2)):
                b *= 2
            pool.add(replace(t, b=b))
        timing, dma = self.target.timing, self.target.path("dram_to_inp").fixed_cycles

        def cost(t: Tile) -> float:
            tiles = math.prod(-(-getattr(g, a if a != "b" else "n") // getattr(t, a)) for a in "bpqk")
            steps = -(-g.r // t.r) * -(-g.s // t.s) * -(-g.c // t.c)
            fixed = tiles * steps * (2 * dma + -(-t.c // BLOCK) * timing["pipeline_fill"])
            fixed += tiles * 4 * (dma + timing["pipeline_fill"])  # byte-plane stores of an int32 result
            return estimate(g, t, self.dim) + fixed

        ranked = sorted(pool - set(shared), key=lambda t: (cost(t), repr(t)))
        return ranked[:extra] + shared  # first: the search may run out of its instruction budget

    def vendor_tile(self, g) -> Tile:
        """TVM's heuristic: fitting tiles with h, w factors > 2 and the full filter, minimum DRAM bytes."""
        from .tiling import candidates, traffic

        pool = [t for t in candidates(g, self, limit=10 ** 6)
                if t.r == g.r and t.s == g.s and t.order == "bpqk" and (t.p > 2 or t.p == g.p)
                and (t.q > 2 or t.q == g.q)]
        if not pool:
            raise ValueError(f"no VTA tile keeps the whole {g.r}x{g.s} filter on chip as TVM's schedule does "
                             f"(VTA has no backward-weight operator); core {g}")
        return min(pool, key=lambda t: (traffic(g, t), -t.p * t.q))

    def bound_tile(self, g) -> Tile:
        from .tiling import bound_tile

        return bound_tile(g, self, self.inp.depth // 2 * BLOCK, self.acc.depth // 2 * BLOCK)


def _runs(values: list[int], step_ok) -> list[tuple[int, int, int]]:
    """Split sorted `values` into arithmetic runs (first, step, count) a GEMM loop can walk; a step
    whose loop factor does not fit its ISA field (`step_ok` False) gives runs of one."""
    runs: list[tuple[int, int, int]] = []
    for v in values:
        if runs:
            first, step, count = runs[-1]
            if count == 1 and step_ok(v - first):
                runs[-1] = (first, v - first, 2)
                continue
            if count > 1 and v == first + step * count:
                runs[-1] = (first, step, count + 1)
                continue
        runs.append((v, 1, 1))
    return runs


def _singles(axis):
    """A loop axis split into runs of one value (the axis is not looped)."""
    runs, src_unit, wgt_unit = axis
    return [(first + i * step, 1, 1) for first, step, count in runs for i in range(count)], src_unit, wgt_unit


def _two_loops(axes: list) -> list:
    """Keep the runs of the two axes whose loops leave the fewest GEMMs; split the third into singles."""
    def gemms(kept):
        return math.prod(len(runs) if i in kept else sum(c for _, _, c in runs) for i, (runs, _, _) in enumerate(axes))

    kept = min(((0, 1), (0, 2), (1, 2)), key=gemms)
    return [axis if i in kept else _singles(axis) for i, axis in enumerate(axes)]
