"""Every plan algorithm x direction, lowered to C, against the float64 reference on random problems.

Kernels are compiled per problem (glue) but the compute cores are shared through one cache folder
per module, so a run compiles few cores. CONVFORGE_EXAMPLES raises the hypothesis budget locally.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import convforge as cf
from convforge.compile import compile as cf_compile

EXAMPLES = int(os.environ.get("CONVFORGE_EXAMPLES", "7"))
CASES = [(d, a) for d in ("fwd", "bwd_data", "bwd_weight") for a in cf.algorithms(d)]


pytestmark = pytest.mark.usefixtures("private_kernel_cache")


def relative_error(out: np.ndarray, ref: np.ndarray) -> float:
    return float(np.abs(out.astype(np.float64) - ref).max() / max(np.abs(ref).max(), 1e-30))


def check(p: cf.ConvProblem, direction: str, algorithm: str = "auto", layout: str = "NCHW", seed: int = 0):
    """Compile, run on fresh random operands into a NaN-poisoned output, compare with float64."""
    kernel = cf_compile(p, direction, algorithm=algorithm)
    rng = np.random.default_rng(seed)
    ops64 = cf.reference.random_operands(p, direction, rng)
    ops = [np.ascontiguousarray(o, dtype=np.float32) for o in ops64]
    out = np.full(kernel.out_shape, np.nan, dtype=np.float32)
    result = kernel(*ops, out=out)
    assert result is out
    ref = cf.reference.compute(p, direction, *[o.astype(np.float64) for o in ops])
    assert not np.isnan(out).any(), f"{direction}/{algorithm} left unwritten outputs for {p}"
    err = relative_error(out, ref)
    assert err < 1e-4, f"{direction}/{algorithm} relative error {err:.2e} on {p}"
    return kernel


@st.composite
def problems(draw):
    groups = draw(st.sampled_from([1, 1, 1, 2, 3]))
    c = groups * draw(st.sampled_from([1, 2, 3, 5, 17]))
    k = groups * draw(st.sampled_from([1, 3, 4, 16, 19]))
    r, s = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    h, w = draw(st.integers(1, 13)), draw(st.integers(1, 13))
    pads = tuple(draw(st.integers(0, 3)) for _ in range(4))
    n = draw(st.sampled_from([1, 3]))
    try:
        return cf.ConvProblem(n, c, k, h, w, r, s, stride=stride, padding=pads, dilation=dilation, groups=groups)
    except ValueError:
        assume(False)


@pytest.mark.parametrize("direction,algorithm", CASES)
@settings(derandomize=True, deadline=None, max_examples=EXAMPLES,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much])
@given(p=problems())
def test_random_problems(direction, algorithm, p):
    check(p, direction, algorithm)


EDGE_CASES = [
    cf.ConvProblem(1, 1, 1, 1, 1, 1, 1),  # the smallest problem
    cf.ConvProblem(3, 3, 5, 9, 7, 2, 3, stride=(4, 3), padding=(0, 2, 1, 0)),  # stride > kernel
    cf.ConvProblem(1, 6, 6, 11, 10, 3, 3, stride=2, padding=1, groups=6),  # depthwise
    cf.ConvProblem(3, 4, 8, 12, 13, 3, 2, stride=(2, 3), padding=(3, 0, 0, 2), dilation=(3, 2), groups=2),
    cf.ConvProblem(1, 33, 17, 6, 6, 1, 1, stride=2),  # channel tails beyond one vector block
]


@pytest.mark.parametrize("direction,algorithm", CASES)
@pytest.mark.parametrize("p", EDGE_CASES, ids=str)
def test_edge_cases(direction, algorithm, p):
    check(p, direction, algorithm, seed=1)
