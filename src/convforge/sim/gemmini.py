"""Gemmini plug-in: mvin / mvout (ops.Load / ops.Store on the LD / ST controllers) and the execute
loop of LoopConv (`loop_conv_ex`), which stands for the preload / compute pairs of one tile.

Scratchpad rows hold DIM consecutive channels of one input pixel (A) or DIM output channels of one
(kh, kw, ci) (B); accumulator rows DIM int32 output channels of one output pixel. The mesh
computes int8 x int8 products summed in int20 within one DIM-deep pair (never overflows) and adds
them into the int32 accumulator with two's-complement wrap-around.
"""

from __future__ import annotations

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
    """C (+)= conv(A, B) for one tile: the preload/compute pairs LoopConv's execute FSM issues."""

    a: Region
    b: Region
    c: Region
    shape: TileShape
    accumulate: bool  # False on the first reduction step: overwrite the accumulator rows
    dim: int = 16  # the mesh size (the target's intrinsic n)
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
        need = {"a": ncb * t.tb * t.rows * t.cols, "b": nkb * t.tr * t.ts * t.tc, "c": nkb * t.tb * t.tp * t.tq}
        for name, units in need.items():
            if getattr(self, name).count != units:
                raise m.fault(f"operand {name} region {getattr(self, name)} has {getattr(self, name).count} rows, "
                              f"the tile needs {units}")

    def pairs_cycles(self, m: Machine) -> float:
        """Each preload+compute pair takes max(a_rows, b_rows, 4) cycles when it preloads new weights (the
        first pair of every (tap, out-block, in-block)), max(a_rows, 4) when it reuses them."""
        dim, _, nkb = self._blocks(m)
        t = self.shape
        floor = m.target.timing["min_pair_rows"]
        full, tail = divmod(t.tq, dim)
        a_rows = [dim] * full + ([tail] if tail else [])
        per_weights = t.tb * t.tp * sum(max(a, floor) for a in a_rows)
        k_rows = [dim] * (t.tc // dim) + ([t.tc % dim] if t.tc % dim else [])
        preload = sum(max(a_rows[0], kr, floor) - max(a_rows[0], floor) for kr in k_rows)
        return len(t.taps) * nkb * (len(k_rows) * per_weights + preload)

    def cost(self, m: Machine) -> float:
        return m.target.timing["fill_cycles"] + self.pairs_cycles(m)

    def account(self, stats: Stats) -> None:
        stats.executed_macs += self.shape.macs
        t = self.shape
        d = self.dim
        self.primitives = len(t.taps) * t.tb * t.tp * -(-t.tq // d) * -(-t.tc // d) * -(-t.tk // d)

    def execute(self, m: Machine) -> None:
        dim, ncb, nkb = self._blocks(m)
        t = self.shape
        a = m.units(self.a).reshape(ncb, t.tb, t.rows, t.cols, dim).transpose(1, 2, 3, 0, 4)
        a = a.reshape(t.tb, t.rows, t.cols, ncb * dim)[..., :t.tc]
        b = m.units(self.b).reshape(nkb, t.tr, t.ts, t.tc, dim).transpose(1, 2, 3, 0, 4)
        b = b.reshape(t.tr, t.ts, t.tc, nkb * dim)
        shape = TileShape(t.tb, t.tp, t.tq, nkb * dim, t.tc, t.tr, t.ts, t.stride, t.dilation, t.taps)
        y = conv_tile(shape, a, b)  # [tb, tp, tq, nkb*dim]
        rows = y.reshape(t.tb, t.tp, t.tq, nkb, dim).transpose(3, 0, 1, 2, 4).reshape(-1, dim)
        c = m.units(self.c)
        c[...] = wrap_int32(rows + (c.astype(np.int64) if self.accumulate else 0))

    def text(self) -> str:
        t = self.shape
        return (f"loop_conv_ex A={self.a} B={self.b} C={self.c} {'acc' if self.accumulate else 'new'} "
                f"tile b{t.tb} p{t.tp} q{t.tq} k{t.tk} c{t.tc} r{t.tr} s{t.ts} taps={len(t.taps)} "
                f"stride={t.stride} dil={t.dilation}")



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
