"""Physical layouts declared as index maps over a logical tensor.

A layout is written as its physical axes, outermost first; each axis is one or more *pieces*
merged row-major (joined by `*`). A piece is a whole logical axis (`C`), the outer part of a
blocked axis (`C/16`, extent ceil(C/16)) or its inner part (`c16`). Blocked axes are zero-padded
to a whole block. Logical axes are N C H W for activations, O I H W (= K C R S) for weights and
M N (rows, columns) for matrices. Examples: NCHW16c = "N C/16 H W c16"; FRACTAL_Z =
"I/16*H*W O/16 o16 i16".
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .expr import Expr
from .indexmap import Condition, IndexMap

AXES = {"activation": "NCHW", "weight": "OIHW", "matrix": "MN"}


@dataclass(frozen=True)
class Piece:
    axis: int
    block: int = 0  # 0: the whole axis
    inner: bool = False

    def extent(self, logical: Sequence[int]) -> int:
        if not self.block:
            return logical[self.axis]
        return self.block if self.inner else -(-logical[self.axis] // self.block)


@dataclass(frozen=True)
class Layout:
    name: str
    kind: str
    spec: str

    @property
    def dims(self) -> tuple[tuple[Piece, ...], ...]:
        letters = AXES[self.kind]
        dims = []
        for token in self.spec.split():
            pieces = []
            for part in token.split("*"):
                m = re.fullmatch(r"([A-Z])(?:/(\d+))?|([a-z])(\d+)", part)
                if not m:
                    raise ValueError(f"layout {self.name}: bad piece {part!r}")
                letter = (m.group(1) or m.group(3)).upper()
                if letter not in letters:
                    raise ValueError(f"layout {self.name}: {letter!r} is not a {self.kind} axis ({letters})")
                if m.group(1):
                    pieces.append(Piece(letters.index(letter), int(m.group(2) or 0)))
                else:
                    pieces.append(Piece(letters.index(letter), int(m.group(4)), inner=True))
            dims.append(tuple(pieces))
        return tuple(dims)

    @property
    def rank(self) -> int:
        return len(AXES[self.kind])

    def check_logical(self, logical: Sequence[int]) -> tuple[int, ...]:
        logical = tuple(int(e) for e in logical)
        if len(logical) != self.rank or any(e < 1 for e in logical):
            raise ValueError(f"layout {self.name} holds a {self.rank}-d {self.kind} "
                             f"({AXES[self.kind]}); got logical shape {logical}")
        return logical

    def physical_shape(self, logical: Sequence[int]) -> tuple[int, ...]:
        logical = self.check_logical(logical)
        return tuple(math.prod(p.extent(logical) for p in dim) for dim in self.dims)

    def pack_map(self, logical: Sequence[int]) -> IndexMap:
        """physical -> logical: physical[i] = logical[coords(i)], zero in the block padding."""
        logical = self.check_logical(logical)
        dims = self.dims

        def fn(*v: Expr):
            value: list[Expr] = [Expr.constant(0)] * self.rank
            for var, dim in zip(v, dims):
                # split a merged physical index into its pieces, innermost last
                rest = var
                for piece in reversed(dim):
                    e = piece.extent(logical)
                    digit = rest % e if len(dim) > 1 else rest
                    rest = rest // e
                    if piece.block and not piece.inner:
                        digit = digit * piece.block
                    value[piece.axis] = value[piece.axis] + digit
            return value, [Condition(x, 0, e) for x, e in zip(value, logical)]

        return IndexMap.build(self.physical_shape(logical), logical, fn, f"pack {self.name}")

    def unpack_map(self, logical: Sequence[int]) -> IndexMap:
        """logical -> physical: where each logical element lives."""
        logical = self.check_logical(logical)
        dims = self.dims

        def fn(*v: Expr):
            coords = []
            for dim in dims:
                index = Expr.constant(0)
                for piece in dim:
                    x = v[piece.axis]
                    digit = x if not piece.block else (x % piece.block if piece.inner else x // piece.block)
                    index = index * piece.extent(logical) + digit
                coords.append(index)
            return coords

        return IndexMap.build(logical, self.physical_shape(logical), fn, f"unpack {self.name}")

    def pack(self, array: np.ndarray) -> np.ndarray:
        return self.pack_map(array.shape).apply(array)

    def unpack(self, array: np.ndarray, logical: Sequence[int]) -> np.ndarray:
        return self.unpack_map(logical).apply(array)


def conversion(src: Layout, dst: Layout, logical: Sequence[int]) -> IndexMap:
    """One map from a `src`-laid-out array to the same tensor laid out as `dst`."""
    if src.kind != dst.kind:
        raise ValueError(f"cannot convert a {src.kind} layout ({src.name}) to a {dst.kind} one ({dst.name})")
    return src.unpack_map(logical).then(dst.pack_map(logical))


_FIXED = {
    "NCHW": ("activation", "N C H W"),
    "NHWC": ("activation", "N H W C"),
    "CHWN": ("activation", "C H W N"),
    "NCHW1n16c": ("activation", "N C/16 H W n1 c16"),  # VTA, BATCH = 1
    "OIHW": ("weight", "O I H W"),
    "KCRS": ("weight", "O I H W"),
    "HWIO": ("weight", "H W I O"),
    "OIHW16o16i": ("weight", "O/16 I/16 H W o16 i16"),  # VTA
    "gemmini_NHWC": ("activation", "N*H*W C"),  # Gemmini DRAM rows: one pixel per row
    "gemmini_HWIO": ("weight", "H*W*I O"),  # Gemmini DRAM rows: one (kh, kw, ci) per row
    "ND": ("matrix", "M N"),
}
_PATTERNS = (
    (r"NCHW(\d+)c", "activation", "N C/{0} H W c{0}"),
    (r"NC1HWC0(?:_(\d+))?", "activation", "N C/{0} H W c{0}"),
    (r"OIHW(\d+)i(\d+)o", "weight", "O/{1} I/{0} H W i{0} o{1}"),
    (r"OIHW(\d+)o(\d+)i", "weight", "O/{0} I/{1} H W o{0} i{1}"),
    (r"FRACTAL_Z(?:_(\d+))?", "weight", "I/{0}*H*W O/16 o16 i{0}"),
    (r"zN(?:_(\d+))?", "matrix", "N/{0} M/16 m16 n{0}"),  # FRACTAL_NZ: fractals column-major
    (r"zZ(?:_(\d+))?", "matrix", "M/16 N/{0} m16 n{0}"),
    (r"nZ(?:_(\d+))?", "matrix", "M/{0} N/16 n16 m{0}"),  # L0B: fractals row-major, n-major inside
)


def get(name: str | Layout) -> Layout:
    """A layout by name: fixed ones, or NCHW{x}c, NC1HWC0[_C0], OIHW{x}i{y}o, OIHW{x}o{y}i,
    FRACTAL_Z[_C0], zN/zZ/nZ[_K0] (C0 and K0 default to 16, the fp16 fractal)."""
    if isinstance(name, Layout):
        return name
    if not isinstance(name, str):
        raise TypeError(f"layout must be a name or a Layout, got {type(name).__name__}")
    if name in _FIXED:
        kind, spec = _FIXED[name]
        return Layout(name, kind, spec)
    for pattern, kind, spec in _PATTERNS:
        m = re.fullmatch(pattern, name)
        if m:
            groups = [g or "16" for g in m.groups()]
            if any(int(g) < 1 for g in groups):
                raise ValueError(f"layout {name!r}: block sizes must be positive")
            return Layout(name, kind, spec.format(*groups))
    raise ValueError(f"unknown layout {name!r}; known: {', '.join(_FIXED)}, NCHW<x>c, NC1HWC0[_C0], "
                     "OIHW<x>i<y>o, OIHW<x>o<y>i, FRACTAL_Z[_C0], zN, zZ, nZ")


def c0_for(dtype: str) -> int:
    """The DaVinci channel block: 16 for 16-bit types, 32 for int8 (one 32-byte row)."""
    return 32 if dtype in ("i8", "int8") else 16


def names() -> list[str]:
    return list(_FIXED) + ["NCHW16c", "NCHW8c", "NC1HWC0", "NC1HWC0_32", "OIHW16i16o", "FRACTAL_Z",
                           "FRACTAL_Z_32", "zN", "zZ", "nZ"]
