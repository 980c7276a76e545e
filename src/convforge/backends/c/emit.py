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
from collections.abc import Sequence
from dataclasses import dataclass

from ...layouts import Condition, Expr, IndexMap

PRELUDE = """#include <stddef.h>
#include <string.h>
static inline long cf_floordiv(long a, long b) { long q = a / b; return q - ((a % b != 0) & ((a < 0) != (b < 0))); }
static inline long cf_floormod(long a, long b) { long r = a % b; return r + ((r != 0) & ((r < 0) != (b < 0))) * b; }
"""

TILE_HELPERS = """
#ifdef __AVX512F__
#include <immintrin.h>
/* 16x16 transpose in registers: at each scale d swap the off-diagonal d x d blocks. */
static inline __attribute__((always_inline)) void cf_transpose16(__m512 r[16]) {
  const __m512i lo8 = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23);
  const __m512i hi8 = _mm512_setr_epi32(8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
  const __m512i lo4 = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27);
  const __m512i hi4 = _mm512_setr_epi32(4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31);
  const __m512i lo2 = _mm512_setr_epi32(0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29);
  const __m512i hi2 = _mm512_setr_epi32(2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31);
  const __m512i lo1 = _mm512_setr_epi32(0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30);
  const __m512i hi1 = _mm512_setr_epi32(1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31);
  { const __m512 a = r[0], b = r[8]; r[0] = _mm512_permutex2var_ps(a, lo8, b); r[8] = _mm512_permutex2var_ps(a, hi8, b); }
  { const __m512 a = r[1], b = r[9]; r[1] = _mm512_permutex2var_ps(a, lo8, b); r[9] = _mm512_permutex2var_ps(a, hi8, b); }
  { const __m512 a = r[2], b = r[10]; r[2] = _mm512_permutex2var_ps(a, lo8, b); r[10] = _mm512_permutex2var_ps(a, hi8, b); }
  { const __m512 a = r[3], b = r[11]; r[3] = _mm512_permutex2var_ps(a, lo8, b); r[11] = _mm512_permutex2var_ps(a, hi8, b); }
  { const __m512 a = r[4], b = r[12]; r[4] = _mm512_permutex2var_ps(a, lo8, b); r[12] = _mm512_permutex2var_ps(a, hi8, b); }
  { const __m512 a = r[5], b = r[13]; r[5] = _mm512_permutex2var_ps(a, lo8, b); r[13] = _mm512_permutex2var_ps(a, hi8, b); }
  { const __m512 a = r[6], b = r[14]; r[6] = _mm512_permutex2var_ps(a, lo8, b); r[14] = _mm512_permutex2var_ps(a, hi8, b); }
  { const __m512 a = r[7], b = r[15]; r[7] = _mm512_permutex2var_ps(a, lo8, b); r[15] = _mm512_permutex2var_ps(a, hi8, b); }
  { const __m512 a = r[0], b = r[4]; r[0] = _mm512_permutex2var_ps(a, lo4, b); r[4] = _mm512_permutex2var_ps(a, hi4, b); }
  { const __m512 a = r[1], b = r[5]; r[1] = _mm512_permutex2var_ps(a, lo4, b); r[5] = _mm512_permutex2var_ps(a, hi4, b); }
  { const __m512 a = r[2], b = r[6]; r[2] = _mm512_permutex2var_ps(a, lo4, b); r[6] = _mm512_permutex2var_ps(a, hi4, b); }
  { const __m512 a = r[3], b = r[7]; r[3] = _mm512_permutex2var_ps(a, lo4, b); r[7] = _mm512_permutex2var_ps(a, hi4, b); }
  { const __m512 a = r[8], b = r[12]; r[8] = _mm512_permutex2var_ps(a, lo4, b); r[12] = _mm512_permutex2var_ps(a, hi4, b); }
  { const __m512 a = r[9], b = r[13]; r[9] = _mm512_permutex2var_ps(a, lo4, b); r[13] = _mm512_permutex2var_ps(a, hi4, b); }
  { const __m512 a = r[10], b = r[14]; r[10] = _mm512_permutex2var_ps(a, lo4, b); r[14] = _mm512_permutex2var_ps(a, hi4, b); }
  { const __m512 a = r[11], b = r[15]; r[11] = _mm512_permutex2var_ps(a, lo4, b); r[15] = _mm512_permutex2var_ps(a, hi4, b); }
  { const __m512 a = r[0], b = r[2]; r[0] = _mm512_permutex2var_ps(a, lo2, b); r[2] = _mm512_permutex2var_ps(a, hi2, b); }
  { const __m512 a = r[1], b = r[3]; r[1] = _mm512_permutex2var_ps(a, lo2, b); r[3] = _mm512_permutex2var_ps(a, hi2, b); }
  { const __m512 a = r[4], b = r[6]; r[4] = _mm512_permutex2var_ps(a, lo2, b); r[6] = _mm512_permutex2var_ps(a, hi2, b); }
  { const __m512 a = r[5], b = r[7]; r[5] = _mm512_permutex2var_ps(a, lo2, b); r[7] = _mm512_permutex2var_ps(a, hi2, b); }
  { const __m512 a = r[8], b = r[10]; r[8] = _mm512_permutex2var_ps(a, lo2, b); r[10] = _mm512_permutex2var_ps(a, hi2, b); }
  { const __m512 a = r[9], b = r[11]; r[9] = _mm512_permutex2var_ps(a, lo2, b); r[11] = _mm512_permutex2var_ps(a, hi2, b); }
  { const __m512 a = r[12], b = r[14]; r[12] = _mm512_permutex2var_ps(a, lo2, b); r[14] = _mm512_permutex2var_ps(a, hi2, b); }
  { const __m512 a = r[13], b = r[15]; r[13] = _mm512_permutex2var_ps(a, lo2, b); r[15] = _mm512_permutex2var_ps(a, hi2, b); }
  { const __m512 a = r[0], b = r[1]; r[0] = _mm512_permutex2var_ps(a, lo1, b); r[1] = _mm512_permutex2var_ps(a, hi1, b); }
  { const __m512 a = r[2], b = r[3]; r[2] = _mm512_permutex2var_ps(a, lo1, b); r[3] = _mm512_permutex2var_ps(a, hi1, b); }
  { const __m512 a = r[4], b = r[5]; r[4] = _mm512_permutex2var_ps(a, lo1, b); r[5] = _mm512_permutex2var_ps(a, hi1, b); }
  { const __m512 a = r[6], b = r[7]; r[6] = _mm512_permutex2var_ps(a, lo1, b); r[7] = _mm512_permutex2var_ps(a, hi1, b); }
  { const __m512 a = r[8], b = r[9]; r[8] = _mm512_permutex2var_ps(a, lo1, b); r[9] = _mm512_permutex2var_ps(a, hi1, b); }
  { const __m512 a = r[10], b = r[11]; r[10] = _mm512_permutex2var_ps(a, lo1, b); r[11] = _mm512_permutex2var_ps(a, hi1, b); }
  { const __m512 a = r[12], b = r[13]; r[12] = _mm512_permutex2var_ps(a, lo1, b); r[13] = _mm512_permutex2var_ps(a, hi1, b); }
  { const __m512 a = r[14], b = r[15]; r[14] = _mm512_permutex2var_ps(a, lo1, b); r[15] = _mm512_permutex2var_ps(a, hi1, b); }
}
/* dst[j*db + i] = src[i*sa + j] for i < rows, j < cols (both <= 16). */
static inline void cf_tile(float* restrict dst, long db, const float* restrict src, long sa, int rows, int cols) {
  __m512 r[16];
  if (rows == 16 && cols == 16) {
    for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_ps(src + i * sa);
    cf_transpose16(r);
    for (int j = 0; j < 16; j++) _mm512_storeu_ps(dst + j * db, r[j]);
    return;
  }
  const __mmask16 cm = (__mmask16)((1u << cols) - 1), rm = (__mmask16)((1u << rows) - 1);
  for (int i = 0; i < 16; i++) r[i] = i < rows ? _mm512_maskz_loadu_ps(cm, src + i * sa) : _mm512_setzero_ps();
  cf_transpose16(r);
  for (int j = 0; j < cols; j++) _mm512_mask_storeu_ps(dst + j * db, rm, r[j]);
}
#else
static inline void cf_tile(float* restrict dst, long db, const float* restrict src, long sa, int rows, int cols) {
  for (int j = 0; j < cols; j++) for (int i = 0; i < rows; i++) dst[j * db + i] = src[i * sa + j];
}
#endif
"""
TILE = 16  # the transpose tile edge (one zmm of floats)

PARALLEL_MIN_ELEMENTS = 1 << 17  # below this an OpenMP team (and its barrier) costs more than it saves


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
    walk_dst: bool = False  # outer loops in the destination's address order (a scatter) instead of the source's

    @staticmethod
    def gather(index_map: IndexMap) -> Copy:
        """dst = index_map.apply(src), dst contiguous in the map's output shape."""
        dst = row_major_offset(_vars(index_map.out_shape), index_map.out_shape)
        zero = index_map.elements if index_map.conditions else 0
        return Copy(index_map.out_shape, dst, index_map.flat_offset(), index_map.conditions, zero_first=zero)

    @staticmethod
    def scatter(view: IndexMap, src_offset: Expr | None, accumulate: bool = False) -> Copy:
        """dst[view.coords(i)] = src[src_offset(i)] over the view's logical space (an output view)."""
        return Copy(view.out_shape, view.flat_offset(), src_offset, view.conditions, accumulate, walk_dst=True)


def _coefficients(copy: Copy, axis: int) -> tuple[int | None, int | None]:
    src = copy.src_offset.coefficient(axis) if copy.src_offset is not None else 0
    return copy.dst_offset.coefficient(axis), src


def _merge_axes(copy: Copy) -> Copy:
    """Fuse pairs of axes that both offsets walk as one (outer stride = inner extent x inner stride)
    and no condition reads: longer contiguous runs and full transpose tiles."""
    changed = True
    while changed:
        changed = False
        rank = len(copy.shape)
        for i in range(rank):
            for j in range(rank):
                if i == j or any(c.expr.uses(i) or c.expr.uses(j) for c in copy.conditions):
                    continue
                (di, si), (dj, sj) = _coefficients(copy, i), _coefficients(copy, j)
                if None in (di, si, dj, sj) or di != dj * copy.shape[j] or si != sj * copy.shape[j]:
                    continue
                copy = _fused(copy, i, j)
                changed = True
                break
            if changed:
                break
    return copy


def _fused(copy: Copy, outer: int, inner: int) -> Copy:
    """Axis `outer` and `inner` become one axis (at outer's place) of their product's extent."""
    keep = [k for k in range(len(copy.shape)) if k != inner]
    shape = tuple(copy.shape[k] * (copy.shape[inner] if k == outer else 1) for k in keep)
    position = {k: n for n, k in enumerate(keep)}
    new = [Expr.var(position[k], shape[position[k]]) if k != inner else None for k in range(len(copy.shape))]
    new[outer] = Expr.constant(0)
    new[inner] = Expr.var(position[outer], shape[position[outer]])
    return Copy(shape, copy.dst_offset.substitute(new),
                None if copy.src_offset is None else copy.src_offset.substitute(new),
                tuple(Condition(c.expr.substitute(new), c.lo, c.hi) for c in copy.conditions),
                copy.accumulate, copy.zero_first, copy.walk_dst)


def _reversed(copy: Copy, axis: int) -> Copy:
    """The same copy with `axis` iterated backwards (index i becomes extent - 1 - i)."""
    extent = copy.shape[axis]
    new = [Expr.var(k, e) for k, e in enumerate(copy.shape)]
    new[axis] = Expr.constant(extent - 1) - Expr.var(axis, extent)
    return Copy(copy.shape, copy.dst_offset.substitute(new),
                None if copy.src_offset is None else copy.src_offset.substitute(new),
                tuple(Condition(c.expr.substitute(new), c.lo, c.hi) for c in copy.conditions),
                copy.accumulate, copy.zero_first, copy.walk_dst)


def _tile_pair(copy: Copy) -> tuple[int, int] | None:
    """(a, b): a writes contiguously, b reads contiguously, and every condition on them is a plain
    loop bound on one of the two. Then 16x16 tiles of (a, b) move through a register transpose."""
    if copy.src_offset is None or copy.accumulate:
        return None
    rank = len(copy.shape)

    def bounded(axis: int) -> bool:
        return all(c.expr.coefficient(axis) in (1, -1) for c in copy.conditions if c.expr.uses(axis))
    for a in range(rank):
        da, sa = _coefficients(copy, a)
        if da != 1 or sa in (None, 0, 1) or copy.shape[a] < 4 or not bounded(a):
            continue
        for b in range(rank):
            db, sb = _coefficients(copy, b)
            if b == a or sb != 1 or db in (None, 0) or copy.shape[b] < 4 or not bounded(b):
                continue
            if any(c.expr.uses(a) and c.expr.uses(b) for c in copy.conditions):
                continue
            return a, b
    return None


def _loop_order(copy: Copy) -> list[int]:
    rank = len(copy.shape)
    order = list(range(rank))
    walked = copy.dst_offset if copy.walk_dst else copy.src_offset
    steps = [walked.coefficient(i) if walked is not None else None for i in range(rank)]
    if walked is not None and None not in steps:
        # walk the gathered source (or the scattered destination) in address order: a transposed
        # or strided pack would otherwise hop across pages once per lane block; the contiguous
        # axis goes innermost below
        order.sort(key=lambda i: -abs(steps[i]))
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


def copy_loop(name: str, copy: Copy, threads_hint: int = 2, tiles: bool = True) -> str:
    """A C function `void name(float* dst, const float* src)` performing `copy`."""
    copy = _merge_axes(copy)
    pair = _tile_pair(copy) if tiles else None
    if tiles and pair is None:  # a source read backwards (a flipped filter) tiles once reversed
        backwards = [axis for axis in range(len(copy.shape)) if (_coefficients(copy, axis)[1] or 0) < 0]
        # all reversed at once first: the flipped taps (r, s) then merge into one contiguous run
        for axes in [backwards] + [[axis] for axis in backwards if _coefficients(copy, axis)[1] == -1]:
            reversed_copy = copy
            for axis in axes:
                reversed_copy = _reversed(reversed_copy, axis)
            reversed_copy = _merge_axes(reversed_copy)
            pair = _tile_pair(reversed_copy)
            if pair:
                copy = reversed_copy
                break
    rank = len(copy.shape)
    names = [f"i{k}" for k in range(rank)]
    if pair:
        a, b = pair
        # outer loops in the source's address order: a transposed filter (bwd_data) is then read
        # row after row instead of in 16-channel columns that stride across pages
        outer = [i for i in range(rank) if i not in pair]
        if all(copy.src_offset.coefficient(i) is not None for i in outer):
            outer.sort(key=lambda i: -abs(copy.src_offset.coefficient(i)))
        order = outer + [a, b]
    else:
        order = _loop_order(copy)
    depth_of = {axis: d for d, axis in enumerate(order)}
    loops = len(order)
    placed: dict[int, list[Condition]] = {d: [] for d in range(loops)}
    bounds: dict[int, list[tuple[str, str]]] = {d: [] for d in range(loops)}
    for cond in copy.conditions:
        used = [i for i in range(rank) if cond.expr.uses(i)]
        if not used:
            continue
        deepest = max(used, key=lambda i: depth_of[i])
        b_ = _bound(cond, deepest, copy.shape[deepest], names)
        if b_ is not None:
            bounds[depth_of[deepest]].append(b_)
        else:
            placed[depth_of[deepest]].append(cond)
    # fuse the outer loops that have plain bounds into one parallel loop
    fused, work = 0, 1
    while fused < loops - (2 if pair else 1) and not bounds[fused] and work < 8 * threads_hint:
        work *= copy.shape[order[fused]]
        fused += 1
    parallel = not copy.accumulate and math.prod(copy.shape) >= PARALLEL_MIN_ELEMENTS and fused > 0
    lines = [f"void {name}(float* restrict dst, const float* restrict src) {{", "  (void)src;"]
    if copy.zero_first:
        outer = copy.shape[0]
        inner = copy.zero_first // outer
        pragma = "  #pragma omp parallel for schedule(dynamic, 1)\n" if copy.zero_first >= PARALLEL_MIN_ELEMENTS else ""
        lines.append(f"{pragma}  for (long z = 0; z < {outer}; z++) memset(dst + z * {inner}L, 0, "
                     f"{inner}L * sizeof(float));")
    indent = "  "
    if fused:
        extents = [copy.shape[order[d]] for d in range(fused)]
        if parallel:  # ~64 chunks: balance under contention without an atomic per tiny iteration
            chunk = max(1, math.prod(extents) // 64)
            lines.append(f"{indent}#pragma omp parallel for schedule(dynamic, {chunk})")
        lines.append(f"{indent}for (long t = 0; t < {math.prod(extents)}L; t++) {{")
        indent += "  "
        rem = "t"
        for d in range(fused - 1, -1, -1):
            lines.append(f"{indent}const long {names[order[d]]} = {rem} % {extents[d]};")
            rem = f"({rem} / {extents[d]})"
        for d in range(fused):
            for cond in placed[d]:
                lines.append(f"{indent}if (!({cond.to_c(names)})) continue;")
    for d in range(fused, loops):
        axis = order[d]
        lo = ["0"] + [b_[0] for b_ in bounds[d]]
        hi = [str(copy.shape[axis])] + [b_[1] for b_ in bounds[d]]
        lo_c = lo[0] if len(lo) == 1 else _fold("CF_MAX", lo)
        hi_c = hi[0] if len(hi) == 1 else _fold("CF_MIN", hi)
        v = names[axis]
        step = f"{v} += {TILE}" if pair and axis in pair else f"{v}++"
        if pair and axis in pair:
            lines.append(f"{indent}const long {v}_end = {hi_c};")
            hi_c = f"{v}_end"
        lines.append(f"{indent}for (long {v} = {lo_c}; {v} < {hi_c}; {step}) {{")
        indent += "  "
        for cond in placed[d]:
            lines.append(f"{indent}if (!({cond.to_c(names)})) continue;")
    if pair:
        a, b = pair
        db, sa = copy.dst_offset.coefficient(b), copy.src_offset.coefficient(a)
        lines.append(f"{indent}cf_tile(&dst[{copy.dst_offset.to_c(names)}], {db}, "
                     f"&src[{copy.src_offset.to_c(names)}], {sa}, (int)CF_MIN({TILE}, {names[a]}_end - {names[a]}), "
                     f"(int)CF_MIN({TILE}, {names[b]}_end - {names[b]}));")
    else:
        value = "0.0f" if copy.src_offset is None else f"src[{copy.src_offset.to_c(names)}]"
        op = "+=" if copy.accumulate else "="
        lines.append(f"{indent}dst[{copy.dst_offset.to_c(names)}] {op} {value};")
    closing = loops - fused + (1 if fused else 0)
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
