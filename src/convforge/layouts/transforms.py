"""Logical tensor transforms as index maps: pad/crop, zero insertion, flip, transpose, stride phase.

Each returns an `IndexMap` from the transformed tensor to its source; chain them with `then`.
"""

from __future__ import annotations

from collections.abc import Sequence

from .expr import Expr
from .indexmap import Condition, IndexMap


def pad(shape: Sequence[int], pads: Sequence[tuple[int, int]], name: str = "pad") -> IndexMap:
    """Zero padding (front, back) per axis; a negative amount crops."""
    shape = tuple(shape)
    if len(pads) != len(shape):
        raise ValueError(f"pad: {len(pads)} (front, back) pairs for a {len(shape)}-d tensor")
    out = tuple(e + f + b for e, (f, b) in zip(shape, pads))
    return IndexMap.build(out, shape, lambda *v: [x - f for x, (f, _) in zip(v, pads)], name)


def zero_insert(shape: Sequence[int], axes_strides: dict[int, int], name: str = "zero_insert") -> IndexMap:
    """Insert stride-1 zeros between neighbours along the given axes: length L -> (L-1)*s + 1."""
    shape = tuple(shape)
    out = tuple((e - 1) * axes_strides.get(a, 1) + 1 for a, e in enumerate(shape))

    def fn(*v: Expr):
        coords, conds = [], []
        for a, x in enumerate(v):
            s = axes_strides.get(a, 1)
            coords.append(x // s)
            if s > 1:
                conds.append(Condition(x % s, 0, 1))
        return coords, conds

    return IndexMap.build(out, shape, fn, name)


def flip(shape: Sequence[int], axes: Sequence[int], name: str = "flip") -> IndexMap:
    """Reverse the given axes (the 180-degree filter rotation on the two spatial axes)."""
    shape = tuple(shape)
    return IndexMap.build(shape, shape, lambda *v: [
        (shape[a] - 1 - x) if a in axes else x for a, x in enumerate(v)], name)


def transpose(shape: Sequence[int], perm: Sequence[int], name: str = "transpose") -> IndexMap:
    """out axis i is source axis perm[i] (numpy.transpose semantics)."""
    shape = tuple(shape)
    if sorted(perm) != list(range(len(shape))):
        raise ValueError(f"transpose: {perm} is not a permutation of {len(shape)} axes")
    out = tuple(shape[p] for p in perm)

    def fn(*v: Expr):
        coords: list[Expr] = [Expr.constant(0)] * len(shape)
        for i, p in enumerate(perm):
            coords[p] = v[i]
        return coords

    return IndexMap.build(out, shape, fn, name)


def strided_slice(shape: Sequence[int], axis: int, start: int, step: int, count: int,
                  name: str = "phase") -> IndexMap:
    """Elements start, start+step, ... along one axis (count of them): one stride phase."""
    shape = tuple(shape)
    out = tuple(count if a == axis else e for a, e in enumerate(shape))
    return IndexMap.build(out, shape, lambda *v: [
        (start + step * x) if a == axis else x for a, x in enumerate(v)], name)
