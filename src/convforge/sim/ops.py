"""Data-movement instructions every ISA has in some form: DMA load, DMA store, fill, add.

Each ISA plug-in gives them its own opcode names and engines (through the target's paths); the
functional effect and the cost rule are the same: a DMA moves a `Box` (see dma.py) between DRAM and
a buffer region in the target's on-chip arrangement (`arrange` / `unarrange`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .dma import Box
from .machine import Instruction, Machine, Region, Stats


@dataclass
class Load(Instruction):
    """DRAM box -> buffer units (zero padding made on chip)."""

    opcode: str
    engine: str
    path: str
    dst: Region
    box: Box
    arrange: Callable[[np.ndarray], np.ndarray]  # frame -> [units, lanes]
    primitives: int = 1
    pops: tuple[str, ...] = ()
    pushes: tuple[str, ...] = ()

    def writes(self):
        return [self.dst]

    def dram_reads(self):
        return (self.box.tensor,)

    def cost(self, m: Machine) -> float:
        p = m.target.path(self.path)
        return p.cycles(self.box.bytes, self.box.requests(p.request_bytes))

    def account(self, stats: Stats) -> None:
        stats.bytes[f"dram->{self.dst.buffer}"] += self.box.bytes

    def execute(self, m: Machine) -> None:
        units = self.arrange(self.box.frame(m))
        if units.shape[0] != self.dst.count:
            raise m.fault(f"moves {units.shape[0]} units into a region of {self.dst.count}")
        m.units(self.dst)[...] = units

    def text(self) -> str:
        return (f"{self.opcode} {self.dst} <- {self.box.tensor}{list(self.box.starts)}+{list(self.box.sizes)} "
                f"({self.box.bytes} B)")


@dataclass
class Store(Instruction):
    """Buffer units -> DRAM box through the view (overwrite, or read-add-write when accumulating)."""

    opcode: str
    engine: str
    path: str
    src: Region
    box: Box
    unarrange: Callable[[np.ndarray], np.ndarray]  # [units, lanes] -> frame
    accumulate: bool = False
    primitives: int = 1
    pops: tuple[str, ...] = ()
    pushes: tuple[str, ...] = ()

    def reads(self):
        return [self.src]

    def dram_writes(self):
        return (self.box.tensor,)

    def dram_reads(self):
        return (self.box.tensor,) if self.accumulate else ()

    def cost(self, m: Machine) -> float:
        p = m.target.path(self.path)
        times = 2 if self.accumulate else 1
        return times * p.cycles(self.box.bytes, self.box.requests(p.request_bytes))

    def account(self, stats: Stats) -> None:
        stats.bytes[f"{self.src.buffer}->dram"] += self.box.bytes
        if self.accumulate:
            stats.bytes[f"dram->{self.src.buffer}"] += self.box.bytes

    def execute(self, m: Machine) -> None:
        self.box.store(m, self.unarrange(m.units(self.src)), self.accumulate)

    def text(self) -> str:
        op = "+=" if self.accumulate else "<-"
        return (f"{self.opcode} {self.box.tensor}{list(self.box.starts)}+{list(self.box.sizes)} {op} {self.src} "
                f"({self.box.bytes} B)")


@dataclass
class Fill(Instruction):
    """Write zeros into buffer units (padding rows, a cleared staging area)."""

    opcode: str
    engine: str
    dst: Region
    cycles_per_unit: float

    def writes(self):
        return [self.dst]

    def cost(self, m: Machine) -> float:
        return self.dst.count * self.cycles_per_unit

    def execute(self, m: Machine) -> None:
        m.units(self.dst)[...] = 0

    def text(self) -> str:
        return f"{self.opcode} {self.dst} <- 0"


@dataclass
class Add(Instruction):
    """dst += src, element-wise over whole units (the vector unit's vadd / the accumulator's add)."""

    opcode: str
    engine: str
    dst: Region
    src: Region
    lanes_per_cycle: float
    fixed_cycles: float = 0.0

    def reads(self):
        return [self.src, self.dst]

    def writes(self):
        return [self.dst]

    def check(self, m: Machine) -> None:
        if self.src.count != self.dst.count:
            raise m.fault(f"adds {self.src.count} units into {self.dst.count}")

    def cost(self, m: Machine) -> float:
        lanes = m.buffers[self.dst.buffer].spec.lanes
        return self.fixed_cycles + math.ceil(self.dst.count * lanes / self.lanes_per_cycle)

    def execute(self, m: Machine) -> None:
        m.units(self.dst)[...] += m.units(self.src)

    def text(self) -> str:
        return f"{self.opcode} {self.dst} += {self.src}"
