"""Plans whose data layout differs from the generic plan: vendor baselines and target-specific forms.

Gemmini forward convolutions with few input channels (`pixel_repeats`, `tap_packing`): see below.

DaVinci GEMM + col2im as AKG does it: the GEMM writes the columns in the 7-D fractal layout
(N, C1, KH, KW, OH, OW, C0) (one C0 vector of channels innermost), and col2im is a vector-unit
scatter-add of C0 vectors into dX (NC1HWC0). The generic plan keeps the columns as a plain
[G, Cg*R*S, N*P*Q] matrix, which would make every column element a separate DMA burst.
"""

from __future__ import annotations

from ...layouts import Condition, IndexMap
from ...plan.algorithms import Builder
from ...plan.stages import ConvCore, CoreGeometry, Gemm, Operand, ScatterAdd
from ...problem import ConvProblem, Direction

C0 = 16
PIXEL_REPEATS = "pixel_repeats"  # names the view of the first-layer path (the emitter reads the factor)
TAP_PACKING = "tap_packing"  # names the packed im2col view (the emitter counts its DMA runs)


def few_channels(p: ConvProblem, lanes: int) -> bool:
    """Both forms pack several filter taps into one `lanes`-deep reduction row: C <= lanes / 2, S >= 2."""
    return p.groups == 1 and p.dilation == (1, 1) and 2 * p.c <= lanes and p.s >= 2


def _check_few_channels(p: ConvProblem, lanes: int, form: str) -> None:
    if not few_channels(p, lanes):
        raise ValueError(f"{form} packs filter taps: needs groups = 1, dilation 1, C <= {lanes // 2} and S >= 2; "
                         f"got groups={p.groups} dilation={p.dilation} C={p.c} S={p.s}")


def gemmini_pixel_repeats(p: ConvProblem, layouts: dict[str, str], lanes: int):
    """Gemmini's first-layer path (gemmini.h HAS_FIRST_LAYER_OPTIMIZATIONS, reference/targets.md 2.5/2.7):
    with C <= DIM/2 the input mvin repeats every pixel into the m = min(DIM // C, S) spad rows before it
    (`pixel_repeats`), so one row holds m neighbouring pixels and one DIM-deep pair reduces over m filter
    columns. As a conv: X_m[n, t*C + c, i, j] = x[n, c, i - pt, j - pl + t] over the padded image, with
    S' = ceil(S / m) taps of dilation m and W_m[k, t*C + c, r, s'] = w[k, c, r, s'*m + t] (0 past S).
    The DMA reads every pixel once (the repeats are spad writes): the emitter divides its bytes by m."""
    _check_few_channels(p, lanes, PIXEL_REPEATS)
    b = Builder(p, Direction.fwd, layouts)
    m = min(lanes // p.c, p.s)
    taps = -(-p.s // m)
    (pt, pb, pl, pr), c = p.padding, p.c
    hp, wp = p.h + pt + pb, p.w + pl + pr
    x = b.view("x", lambda n, ct, i, j: (n, ct % c, i - pt, j - pl + ct // c), (p.n, m * c, hp, wp),
               f"{PIXEL_REPEATS} x{m}")
    w = b.view("w", lambda k, ct, r, s: (k, ct % c, r, s * m + ct // c), (p.k, m * c, p.r, taps),
               f"weights of {m} filter columns per row")
    g = CoreGeometry(p.n, m * c, p.k, hp, wp, p.r, taps, p.p, p.q, p.stride, (1, m))
    b.stages.append(ConvCore(g, x, w, Operand("y", b.tensor("y"))))
    return b.plan(PIXEL_REPEATS)


def gemmini_tap_packing(p: ConvProblem, layouts: dict[str, str], lanes: int):
    """ConvForge's fold for few input channels: reduction row j holds the `per = lanes // C` whole filter
    taps j*per .. j*per + per - 1 (taps in (r, s) order), so the R*S*C products of an output pixel take
    ceil(R*S / per) pairs instead of R * ceil(S / per) (conv1: 10 instead of 14). The rows are gathered
    per output pixel by the input DMA (im2col of the packed taps only, never stored in DRAM); the core is a
    1x1 conv over X_f[n, j*lanes + l, p, q] = x[n, l % C, p*sh + r - pt, q*sw + s - pl] with
    (r, s) = divmod(j*per + l // C, S) and lanes l >= per*C zero."""
    _check_few_channels(p, lanes, TAP_PACKING)
    b = Builder(p, Direction.fwd, layouts)
    c, per = p.c, lanes // p.c
    rows = -(-(p.r * p.s) // per)
    (sh, sw), (pt, _, pl, _) = p.stride, p.padding

    def tap(ct):
        lane = ct % lanes
        t = (ct // lanes) * per + lane // c
        return lane % c, t // p.s, t % p.s, [Condition(lane, 0, per * c), Condition(t, 0, p.r * p.s)]

    def x_of(n, ct, i, j):
        ch, r, s, used = tap(ct)
        return (n, ch, i * sh + r - pt, j * sw + s - pl), used

    def w_of(k, ct, _r, _s):
        ch, r, s, used = tap(ct)
        return (k, ch, r, s), used

    x = b.view("x", x_of, (p.n, rows * lanes, p.p, p.q), f"{TAP_PACKING}: im2col of {per} taps per {lanes}-lane row")
    w = b.view("w", w_of, (p.k, rows * lanes, 1, 1), f"weights of {per} taps per row")
    g = CoreGeometry(p.n, rows * lanes, p.k, p.p, p.q, 1, 1, p.p, p.q)
    b.stages.append(ConvCore(g, x, w, Operand("y", b.tensor("y"))))
    return b.plan(TAP_PACKING)


GEMMINI_PLANS = {PIXEL_REPEATS: gemmini_pixel_repeats, TAP_PACKING: gemmini_tap_packing}


def davinci_gemm_col2im(p: ConvProblem, layouts: dict[str, str]):
    """cols[g, n, c1, r, s, oh, ow, c0] = sum_k W[g*Kg + k, c1*C0 + c0, r, s] * dY[n, g*Kg + k, oh, ow],
    then dX[n, c, oh*sh + r*dh - pt, ow*sw + s*dw - pl] += cols[...] (zero where c >= Cg)."""
    b = Builder(p, Direction.bwd_data, layouts)
    cg, kg = p.c // p.groups, p.k // p.groups
    c1 = -(-cg // C0)
    rows = c1 * p.r * p.s * C0  # GEMM M: (c1, r, s, c0)
    npq = p.n * p.p * p.q
    (sh, sw), (dh, dw), (pt, _, pl, _) = p.stride, p.dilation, p.padding
    shape = (p.groups, p.n, c1, p.r, p.s, p.p, p.q, C0)
    cols = b.scratch("cols", shape)

    def split(m):
        return m // (p.r * p.s * C0), (m // (p.s * C0)) % p.r, (m // C0) % p.s, m % C0

    def w_t(g, m, k):
        cb, r, s, c0 = split(m)
        return (g * kg + k, cb * C0 + c0, r, s)

    wt = b.view("w", w_t, (p.groups, rows, kg), "W^T as [G, (c1,r,s,c0), Kg]")
    dy = b.view("y", lambda g, k, j: (j // (p.p * p.q), g * kg + k, (j // p.q) % p.p, j % p.q),
                (p.groups, kg, npq), "dY as [G,Kg,NPQ]")

    def to_cols(g, m, j):
        cb, r, s, c0 = split(m)
        return (g, j // (p.p * p.q), cb, r, s, (j // p.q) % p.p, j % p.q, c0)

    c_view = IndexMap.build((p.groups, rows, npq), shape, to_cols, "[G, M, NPQ] as fractal columns")
    b.stages.append(Gemm(p.groups, rows, npq, kg, wt, dy, Operand(cols, c_view)))

    def to_dx(g, n, cb, r, s, oh, ow, c0):
        c = cb * C0 + c0
        return ((n, g * cg + c, oh * sh + r * dh - pt, ow * sw + s * dw - pl), [Condition(c, 0, cg)])

    b.stages.append(ScatterAdd(cols, "x", b.view("x", to_dx, shape, "col2im (C0 vectors)").view))
    return b.plan("gemm_col2im")

