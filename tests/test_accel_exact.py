"""Every direction on every target equals the reference exactly (int8/int32) or within 1e-5 (fp16/fp32
on DaVinci): default tiles, random tiles (many tiles, partial edges, reduction steps) and the vendor
baselines."""

from __future__ import annotations

import pytest
from accel_helpers import compile_and_check, typed
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import examples, problems

from convforge.backends.accel import ALGORITHMS, Tile, compile_accel
from convforge.backends.accel import _emitter as emitter_for
from convforge.backends.accel.jobs import CoreJob, normalize
from convforge.plan import plan as make_plan
from convforge.targets import load

TARGETS = ("gemmini", "vta", "davinci")
DIRECTIONS = ("fwd", "bwd_data", "bwd_weight")
# VTA stores bytes only, so int32 intermediates cannot be read back (see emit_vta)
VTA_UNSUPPORTED = {("vta", "bwd_data", "gemm_col2im"), ("vta", "bwd_weight", "fwd_reuse")}
SMALL = {"max_size": 9, "max_channels": 20, "max_kernel": 4, "max_stride": 3, "max_dilation": 2, "max_pad": 2}


def tiles():
    return st.builds(Tile, st.integers(1, 3), st.integers(1, 4), st.integers(1, 5), st.sampled_from([1, 5, 16, 20]),
                     st.sampled_from([1, 3, 16, 17]), st.integers(1, 3), st.integers(1, 3),
                     st.sampled_from(["bpqk", "kbpq"]))


def _fits(p, direction, target, algorithm, tile) -> bool:
    t = load(target)
    plan = make_plan(p, direction, algorithm, layouts={"x": t.layouts["activation"], "w": t.layouts["weight"],
                                                       "y": t.layouts["activation"]})
    e = emitter_for(t)
    return all(e.fits(j.geometry, tile.clamp(j.geometry)) for j in normalize(plan) if isinstance(j, CoreJob))


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("direction", DIRECTIONS)
@settings(max_examples=examples(100), suppress_health_check=[HealthCheck.too_slow])
@given(p=problems(**SMALL), seed=st.integers(0, 2**31), tile=tiles(), data=st.data())
def test_random_problems_and_tiles(target, direction, p, seed, tile, data):
    algorithms = [a for a in ALGORITHMS[direction] if (target, direction, a) not in VTA_UNSUPPORTED
                  and not (direction == "bwd_data" and a in ("direct", "trim") and p.stride != (1, 1))]
    algorithm = data.draw(st.sampled_from(algorithms))
    p = typed(p, target)
    if _fits(p, direction, target, algorithm, tile):
        compile_and_check(p, direction, target, seed, algorithm=algorithm, tile=tile)
    compile_and_check(p, direction, target, seed + 1, algorithm=algorithm, search=False)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("direction", DIRECTIONS)
@settings(max_examples=examples(100), suppress_health_check=[HealthCheck.too_slow])
@given(p=problems(**SMALL), seed=st.integers(0, 2**31))
def test_vendor_baselines(target, direction, p, seed):
    compile_and_check(p, direction, target, seed, vendor=True)


@pytest.mark.parametrize("target", TARGETS)
@settings(max_examples=examples(10))
@given(p=problems(**SMALL), seed=st.integers(0, 2**31))
def test_searched_default(target, p, seed):
    for direction in DIRECTIONS:
        kernel = compile_and_check(p, direction, target, seed)
        assert kernel.provenance.startswith(f"auto({kernel.algorithm}): ")
        for how in kernel.provenance.split(": ", 1)[1].split("+"):
            assert how in ("bound-derived", "vendor", "searched")


def test_vta_refuses_int32_read_back():
    from convforge import ConvProblem

    p = typed(ConvProblem(1, 3, 4, 5, 5, 3, 3, stride=2), "vta")
    with pytest.raises(ValueError, match="int32"):
        compile_accel(p, "bwd_data", "vta", algorithm="gemm_col2im")
