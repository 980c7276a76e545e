"""Index maps: the iterator that composes layout conversions into one gather.

An `IndexMap` says, for every element of an output array, which element of a source array it is
(`coords`, one expression per source axis) and whether it exists at all (`conditions`; where one
fails the element is a structural zero: padding, an inserted zero, a channel-block tail).
`a.then(b)` is the map of "apply a, then b" — substitution of b's coordinates into a's — so a chain
of conversions becomes one map, executed as one gather pass (`apply`) and lowered by backends to
loops (`to_c`) or to strided copies (`strides`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .expr import Expr


@dataclass(frozen=True)
class Condition:
    """lo <= expr < hi."""

    expr: Expr
    lo: int
    hi: int

    def always(self) -> bool:
        lo, hi = self.expr.bounds()
        return lo >= self.lo and hi < self.hi

    def substitute(self, values: Sequence[Expr]) -> Condition:
        return Condition(self.expr.substitute(values), self.lo, self.hi)

    def to_c(self, names: Sequence[str]) -> str:
        e = self.expr.to_c(names)
        if self.hi - self.lo == 1:
            return f"({e}) == {self.lo}"
        lo, hi = self.expr.bounds()
        checks = ([f"({e}) >= {self.lo}"] if lo < self.lo else []) + ([f"({e}) < {self.hi}"] if hi >= self.hi else [])
        return " && ".join(checks)


def _simplified(conditions) -> tuple[Condition, ...]:
    seen, out = set(), []
    for cond in conditions:
        if not cond.always() and cond not in seen:
            seen.add(cond)
            out.append(cond)
    return tuple(out)


@dataclass(frozen=True)
class IndexMap:
    """out[i] = src[coords(i)] where every condition holds at i, else 0."""

    out_shape: tuple[int, ...]
    src_shape: tuple[int, ...]
    coords: tuple[Expr, ...]
    conditions: tuple[Condition, ...] = ()
    parts: tuple[str, ...] = ()

    @staticmethod
    def build(out_shape: Sequence[int], src_shape: Sequence[int],
              fn: Callable[..., Sequence[Expr] | tuple[Sequence[Expr], Sequence[Condition]]],
              name: str) -> IndexMap:
        """Make a map from `fn(*output_vars)`, returning source coords (and optional extra conditions).

        Coordinates that may leave the source's range get a range condition automatically, so the
        map never reads out of bounds.
        """
        out_shape, src_shape = tuple(int(e) for e in out_shape), tuple(int(e) for e in src_shape)
        for label, shape in (("output", out_shape), ("source", src_shape)):
            if any(e < 1 for e in shape):
                raise ValueError(f"index map {name!r}: {label} shape {shape} has an empty axis")
        variables = [Expr.var(i, e) for i, e in enumerate(out_shape)]
        result = fn(*variables)
        if len(result) == 2 and not isinstance(result[0], Expr):
            coords, extra = result
        else:
            coords, extra = result, ()
        coords = tuple(c if isinstance(c, Expr) else Expr.constant(c) for c in coords)
        if len(coords) != len(src_shape):
            raise ValueError(f"index map {name!r} gives {len(coords)} coordinates for a "
                             f"{len(src_shape)}-d source")
        ranges = [Condition(c, 0, e) for c, e in zip(coords, src_shape)]
        return IndexMap(out_shape, src_shape, coords, _simplified(list(extra) + ranges), (name,))

    @staticmethod
    def identity(shape: Sequence[int], name: str = "identity") -> IndexMap:
        return IndexMap.build(shape, shape, lambda *v: v, name)

    # ------------------------------------------------------------------ composition
    def then(self, other: IndexMap) -> IndexMap:
        """The single map equal to applying `self` and then `other` to its result."""
        if other.src_shape != self.out_shape:
            raise ValueError(f"cannot compose {self.parts} -> {other.parts}: {other.parts[-1]!r} reads "
                             f"shape {other.src_shape}, but {self.parts[-1]!r} produces {self.out_shape}")
        coords = tuple(c.substitute(other.coords) for c in self.coords)
        conditions = list(other.conditions) + [c.substitute(other.coords) for c in self.conditions]
        return IndexMap(other.out_shape, self.src_shape, coords, _simplified(conditions),
                        self.parts + other.parts)

    # ------------------------------------------------------------------ execution (NumPy)
    def _grid(self) -> list[np.ndarray]:
        return list(np.ogrid[tuple(slice(0, e) for e in self.out_shape)])

    def source_indices(self) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
        """Per output element: the source index tuple (0 where invalid) and the validity mask."""
        grid = self._grid()
        mask = np.ones(self.out_shape, dtype=bool)
        for cond in self.conditions:
            value = cond.expr.evaluate(grid)
            mask &= (value >= cond.lo) & (value < cond.hi)
        index = tuple(np.where(mask, np.broadcast_to(c.evaluate(grid), self.out_shape), 0)
                      for c in self.coords)
        return index, mask

    def apply(self, src: np.ndarray) -> np.ndarray:
        """One gather pass: out[i] = src[coords(i)] or 0."""
        if src.shape != self.src_shape:
            raise ValueError(f"{' -> '.join(self.parts)} expects an array of shape {self.src_shape}, "
                             f"got {src.shape}")
        index, mask = self.source_indices()
        out = src[index]
        out[~mask] = 0
        return out

    def scatter(self, values: np.ndarray, dst: np.ndarray, accumulate: bool = False) -> None:
        """dst[coords(i)] = values[i] (or +=) for every valid i: the map read as a write pattern."""
        if values.shape != self.out_shape or dst.shape != self.src_shape:
            raise ValueError(f"scatter through {self.parts}: expected values {self.out_shape} into "
                             f"{self.src_shape}, got {values.shape} into {dst.shape}")
        index, mask = self.source_indices()
        index = tuple(i[mask] for i in index)
        if accumulate:
            np.add.at(dst, index, values[mask])
        else:
            dst[index] = values[mask]

    # ------------------------------------------------------------------ analysis for lowering
    @property
    def elements(self) -> int:
        return math.prod(self.out_shape)

    def flat_offset(self) -> Expr:
        """The row-major source offset as one expression."""
        offset = Expr.constant(0)
        for coord, extent in zip(self.coords, self.src_shape):
            offset = offset * extent + coord
        return offset

    def strides(self) -> tuple[int | None, ...]:
        """Source-element stride per output axis (None where not affine): what a strided DMA needs."""
        offset = self.flat_offset()
        return tuple(offset.coefficient(i) for i in range(len(self.out_shape)))

    def is_identity(self) -> bool:
        return (self.out_shape == self.src_shape and not self.conditions and
                all(c == Expr.var(i, e) for i, (c, e) in enumerate(zip(self.coords, self.out_shape))))

    def describe(self) -> str:
        names = [f"i{k}" for k in range(len(self.out_shape))]
        text = "src[" + ", ".join(c.to_c(names) for c in self.coords) + "]"
        if self.conditions:
            text += " if " + " and ".join(c.to_c(names) for c in self.conditions) + " else 0"
        return text
