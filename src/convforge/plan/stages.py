"""What a plan is made of: buffers and a few stage kinds, each with its cost.

A backend sees only these stages. A `ConvCore` is always a convolution in forward form (XLA's
general conv: stride, filter dilation, input dilation, offsets that may crop), reading its operands
through index-map *views* (fused layout conversions) and writing its result through an output view
(e.g. the stride-phase interleave). `Transform` materializes one composed map in one gather pass;
`ScatterAdd` is col2im; `Gemm` is a batched matmul; `ZeroFill` clears what no core writes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..layouts import IndexMap
from ..problem import DTYPE_BYTES, OperandShapes


@dataclass(frozen=True)
class Buffer:
    name: str
    shape: tuple[int, ...]
    role: str  # "input", "output" or "scratch"
    dtype: str
    layout: str = ""  # the caller's layout, for inputs and the output

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * DTYPE_BYTES[self.dtype]


@dataclass(frozen=True)
class Operand:
    """A buffer seen through a view: logical[i] = buffer[view.coords(i)] (or 0 where invalid).

    For an output operand the same map is read as a write pattern: buffer[view.coords(i)] = result[i].
    """

    buffer: str
    view: IndexMap


@dataclass(frozen=True)
class CoreGeometry(OperandShapes):
    """y[n,k,p,q] = sum over c in k's group, r < R, s < S of
    xv[n, c, p*sh + r*dh - oh, q*sw + s*dw - ow] * w[k, c, r, s],
    where xv is x with (id-1) zeros inserted between neighbours (input dilation) and zero outside.
    Offsets (oh, ow) are the top/left padding; negative offsets crop.
    """

    n: int
    c: int
    k: int
    h: int
    w: int
    r: int
    s: int
    p: int
    q: int
    stride: tuple[int, int] = (1, 1)
    dilation: tuple[int, int] = (1, 1)
    offset: tuple[int, int] = (0, 0)
    input_dilation: tuple[int, int] = (1, 1)
    groups: int = 1

    def taps_in_range(self, axis: int) -> int:
        """(output, tap) pairs along an axis whose dilated-input index is inside the input's extent."""
        out, taps = (self.p, self.r) if axis == 0 else (self.q, self.s)
        stride, dil, off = self.stride[axis], self.dilation[axis], self.offset[axis]
        extent = ((self.h if axis == 0 else self.w) - 1) * self.input_dilation[axis] + 1
        return sum(1 for o in range(out) for t in range(taps) if 0 <= o * stride + t * dil - off < extent)

    def macs(self, trim: bool) -> int:
        """Multiply-adds executed: all taps, or with `trim` only taps that land inside the input."""
        per_pixel = self.n * self.k * (self.c // self.groups)
        if trim:
            return per_pixel * self.taps_in_range(0) * self.taps_in_range(1)
        return per_pixel * self.r * self.s * self.p * self.q


@dataclass(frozen=True)
class Lattice:
    """A hint that a core operand is a strided sub-lattice of a larger one along the two spatial
    axes: the operand's view reads `full` at rows r0 + i*rstep and columns s0 + j*sstep. The view
    alone is the semantics; a backend may use the hint to share one buffer among the cores that
    read (a stride phase's filter taps) or write (a stride phase's output pixels) the same `full`."""

    full: Operand
    rows: tuple[int, int]  # (r0, rstep)
    cols: tuple[int, int]  # (s0, sstep)


@dataclass(frozen=True)
class ConvCore:
    geometry: CoreGeometry
    x: Operand
    w: Operand
    y: Operand
    trim: bool = False  # skip taps that fall outside the input (C-K-S filter trimming)
    filter_taps: Lattice | None = None  # w as taps of a larger filter
    output_phase: Lattice | None = None  # y as pixels of a larger output
    kind = "conv"

    @property
    def executed_macs(self) -> int:
        return self.geometry.macs(self.trim)

    @property
    def moved_elements(self) -> int:
        return 0


@dataclass(frozen=True)
class Gemm:
    """c[g, m, n] = sum_k a[g, m, k] * b[g, k, n], operands through views."""

    groups: int
    m: int
    n: int
    k: int
    a: Operand
    b: Operand
    c: Operand
    kind = "gemm"

    @property
    def executed_macs(self) -> int:
        return self.groups * self.m * self.n * self.k

    @property
    def moved_elements(self) -> int:
        return 0


@dataclass(frozen=True)
class Transform:
    """dst = index_map.apply(src): a composed chain of conversions, one gather pass."""

    src: str
    dst: str
    index_map: IndexMap
    kind = "transform"
    executed_macs = 0

    @property
    def moved_elements(self) -> int:
        return 2 * self.index_map.elements  # one read and one write per output element


@dataclass(frozen=True)
class ScatterAdd:
    """dst = 0, then dst[index_map.coords(i)] += src[i] for valid i: col2im's many-to-one sum."""

    src: str
    dst: str
    index_map: IndexMap
    kind = "scatter_add"
    executed_macs = 0

    @property
    def moved_elements(self) -> int:
        return 3 * self.index_map.elements + math.prod(self.index_map.src_shape)


@dataclass(frozen=True)
class ZeroFill:
    """dst[index_map.coords(i)] = 0: outputs that no tap reaches (stride > kernel, block padding)."""

    dst: str
    index_map: IndexMap
    kind = "zero_fill"
    executed_macs = 0

    @property
    def moved_elements(self) -> int:
        return self.index_map.elements


Stage = ConvCore | Gemm | Transform | ScatterAdd | ZeroFill
