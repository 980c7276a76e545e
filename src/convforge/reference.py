"""Float64 NumPy definitions of the three directions: the oracle every kernel is checked against.

Each function follows its formula tap by tap (one strided slice of the padded input per filter
tap), with no rewriting, so that they stay obviously right. Activations are NCHW, weights
[K, C/groups, R, S]; the operand order is that of PyTorch's functional API.
"""

from __future__ import annotations

import numpy as np

from .problem import ConvProblem, Direction


def check_operand(name: str, array, shape: tuple[int, ...]) -> np.ndarray:
    """Return `array` as a float64 ndarray, or raise naming the operand."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(array).__name__}")
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise TypeError(f"{name} must have a real numeric dtype, got {array.dtype}")
    if array.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {array.shape}")
    return array.astype(np.float64, copy=False)


def _padded(p: ConvProblem, x: np.ndarray) -> np.ndarray:
    pt, pb, pl, pr = p.padding
    return np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))


def _window(p: ConvProblem, r: int, s: int) -> tuple[slice, slice]:
    """Rows and columns of the padded input that filter tap (r, s) meets, one per output pixel."""
    (sh, sw), (dh, dw) = p.stride, p.dilation
    return (slice(r * dh, r * dh + (p.p - 1) * sh + 1, sh),
            slice(s * dw, s * dw + (p.q - 1) * sw + 1, sw))


def _grouped(p: ConvProblem, t: np.ndarray) -> np.ndarray:
    """[N, G*Cg, ...] -> [N, G, Cg, ...]."""
    return t.reshape(t.shape[0], p.groups, t.shape[1] // p.groups, *t.shape[2:])


def fwd(p: ConvProblem, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Y[n,k,p,q] = sum_{c,r,s} Xpad[n, c, p*sh + r*dh, q*sw + s*dw] * W[k,c,r,s] (per group)."""
    x = check_operand("x", x, p.x_shape)
    w = check_operand("w", w, p.w_shape)
    xg = _grouped(p, _padded(p, x))
    wg = w.reshape(p.groups, p.k // p.groups, *w.shape[1:])
    y = np.zeros((p.n, p.groups, p.k // p.groups, p.p, p.q))
    for r in range(p.r):
        for s in range(p.s):
            rows, cols = _window(p, r, s)
            y += np.einsum("ngchw,gkc->ngkhw", xg[:, :, :, rows, cols], wg[:, :, :, r, s])
    return y.reshape(p.y_shape)


def bwd_data(p: ConvProblem, dy: np.ndarray, w: np.ndarray) -> np.ndarray:
    """dX = the adjoint of fwd in x: every Y[n,k,p,q] sends dY * W[k,c,r,s] back to the X element it read."""
    dy = check_operand("dy", dy, p.y_shape)
    w = check_operand("w", w, p.w_shape)
    pt, pb, pl, pr = p.padding
    dxg = np.zeros((p.n, p.groups, p.c // p.groups, p.h + pt + pb, p.w + pl + pr))
    dyg = _grouped(p, dy)
    wg = w.reshape(p.groups, p.k // p.groups, *w.shape[1:])
    for r in range(p.r):
        for s in range(p.s):
            rows, cols = _window(p, r, s)
            dxg[:, :, :, rows, cols] += np.einsum("ngkhw,gkc->ngchw", dyg, wg[:, :, :, r, s])
    return dxg[:, :, :, pt:pt + p.h, pl:pl + p.w].reshape(p.x_shape)


def bwd_weight(p: ConvProblem, x: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """dW[k,c,r,s] = sum_{n,p,q} dY[n,k,p,q] * Xpad[n, c, p*sh + r*dh, q*sw + s*dw] (per group)."""
    x = check_operand("x", x, p.x_shape)
    dy = check_operand("dy", dy, p.y_shape)
    xg = _grouped(p, _padded(p, x))
    dyg = _grouped(p, dy)
    dw = np.zeros((p.groups, p.k // p.groups, p.c // p.groups, p.r, p.s))
    for r in range(p.r):
        for s in range(p.s):
            rows, cols = _window(p, r, s)
            dw[:, :, :, r, s] = np.einsum("ngchw,ngkhw->gkc", xg[:, :, :, rows, cols], dyg)
    return dw.reshape(p.w_shape)


FUNCTIONS = {Direction.fwd: fwd, Direction.bwd_data: bwd_data, Direction.bwd_weight: bwd_weight}


def compute(p: ConvProblem, direction: Direction | str, *operands: np.ndarray) -> np.ndarray:
    """The reference result of `direction` on its two operands."""
    d = Direction.of(direction)
    if len(operands) != 2:
        raise TypeError(f"{d} takes 2 operands, got {len(operands)}")
    return FUNCTIONS[d](p, *operands)


def random_operands(p: ConvProblem, direction: Direction | str, rng: np.random.Generator,
                    dtype=np.float64) -> tuple[np.ndarray, np.ndarray]:
    """Fresh operands for `direction`, uniform in [-1, 1) and never all zero."""
    shapes, _ = p.operand_shapes(direction)
    return tuple(rng.uniform(-1.0, 1.0, size=s).astype(dtype) for s in shapes)  # type: ignore
