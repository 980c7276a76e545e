"""The simulator engine shared by every ISA: buffers, DRAM, scheduling, checks and counters.

An instruction (see `Instruction`) names the engine that runs it, the buffer regions it reads and
writes, its cost in cycles and its functional effect. The machine runs a program in order:

* checks (all modes): regions inside the buffer and aligned, no read of a unit never written,
  the ISA's own field limits; a fault raises `SimError` naming the instruction;
* timing: every engine executes its instructions in order; an instruction starts when its engine is
  free and its dependencies are met. Dependencies are either implicit (RAW/WAR/WAW overlap of
  buffer regions, as Gemmini's ROB and the DaVinci compiler's set_flag/wait_flag pairs give) or
  explicit (VTA's dependency tokens: then an unordered overlap is a race and raises);
* functional (unless timing-only): the instruction's NumPy effect on buffers and DRAM tensors.
"""

from __future__ import annotations

import math
from collections import defaultdict, deque
from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from ..targets import Target
from .blas import one_thread

NUMPY = {"i8": np.int8, "i32": np.int32, "f16": np.float16, "f32": np.float32}


class SimError(ValueError):
    """An illegal program: the message names the instruction and the fault."""


class Region(NamedTuple):
    """`count` units of on-chip buffer `buffer` from unit `start` (a tuple: hashed and compared in C,
    which the simulator does for every instruction)."""

    buffer: str
    start: int
    count: int

    def __str__(self) -> str:
        return f"{self.buffer}[{self.start}:{self.start + self.count}]"


@dataclass
class Stats(Mapping):
    """Counters of one run: attributes, and a read-only mapping of the same names (`kernel.stats`
    is a mapping on every target)."""

    cycles: float = 0.0
    busy: dict[str, float] = field(default_factory=dict)
    bytes: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    executed_macs: int = 0  # multiply-adds issued, structural zeros and block padding included
    useful_macs: int = 0  # multiply-adds of the problem with no structural zero (set by the kernel)
    peak_bytes: dict[str, int] = field(default_factory=dict)
    instructions: int = 0
    primitives: int = 0  # hardware-level instructions the macro instructions stand for

    @property
    def dram_bytes(self) -> int:
        return sum(v for k, v in self.bytes.items() if "dram" in k)

    def __getitem__(self, key: str):
        return self.as_dict()[key]

    def __iter__(self):
        return iter(self.as_dict())

    def __len__(self) -> int:
        return len(self.as_dict())

    def as_dict(self) -> dict:
        return {"cycles": self.cycles, "busy": dict(self.busy), "bytes": dict(self.bytes),
                "dram_bytes": self.dram_bytes, "executed_macs": self.executed_macs,
                "useful_macs": self.useful_macs, "peak_bytes": dict(self.peak_bytes),
                "instructions": self.instructions, "primitives": self.primitives}


class BufferState:
    """One on-chip buffer: data [depth, lanes], which units hold written data, the high-water mark."""

    def __init__(self, spec, functional: bool):
        self.spec = spec
        self.written = np.zeros(spec.depth, dtype=bool)
        self.data = np.zeros((spec.depth, spec.lanes), dtype=NUMPY[spec.dtype]) if functional else None
        self.high = 0
        # live intervals for hazards: [start, end, last write end, last read end]
        self.intervals: list[list[float]] = []


class Instruction:
    """Base class: subclasses set `engine`, `opcode` and override what they need."""

    # subclasses (dataclasses) declare `engine` and `opcode`; these are plain class defaults
    primitives = 1
    pops = ()  # VTA dependency tokens consumed before starting
    pushes = ()  # and produced after finishing

    def reads(self) -> list[Region]:
        return []

    def writes(self) -> list[Region]:
        return []

    def dram_reads(self) -> tuple[str, ...]:
        return ()

    def dram_writes(self) -> tuple[str, ...]:
        return ()

    def check(self, m: Machine) -> None:
        """ISA field limits; raise SimError via m.fault."""

    def cost(self, m: Machine) -> float:
        return 1.0

    def account(self, stats: Stats) -> None:
        """Add this instruction's bytes and MACs to the counters."""

    def execute(self, m: Machine) -> None:
        """The functional effect."""

    def text(self) -> str:
        return self.opcode  # type: ignore[attr-defined]


class Machine:
    def __init__(self, target: Target, dram: dict[str, np.ndarray] | None = None, functional: bool = True,
                 explicit_sync: bool = False):
        self.target = target
        self.functional = functional and dram is not None
        self.dram: dict[str, np.ndarray] = dram if dram is not None else {}
        self.buffers = {name: BufferState(spec, self.functional) for name, spec in target.buffers.items()}
        self.explicit_sync = explicit_sync
        self.free = {e: 0.0 for e in target.engines}
        self.stats = Stats(busy={e: 0.0 for e in target.engines})
        self.tokens: dict[str, deque] = defaultdict(deque)
        self.dram_times: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])  # write end, read end
        self.cache: dict = {}  # functional helpers keyed by (tensor, view): gathered arrays, indices
        self.current: tuple[int, Instruction | None] = (0, None)
        self._checked: set[Region] = set()  # regions already found inside their buffer and aligned
        self._filled: set[Region] = set()  # regions written as a whole (a read of one needs no unit scan)

    # ------------------------------------------------------------------ faults
    def fault(self, message: str) -> SimError:
        index, ins = self.current
        return SimError(f"instruction #{index} {ins.text() if ins else ''}: {message}")

    def buffer(self, name: str) -> BufferState:
        if name not in self.buffers:
            raise self.fault(f"names no buffer {name!r} (target {self.target.name} has {', '.join(self.buffers)})")
        return self.buffers[name]

    def units(self, region: Region) -> np.ndarray:
        return self.buffers[region.buffer].data[region.start:region.start + region.count]

    # ------------------------------------------------------------------ running
    def run(self, program, give_up_after: float | None = None) -> Stats | None:
        """Run `program`; with `give_up_after`, stop and return None as soon as the makespan passes
        it (a tile search needs no exact count for a candidate that already lost)."""
        with one_thread() if self.functional else nullcontext():
            for index, ins in enumerate(program):
                self.current = (index, ins)
                if self.step(ins) > (give_up_after if give_up_after is not None else math.inf):
                    return None
        self.stats.cycles = max(self.free.values())
        for name, b in self.buffers.items():
            self.stats.peak_bytes[name] = b.high * b.spec.unit_bytes
        return self.stats

    def step(self, ins: Instruction) -> float:
        """Check, time and (when functional) execute one instruction; returns its end cycle."""
        if ins.engine not in self.free:
            raise self.fault(f"runs on engine {ins.engine!r}, which target {self.target.name} lacks")
        reads, writes = ins.reads(), ins.writes()
        for region in reads + writes:
            if region not in self._checked:
                self._check_region(region)
                self._checked.add(region)
        for region in reads:
            if region in self._filled:
                continue
            written = self.buffers[region.buffer].written[region.start:region.start + region.count]
            if not written.all():
                first = region.start + int(np.argmin(written))
                raise self.fault(f"reads {region}, but unit {first} was never written")
        ins.check(self)
        ready = self._hazards(reads, writes, ins)
        start = self.free[ins.engine]
        for queue in ins.pops:
            if not self.tokens[queue]:
                raise self.fault(f"pops dependency token {queue!r} that no earlier instruction pushed (deadlock)")
            start = max(start, self.tokens[queue].popleft())
        if self.explicit_sync and ready > start:
            raise self.fault(f"races: a region it touches is still in use until cycle {ready:.0f} by another "
                             f"engine and no dependency token orders them (starts at {start:.0f})")
        start = max(start, ready)
        cost = float(ins.cost(self))
        end = start + cost
        self.free[ins.engine] = end
        self.stats.busy[ins.engine] += cost
        for queue in ins.pushes:
            self.tokens[queue].append(end)
        self._record(reads, writes, ins, end)
        for region in writes:
            if region not in self._filled:
                self._filled.add(region)
                b = self.buffers[region.buffer]
                b.written[region.start:region.start + region.count] = True
                b.high = max(b.high, region.start + region.count)
        self.stats.instructions += 1
        self.stats.primitives += ins.primitives
        ins.account(self.stats)
        if self.functional:
            ins.execute(self)
        return end

    def _check_region(self, region: Region) -> None:
        b = self.buffer(region.buffer)
        spec = b.spec
        if region.count < 0 or region.start < 0 or region.start + region.count > spec.depth:
            raise self.fault(f"overflows buffer {region.buffer}: units [{region.start}, "
                             f"{region.start + region.count}) outside its {spec.depth} units of "
                             f"{spec.unit_bytes} B ({spec.bytes} B)")
        if region.start % spec.alignment:
            raise self.fault(f"breaks alignment: {region} starts at unit {region.start}, not a multiple of "
                             f"{spec.alignment} units ({spec.alignment * spec.unit_bytes} B)")

    # ------------------------------------------------------------------ dependencies
    def _hazards(self, reads, writes, ins: Instruction) -> float:
        """Earliest start allowed by RAW (reads, writes) and WAR (writes) on overlapping live intervals."""
        ready = 0.0
        for region in reads:
            lo, hi = region.start, region.start + region.count
            for iv in self.buffers[region.buffer].intervals:
                if iv[0] < hi and lo < iv[1] and iv[2] > ready:
                    ready = iv[2]
        for region in writes:
            lo, hi = region.start, region.start + region.count
            for iv in self.buffers[region.buffer].intervals:
                if iv[0] < hi and lo < iv[1]:
                    ready = max(ready, iv[2], iv[3])
        for name in ins.dram_reads():
            ready = max(ready, self.dram_times[name][0])
        for name in ins.dram_writes():
            ready = max(ready, *self.dram_times[name])
        return ready

    def _record(self, reads, writes, ins: Instruction, end: float) -> None:
        for region in writes:
            lo, hi = region.start, region.start + region.count
            ivs = self.buffers[region.buffer].intervals
            ivs[:] = [iv for iv in ivs if not (lo <= iv[0] and iv[1] <= hi)]
            ivs.append([lo, hi, end, 0.0])
        for region in reads:
            lo, hi = region.start, region.start + region.count
            ivs = self.buffers[region.buffer].intervals
            for iv in ivs:
                if iv[0] == lo and iv[1] == hi:
                    if end > iv[3]:
                        iv[3] = end
                    break
            else:
                ivs.append([lo, hi, 0.0, end])
        for name in ins.dram_reads():
            self.dram_times[name][1] = max(self.dram_times[name][1], end)
        for name in ins.dram_writes():
            self.dram_times[name][0] = max(self.dram_times[name][0], end)
