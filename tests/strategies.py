"""Hypothesis strategies for random convolution problems, shared by every test module.

They cover what breaks kernels: odd sizes, asymmetric padding, stride larger than the kernel,
dilation, groups, C = 1 or 3, batch 1 and 3, R != S.
"""

from __future__ import annotations

import os

from hypothesis import strategies as st

from convforge import ConvProblem


@st.composite
def problems(draw, max_size: int = 12, max_channels: int = 6, max_kernel: int = 5, max_stride: int = 4,
             max_dilation: int = 3, max_pad: int = 3, max_batch: int = 3) -> ConvProblem:
    groups = draw(st.sampled_from([1, 1, 1, 2, 3]))
    c = groups * draw(st.integers(1, max(1, max_channels // groups)))
    k = groups * draw(st.integers(1, max(1, max_channels // groups)))
    r, s = draw(st.integers(1, max_kernel)), draw(st.integers(1, max_kernel))
    dh, dw = draw(st.integers(1, max_dilation)), draw(st.integers(1, max_dilation))
    pads = tuple(draw(st.integers(0, max_pad)) for _ in range(4))
    h = draw(st.integers(max(1, (r - 1) * dh + 1 - pads[0] - pads[1]), max_size + (r - 1) * dh))
    w = draw(st.integers(max(1, (s - 1) * dw + 1 - pads[2] - pads[3]), max_size + (s - 1) * dw))
    stride = (draw(st.integers(1, max_stride)), draw(st.integers(1, max_stride)))
    n = draw(st.integers(1, max_batch))
    return ConvProblem(n, c, k, h, w, r, s, stride, pads, (dh, dw), groups)


def examples(n: int) -> int:
    """n in CI; scaled by CONVFORGE_EXAMPLES_SCALE for longer local runs."""
    return n * int(os.environ.get("CONVFORGE_EXAMPLES_SCALE", "1"))
