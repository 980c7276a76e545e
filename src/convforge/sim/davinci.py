"""DaVinci plug-in: load3d (hardware img2col L1 -> L0A), load2d (L1 -> L0B fractals), mmad (cube),
the L0C -> UB move; GM <-> L1 / UB copies are ops.Load / ops.Store on MTE2 / MTE3, vector adds
ops.Add on V. Pipes run in order; cross-pipe hazards are the set_flag / wait_flag pairs a compiler
inserts, which the machine derives from the regions.

Layouts: L1 feature maps NC1HWC0 (one unit = one C0 vector of 16 fp16), weights FRACTAL_Z (= nZ);
L0A zZ (fractals row-major, elements row-major), L0B nZ, L0C zN. fp16 products, fp32 accumulation
in L0C.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .machine import Instruction, Machine, Region, Stats
from .tile import TileShape

F = 16  # fractal side


def l0a_units(shape: TileShape) -> int:
    return -(-shape.tb * shape.tp * shape.tq // F) * F * -(-shape.tc // F) * len(shape.taps)


def l0b_units(shape: TileShape) -> int:
    return -(-shape.tc // F) * len(shape.taps) * -(-shape.tk // F) * F


def l0c_units(shape: TileShape) -> int:
    return -(-shape.tk // F) * -(-shape.tb * shape.tp * shape.tq // F) * F


@dataclass
class Load3d(Instruction):
    """img2col: L1 tile (c1, b, row, col) x C0 -> L0A zZ matrix IM[m = (b, p, q)][k = (c1, tap, c0)]."""

    src: Region
    dst: Region
    shape: TileShape
    engine: str = "MTE1"
    opcode: str = "load3d"

    def reads(self):
        return [self.src]

    def writes(self):
        return [self.dst]

    def check(self, m: Machine) -> None:
        lim, s = m.target.limits, self.shape
        for name, value, limit in (("stride", max(s.stride), lim["max_stride"]),
                                   ("dilation", max(s.dilation), lim["max_dilation"]),
                                   ("filter size", max(s.tr, s.ts), lim["max_kernel"])):
            if value > limit:
                raise m.fault(f"field {name}={value} exceeds the load3d limit {limit}")
        if self.dst.count != l0a_units(s):
            raise m.fault(f"destination {self.dst} has {self.dst.count} units, the img2col matrix needs "
                          f"{l0a_units(s)}")

    def cost(self, m: Machine) -> float:
        return m.target.path("l1_to_l0a").cycles(self.dst.count * 32, 1)

    def account(self, stats: Stats) -> None:
        stats.bytes["L1->L0A"] += self.dst.count * 32

    def execute(self, m: Machine) -> None:
        s = self.shape
        ncb = -(-s.tc // F)
        x = m.units(self.src).reshape(ncb, s.tb, s.rows, s.cols, F).transpose(1, 0, 2, 3, 4)
        (sh, sw), (dh, dw) = s.stride, s.dilation
        taps = [x[:, :, r * dh:r * dh + (s.tp - 1) * sh + 1:sh, q * dw:q * dw + (s.tq - 1) * sw + 1:sw, :]
                for r, q in s.taps]
        im = np.stack(taps, axis=2)  # [tb, ncb, ntaps, tp, tq, c0]
        im = im.transpose(0, 3, 4, 1, 2, 5).reshape(s.tb * s.tp * s.tq, -1)
        m1 = -(-im.shape[0] // F)
        padded = np.zeros((m1 * F, im.shape[1]), dtype=im.dtype)
        padded[:im.shape[0]] = im
        k1 = im.shape[1] // F
        m.units(self.dst)[...] = padded.reshape(m1, F, k1, F).transpose(0, 2, 1, 3).reshape(-1, F)

    def text(self) -> str:
        s = self.shape
        return (f"load3d {self.dst} <- img2col({self.src}) fmap b{s.tb} c{s.tc} {s.rows}x{s.cols} "
                f"stride={s.stride} dil={s.dilation} taps={len(s.taps)} out {s.tp}x{s.tq}")


@dataclass
class Load2d(Instruction):
    """Whole weight fractals L1 (FRACTAL_Z = nZ) -> L0B, only the taps this step uses."""

    src: Region
    dst: Region
    shape: TileShape
    engine: str = "MTE1"
    opcode: str = "load2d"

    def reads(self):
        return [self.src]

    def writes(self):
        return [self.dst]

    def check(self, m: Machine) -> None:
        if self.dst.count != l0b_units(self.shape):
            raise m.fault(f"destination {self.dst} has {self.dst.count} units, needs {l0b_units(self.shape)}")
        fractals = self.dst.count // F
        if fractals > m.target.limits["max_repeat"] * F:
            raise m.fault(f"moves {fractals} fractals, more than repeatTimes allows")

    def cost(self, m: Machine) -> float:
        return m.target.path("l1_to_l0b").cycles(self.dst.count * 32, 1)

    def account(self, stats: Stats) -> None:
        stats.bytes["L1->L0B"] += self.dst.count * 32

    def execute(self, m: Machine) -> None:
        s = self.shape
        ncb, nkb = -(-s.tc // F), -(-s.tk // F)
        w = m.units(self.src).reshape(ncb, s.tr, s.ts, nkb * F, F)
        rows = [r for r, _ in s.taps]
        cols = [q for _, q in s.taps]
        m.units(self.dst)[...] = w[:, rows, cols].reshape(-1, F)

    def text(self) -> str:
        return f"load2d {self.dst} <- {self.src} taps={len(self.shape.taps)}"


@dataclass
class Mmad(Instruction):
    """L0C (+)= L0A @ L0B: fp16 x fp16 products, fp32 accumulation; cost one cycle per fractal triple."""

    a: Region
    b: Region
    c: Region
    shape: TileShape
    accumulate: bool
    engine: str = "M"
    opcode: str = "mmad"

    def dims(self) -> tuple[int, int, int]:
        s = self.shape
        return s.tb * s.tp * s.tq, -(-s.tc // F) * F * len(s.taps), -(-s.tk // F) * F

    def reads(self):
        return [self.a, self.b] + ([self.c] if self.accumulate else [])

    def writes(self):
        return [self.c]

    def check(self, m: Machine) -> None:
        limit = m.target.limits["max_mad_mkn"]
        for name, value in zip("mkn", self.dims()):
            if value > limit:
                raise m.fault(f"field {name}={value} exceeds the mmad limit {limit}")

    def cost(self, m: Machine) -> float:
        mm, k, n = self.dims()
        t = m.target.timing
        return t["mmad_fixed_cycles"] + math.ceil(mm / F) * (k // F) * (n // F) * t["cube_cycles_per_fractal"]

    def account(self, stats: Stats) -> None:
        stats.executed_macs += self.shape.macs

    def execute(self, m: Machine) -> None:
        mm, k, n = self.dims()
        m1, k1, n1 = -(-mm // F), k // F, n // F
        a = m.units(self.a).reshape(m1, k1, F, F).transpose(0, 2, 1, 3).reshape(m1 * F, k).astype(np.float64)
        b = m.units(self.b).reshape(k1, n, F).transpose(0, 2, 1).reshape(k, n).astype(np.float64)
        c = (a @ b).reshape(m1, F, n1, F).transpose(2, 0, 1, 3).reshape(-1, F)
        out = m.units(self.c)
        out[...] = (out.astype(np.float64) + c if self.accumulate else c).astype(np.float32)

    def text(self) -> str:
        mm, k, n = self.dims()
        return f"mmad {self.c} {'+=' if self.accumulate else '='} {self.a} x {self.b}  m={mm} k={k} n={n}"


@dataclass
class Move(Instruction):
    """A dense copy between on-chip buffers along a target path (L0C -> UB)."""

    path: str
    src: Region
    dst: Region
    unit_bytes: int
    engine: str
    opcode: str

    def reads(self):
        return [self.src]

    def writes(self):
        return [self.dst]

    def check(self, m: Machine) -> None:
        if self.src.count != self.dst.count:
            raise m.fault(f"copies {self.src.count} units into {self.dst.count}")

    def cost(self, m: Machine) -> float:
        return m.target.path(self.path).cycles(self.src.count * self.unit_bytes, 1)

    def account(self, stats: Stats) -> None:
        stats.bytes[f"{self.src.buffer}->{self.dst.buffer}"] += self.src.count * self.unit_bytes

    def execute(self, m: Machine) -> None:
        m.units(self.dst)[...] = m.units(self.src)

    def text(self) -> str:
        return f"{self.opcode} {self.dst} <- {self.src}"
