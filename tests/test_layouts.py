"""Layouts round-trip, conversions equal unpack-then-pack, and composed maps equal their chains."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import examples

from convforge import layouts as L

ACTIVATIONS = ["NCHW", "NHWC", "CHWN", "NCHW16c", "NCHW8c", "NCHW3c", "NC1HWC0", "NC1HWC0_32",
               "NCHW1n16c", "gemmini_NHWC"]
WEIGHTS = ["OIHW", "KCRS", "HWIO", "OIHW16i16o", "OIHW8i4o", "OIHW16o16i", "FRACTAL_Z", "FRACTAL_Z_32",
           "gemmini_HWIO"]
MATRICES = ["ND", "zN", "zZ", "nZ", "zN_32"]
shapes4 = st.tuples(*[st.integers(1, 7)] * 2, st.integers(1, 40), st.integers(1, 5)).map(
    lambda t: (t[0], t[2], t[1], t[3]))


def _random(shape, seed=0):
    return np.random.default_rng(seed).uniform(0.5, 1.5, shape)  # never zero: padding stays visible


@pytest.mark.parametrize("name", ACTIVATIONS + WEIGHTS)
@settings(max_examples=examples(25))
@given(shape=shapes4)
def test_layout_round_trips(name, shape):
    layout = L.get(name)
    x = _random(shape)
    packed = layout.pack(x)
    assert packed.shape == layout.physical_shape(shape)
    assert np.array_equal(layout.unpack(packed, shape), x)
    # every logical element appears exactly once; block padding holds zeros
    assert np.count_nonzero(packed) == x.size and np.isclose(packed.sum(), x.sum())


@pytest.mark.parametrize("name", MATRICES)
@settings(max_examples=examples(25))
@given(rows=st.integers(1, 40), cols=st.integers(1, 70))
def test_matrix_layouts_round_trip(name, rows, cols):
    m = _random((rows, cols))
    layout = L.get(name)
    assert np.array_equal(layout.unpack(layout.pack(m), m.shape), m)


def test_fractal_layouts_follow_the_published_index_maps():
    w = _random((40, 20, 3, 2))  # K, C, KH, KW
    frac = L.pack(w, "FRACTAL_Z")  # [(c1*KH + kh)*KW + kw, k1, k0, c0]
    assert frac.shape == (2 * 3 * 2, 3, 16, 16)
    assert frac[(1 * 3 + 2) * 2 + 1, 2, 5, 3] == w[2 * 16 + 5, 16 + 3, 2, 1]
    m = _random((20, 35))
    assert L.pack(m, "zN")[2, 1, 3, 1] == m[16 + 3, 32 + 1]  # [n1, m1, m0, n0]
    assert L.pack(m, "nZ")[1, 2, 2, 3] == m[16 + 3, 32 + 2]  # [m1, n1, n0, m0]
    x = _random((2, 21, 4, 3))
    assert L.pack(x, "NC1HWC0")[1, 1, 2, 0, 4] == x[1, 20, 2, 0]


@pytest.mark.parametrize("src, dst", list(itertools.permutations(ACTIVATIONS[:7], 2)) +
                         list(itertools.permutations(WEIGHTS[2:7], 2)))
def test_conversion_equals_unpack_then_pack(src, dst):
    kind_shape = (3, 21, 5, 4) if src in ACTIVATIONS else (20, 17, 3, 2)
    x = _random(kind_shape, seed=1)
    packed = L.pack(x, src)
    convert = L.conversion(L.get(src), L.get(dst), kind_shape)
    assert np.array_equal(convert.apply(packed), L.pack(L.unpack(packed, src, kind_shape), dst))
    assert len(convert.parts) == 2  # one map for the pair, not two passes


def test_same_layout_conversion_simplifies_to_identity():
    assert L.conversion(L.get("NHWC"), L.get("NHWC"), (2, 5, 3, 3)).is_identity()
    blocked = L.conversion(L.get("NCHW16c"), L.get("NCHW16c"), (2, 32, 3, 3))
    assert blocked.is_identity()


@settings(max_examples=examples(200))
@given(shape=shapes4, stride=st.integers(1, 3), pads=st.tuples(*[st.integers(-1, 3)] * 4),
       layout=st.sampled_from(ACTIVATIONS[:7]), flip_axes=st.sampled_from([(), (2,), (2, 3)]),
       perm=st.permutations(range(4)))
def test_composed_chain_equals_applying_each_map(shape, stride, pads, layout, flip_axes, perm):
    """unpack -> zero insert -> pad/crop -> flip -> transpose as one map == five gathers in turn."""
    maps = [L.get(layout).unpack_map(shape)]
    maps.append(L.zero_insert(maps[-1].out_shape, {2: stride, 3: stride}))
    out = maps[-1].out_shape
    pad_pairs = [(0, 0), (0, 0), (pads[0], pads[1]), (pads[2], pads[3])]
    if any(e + f + b < 1 for e, (f, b) in zip(out, pad_pairs)):
        return
    maps.append(L.pad(out, pad_pairs))
    maps.append(L.flip(maps[-1].out_shape, flip_axes))
    maps.append(L.transpose(maps[-1].out_shape, perm))
    composed = maps[0]
    for m in maps[1:]:
        composed = composed.then(m)
    x = L.pack(_random(shape), layout)
    step_by_step = x
    for m in maps:
        step_by_step = m.apply(step_by_step)
    assert np.array_equal(composed.apply(x), step_by_step)
    assert len(composed.parts) == 5


def test_strides_expose_dma_descriptors():
    m = L.conversion(L.get("NCHW"), L.get("NHWC"), (2, 8, 5, 3))
    assert m.strides() == (8 * 5 * 3, 3, 1, 5 * 3)  # NHWC axes n, h, w, c step these NCHW offsets
    blocked = L.get("NCHW16c").pack_map((1, 32, 4, 4))
    assert blocked.strides()[4] == 16  # c0 walks channels: 16 elements apart in NCHW


def test_unknown_layout_and_wrong_kind_are_clear_errors():
    with pytest.raises(ValueError, match="unknown layout 'NCWH'"):
        L.get("NCWH")
    with pytest.raises(ValueError, match="cannot convert a activation layout"):
        L.conversion(L.get("NCHW"), L.get("OIHW"), (1, 2, 3, 4))
    with pytest.raises(ValueError, match="logical shape"):
        L.get("NCHW").pack_map((1, 2, 3))
    with pytest.raises(ValueError, match="expects an array of shape"):
        L.get("NHWC").pack_map((1, 2, 3, 4)).apply(np.zeros((1, 2, 3, 5)))
    with pytest.raises(TypeError, match="layout must be"):
        L.get(16)
