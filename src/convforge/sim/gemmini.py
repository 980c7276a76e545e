"""Gemmini plug-in: mvin / mvout (ops.Load / ops.Store on the LD / ST controllers) and the execute
loop of LoopConv (`loop_conv_ex`), which stands for the preload / compute pairs of one tile.

Scratchpad rows hold DIM consecutive channels of one input pixel (A) or DIM output channels of one
(kh, kw, ci) (B); accumulator rows DIM int32 output channels of one output pixel. The mesh
computes int8 x int8 products summed in int20 within one DIM-deep pair (never overflows) and adds
them into the int32 accumulator with two's-complement wrap-around.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from .machine import Instruction, Machine, Region, Stats
from .ops import Load
from .tile import TileShape, conv_tile, wrap_int32


def a_units(frame: np.ndarray, dim: int) -> np.ndarray:
    """Input frame [tb, tc, IR, IC] -> spad rows (cb, b, ir, ic) x DIM channels."""
    tb, tc, ir, ic = frame.shape
    ncb = -(-tc // dim)
    padded = np.zeros((tb, ncb * dim, ir, ic), dtype=frame.dtype)
    padded[:, :tc] = frame
    return padded.reshape(tb, ncb, dim, ir, ic).transpose(1, 0, 3, 4, 2).reshape(-1, dim)


def b_units(frame: np.ndarray, dim: int) -> np.ndarray:
    """Weight frame [tk, tc, tr, ts] -> spad rows (kb, r, s, c) x DIM output channels."""
    tk, tc, tr, ts = frame.shape
    nkb = -(-tk // dim)
    padded = np.zeros((nkb * dim, tc, tr, ts), dtype=frame.dtype)
    padded[:tk] = frame
    return padded.reshape(nkb, dim, tc, tr, ts).transpose(0, 3, 4, 2, 1).reshape(-1, dim)


def c_frame(units: np.ndarray, dim: int, tb: int, tk: int, tp: int, tq: int) -> np.ndarray:
    """Accumulator rows (kb, b, p, q) x DIM -> output frame [tb, tk, tp, tq]."""
    nkb = -(-tk // dim)
    return units.reshape(nkb, tb, tp, tq, dim).transpose(1, 0, 4, 2, 3).reshape(tb, nkb * dim, tp, tq)[:, :tk]


@dataclass
class LoopConvEx(Instruction):
    """C (+)= conv(A, B) for one tile: the preload/compute pairs of its execute loop.

    LoopConv's own loop (`flat` False): A holds the halo tile, rows (cb, b, ir, ic); every pair covers at
    most one output row. `flat`: A holds one copy of the input window per filter tap, rows
    (tap, cb, b, p, q) (a 1x1 stride-1 tile's halo is that already), so a tap's output pixels are
    consecutive A and C rows and its pairs run over DIM-row chunks of all of them; `p_ranges` (per filter
    row of the tile) then limits each tap to the output rows whose input row exists (the others read
    padding only and are skipped)."""

    a: Region
    b: Region
    c: Region
    shape: TileShape
    accumulate: bool  # False on the first reduction step: overwrite the accumulator rows
    dim: int = 16  # the mesh size (the target's intrinsic n)
    flat: bool = False
    p_ranges: tuple[tuple[int, int], ...] = ()
    engine: str = "EX"
    opcode: str = "loop_conv_ex"

    def reads(self):
        return [self.a, self.b] + ([self.c] if self.accumulate else [])

    def writes(self):
        return [self.c]

    def _blocks(self, m: Machine):
        dim = m.target.intrinsic["n"]
        if dim != self.dim:
            raise m.fault(f"was built for a {self.dim}x{self.dim} mesh, the target has DIM={dim}")
        t = self.shape
        return dim, -(-t.tc // dim), -(-t.tk // dim)

    def a_rows(self) -> int:
        t = self.shape
        if self.flat:
            return -(-t.tc // self.dim) * t.tb * t.tp * t.tq * t.tr * t.ts
        return -(-t.tc // self.dim) * t.tb * t.rows * t.cols

    def check(self, m: Machine) -> None:
        _, ncb, nkb = self._blocks(m)
        t = self.shape
        bound = m.target.limits["loop_bound"]
        for name, value in (("batches", t.tb), ("out_rows", t.tp), ("out_cols", t.tq), ("out_channels", t.tk),
                            ("in_channels", t.tc), ("in_rows", t.rows), ("in_cols", t.cols)):
            if value > bound:
                raise m.fault(f"field {name}={value} exceeds the ISA limit loop_bound={bound}")
        if max(t.dilation) > m.target.limits["max_kernel_dilation"]:
            raise m.fault(f"field kernel_dilation={t.dilation} exceeds max_kernel_dilation="
                          f"{m.target.limits['max_kernel_dilation']}")
        if self.flat and t.stride != (1, 1):
            raise m.fault(f"a flat tile needs stride 1, got {t.stride}")
        need = {"a": self.a_rows(), "b": nkb * t.tr * t.ts * t.tc, "c": nkb * t.tb * t.tp * t.tq}
        for name, units in need.items():
            if getattr(self, name).count != units:
                raise m.fault(f"operand {name} region {getattr(self, name)} has {getattr(self, name).count} rows, "
                              f"the tile needs {units}")

    def chunks(self, r: int) -> list[int]:
        """A rows of the successive pairs of one filter tap in filter row `r` of the tile."""
        return list(_chunks(self.shape, self.dim, self.flat, self.p_ranges, r))

    def pairs_cycles(self, m: Machine) -> float:
        """Each preload+compute pair takes max(a_rows, b_rows, 4) cycles when it preloads new weights (the
        first pair of every (tap, out-block, in-block)), max(a_rows, 4) when it reuses them."""
        dim, _, nkb = self._blocks(m)
        return _pairs_cycles(self.shape, dim, self.flat, self.p_ranges, nkb, m.target.timing["min_pair_rows"])

    def cost(self, m: Machine) -> float:
        return m.target.timing["fill_cycles"] + self.pairs_cycles(m)

    def account(self, stats: Stats) -> None:
        stats.executed_macs += self.shape.macs
        t = self.shape
        d = self.dim
        self.primitives = sum(len(self.chunks(r)) for r, _ in t.taps) * -(-t.tc // d) * -(-t.tk // d)

    def execute(self, m: Machine) -> None:
        dim, ncb, nkb = self._blocks(m)
        t = self.shape
        b = m.units(self.b).reshape(nkb, t.tr, t.ts, t.tc, dim).transpose(1, 2, 3, 0, 4)
        b = b.reshape(t.tr, t.ts, t.tc, nkb * dim)
        if self.flat:
            a = m.units(self.a).reshape(t.tr * t.ts, ncb, t.tb * t.tp * t.tq, dim).transpose(0, 2, 1, 3)
            a = a.reshape(t.tr * t.ts, -1, ncb * dim)[..., :t.tc].astype(np.float64)
            y = np.zeros((t.tb * t.tp * t.tq, nkb * dim))
            for r, s in t.taps:
                y += a[r * t.ts + s] @ b[r, s].astype(np.float64)
        else:
            a = m.units(self.a).reshape(ncb, t.tb, t.rows, t.cols, dim).transpose(1, 2, 3, 0, 4)
            a = a.reshape(t.tb, t.rows, t.cols, ncb * dim)[..., :t.tc]
            shape = TileShape(t.tb, t.tp, t.tq, nkb * dim, t.tc, t.tr, t.ts, t.stride, t.dilation, t.taps)
            y = conv_tile(shape, a, b)  # [tb, tp, tq, nkb*dim]
        rows = y.reshape(t.tb, t.tp, t.tq, nkb, dim).transpose(3, 0, 1, 2, 4).reshape(-1, dim)
        c = m.units(self.c)
        c[...] = wrap_int32(rows + (c.astype(np.int64) if self.accumulate else 0))

    def text(self) -> str:
        t = self.shape
        return (f"loop_conv_ex A={self.a} B={self.b} C={self.c} {'acc' if self.accumulate else 'new'} "
                f"tile b{t.tb} p{t.tp} q{t.tq} k{t.tk} c{t.tc} r{t.tr} s{t.ts} taps={len(t.taps)} "
                f"stride={t.stride} dil={t.dilation}{f' flat rows={list(self.p_ranges)}' if self.flat else ''}")


@dataclass
class GatherLoad(Load):
    """An mvin sequence that assembles spad rows from several short DRAM runs (an im2col gather of
    packed filter taps): costed by its exact bytes and runs, not by the box's per-axis strides."""

    nbytes: int = 0
    runs: int = 0

    def cost(self, m: Machine) -> float:
        p = m.target.path(self.path)
        return p.cycles(self.nbytes, self.runs)

    def account(self, stats: Stats) -> None:
        stats.bytes[f"dram->{self.dst.buffer}"] += self.nbytes


# pure functions of a tile's shape: a program repeats a few shapes thousands of times, and the timing-only
# simulation (what a tuner calls) would otherwise recount the same pairs for each instruction
@functools.lru_cache(maxsize=4096)
def _chunks(t: TileShape, dim: int, flat: bool, p_ranges: tuple, r: int) -> tuple[int, ...]:
    if not flat:
        return tuple(min(dim, t.tq - q) for q in range(0, t.tq, dim)) * (t.tb * t.tp)
    lo, hi = p_ranges[r] if p_ranges else (0, t.tp)
    span, images = ((hi - lo) * t.tq, t.tb) if hi - lo < t.tp else (t.tb * t.tp * t.tq, 1)
    return tuple(min(dim, span - i) for i in range(0, span, dim)) * images


@functools.lru_cache(maxsize=4096)
def _pairs_cycles(t: TileShape, dim: int, flat: bool, p_ranges: tuple, nkb: int, floor: int) -> float:
    k_rows = [dim] * (t.tc // dim) + ([t.tc % dim] if t.tc % dim else [])
    total = 0
    for r, _ in t.taps:
        a_rows = _chunks(t, dim, flat, p_ranges, r)
        if a_rows:
            per_weights = sum(max(a, floor) for a in a_rows)
            total += len(k_rows) * per_weights + sum(max(a_rows[0], kr, floor) - max(a_rows[0], floor)
                                                     for kr in k_rows)
    return nkb * total
