"""DRAM access patterns of DMA instructions: a box of a tensor seen through an index map.

A `Box` is what one load or store moves: the logical box [starts, starts+sizes) of an operand whose
elements live in a DRAM tensor at `view.coords(i)` (the plan's composed conversions). Out-of-range
parts of the box are zeros generated on chip (padding) and cost no DRAM traffic. The cost side uses
only the view's per-axis strides (IndexMap.strides): the DMA moves maximal contiguous runs, split
into bus requests; a view whose innermost axis is not contiguous costs one request per element.
The functional side gathers (or scatters) the elements with NumPy.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from ..layouts import IndexMap

_WHOLE_VIEW = 1 << 20  # views up to this many elements get their indices computed once per run


def _index(m, view: IndexMap, clamped) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """Source indices and validity of the box `clamped` ([lo, hi) per axis) of a view. A small view's
    indices are computed whole, once per run, and sliced (one view may serve several tensors: VTA's
    byte planes of one result); a big one's (a 7-D column matrix) per box, so that no index array of
    the whole view is ever built."""
    if view.elements <= _WHOLE_VIEW:
        key = ("index", id(view))
        if key not in m.cache:
            m.cache[key] = view.source_indices()
        index, mask = m.cache[key]
        box = tuple(slice(lo, hi) for lo, hi in clamped)
        return tuple(i[box] for i in index), mask[box]
    rank = len(clamped)
    grid = [np.arange(lo, hi).reshape([-1 if a == axis else 1 for a in range(rank)])
            for axis, (lo, hi) in enumerate(clamped)]
    shape = tuple(hi - lo for lo, hi in clamped)
    mask = np.ones(shape, dtype=bool)
    for cond in view.conditions:
        value = cond.expr.evaluate(grid)
        mask &= (value >= cond.lo) & (value < cond.hi)
    return tuple(np.where(mask, np.broadcast_to(c.evaluate(grid), shape), 0) for c in view.coords), mask


@dataclass(frozen=True)
class Box:
    tensor: str  # DRAM tensor name
    view: IndexMap  # logical operand -> DRAM tensor
    starts: tuple[int, ...]
    sizes: tuple[int, ...]
    elem_bytes: int
    strides: tuple[tuple[int, int], ...]  # per logical axis (stride, period): see view_strides
    density: float = 1.0  # fraction of in-range elements the view really reads (zero insertion)

    def __post_init__(self):
        clamped = tuple((max(s, 0), min(s + n, e)) for s, n, e in zip(self.starts, self.sizes, self.view.out_shape))
        object.__setattr__(self, "_clamped", clamped)
        object.__setattr__(self, "_valid", round(self.density * math.prod(max(0, hi - lo) for lo, hi in clamped)))

    # ---------------------------------------------------------------- geometry
    def clamped(self) -> tuple[tuple[int, int], ...]:
        """Per axis the [lo, hi) of the box inside the logical operand."""
        return self._clamped

    @property
    def valid(self) -> int:
        """Elements really read from DRAM (in range, not an inserted zero)."""
        return self._valid

    @property
    def bytes(self) -> int:
        return self.valid * self.elem_bytes

    def requests(self, request_bytes: int) -> int:
        """Bus requests: maximal contiguous runs of the valid box, each split into requests."""
        extents = tuple(hi - lo for lo, hi in self.clamped())
        return _requests(self.strides, extents, self.valid, self.elem_bytes, request_bytes)

    # ---------------------------------------------------------------- function
    def frame(self, m) -> np.ndarray:
        """The box's values (zeros outside the operand) as a dense array of shape `sizes`."""
        out = np.zeros(self.sizes, dtype=m.dram[self.tensor].dtype)
        src, dst = _slices(self.starts, self.sizes, self.clamped())
        if src is None:
            return out
        idx, valid = _index(m, self.view, self.clamped())
        values = m.dram[self.tensor][idx]
        values[~valid] = 0
        out[dst] = values
        return out

    def store(self, m, values: np.ndarray, accumulate: bool = False) -> None:
        """Write `values` (shape `sizes`) to the tensor through the view (the valid part only)."""
        src, dst = _slices(self.starts, self.sizes, self.clamped())
        if src is None:
            return
        idx, keep = _index(m, self.view, self.clamped())
        if keep.all():  # no padding or inserted zero in the box: no masked copies
            vals = values[dst].astype(m.dram[self.tensor].dtype)
        else:
            idx, vals = tuple(i[keep] for i in idx), values[dst][keep].astype(m.dram[self.tensor].dtype)
        if accumulate:
            m.dram[self.tensor][idx] += vals
        else:
            m.dram[self.tensor][idx] = vals


def _slices(starts, sizes, clamped):
    if any(hi <= lo for lo, hi in clamped):
        return None, None
    src = tuple(slice(lo, hi) for lo, hi in clamped)
    dst = tuple(slice(lo - s, hi - s) for (lo, hi), s in zip(clamped, starts))
    return src, dst


def view_strides(view: IndexMap, probe: int = 256) -> tuple[tuple[int, int], ...]:
    """What a strided DMA needs, per logical axis: the DRAM element stride of one step from the origin
    and its period, the number of steps over which that stride holds (a blocked layout such as
    NC1HWC0 is contiguous along C only within a 16-channel block; an affine axis has the whole extent)."""
    offset = view.flat_offset()
    out = []
    for axis, extent in enumerate(view.out_shape):
        n = min(extent, probe)
        env = [np.arange(n) if a == axis else np.zeros(1, dtype=np.int64) for a in range(len(view.out_shape))]
        values = np.broadcast_to(offset.evaluate(env), (n,)).astype(np.int64)
        if n == 1:
            out.append((0, extent))
            continue
        steps = np.diff(values)
        stride = int(steps[0])
        breaks = np.nonzero(steps != stride)[0]
        period = int(breaks[0]) + 1 if breaks.size else extent
        out.append((stride, period))
    return tuple(out)


@functools.lru_cache(maxsize=8192)
def _requests(strides: tuple, extents: tuple, total: int, elem_bytes: int, request_bytes: int) -> int:
    """A pure function of the box geometry: a program moves a few box shapes thousands of times."""
    if total <= 0:
        return 0
    run, expect = 1, 1
    axes = sorted((abs(s), period, e) for (s, period), e in zip(strides, extents) if e > 1 and s)
    for stride, period, extent in axes:
        if stride != expect:
            break
        step = min(extent, period)  # a blocked axis is contiguous within one block
        run *= step
        expect = stride * step
    return max(1, -(-total // run)) * math.ceil(run * elem_bytes / request_bytes)
