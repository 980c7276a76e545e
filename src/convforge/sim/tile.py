"""Shared arithmetic of one conv tile, vectorized: what a systolic array or a cube computes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TileShape:
    """One tile of a forward-form conv core as the hardware sees it.

    Input frame [tb, IR, IC, tc] (halo included), weights [tr, ts, tc, tk], output [tb, tp, tq, tk];
    `taps` lists the (r, s) filter taps executed (all of them unless trimmed).
    """

    tb: int
    tp: int
    tq: int
    tk: int
    tc: int
    tr: int
    ts: int
    stride: tuple[int, int]
    dilation: tuple[int, int]
    taps: tuple[tuple[int, int], ...]

    @property
    def rows(self) -> int:
        return (self.tp - 1) * self.stride[0] + (self.tr - 1) * self.dilation[0] + 1

    @property
    def cols(self) -> int:
        return (self.tq - 1) * self.stride[1] + (self.ts - 1) * self.dilation[1] + 1

    @property
    def macs(self) -> int:
        return len(self.taps) * self.tb * self.tp * self.tq * self.tc * self.tk


def conv_tile(shape: TileShape, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """sum over taps of x[:, p*sh + r*dh, q*sw + s*dw, :] @ w[r, s] in float64 (exact for int8 and fp16
    products; fp32 accumulation is applied by the caller's cast)."""
    (sh, sw), (dh, dw) = shape.stride, shape.dilation
    out = np.zeros((shape.tb * shape.tp * shape.tq, shape.tk))
    xf = x.astype(np.float64)
    for r, s in shape.taps:
        window = xf[:, r * dh:r * dh + (shape.tp - 1) * sh + 1:sh, s * dw:s * dw + (shape.tq - 1) * sw + 1:sw, :]
        out += window.reshape(-1, shape.tc) @ w[r, s].astype(np.float64)
    return out.reshape(shape.tb, shape.tp, shape.tq, shape.tk)


def wrap_int32(values: np.ndarray) -> np.ndarray:
    """Two's-complement int32 wrap-around of exact integer sums (the accumulators do not saturate)."""
    return np.asarray(np.rint(values), dtype=np.int64).astype(np.int32)
