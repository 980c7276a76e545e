"""Accelerator target files: one TOML file per target, validated on load.

`load("gemmini")` reads a shipped file (targets/*.toml); `load("path/to/mine.toml")` reads a user's
own. Every field the simulator and the backend use is checked here, so a malformed or inconsistent
file fails at once with a message naming the field, never later inside a simulation.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..problem import DTYPE_BYTES

HERE = Path(__file__).parent
ISAS = ("gemmini", "vta", "davinci")

# Keys each ISA plug-in reads from [timing] and [limits]; buffers and paths it needs by name.
REQUIRED = {
    "gemmini": {"timing": ("min_pair_rows", "fill_cycles", "zero_row_cycles", "add_lanes_per_cycle"),
                "limits": ("loop_bound", "max_input_dilation", "max_kernel_dilation"),
                "buffers": ("spad", "acc"),
                "paths": ("dram_to_spad", "dram_to_acc", "acc_to_dram")},
    "vta": {"timing": ("gemm_ii", "alu_ii", "pipeline_fill", "pad_row_cycles"),
            "limits": ("iter_bits", "uop_bgn_bits", "uop_end_bits", "dst_factor_bits", "src_factor_bits",
                       "wgt_factor_bits", "max_pad", "sram_base_bits", "size_bits"),
            "buffers": ("uop", "inp", "wgt", "acc", "out"),
            "paths": ("dram_to_inp", "dram_to_wgt", "dram_to_acc", "dram_to_uop", "out_to_dram")},
    "davinci": {"timing": ("cube_cycles_per_fractal", "vector_bytes_per_cycle", "vector_fixed_cycles",
                           "mmad_fixed_cycles"),
                "limits": ("max_stride", "max_dilation", "max_pad", "max_kernel", "max_mad_mkn", "max_repeat",
                           "max_burst"),
                "buffers": ("L1", "L0A", "L0B", "L0C", "UB"),
                "paths": ("gm_to_l1", "gm_to_ub", "l1_to_l0a", "l1_to_l0b", "l0c_to_ub", "ub_to_gm")},
}


class TargetError(ValueError):
    """A target file is missing a field, has a wrong type or contradicts itself."""


@dataclass(frozen=True)
class BufferSpec:
    name: str
    bytes: int
    unit_bytes: int  # addressing unit (a row / an entry / a 32-B block)
    dtype: str
    alignment: int  # in units
    banks: int
    layout: str

    @property
    def depth(self) -> int:
        return self.bytes // self.unit_bytes

    @property
    def lanes(self) -> int:
        return self.unit_bytes // DTYPE_BYTES[self.dtype]


@dataclass(frozen=True)
class PathSpec:
    name: str
    src: str
    dst: str
    engine: str
    bytes_per_cycle: float
    request_bytes: int
    request_cycles: float
    fixed_cycles: float

    def cycles(self, total_bytes: int, requests: int) -> float:
        """A transfer of `total_bytes` split into `requests` bus requests."""
        if total_bytes <= 0:
            return 0.0
        return self.fixed_cycles + max(total_bytes / self.bytes_per_cycle, requests * self.request_cycles)


@dataclass(frozen=True)
class Target:
    name: str
    isa: str
    description: str
    clock_hz: float
    dtypes: tuple[tuple[str, str, str, str], ...]
    engines: tuple[str, ...]
    intrinsic: dict[str, int]
    layouts: dict[str, str]
    buffers: dict[str, BufferSpec]
    paths: dict[str, PathSpec]
    timing: dict[str, float]
    limits: dict[str, int]
    source: str

    def path(self, name: str) -> PathSpec:
        return self.paths[name]

    def check_dtypes(self, dtypes: tuple[str, ...]) -> None:
        if tuple(dtypes) not in self.dtypes:
            raise ValueError(f"problem.dtypes {tuple(dtypes)} is not supported by target {self.name!r} "
                             f"(field dtypes of {self.source} allows {[list(d) for d in self.dtypes]})")


def names() -> list[str]:
    """Targets shipped with ConvForge."""
    return sorted(p.stem for p in HERE.glob("*.toml"))


def load(target: str | Path | Target) -> Target:
    """A target by shipped name or by path to a TOML file."""
    if isinstance(target, Target):
        return target
    if not isinstance(target, (str, Path)):
        raise TypeError(f"target must be a name or a path, got {type(target).__name__}")
    text = str(target)
    path = Path(text) if (text.endswith(".toml") or "/" in text) else HERE / f"{text}.toml"
    if not path.is_file():
        if path.parent == HERE:
            raise ValueError(f"unknown target {text!r}; shipped targets: {', '.join(names())} "
                             f"(or give a path to a .toml file)")
        raise ValueError(f"target file {text!r} does not exist")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise TargetError(f"target file {path}: malformed TOML: {err}") from None
    return parse(data, str(path))


# --------------------------------------------------------------------------- validation
def _field(table: dict, key: str, kind, where: str, source: str, positive: bool = False, minimum=None):
    if key not in table:
        raise TargetError(f"target file {source}: missing field {where}{key}")
    value = table[key]
    kinds = (int, float) if kind is float else (kind,)
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise TargetError(f"target file {source}: field {where}{key} must be a {kind.__name__}, "
                          f"got {value!r}")
    if positive and value <= 0:
        raise TargetError(f"target file {source}: field {where}{key} must be > 0, got {value!r}")
    if minimum is not None and value < minimum:
        raise TargetError(f"target file {source}: field {where}{key} must be >= {minimum}, got {value!r}")
    return value


def _table(data: dict, key: str, source: str, where: str = "") -> dict:
    if key not in data:
        raise TargetError(f"target file {source}: missing table [{where}{key}]")
    if not isinstance(data[key], dict):
        raise TargetError(f"target file {source}: field {where}{key} must be a table")
    return data[key]


def parse(data: dict[str, Any], source: str = "<target>") -> Target:
    """Validate a decoded target file and build the `Target`."""
    name = _field(data, "name", str, "", source)
    isa = _field(data, "isa", str, "", source)
    if isa not in ISAS:
        raise TargetError(f"target file {source}: field isa must be one of {ISAS}, got {isa!r}")
    need = REQUIRED[isa]
    description = _field(data, "description", str, "", source)
    clock = float(_field(data, "clock_hz", float, "", source, positive=True))
    engines = data.get("engines")
    if not isinstance(engines, list) or not engines or not all(isinstance(e, str) for e in engines):
        raise TargetError(f"target file {source}: field engines must be a non-empty list of names")
    raw_dtypes = data.get("dtypes")
    if not isinstance(raw_dtypes, list) or not raw_dtypes:
        raise TargetError(f"target file {source}: field dtypes must be a list of [input, weight, acc, output]")
    dtypes = []
    for i, combo in enumerate(raw_dtypes):
        if not isinstance(combo, list) or len(combo) != 4 or any(t not in DTYPE_BYTES for t in combo):
            raise TargetError(f"target file {source}: field dtypes[{i}] must list 4 of {sorted(DTYPE_BYTES)}, "
                              f"got {combo!r}")
        dtypes.append(tuple(combo))
    intr = _table(data, "intrinsic", source)
    intrinsic = {k: _field(intr, k, int, "intrinsic.", source, positive=True)
                 for k in ("m", "k", "n", "macs_per_cycle")}
    lay = _table(data, "layouts", source)
    layouts = {}
    for role, kind in (("activation", "activation"), ("weight", "weight")):
        lname = _field(lay, role, str, "layouts.", source)
        from ..layouts import get

        try:
            layout = get(lname)
        except ValueError as err:
            raise TargetError(f"target file {source}: field layouts.{role}: {err}") from None
        if layout.kind != kind:
            raise TargetError(f"target file {source}: field layouts.{role} must be a {kind} layout, "
                              f"got {lname} ({layout.kind})")
        layouts[role] = lname

    buffers = {}
    for bname, b in _table(data, "buffers", source).items():
        w = f"buffers.{bname}."
        if not isinstance(b, dict):
            raise TargetError(f"target file {source}: field buffers.{bname} must be a table")
        dtype = _field(b, "dtype", str, w, source)
        if dtype not in DTYPE_BYTES:
            raise TargetError(f"target file {source}: field {w}dtype must be one of {sorted(DTYPE_BYTES)}, "
                              f"got {dtype!r}")
        spec = BufferSpec(bname, _field(b, "bytes", int, w, source, positive=True),
                          _field(b, "unit_bytes", int, w, source, positive=True), dtype,
                          _field(b, "alignment", int, w, source, positive=True),
                          _field(b, "banks", int, w, source, positive=True), _field(b, "layout", str, w, source))
        if spec.bytes % spec.unit_bytes:
            raise TargetError(f"target file {source}: field {w}bytes={spec.bytes} is not a multiple of "
                              f"{w}unit_bytes={spec.unit_bytes}")
        if spec.unit_bytes % DTYPE_BYTES[dtype]:
            raise TargetError(f"target file {source}: field {w}unit_bytes={spec.unit_bytes} does not hold a "
                              f"whole number of {dtype} elements")
        if spec.depth % spec.banks:
            raise TargetError(f"target file {source}: field {w}banks={spec.banks} does not divide the "
                              f"{spec.depth} units of the buffer")
        buffers[bname] = spec
    for bname in need["buffers"]:
        if bname not in buffers:
            raise TargetError(f"target file {source}: missing table [buffers.{bname}] (required by isa {isa!r})")

    paths = {}
    for pname, pt in _table(data, "paths", source).items():
        w = f"paths.{pname}."
        if not isinstance(pt, dict):
            raise TargetError(f"target file {source}: field paths.{pname} must be a table")
        spec = PathSpec(pname, _field(pt, "src", str, w, source), _field(pt, "dst", str, w, source),
                        _field(pt, "engine", str, w, source),
                        float(_field(pt, "bytes_per_cycle", float, w, source, positive=True)),
                        _field(pt, "request_bytes", int, w, source, positive=True),
                        float(_field(pt, "request_cycles", float, w, source, minimum=0)),
                        float(_field(pt, "fixed_cycles", float, w, source, minimum=0)))
        for end in ("src", "dst"):
            value = getattr(spec, end)
            if value != "dram" and value not in buffers:
                raise TargetError(f"target file {source}: field {w}{end}={value!r} names no buffer "
                                  f"(buffers: {', '.join(buffers)}, or 'dram')")
        if spec.engine not in engines:
            raise TargetError(f"target file {source}: field {w}engine={spec.engine!r} is not in engines {engines}")
        paths[pname] = spec
    for pname in need["paths"]:
        if pname not in paths:
            raise TargetError(f"target file {source}: missing table [paths.{pname}] (required by isa {isa!r})")

    timing_t, limits_t = _table(data, "timing", source), _table(data, "limits", source)
    timing = {k: float(_field(timing_t, k, float, "timing.", source, minimum=0)) for k in need["timing"]}
    limits = {k: _field(limits_t, k, int, "limits.", source, positive=True) for k in need["limits"]}
    _check_isa(isa, intrinsic, buffers, source)
    return Target(name, isa, description, clock, tuple(dtypes), tuple(engines), intrinsic, layouts, buffers,
                  paths, timing, limits, source)


def _check_isa(isa: str, intrinsic: dict[str, int], buffers: dict[str, BufferSpec], source: str) -> None:
    """Cross-field consistency: the intrinsic's shape, and the buffers' row widths that it implies."""
    m, k, n = intrinsic["m"], intrinsic["k"], intrinsic["n"]
    if isa == "gemmini" and not m == k == n:
        raise TargetError(f"target file {source}: field intrinsic: a Gemmini mesh is square (m = k = n = DIM), "
                          f"got {intrinsic}")
    if isa == "vta" and m != 1:
        raise TargetError(f"target file {source}: field intrinsic.m (BATCH) must be 1 in this simulator")
    if isa == "davinci" and k != n:
        raise TargetError(f"target file {source}: field intrinsic: the cube's C0 blocks need k = n, got {intrinsic}")
    lanes = {  # elements one buffer row / entry / unit must hold
        "gemmini": {"spad": n, "acc": n},
        "vta": {"inp": m * k, "wgt": n * k, "acc": m * n, "out": m * n},
        "davinci": {"L1": k, "L0A": k, "L0B": k, "L0C": n, "UB": n},
    }[isa]
    for b, want in lanes.items():
        if buffers[b].lanes != want:
            raise TargetError(f"target file {source}: field buffers.{b}.unit_bytes: one unit must hold {want} "
                              f"{buffers[b].dtype} elements for intrinsic {intrinsic}, holds {buffers[b].lanes}")
    for b in buffers.values():
        if math.gcd(b.depth, b.alignment) != b.alignment:
            raise TargetError(f"target file {source}: field buffers.{b.name}.alignment={b.alignment} does not "
                              f"divide the buffer depth {b.depth}")
