"""Lower index maps to C loop nests: one pass per composed map, contiguous inner runs.

Every layout conversion, pack, unpack, zero fill and col2im of a plan becomes one call of
`copy_loop`: a loop nest over an iteration space whose element i moves src[src_offset(i)] to
dst[dst_offset(i)] where all conditions hold. Offsets and conditions are `Expr`s printed with
`Expr.to_c`. The loop order puts a unit-stride axis innermost, conditions that are affine in one
loop variable become that loop's bounds (no per-element test for padding), the rest are tested at
the shallowest loop where they can be decided, and the outer loops run in parallel with OpenMP.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from ...layouts import Condition, Expr, IndexMap

PRELUDE = """#include <stddef.h>
#include <string.h>
static inline long cf_floordiv(long a, long b) { long q = a / b; return q - ((a % b != 0) & ((a < 0) != (b < 0))); }
static inline long cf_floormod(long a, long b) { long r = a % b; return r + ((r != 0) & ((r < 0) != (b < 0))) * b; }
"""

PARALLEL_MIN_ELEMENTS = 1 << 14  # below this an OpenMP team costs more than it saves


def row_major_offset(coords: Sequence[Expr], shape: Sequence[int]) -> Expr:
    offset = Expr.constant(0)
    for coord, extent in zip(coords, shape):
        offset = offset * extent + coord
    return offset


def _vars(shape: Sequence[int]) -> list[Expr]:
    return [Expr.var(i, e) for i, e in enumerate(shape)]


@dataclass(frozen=True)
class Copy:
    """dst[dst_offset(i)] (=|+=) src[src_offset(i)] (or 0 when src_offset is None) for valid i."""

    shape: tuple[int, ...]
    dst_offset: Expr
    src_offset: Expr | None
    conditions: tuple[Condition, ...]
    accumulate: bool = False
    zero_first: int = 0  # clear this many dst elements first (a gather's structural zeros)

    @staticmethod
    def gather(index_map: IndexMap) -> Copy:
        """dst = index_map.apply(src), dst contiguous in the map's output shape."""
        dst = row_major_offset(_vars(index_map.out_shape), index_map.out_shape)
        zero = index_map.elements if index_map.conditions else 0
        return Copy(index_map.out_shape, dst, index_map.flat_offset(), index_map.conditions, zero_first=zero)

    @staticmethod
    def scatter(view: IndexMap, src_offset: Expr | None, accumulate: bool = False) -> Copy:
        """dst[view.coords(i)] = src[src_offset(i)] over the view's logical space (an output view)."""
        return Copy(view.out_shape, view.flat_offset(), src_offset, view.conditions, accumulate)


def _loop_order(copy: Copy) -> list[int]:
    rank = len(copy.shape)
    order = list(range(rank))
    offsets = [copy.src_offset, copy.dst_offset] if copy.src_offset is not None else [copy.dst_offset]
    for offset in offsets:  # prefer contiguous reads, then contiguous writes
        unit = [i for i in range(rank) if copy.shape[i] > 1 and offset.coefficient(i) == 1]
        if unit:
            order.remove(unit[-1])
            order.append(unit[-1])
            break
    return order


def _bound(cond: Condition, var: int, extent: int, names: list[str]) -> tuple[str, str] | None:
    """Loop bounds [lo, hi) of `var` implied by `cond`, if it is affine in var with step +-1."""
    step = cond.expr.coefficient(var)
    if step not in (1, -1):
        return None
    rest = (cond.expr - Expr.var(var, extent) * step).to_c(names)
    if step == 1:
        return f"{cond.lo} - ({rest})", f"{cond.hi} - ({rest})"
    return f"({rest}) - {cond.hi} + 1", f"({rest}) - {cond.lo} + 1"


def copy_loop(name: str, copy: Copy, threads_hint: int = 2) -> str:
    """A C function `void name(float* dst, const float* src)` performing `copy`."""
    rank = len(copy.shape)
    names = [f"i{k}" for k in range(rank)]
    order = _loop_order(copy)
    depth_of = {axis: d for d, axis in enumerate(order)}
    placed: dict[int, list[Condition]] = {d: [] for d in range(rank)}
    bounds: dict[int, list[tuple[str, str]]] = {d: [] for d in range(rank)}
    for cond in copy.conditions:
        used = [i for i in range(rank) if cond.expr.uses(i)]
        if not used:
            continue
        deepest = max(used, key=lambda i: depth_of[i])
        b = _bound(cond, deepest, copy.shape[deepest], names)
        if b is not None:
            bounds[depth_of[deepest]].append(b)
        else:
            placed[depth_of[deepest]].append(cond)
    # fuse the outer loops that have plain bounds into one parallel loop
    fused, work = 0, 1
    while fused < rank - 1 and not bounds[fused] and work < 8 * threads_hint:
        work *= copy.shape[order[fused]]
        fused += 1
    parallel = not copy.accumulate and math.prod(copy.shape) >= PARALLEL_MIN_ELEMENTS and fused > 0
    lines = [f"void {name}(float* restrict dst, const float* restrict src) {{", "  (void)src;"]
    if copy.zero_first:
        outer = copy.shape[0]
        inner = copy.zero_first // outer
        pragma = "  #pragma omp parallel for\n" if copy.zero_first >= PARALLEL_MIN_ELEMENTS else ""
        lines.append(f"{pragma}  for (long z = 0; z < {outer}; z++) memset(dst + z * {inner}L, 0, "
                     f"{inner}L * sizeof(float));")
    indent = "  "
    if fused:
        extents = [copy.shape[order[d]] for d in range(fused)]
        if parallel:
            lines.append(f"{indent}#pragma omp parallel for schedule(static)")
        lines.append(f"{indent}for (long t = 0; t < {math.prod(extents)}L; t++) {{")
        indent += "  "
        rem = "t"
        for d in range(fused - 1, -1, -1):
            lines.append(f"{indent}const long {names[order[d]]} = {rem} % {extents[d]};")
            rem = f"({rem} / {extents[d]})"
        for d in range(fused):
            for cond in placed[d]:
                lines.append(f"{indent}if (!({cond.to_c(names)})) continue;")
    for d in range(fused, rank):
        axis = order[d]
        lo = ["0"] + [b[0] for b in bounds[d]]
        hi = [str(copy.shape[axis])] + [b[1] for b in bounds[d]]
        lo_c = lo[0] if len(lo) == 1 else _fold("CF_MAX", lo)
        hi_c = hi[0] if len(hi) == 1 else _fold("CF_MIN", hi)
        v = names[axis]
        lines.append(f"{indent}for (long {v} = {lo_c}; {v} < {hi_c}; {v}++) {{")
        indent += "  "
        for cond in placed[d]:
            lines.append(f"{indent}if (!({cond.to_c(names)})) continue;")
    value = "0.0f" if copy.src_offset is None else f"src[{copy.src_offset.to_c(names)}]"
    op = "+=" if copy.accumulate else "="
    lines.append(f"{indent}dst[{copy.dst_offset.to_c(names)}] {op} {value};")
    closing = rank - fused + (1 if fused else 0)
    for _ in range(closing):
        indent = indent[:-2]
        lines.append(f"{indent}}}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _fold(fn: str, items: list[str]) -> str:
    text = items[0]
    for item in items[1:]:
        text = f"{fn}({text}, {item})"
    return text


MINMAX = "#define CF_MAX(a, b) ((a) > (b) ? (a) : (b))\n#define CF_MIN(a, b) ((a) < (b) ? (a) : (b))\n"
