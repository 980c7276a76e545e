"""VTA plug-in: GEMM and ALU instructions with their micro-op loops (LOAD / STORE are ops.Load /
ops.Store on the LOAD, COMPUTE and STORE modules); ordering across modules only by dependency tokens
(l2g, g2l, g2s, s2g), which the machine checks (an unordered overlap is a race).

GEMM: for y < iter_out, x < iter_in, u in [uop_bgn, uop_end):
    acc[dst] += inp[src] @ wgt[wgt]^T   (dst/src/wgt = uop fields + y*factor_out + x*factor_in)
int8 x int8 products, int32 accumulator with wrap-around. ALU SHR shifts acc right (arithmetic);
every ALU write also sets out = low 8 bits of acc (truncation, no saturation).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .machine import Instruction, Machine, Region, Stats

DST_BITS, SRC_BITS = 11, 11


def pack_uops(dst, src, wgt) -> np.ndarray:
    """32-bit micro-ops: dst[11] | src[11] | wgt[10]."""
    dst, src, wgt = (np.asarray(v, dtype=np.int64) for v in (dst, src, wgt))
    return (dst | (src << DST_BITS) | (wgt << (DST_BITS + SRC_BITS))).astype(np.uint32).view(np.int32)


def unpack_uops(words: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    u = words.astype(np.int64) & 0xFFFFFFFF
    return u & 0x7FF, (u >> DST_BITS) & 0x7FF, (u >> (DST_BITS + SRC_BITS)) & 0x3FF


@dataclass
class Gemm(Instruction):
    uop_bgn: int
    uop_end: int
    iter_out: int
    iter_in: int
    dst_factor: tuple[int, int]  # (out, in)
    src_factor: tuple[int, int]
    wgt_factor: tuple[int, int]
    acc: Region  # the regions the loop touches (for the checks and the dependencies)
    inp: Region
    wgt: Region
    macs: int  # logical multiply-adds (structural zeros included, channel padding excluded)
    pops: tuple = ()
    pushes: tuple = ()
    engine: str = "COMPUTE"
    opcode: str = "GEMM"

    def reads(self):
        return [Region("uop", self.uop_bgn, self.uop_end - self.uop_bgn), self.inp, self.wgt, self.acc]

    def writes(self):
        return [self.acc]

    def check(self, m: Machine) -> None:
        lim = m.target.limits
        fields = (("iter_out", self.iter_out, lim["iter_bits"]), ("iter_in", self.iter_in, lim["iter_bits"]),
                  ("uop_bgn", self.uop_bgn, lim["uop_bgn_bits"]), ("uop_end", self.uop_end, lim["uop_end_bits"]),
                  ("dst_factor_out", self.dst_factor[0], lim["dst_factor_bits"]),
                  ("dst_factor_in", self.dst_factor[1], lim["dst_factor_bits"]),
                  ("src_factor_out", self.src_factor[0], lim["src_factor_bits"]),
                  ("src_factor_in", self.src_factor[1], lim["src_factor_bits"]),
                  ("wgt_factor_out", self.wgt_factor[0], lim["wgt_factor_bits"]),
                  ("wgt_factor_in", self.wgt_factor[1], lim["wgt_factor_bits"]))
        for name, value, bits in fields:
            if not 0 <= value < (1 << bits):
                raise m.fault(f"field {name}={value} does not fit its {bits}-bit ISA field")

    def cost(self, m: Machine) -> float:
        t = m.target.timing
        return t["pipeline_fill"] + self.iter_out * self.iter_in * (self.uop_end - self.uop_bgn) * t["gemm_ii"]

    def account(self, stats: Stats) -> None:
        stats.executed_macs += self.macs
        self.primitives = self.iter_out * self.iter_in * (self.uop_end - self.uop_bgn)

    def execute(self, m: Machine) -> None:
        """All micro-ops of the loop at once: products in exact integers, summed per acc entry, added
        with int32 wrap-around. Input lanes that are zero in the whole declared inp region (channel
        padding) are left out of the products, which changes no sum."""
        d0, s0, w0 = unpack_uops(m.buffers["uop"].data[self.uop_bgn:self.uop_end, 0])
        y = np.arange(self.iter_out)[:, None, None]
        x = np.arange(self.iter_in)[None, :, None]
        dst = d0 + y * self.dst_factor[0] + x * self.dst_factor[1]  # [iter_out, iter_in, uops]
        src = s0 + y * self.src_factor[0] + x * self.src_factor[1]
        wgt = w0 + y * self.wgt_factor[0] + x * self.wgt_factor[1]
        for name, index, region in (("dst", dst, self.acc), ("src", src, self.inp), ("wgt", wgt, self.wgt)):
            if index.min() < region.start or index.max() >= region.start + region.count:
                raise m.fault(f"micro-op {name} index {int(index.max())} leaves its declared region {region}")
        # float32 is exact here: at most 16 products of int8 values per micro-op (< 2**19)
        lanes = np.flatnonzero(m.units(self.inp).any(axis=0))
        inp = m.units(self.inp)[:, lanes].astype(np.float32)[src - self.inp.start]  # [out, in, uops, lanes]
        first = int(wgt.min())  # only the weight entries the loop reads
        weights = m.buffers["wgt"].data[first:int(wgt.max()) + 1].reshape(-1, 16, 16)[:, :, lanes].astype(np.float32)
        _accumulate(m.buffers["acc"].data, dst, _products(inp, weights, w0, wgt - first))

    def text(self) -> str:
        return (f"GEMM uop[{self.uop_bgn}:{self.uop_end}] iter {self.iter_out}x{self.iter_in} "
                f"dst+{self.dst_factor} src+{self.src_factor} wgt+{self.wgt_factor}")


@dataclass
class Alu(Instruction):
    """acc = acc >> shift over a region (shift 0 just copies), then out = low byte of acc."""

    acc: Region
    out: Region
    shift: int
    pops: tuple = ()
    pushes: tuple = ()
    engine: str = "COMPUTE"
    opcode: str = "ALU.SHR"

    def reads(self):
        return [self.acc]

    def writes(self):
        return [self.acc, self.out]

    def check(self, m: Machine) -> None:
        if self.acc.count != self.out.count:
            raise m.fault(f"acc region {self.acc} and out region {self.out} differ in size")

    def cost(self, m: Machine) -> float:
        t = m.target.timing
        return t["pipeline_fill"] + self.acc.count * t["alu_ii"]

    def execute(self, m: Machine) -> None:
        acc = m.units(self.acc)
        acc >>= self.shift
        m.units(self.out)[...] = (acc & 0xFF).astype(np.uint8).view(np.int8)

    def text(self) -> str:
        return f"ALU.SHR {self.acc} >>= {self.shift}; {self.out} = low8"


@dataclass
class Nop(Instruction):
    """A zero-trip GEMM on the compute module: carries tokens between LOAD and STORE, which share no queue."""

    pops: tuple = ()
    pushes: tuple = ()
    engine: str = "COMPUTE"
    opcode: str = "GEMM.nop"

    def cost(self, m: Machine) -> float:
        return 1.0

    def text(self) -> str:
        return "GEMM.nop"


def _products(inp: np.ndarray, weights: np.ndarray, w0: np.ndarray, wgt: np.ndarray) -> np.ndarray:
    """inp[y, x, u] @ weights[wgt[y, x, u]]^T for every micro-op. Micro-ops whose uop words name the
    same weight entry read one weight at every loop step: when each entry serves equally many (at
    least 16) micro-ops over at least 8 lanes, one batched matrix product per (loop step, entry);
    otherwise (few lanes: a product per micro-op is cheap) every micro-op gathers its own weight."""
    uops = w0.size
    order = np.argsort(w0, kind="stable")
    firsts = np.flatnonzero(np.r_[True, w0[order][1:] != w0[order][:-1]])
    size = uops // firsts.size
    if size < 16 or inp.shape[3] < 8 or np.any(np.diff(np.r_[firsts, uops]) != size):
        return np.einsum("yxui,yxuoi->yxuo", inp, weights[wgt])
    loops = inp.shape[:2]
    grouped = inp[:, :, order].reshape(*loops, firsts.size, size, inp.shape[3])
    shared = weights[wgt[:, :, order[firsts]]].swapaxes(-1, -2)  # [iter_out, iter_in, entries, lanes, 16]
    products = np.empty(inp.shape[:3] + (16,), dtype=np.float32)
    products[:, :, order] = (grouped @ shared).reshape(*loops, uops, 16)
    return products


def _accumulate(acc: np.ndarray, dst: np.ndarray, values: np.ndarray) -> None:
    """acc[dst] += values with int32 wrap-around; dst [iter_out, iter_in, uops], values the same + outputs.
    Loop axes along which dst does not move are summed first; repeated entries go through add.at."""
    values = np.rint(values).astype(np.int64)
    for axis in (1, 0):
        if dst.shape[axis] > 1 and (dst == dst.take([0], axis=axis)).all():
            dst, values = dst.take([0], axis=axis), values.sum(axis=axis, keepdims=True)
    dst, values = dst.ravel(), values.reshape(-1, values.shape[-1])
    if np.bincount(dst - dst.min()).max() == 1:
        acc[dst] = (acc[dst].astype(np.int64) + values).astype(np.int32)
        return
    total = acc.astype(np.int64)
    np.add.at(total, dst, values)
    acc[...] = total.astype(np.int32)
