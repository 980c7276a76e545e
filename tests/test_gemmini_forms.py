"""Gemmini's target-specific forward forms, bit-exact against the reference on random problems:
the vendor's first-layer path (`pixel_repeats`), ConvForge's tap packing (few input channels) and the
flat execute form (per-tap window copies); plus their pair counts and DMA run accounting."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from accel_helpers import compile_and_check, typed
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from strategies import examples

from convforge import ConvProblem
from convforge.backends.accel import Tile, compile_accel
from convforge.backends.accel.emit_gemmini import aligned_pieces, runs_per_pixel
from convforge.backends.accel.suites import load as load_suite
from convforge.sim.gemmini import GatherLoad, LoopConvEx


@st.composite
def few_channel_problems(draw) -> ConvProblem:
    """C = 1..4, odd sizes, R, S >= 2, stride 1 or 2, asymmetric padding (< filter size), batch 1..2."""
    c, k = draw(st.integers(1, 4)), draw(st.integers(1, 20))
    r, s = draw(st.integers(2, 5)), draw(st.integers(2, 5))
    pads = (draw(st.integers(0, r - 1)), draw(st.integers(0, r - 1)), draw(st.integers(0, s - 1)),
            draw(st.integers(0, s - 1)))
    h = draw(st.integers(max(1, r - pads[0] - pads[1]), r + 8))
    w = draw(st.integers(max(1, s - pads[2] - pads[3]), s + 8))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    return ConvProblem(draw(st.integers(1, 2)), c, k, h, w, r, s, stride, pads)


def tiles():
    return st.builds(Tile, st.integers(1, 2), st.integers(1, 4), st.integers(1, 9), st.sampled_from([5, 16, 20]),
                     st.sampled_from([3, 15, 16, 32]), st.integers(1, 3), st.integers(1, 3),
                     st.sampled_from(["bpqk", "kbpq"]))


@settings(max_examples=examples(25))
@given(p=few_channel_problems(), seed=st.integers(0, 2**31), tile=tiles())
def test_packed_forms_are_exact(p, seed, tile):
    for algorithm in ("tap_packing", "pixel_repeats"):
        compile_and_check(p, "fwd", "gemmini", seed, algorithm=algorithm, search=False)
        compile_and_check(p, "fwd", "gemmini", seed + 1, algorithm=algorithm, tile=tile)
    kernel = compile_and_check(p, "fwd", "gemmini", seed + 2, vendor=True)
    assert kernel.algorithm == "pixel_repeats"


@settings(max_examples=examples(20))
@given(p=few_channel_problems(), seed=st.integers(0, 2**31))
def test_flat_form_is_exact(p, seed):
    """Stride-1 problems narrower than the array with at most 9 filter taps take the flat form (window
    copies, skipped rows)."""
    assume(p.r * p.s <= 9)
    p = dataclasses.replace(p, c=p.c * 5, stride=(1, 1))
    kernel = compile_and_check(p, "fwd", "gemmini", seed, algorithm="direct", search=False)
    assert all(ins.flat for ins in kernel.program if isinstance(ins, LoopConvEx))
    vendor = compile_and_check(p, "fwd", "gemmini", seed, algorithm="direct", vendor=True)
    assert not any(ins.flat for ins in vendor.program if isinstance(ins, LoopConvEx))


def _pairs(kernel) -> int:
    return sum(ins.primitives for ins in kernel.program if isinstance(ins, LoopConvEx))


def test_tap_packing_takes_fewer_pairs_than_pixel_repeats():
    """conv1 (C=3, 7x7): per output pixel and 16 output channels 10 pairs instead of 14 (5 taps per row)."""
    p = typed(ConvProblem(1, 3, 16, 29, 29, 7, 7, stride=2, padding=3), "gemmini")
    whole = Tile(1, p.p, p.q, 16, 160, 1, 1)
    packed = compile_accel(p, "fwd", "gemmini", algorithm="tap_packing", tile=whole)
    repeats = compile_accel(p, "fwd", "gemmini", algorithm="pixel_repeats", tile=Tile(1, 1, p.q, 16, 15, 7, 2))
    assert _pairs(packed) == 10 * p.p * -(-p.q // 16)
    assert _pairs(repeats) == 14 * p.p * -(-p.q // 16)


def test_gather_rows_are_aligned_runs():
    """The packed im2col load is costed by the mvins that assemble its rows: conv1's rows (taps in (r, s)
    order, 5 per row) hold runs of 15, 6+9, 12+3, 15, 3+12, 9+6, 15, 15, 6+9 and 12 consecutive bytes;
    a run starting at lane o is written in pieces whose length divides o (pixel_repeats' shift), which
    makes 20 mvin rows per output pixel; 147 bytes are read."""
    assert [aligned_pieces(o, n) for o, n in ((0, 15), (6, 9), (12, 3), (3, 12), (9, 6))] == [1, 2, 1, 3, 2]
    p = typed(ConvProblem(1, 3, 16, 20, 20, 7, 7, stride=2, padding=3), "gemmini")
    kernel = compile_accel(p, "fwd", "gemmini", algorithm="tap_packing", tile=Tile(1, 1, 4, 16, 160, 1, 1))
    view = kernel.plan.stages[0].x.view
    assert runs_per_pixel(view, 0, 160, 16) == (20, 147)
    index, mask = view.source_indices()
    assert np.count_nonzero(mask[0, :, 5, 5]) == 147  # the view reads what the cost counts
    loads = [ins for ins in kernel.program if isinstance(ins, GatherLoad)]
    assert loads and all(ins.runs == ins.dst.count // 10 * 20 for ins in loads)


def test_packed_forms_refuse_many_channels():
    p = typed(ConvProblem(1, 9, 4, 8, 8, 3, 3), "gemmini")
    with pytest.raises(ValueError, match="C <= 8"):
        compile_accel(p, "fwd", "gemmini", algorithm="tap_packing")
    assert compile_accel(p, "fwd", "gemmini", vendor=True).algorithm == "direct"


def test_suite_specs():
    names = [p.name for p in load_suite("resnet50:v1", 1)]
    assert len(names) == 20 and names[0] == "conv1" and not any("v1.5" in n for n in names)
    assert len(load_suite("resnet50", 2)) == 26 and len(load_suite("deepbench", 1)) == 55
    with pytest.raises(ValueError, match="unknown row filter"):
        load_suite("resnet50:v2", 1)
