"""Layouts as declared index maps, and conversions composed into single gathers (the iterator)."""

from .expr import Expr
from .indexmap import Condition, IndexMap
from .layout import Layout, c0_for, conversion, get, names
from .transforms import flip, pad, strided_slice, transpose, zero_insert


def pack(array, layout):
    """A logical array laid out as `layout`."""
    return get(layout).pack(array)


def unpack(array, layout, logical_shape):
    """The logical array held by `array` in `layout`."""
    return get(layout).unpack(array, logical_shape)


def convert(array, src, dst, logical_shape):
    """Re-lay out `array` from `src` to `dst` in one gather pass."""
    return conversion(get(src), get(dst), logical_shape).apply(array)


__all__ = ["Condition", "Expr", "IndexMap", "Layout", "c0_for", "conversion", "convert", "flip", "get",
           "names", "pack", "pad", "strided_slice", "transpose", "unpack", "zero_insert"]
