"""Rewrites from (problem, direction) to plans: one function per algorithm.

Notation: G groups, Cg = C/G, Kg = K/G. Roles of the caller's tensors: `x` activations
[N,C,H,W], `w` weights [K,Cg,R,S], `y` output activations [N,K,P,Q]; in bwd_data `y` holds dY and
`x` receives dX, in bwd_weight `w` receives dW. Formulas: reference/papers.md §0 and §3.
"""

from __future__ import annotations

import math

from ..layouts import IndexMap, get, pad, zero_insert
from ..problem import ConvProblem, Direction
from .plan import Plan
from .stages import Buffer, ConvCore, CoreGeometry, Gemm, Lattice, Operand, ScatterAdd, Transform, ZeroFill

ROLES = {Direction.fwd: (("x", "w"), "y"), Direction.bwd_data: (("y", "w"), "x"),
         Direction.bwd_weight: (("x", "y"), "w")}
DEFAULT_LAYOUTS = {"x": "NCHW", "w": "OIHW", "y": "NCHW"}


class Builder:
    """Collects buffers and stages; knows the caller's tensors and their layouts."""

    def __init__(self, p: ConvProblem, direction: Direction, layouts: dict[str, str]):
        self.p, self.direction = p, direction
        self.layouts = {role: get(name) for role, name in layouts.items()}
        kinds = {"x": "activation", "w": "weight", "y": "activation"}
        for role, layout in self.layouts.items():
            if layout.kind != kinds[role]:
                raise ValueError(f"layout for {role!r} must be a {kinds[role]} layout, "
                                 f"got {layout.name} ({layout.kind})")
        self.logical = {"x": p.x_shape, "w": p.w_shape, "y": p.y_shape}
        ins, out = ROLES[direction]
        dt_in, dt_w, dt_acc, dt_out = p.dtypes
        dtype = {"x": dt_in, "w": dt_w, "y": dt_out}
        if direction is not Direction.fwd:
            dtype[out] = dt_acc
        self.buffers: list[Buffer] = [
            Buffer(role, self.layouts[role].physical_shape(self.logical[role]),
                   "output" if role == out else "input", dtype[role], self.layouts[role].name)
            for role in (*ins, out)]
        self.stages: list = []
        self.acc = dt_acc
        if math.prod(self.buffers[-1].shape) != math.prod(self.logical[out]):
            # a blocked output layout has tail slots no core writes
            self.stages.append(ZeroFill(out, IndexMap.identity(self.buffers[-1].shape, "clear block padding")))

    def tensor(self, role: str) -> IndexMap:
        """logical -> physical map of a caller tensor (its view when read as logical)."""
        return self.layouts[role].unpack_map(self.logical[role])

    def view(self, role: str, fn, shape, name: str) -> Operand:
        """The caller tensor `role` seen through fn(*core coords) -> logical coords."""
        logical_map = IndexMap.build(shape, self.logical[role], fn, name)
        return Operand(role, self.tensor(role).then(logical_map))

    def scratch(self, name: str, shape) -> str:
        self.buffers.append(Buffer(name, tuple(shape), "scratch", self.acc))
        return name

    def plain(self, name: str) -> Operand:
        shape = next(b.shape for b in self.buffers if b.name == name)
        return Operand(name, IndexMap.identity(shape, name))

    def plan(self, algorithm: str) -> Plan:
        ins, out = ROLES[self.direction]
        ordered = sorted(self.buffers, key=lambda b: ("input", "scratch", "output").index(b.role))
        return Plan(self.p, self.direction, algorithm, tuple(ordered), tuple(self.stages), ins, out)


# ---------------------------------------------------------------------- forward-form cores
def _fwd_core(b: Builder, trim: bool) -> None:
    p = b.p
    g = CoreGeometry(p.n, p.c, p.k, p.h, p.w, p.r, p.s, p.p, p.q, p.stride, p.dilation,
                     (p.padding[0], p.padding[2]), (1, 1), p.groups)
    b.stages.append(ConvCore(g, Operand("x", b.tensor("x")), Operand("w", b.tensor("w")),
                             Operand("y", b.tensor("y")), trim))


def _swapped_flipped_weight(b: Builder, rows, cols) -> callable:
    """W'[c, kl, i, j] = W[g*Kg + kl, c mod Cg, rows(i), cols(j)] with g = c // Cg: in/out swap per group."""
    p = b.p
    cg, kg = p.c // p.groups, p.k // p.groups
    return lambda c, kl, i, j: ((c // cg) * kg + kl, c % cg, rows(i), cols(j))


def _bwd_data_core(b: Builder, trim: bool) -> None:
    """dX as XLA's transposed conv: dY with input dilation = stride, flipped swapped filter."""
    p = b.p
    (sh, sw), (dh, dw), (pt, _, pl, _) = p.stride, p.dilation, p.padding
    g = CoreGeometry(p.n, p.k, p.c, p.p, p.q, p.r, p.s, p.h, p.w, (1, 1), (dh, dw),
                     ((p.r - 1) * dh - pt, (p.s - 1) * dw - pl), (sh, sw), p.groups)
    fn = _swapped_flipped_weight(b, lambda i: p.r - 1 - i, lambda j: p.s - 1 - j)
    b.stages.append(ConvCore(g, Operand("y", b.tensor("y")), b.view("w", fn, g.w_shape, "swap+flip180"),
                             Operand("x", b.tensor("x")), trim))


def _transposed_input(b: Builder, rows, cols, shape) -> Operand:
    """data'[cl, g*N + n, i, j] = X[n, g*Cg + cl, rows(i), cols(j)]: batch becomes the reduction."""
    p = b.p
    cg = p.c // p.groups
    return b.view("x", lambda cl, gn, i, j: (gn % p.n, (gn // p.n) * cg + cl, rows(i), cols(j)),
                  shape, "transpose NC (per group)")


def _bwd_weight_out(b: Builder, rows, cols, shape) -> Operand:
    """Core output [Cg, K, i, j] written to dW[k, cl, rows(i), cols(j)]."""
    return b.view("w", lambda cl, k, i, j: (k, cl, rows(i), cols(j)), shape, "transpose CK")


def _bwd_weight_core(b: Builder, trim: bool) -> None:
    """dW as a forward conv of X^T with dY^T as the filter: stride = dilation, dilation = stride."""
    p = b.p
    cg = p.c // p.groups
    g = CoreGeometry(cg, p.groups * p.n, p.k, p.h, p.w, p.p, p.q, p.r, p.s, p.dilation, p.stride,
                     (p.padding[0], p.padding[2]), (1, 1), p.groups)
    ident = lambda i: i  # noqa: E731
    x = _transposed_input(b, ident, ident, g.x_shape)
    dy = b.view("y", lambda k, n, i, j: (n, k, i, j), g.w_shape, "transpose NK")
    b.stages.append(ConvCore(g, x, dy, _bwd_weight_out(b, ident, ident, g.y_shape), trim))


def direct(b: Builder) -> None:
    {Direction.fwd: _fwd_core, Direction.bwd_data: _bwd_data_core,
     Direction.bwd_weight: _bwd_weight_core}[b.direction](b, False)


def trim(b: Builder) -> None:
    {Direction.fwd: _fwd_core, Direction.bwd_data: _bwd_data_core,
     Direction.bwd_weight: _bwd_weight_core}[b.direction](b, True)


# ---------------------------------------------------------------------- forward-kernel reuse
def fwd_reuse(b: Builder) -> None:
    """Gradients through the dense forward kernel plus materialized conversions (paper 1)."""
    p = b.p
    (sh, sw), (dh, dw), (pt, pb, pl, pr) = p.stride, p.dilation, p.padding
    if b.direction is Direction.bwd_data:
        top, left = (p.r - 1) * dh - pt, (p.s - 1) * dw - pl
        hd, wd = p.h + (p.r - 1) * dh, p.w + (p.s - 1) * dw
        dilated = zero_insert(p.y_shape, {2: sh, 3: sw})
        _, _, zh, zw = dilated.out_shape
        padded = pad(dilated.out_shape, [(0, 0), (0, 0), (top, hd - zh - top), (left, wd - zw - left)])
        b.stages.append(Transform("y", b.scratch("dy_dilated", padded.out_shape),
                                  b.tensor("y").then(dilated).then(padded)))
        flipped = IndexMap.build((p.c, p.k // p.groups, p.r, p.s), p.w_shape,
                                 _swapped_flipped_weight(b, lambda i: p.r - 1 - i, lambda j: p.s - 1 - j),
                                 "swap+flip180")
        b.stages.append(Transform("w", b.scratch("w_flipped", flipped.out_shape), b.tensor("w").then(flipped)))
        g = CoreGeometry(p.n, p.k, p.c, hd, wd, p.r, p.s, p.h, p.w, (1, 1), (dh, dw), (0, 0), (1, 1), p.groups)
        b.stages.append(ConvCore(g, b.plain("dy_dilated"), b.plain("w_flipped"), Operand("x", b.tensor("x"))))
        return
    cg = p.c // p.groups
    hp, wp = p.h + pt + pb, p.w + pl + pr
    ident = lambda i: i  # noqa: E731
    data = _transposed_input(b, ident, ident, (cg, p.groups * p.n, p.h, p.w)).view
    data = data.then(pad(data.out_shape, [(0, 0), (0, 0), (pt, pb), (pl, pr)]))
    b.stages.append(Transform("x", b.scratch("x_transposed", data.out_shape), data))
    dy = b.view("y", lambda k, n, i, j: (n, k, i, j), (p.k, p.n, p.p, p.q), "transpose NK")
    b.stages.append(Transform("y", b.scratch("dy_transposed", dy.view.out_shape), dy.view))
    rr = (hp - ((p.p - 1) * sh + 1)) // dh + 1  # R + rem: the forward kernel's own output size
    ss = (wp - ((p.q - 1) * sw + 1)) // dw + 1
    g = CoreGeometry(cg, p.groups * p.n, p.k, hp, wp, p.p, p.q, rr, ss, (dh, dw), (sh, sw), (0, 0), (1, 1),
                     p.groups)
    t = b.scratch("dw_full", g.y_shape)
    b.stages.append(ConvCore(g, b.plain("x_transposed"), b.plain("dy_transposed"), b.plain(t)))
    crop = IndexMap.build(p.w_shape, g.y_shape, lambda k, cl, i, j: (cl, k, i, j), "crop+transpose CK")
    b.stages.append(Transform(t, "w", crop.then(b.layouts["w"].pack_map(p.w_shape))))


# ---------------------------------------------------------------------- stride-phase splitting
def _phase_taps(taps: int, stride: int, dil: int, phase: int) -> tuple[int, int, int, int, int]:
    """Taps t with t*dil = phase (mod stride): (count, first tap, tap step, u of first, u step),
    where u = (t*dil - phase) / stride is the tap's shift in units of the stride."""
    members = [t for t in range(taps) if (t * dil - phase) % stride == 0]
    if not members:
        return 0, 0, 1, 0, 1
    step = stride // math.gcd(stride, dil)
    return len(members), members[0], step, (members[0] * dil - phase) // stride, dil // math.gcd(stride, dil)


def _phase_rows(size: int, pad_front: int, stride: int, phase: int) -> tuple[int, int, int]:
    """Input/output positions h in [0, size) with (h + pad_front) = phase (mod stride):
    (first h, count, offset) with offset = (first + pad_front - phase) / stride."""
    first = (phase - pad_front) % stride
    count = max(0, -(-(size - first) // stride))
    return first, count, (first + pad_front - phase) // stride


def phase_split(b: Builder) -> None:
    """s_h*s_w dense stride-1 sub-convolutions; no inserted zero is ever multiplied (paper 3)."""
    p = b.p
    (sh, sw), (dh, dw), (pt, _, pl, _) = p.stride, p.dilation, p.padding
    for a in range(sh):
        for c in range(sw):
            taps_h, taps_w = _phase_taps(p.r, sh, dh, a), _phase_taps(p.s, sw, dw, c)
            rows, cols = _phase_rows(p.h, pt, sh, a), _phase_rows(p.w, pl, sw, c)
            if b.direction is Direction.bwd_data:
                _bwd_data_phase(b, (a, c), taps_h, taps_w, rows, cols)
            else:
                _bwd_weight_phase(b, (a, c), taps_h, taps_w, rows, cols)


def _bwd_data_phase(b: Builder, phase, taps_h, taps_w, rows, cols) -> None:
    p = b.p
    (mh, rh0, rstep, uh0, ddh), (mw, rw0, sstep, uw0, ddw) = taps_h, taps_w
    (h0, th, offh), (w0, tw, offw) = rows, cols
    if th == 0 or tw == 0:
        return
    out = lambda n, c, t, u: (n, c, h0 + p.stride[0] * t, w0 + p.stride[1] * u)  # noqa: E731
    if mh == 0 or mw == 0:
        b.stages.append(ZeroFill("x", b.tensor("x").then(IndexMap.build(
            (p.n, p.c, th, tw), p.x_shape, out, f"phase {phase} (no taps)"))))
        return
    g = CoreGeometry(p.n, p.k, p.c, p.p, p.q, mh, mw, th, tw, (1, 1), (ddh, ddw),
                     ((mh - 1) * ddh + uh0 - offh, (mw - 1) * ddw + uw0 - offw), (1, 1), p.groups)
    fn = _swapped_flipped_weight(b, lambda i: rh0 + (mh - 1 - i) * rstep, lambda j: rw0 + (mw - 1 - j) * sstep)
    # the sub-filter is every rstep-th tap of the whole flipped filter, from the tap that flips to the last member
    flipped = _swapped_flipped_weight(b, lambda i: p.r - 1 - i, lambda j: p.s - 1 - j)
    whole = b.view("w", flipped, (p.c, p.k // p.groups, p.r, p.s), "swap+flip180")
    taps = Lattice(whole, (p.r - 1 - rh0 - (mh - 1) * rstep, rstep), (p.s - 1 - rw0 - (mw - 1) * sstep, sstep))
    pixels = Lattice(Operand("x", b.tensor("x")), (h0, p.stride[0]), (w0, p.stride[1]))
    b.stages.append(ConvCore(g, Operand("y", b.tensor("y")), b.view("w", fn, g.w_shape, f"sub-filter {phase}"),
                             b.view("x", out, g.y_shape, f"phase {phase} interleave"), trim=True,
                             filter_taps=taps, output_phase=pixels))


def _bwd_weight_phase(b: Builder, phase, taps_h, taps_w, rows, cols) -> None:
    p = b.p
    (mh, rh0, rstep, uh0, ddh), (mw, rw0, sstep, uw0, ddw) = taps_h, taps_w
    (h0, ha, offh), (w0, wa, offw) = rows, cols
    if mh == 0 or mw == 0:
        return
    cg = p.c // p.groups
    out_rows, out_cols = (lambda i: rh0 + rstep * i), (lambda j: rw0 + sstep * j)
    if ha == 0 or wa == 0:
        b.stages.append(ZeroFill("w", b.tensor("w").then(IndexMap.build(
            (p.k, cg, mh, mw), p.w_shape, lambda k, cl, i, j: (k, cl, out_rows(i), out_cols(j)),
            f"phase {phase} (only padding)"))))
        return
    g = CoreGeometry(cg, p.groups * p.n, p.k, ha, wa, p.p, p.q, mh, mw, (ddh, ddw), (1, 1),
                     (offh - uh0, offw - uw0), (1, 1), p.groups)
    x = _transposed_input(b, lambda i: h0 + p.stride[0] * i, lambda j: w0 + p.stride[1] * j, g.x_shape)
    dy = b.view("y", lambda k, n, i, j: (n, k, i, j), g.w_shape, "transpose NK")
    b.stages.append(ConvCore(g, x, dy, _bwd_weight_out(b, out_rows, out_cols, g.y_shape), trim=True))


# ---------------------------------------------------------------------- GEMM formulations
def _im2col(b: Builder, transposed: bool) -> IndexMap:
    """col[g, c*R*S + r*S + s, n*P*Q + p*Q + q] = Xpad[n, g*Cg + c, p*sh + r*dh, q*sw + s*dw]
    (or [g, npq, crs] when `transposed`), as a map into the caller's x."""
    p = b.p
    cg, rs, pq = p.c // p.groups, p.r * p.s, p.p * p.q
    (sh, sw), (dh, dw), (pt, _, pl, _) = p.stride, p.dilation, p.padding

    def fn(g, i, j):
        crs, npq = (j, i) if transposed else (i, j)
        c, r, s = crs // rs, (crs // p.s) % p.r, crs % p.s
        n, oh, ow = npq // pq, (npq // p.q) % p.p, npq % p.q
        return (n, g * cg + c, oh * sh + r * dh - pt, ow * sw + s * dw - pl)

    shape = (p.groups, p.n * pq, cg * rs) if transposed else (p.groups, cg * rs, p.n * pq)
    return b.tensor("x").then(IndexMap.build(shape, p.x_shape, fn, "im2col"))


def im2col_gemm(b: Builder) -> None:
    """fwd: Y = W[Kg, CgRS] @ col[CgRS, NPQ]; bwd_weight: dW = dY[Kg, NPQ] @ col^T[NPQ, CgRS]."""
    p = b.p
    cg, kg, rs, pq = p.c // p.groups, p.k // p.groups, p.r * p.s, p.p * p.q
    npq, crs = p.n * pq, cg * rs
    w_of = lambda g, kl, i: (g * kg + kl, i // rs, (i // p.s) % p.r, i % p.s)  # noqa: E731
    y_of = lambda g, kl, j: (j // pq, g * kg + kl, (j // p.q) % p.p, j % p.q)  # noqa: E731
    if b.direction is Direction.fwd:
        col = _im2col(b, transposed=False)
        b.stages.append(Transform("x", b.scratch("col", col.out_shape), col))
        b.stages.append(Gemm(p.groups, kg, npq, crs, b.view("w", w_of, (p.groups, kg, crs), "W as [G,Kg,CgRS]"),
                             b.plain("col"), b.view("y", y_of, (p.groups, kg, npq), "[G,Kg,NPQ] as Y")))
        return
    col = _im2col(b, transposed=True)
    b.stages.append(Transform("x", b.scratch("col_t", col.out_shape), col))
    b.stages.append(Gemm(p.groups, kg, crs, npq, b.view("y", y_of, (p.groups, kg, npq), "dY as [G,Kg,NPQ]"),
                         b.plain("col_t"), b.view("w", w_of, (p.groups, kg, crs), "[G,Kg,CgRS] as dW")))


def gemm_col2im(b: Builder) -> None:
    """bwd_data baseline: cols = W^T[CgRS, Kg] @ dY[Kg, NPQ], then col2im scatter-adds into dX."""
    p = b.p
    cg, kg, rs, pq = p.c // p.groups, p.k // p.groups, p.r * p.s, p.p * p.q
    npq, crs = p.n * pq, cg * rs
    wt = b.view("w", lambda g, i, kl: (g * kg + kl, i // rs, (i // p.s) % p.r, i % p.s),
                (p.groups, crs, kg), "W^T as [G,CgRS,Kg]")
    dy = b.view("y", lambda g, kl, j: (j // pq, g * kg + kl, (j // p.q) % p.p, j % p.q),
                (p.groups, kg, npq), "dY as [G,Kg,NPQ]")
    cols = b.scratch("cols", (p.groups, crs, npq))
    b.stages.append(Gemm(p.groups, crs, npq, kg, wt, dy, b.plain(cols)))
    b.stages.append(ScatterAdd(cols, "x", _im2col(b, transposed=False)))


ALGORITHMS = {
    Direction.fwd: {"direct": direct, "im2col_gemm": im2col_gemm, "trim": trim},
    Direction.bwd_data: {"direct": direct, "gemm_col2im": gemm_col2im, "fwd_reuse": fwd_reuse, "trim": trim,
                         "phase_split": phase_split},
    Direction.bwd_weight: {"direct": direct, "im2col_gemm": im2col_gemm, "fwd_reuse": fwd_reuse, "trim": trim,
                           "phase_split": phase_split},
}


def build(p: ConvProblem, direction: Direction, algorithm: str, layouts: dict[str, str]) -> Plan:
    table = ALGORITHMS[direction]
    if algorithm not in table:
        raise ValueError(f"algorithm {algorithm!r} is not available for {direction}; "
                         f"choose one of {sorted(table)}")
    b = Builder(p, direction, layouts)
    table[algorithm](b)
    return b.plan(algorithm)

