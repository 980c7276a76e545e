"""Every algorithm of every direction equals the float64 reference on random problems."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import examples, problems

import convforge as cf
from convforge.plan import ConvCore, Transform


def relative_error(got, want) -> float:
    """Largest error relative to the largest reference value (outputs may be all-padding zeros)."""
    return float(np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-30))


def check_all_algorithms(p: cf.ConvProblem, direction: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    operands = cf.reference.random_operands(p, direction, rng)
    want = cf.reference.compute(p, direction, *operands)
    for algorithm in cf.algorithms(direction):
        candidate = cf.plan(p, direction, algorithm)
        got = candidate.run(*operands)  # scratch and output start as NaN inside the executor
        assert got.shape == want.shape
        assert relative_error(got, want) < 1e-10, (str(p), direction, algorithm)
        assert candidate.executed_macs >= candidate.useful_macs


@pytest.mark.parametrize("direction", ["fwd", "bwd_data", "bwd_weight"])
@settings(max_examples=examples(300))
@given(p=problems(), seed=st.integers(0, 2**32 - 1))
def test_every_algorithm_matches_reference(direction, p, seed):
    check_all_algorithms(p, direction, seed)


@pytest.mark.parametrize("direction", ["bwd_data", "bwd_weight"])
@settings(max_examples=examples(100))
@given(p=problems())
def test_phase_split_and_trim_execute_only_useful_macs(direction, p):
    assert cf.plan(p, direction, "phase_split").executed_macs == p.useful_macs
    assert cf.plan(p, direction, "trim").executed_macs == p.useful_macs or direction == "bwd_data"
    assert cf.plan(p, "fwd", "trim").executed_macs == p.useful_macs


def test_fwd_reuse_multiplies_inserted_zeros_and_phase_split_does_not():
    p = cf.ConvProblem(8, 128, 128, 56, 56, 3, 3, stride=2, padding=1)
    reuse = cf.plan(p, "bwd_data", "fwd_reuse")
    split = cf.plan(p, "bwd_data", "phase_split")
    assert 3.9 < reuse.waste < 4.2
    assert split.executed_macs == split.useful_macs
    assert len(split.cores) == 4 and not split.transforms  # s*s phases, no materialized zeros
    assert "executed/useful 1.000" in split.describe()


def test_zero_insertion_pad_and_layout_change_compose_into_one_gather(monkeypatch):
    """dY in NHWC -> zero-inserted, re-padded NCHW scratch: three conversions, one gather pass."""
    p = cf.ConvProblem(2, 5, 6, 11, 9, 3, 3, stride=2, padding=(1, 0, 1, 1))
    plan = cf.plan(p, "bwd_data", "fwd_reuse", layouts={"y": "NHWC", "x": "NCHW16c", "w": "HWIO"})
    first = plan.stages[0] if isinstance(plan.stages[0], Transform) else plan.stages[1]
    assert first.src == "y" and len(first.index_map.parts) >= 3
    assert first.index_map.parts == ("unpack NHWC", "zero_insert", "pad")
    calls = []
    original = cf.layouts.IndexMap.apply
    monkeypatch.setattr(cf.layouts.IndexMap, "apply", lambda self, a: calls.append(self.parts) or original(self, a))
    rng = np.random.default_rng(0)
    dy, w = cf.reference.random_operands(p, "bwd_data", rng)
    got = plan.run(cf.layouts.pack(dy, "NHWC"), cf.layouts.pack(w, "HWIO"))
    assert ("unpack NHWC", "zero_insert", "pad") in calls  # applied once, as a whole
    want = cf.reference.bwd_data(p, dy, w)
    assert relative_error(cf.layouts.unpack(got, "NCHW16c", p.x_shape), want) < 1e-10


@pytest.mark.parametrize("direction", ["fwd", "bwd_data", "bwd_weight"])
@pytest.mark.parametrize("layouts", [{"x": "NHWC", "w": "HWIO", "y": "NHWC"},
                                     {"x": "NCHW16c", "w": "OIHW16i16o", "y": "NCHW8c"},
                                     {"x": "CHWN", "w": "FRACTAL_Z", "y": "NC1HWC0"}])
def test_plans_read_and_write_caller_layouts(direction, layouts):
    p = cf.ConvProblem(3, 6, 10, 9, 8, 3, 2, stride=(2, 1), padding=(1, 2, 0, 1), dilation=(1, 2), groups=2)
    rng = np.random.default_rng(1)
    operands = cf.reference.random_operands(p, direction, rng)
    roles, out_role = cf.plan(p, direction).inputs, cf.plan(p, direction).output
    logical = {"x": p.x_shape, "w": p.w_shape, "y": p.y_shape}
    packed = [cf.layouts.pack(a, layouts[r]) for a, r in zip(operands, roles)]
    want = cf.reference.compute(p, direction, *operands)
    for algorithm in cf.algorithms(direction):
        got = cf.plan(p, direction, algorithm, layouts).run(*packed)
        assert not np.isnan(got).any()
        back = cf.layouts.unpack(got, layouts[out_role], logical[out_role])
        assert relative_error(back, want) < 1e-10, algorithm


def test_core_stages_are_in_forward_form():
    p = cf.ConvProblem(1, 4, 4, 10, 10, 3, 3, stride=3, padding=1)
    for d in cf.Direction:
        for a in cf.algorithms(d):
            for stage in cf.plan(p, d, a).stages:
                if isinstance(stage, ConvCore):
                    assert stage.geometry.y_shape == stage.y.view.out_shape


@settings(max_examples=examples(100))
@given(p=problems())
def test_lattice_hints_name_the_taps_and_pixels_a_phase_reads_and_writes(p):
    """A stride phase's Lattice hints, read at their steps, are exactly the core's own views:
    its filter taps of the whole filter, its output pixels of the whole output."""
    rng = np.random.default_rng(0)
    w, dx = rng.standard_normal(p.w_shape), rng.standard_normal(p.x_shape)
    cores = cf.plan(p, "bwd_data", "phase_split").cores
    assert all(core.filter_taps is not None and core.output_phase is not None for core in cores)
    for core in cores:
        for hint, view, array, (rows, cols) in [
                (core.filter_taps, core.w.view, w, core.geometry.w_shape[2:]),
                (core.output_phase, core.y.view, dx, core.geometry.y_shape[2:])]:
            (r0, rt), (s0, st_) = hint.rows, hint.cols
            whole = hint.full.view.apply(array)
            np.testing.assert_array_equal(whole[:, :, r0:r0 + (rows - 1) * rt + 1:rt, s0:s0 + (cols - 1) * st_ + 1:st_],
                                          view.apply(array))
