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
    products; fp32 accumulation is applied by the caller's cast).

    Taps go into the reduction together (one matrix product over (tap, channel) per group of taps,
    bounded in memory): a backward-weight tile has thousands of taps and few channels."""
    (sh, sw), (dh, dw) = shape.stride, shape.dilation
    rows = shape.tb * shape.tp * shape.tq
    xf, wf = np.ascontiguousarray(x, dtype=np.float64), w.astype(np.float64)
    sb, sr, sc, se = xf.strides
    # view[b, p, q, r, s, c] = x[b, p*sh + r*dh, q*sw + s*dw, c] for every tap the frame holds
    view = np.lib.stride_tricks.as_strided(
        xf, (shape.tb, shape.tp, shape.tq, shape.tr, shape.ts, shape.tc),
        (sb, sh * sr, sw * sc, dh * sr, dw * sc, se), writeable=False)
    out = np.zeros((rows, shape.tk))
    group = max(1, _GATHER_ELEMENTS // max(1, rows * shape.tc))
    for first in range(0, len(shape.taps), group):
        r, s = (np.array(a) for a in zip(*shape.taps[first:first + group]))
        cols = view[:, :, :, r, s, :].reshape(rows, r.size * shape.tc)
        out += cols @ wf[r, s].reshape(r.size * shape.tc, shape.tk)
    return out.reshape(shape.tb, shape.tp, shape.tq, shape.tk)


_GATHER_ELEMENTS = 1 << 21  # float64 elements of one gathered group of taps (16 MiB)


def wrap_int32(values: np.ndarray) -> np.ndarray:
    """Two's-complement int32 wrap-around of exact integer sums (the accumulators do not saturate)."""
    return np.asarray(np.rint(values), dtype=np.int64).astype(np.int32)
