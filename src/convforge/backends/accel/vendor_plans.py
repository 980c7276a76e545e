"""Vendor baselines whose data layout differs from the generic plan.

DaVinci GEMM + col2im as AKG does it: the GEMM writes the columns in the 7-D fractal layout
(N, C1, KH, KW, OH, OW, C0) (one C0 vector of channels innermost), and col2im is a vector-unit
scatter-add of C0 vectors into dX (NC1HWC0). The generic plan keeps the columns as a plain
[G, Cg*R*S, N*P*Q] matrix, which would make every column element a separate DMA burst.
"""

from __future__ import annotations

from ...layouts import Condition, IndexMap
from ...plan.algorithms import Builder
from ...plan.stages import Gemm, Operand, ScatterAdd
from ...problem import ConvProblem, Direction

C0 = 16


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

