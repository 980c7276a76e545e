"""Tile choice: the config space, Gemmini's vendor greedy (`tiled_conv_auto`), the tile derived from
the communication lower bound, and a small search with the timing-only simulator.

The config space of a core is (b, p, q, k, c, r, s) tile sizes and the output-loop order; a tile
is legal when the emitter says it fits its buffers (double-buffered halves).
"""

from __future__ import annotations

import math
from itertools import product

from .lower import Tile, halo

ORDERS = ("bpqk", "kbpq")


# --------------------------------------------------------------------------- vendor (Gemmini)
def tiled_conv_auto(g, emitter) -> Tile:
    """gemmini.h tiled_conv_auto: shrink the largest arg until it fits, then grow greedily.

    args = [batch, porows, pocols, pochs, krows, kcols, kchs]; channel args shrink to / by DIM; ocols is
    not shrunk while it is <= DIM and orows > 1. The vendor loop order is b, p, q, k (then r, s, c).
    """
    dim = emitter.dim
    full = [g.n, g.p, g.q, g.k, g.r, g.s, g.c]
    args = list(full)

    def tile(a):
        return Tile(a[0], a[1], a[2], a[3], a[6], a[4], a[5], "bpqk")

    while not emitter.fits(g, tile(args)):
        best, idx = -1, -1
        for i, v in enumerate(args):
            if i == 2 and v <= dim and args[1] > 1:
                continue
            if v > best:
                best, idx = v, i
        if idx in (3, 6):
            args[idx] = (args[idx] // dim) * dim if args[idx] % dim else args[idx] - dim
            args[idx] = max(args[idx], 1)
        else:
            args[idx] -= 1
        if args[idx] < 1:
            raise ValueError(f"no Gemmini tile fits a core of geometry {g}")
    while args[2] < full[2] and emitter.fits(g, tile(args[:2] + [args[2] + 1] + args[3:])):
        args[2] += 1
    grown = True
    while grown:
        grown = False
        for i in range(len(args)):
            cand = list(args)
            cand[i] += 1
            if cand[i] <= full[i] and emitter.fits(g, tile(cand)):
                args, grown = cand, True
    return tile(args)


# --------------------------------------------------------------------------- bound-derived
def bound_tile(g, emitter, in_elems: int, out_elems: int) -> Tile:
    """The reuse-balanced tile of the communication lower bound (papers.md §2) with separate input and
    output memories: maximize MACs b_k*b_c*X*RS subject to b_k*X <= out_elems (accumulator) and
    sigma*b_c*X + b_k*b_c*RS <= in_elems (scratchpad), which gives X = sqrt(out*RS/sigma),
    b_k = out/X, b_c = in/(2*sqrt(sigma*out*RS)); clamp to the loop bounds, round channels to the
    array width and shrink until it fits."""
    dim = emitter.dim
    sigma = g.stride[0] * g.stride[1]
    rs = g.r * g.s
    x = math.sqrt(out_elems * rs / sigma)
    bk = out_elems / x
    bc = in_elems / (2 * math.sqrt(sigma * out_elems * rs))

    def channels(v, full):
        return full if v >= full else max(dim, int(v) // dim * dim)

    k, c = channels(bk, g.k), channels(bc, g.c)
    x = max(1, int(out_elems // max(k, dim)))  # re-solve X for the clamped channel tile
    q = min(g.q, x)
    p = min(g.p, max(1, x // q))
    b = min(g.n, max(1, x // (p * q)))
    t = Tile(b, p, q, k, c, g.r, g.s, "bpqk")
    return _shrink(g, emitter, t)


def _shrink(g, emitter, t: Tile) -> Tile:
    """Halve the largest spatial / channel tile until it fits."""
    while not emitter.fits(g, t):
        sizes = t.as_dict()
        axis = max(("p", "c", "k", "q", "b", "r", "s"), key=lambda a: sizes[a] if sizes[a] > 1 else -1)
        if sizes[axis] <= 1:
            raise ValueError(f"no tile fits the buffers of target {emitter.target.name} for core {g}")
        half = max(1, sizes[axis] // 2)
        dim = getattr(emitter, "dim", 16)
        sizes[axis] = half // dim * dim if axis in ("c", "k") and half > dim else half
        t = Tile(**sizes)
    return t


# --------------------------------------------------------------------------- candidates
def _options(full: int, steps) -> list[int]:
    return sorted({full} | {v for v in steps if v < full})


def candidates(g, emitter, limit: int = 10) -> list[Tile]:
    """Legal tiles ranked by a quick traffic/compute estimate; the best `limit` per loop order."""
    dim = getattr(emitter, "dim", 16)
    ks = _options(g.k, [dim * m for m in (1, 2, 4, 8, 16)])
    cs = _options(g.c, [dim * m for m in (1, 2, 4, 8, 16)])
    ps = _options(g.p, (1, 2, 4, 7, 8, 14, 16, 28, 32))
    qs = _options(g.q, (dim, 2 * dim, 4 * dim))
    bs = _options(g.n, (1,))
    rs = _options(g.r, (1, 3, 7, 16))
    ss = _options(g.s, (1, 3, 7, 16))
    scored = []
    for b, p, q, k, c, r, s in product(bs, ps, qs, ks, cs, rs, ss):
        for order in ORDERS:
            t = Tile(b, p, q, k, c, r, s, order)
            if emitter.fits(g, t):
                tiles = math.prod(math.ceil(getattr(g, {"b": "n"}.get(a, a)) / getattr(t, a)) for a in "bpqkrsc")
                flat = hasattr(emitter, "flat") and emitter.flat(g, t)
                scored.append((estimate(g, t, dim, flat), tiles, t))
    scored.sort(key=lambda e: e[:2])
    return [t for _, _, t in scored[:limit]]


def traffic(g, t: Tile, flat: bool = False) -> int:
    """Elements loaded and stored by the lowering's residency rule (a tile reloads only when it changes);
    a `flat` tile loads one input window per filter tap."""
    n_out = {a: math.ceil(getattr(g, {"b": "n"}.get(a, a)) / getattr(t, a)) for a in "bpqk"}
    steps = math.ceil(g.r / t.r) * math.ceil(g.s / t.s) * math.ceil(g.c / t.c)
    rows, cols = (t.p, t.q * t.r * t.s) if flat else halo(g, t.p, t.q, t.r, t.s)
    x_tile, w_tile = t.b * t.c * rows * cols, t.k * t.c * t.r * t.s
    tiles = math.prod(n_out.values())
    inner = t.order[-1]
    x_loads = tiles * steps if steps > 1 or inner != "k" else tiles // n_out["k"]
    w_loads = tiles * steps if steps > 1 or inner == "k" else n_out["k"]
    if steps == 1 and n_out["k"] == 1:
        w_loads = 1
    return x_loads * x_tile + w_loads * w_tile + 4 * g.n * g.k * g.p * g.q


def estimate(g, t: Tile, dim: int, flat: bool = False) -> float:
    """max(DRAM bytes / 16, array cycles): a cheap ranking, not a prediction. Array cycles: DIM-row
    chunks of each output row, or of all the tile's output pixels when `flat`."""
    steps = math.ceil(g.r / t.r) * math.ceil(g.s / t.s) * math.ceil(g.c / t.c)
    tiles = math.prod(math.ceil(getattr(g, {"b": "n"}.get(a, a)) / getattr(t, a)) for a in "bpqk")
    if flat:
        m = t.b * t.p * t.q
        chunk_cycles = m // dim * dim + (max(m % dim, 4) if m % dim else 0)
    else:
        chunk_cycles = t.b * t.p * math.ceil(t.q / dim) * max(min(t.q, dim), 4)
    pairs = tiles * steps * t.r * t.s * chunk_cycles * math.ceil(t.c / dim) * math.ceil(t.k / dim)
    return max(traffic(g, t, flat) / 16, pairs)
