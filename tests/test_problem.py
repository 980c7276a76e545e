"""ConvProblem: derived sizes, MAC counts, descriptors (ours and benchdnn), constructors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from strategies import examples, problems

from convforge import ConvProblem, Direction


@settings(max_examples=examples(300))
@given(p=problems())
def test_descriptor_round_trips(p):
    assert ConvProblem.parse(str(p)) == p
    named = ConvProblem(p.n, p.c, p.k, p.h, p.w, p.r, p.s, p.stride, p.padding, p.dilation, p.groups,
                        ("f16", "f16", "f32", "f32"), name="layer:x*2")
    again = ConvProblem.parse(str(named))
    assert again == named and again.name == "layer:x*2"


@settings(max_examples=examples(100))
@given(p=problems())
def test_output_size_and_useful_macs_match_brute_force(p):
    x = torch.zeros(1, 1, p.h, p.w, dtype=torch.float64)
    pt, pb, pl, pr = p.padding
    y = torch.nn.functional.conv2d(torch.nn.functional.pad(x, (pl, pr, pt, pb)),
                                   torch.zeros(1, 1, p.r, p.s, dtype=torch.float64),
                                   stride=p.stride, dilation=p.dilation)
    assert y.shape[2:] == (p.p, p.q)
    inside = 0  # count (output, tap) pairs that read a real input element
    for oh in range(p.p):
        for ow in range(p.q):
            for r in range(p.r):
                for s in range(p.s):
                    ih = oh * p.stride[0] + r * p.dilation[0] - pt
                    iw = ow * p.stride[1] + s * p.dilation[1] - pl
                    inside += 0 <= ih < p.h and 0 <= iw < p.w
    assert p.useful_macs == inside * p.n * p.k * (p.c // p.groups)
    assert p.macs == p.p * p.q * p.r * p.s * p.n * p.k * (p.c // p.groups)


def test_benchdnn_descriptors_follow_benchdnn_defaults():
    p = ConvProblem.parse('mb50ic64ih56oc64oh56kh3ph1n"resnet_50:res2a_branch2b*3"')
    assert (p.n, p.c, p.k, p.h, p.w, p.r, p.s) == (50, 64, 64, 56, 56, 3, 3)
    assert p.padding == (1, 1, 1, 1) and p.stride == (1, 1) and p.dilation == (1, 1)
    assert p.name == "resnet_50:res2a_branch2b*3"
    stem = ConvProblem.parse('g1mb50ic3ih224iw224oc64oh112ow112kh7kw7sh2sw2ph3pw3n"resnet_50:conv1"')
    assert (stem.p, stem.q) == (112, 112) and stem.padding[0] == 3
    # benchdnn: dilation 0 is dense; ours = benchdnn + 1
    assert ConvProblem.parse('mb20ic4ih8oc6oh3kh3sh2ph1dh1n"dilated_conv:1"').dilation == (2, 2)
    assert ConvProblem.parse("ic3ih9oc4kh3").n == 2  # benchdnn's default minibatch
    speech = ConvProblem.parse("mb4_ic1ih161iw700_oc32_kh5kw20_sh2sw2_ph0pw0")
    assert (speech.h, speech.w, speech.r, speech.s, speech.p, speech.q) == (161, 700, 5, 20, 79, 341)
    # 1x1 stride 2 on an even size: benchdnn implies a bottom pad of -1; the output is the same
    down = ConvProblem.parse("mb1ic256ih56oc512oh28kh1sh2ph0")
    assert (down.p, down.q) == (28, 28) and min(down.padding) == 0


def test_transposed_conv_is_bwd_data_of_its_forward_problem():
    from convforge import reference

    rng = np.random.default_rng(0)
    for args in [(2, 5, 4, 6, 7, 3, 2, 1, 1, 1), (1, 3, 6, 5, 5, (3, 2), (3, 2), (0, 1), (2, 1), (2, 1)),
                 (3, 4, 2, 4, 6, 4, 2, 1, 0, 1)]:
        n, cin, cout, h, w, kernel, stride, padding, output_padding, dilation = args
        p = ConvProblem.transposed(n, cin, cout, h, w, kernel, stride, padding, output_padding, dilation)
        x = rng.uniform(-1, 1, (n, cin, h, w))
        weight = rng.uniform(-1, 1, (cin, cout) + p.w_shape[2:])
        want = torch.nn.functional.conv_transpose2d(
            torch.tensor(x), torch.tensor(weight), stride=stride, padding=padding,
            output_padding=output_padding, dilation=dilation).numpy()
        got = reference.bwd_data(p, x, weight)
        assert got.shape == want.shape
        assert np.max(np.abs(got - want)) < 1e-10 * np.max(np.abs(want))


def test_dilated_constructor_and_costs():
    p = ConvProblem.dilated(1, 256, 256, 28, 28, 3, 3, dilation=2, padding=2)
    assert (p.p, p.q) == (28, 28) and p.kernel_extent == (5, 5)
    assert p.flops == 2 * p.macs == 2 * 256 * 256 * 9 * 28 * 28
    assert p.min_bytes(Direction.fwd) == 4 * (2 * 256 * 28 * 28 + 256 * 256 * 9)
    assert p.operand_shapes("bwd_weight") == ((p.x_shape, p.y_shape), p.w_shape)


@pytest.mark.parametrize("make, parameter", [
    (lambda: ConvProblem(0, 3, 4, 8, 8, 3, 3), "n"),
    (lambda: ConvProblem(1, -3, 4, 8, 8, 3, 3), "c"),
    (lambda: ConvProblem(1, 3, 0, 8, 8, 3, 3), "k"),
    (lambda: ConvProblem(1, 3, 4, 0, 8, 3, 3), "h"),
    (lambda: ConvProblem(1, 3, 4, 8, 8, 3, 0), "s"),
    (lambda: ConvProblem(1, 3, 4, 8, 8, 3, 3, stride=0), "stride"),
    (lambda: ConvProblem(1, 3, 4, 8, 8, 3, 3, dilation=(1, 0)), "dilation[1]"),
    (lambda: ConvProblem(1, 3, 4, 8, 8, 3, 3, padding=(1, -1, 0, 0)), "padding[1]"),
    (lambda: ConvProblem(1, 3, 4, 8, 8, 3, 3, padding=(1, 1, 1)), "padding"),
    (lambda: ConvProblem(1, 3, 4, 8, 8, 3, 3, groups=2), "groups"),
    (lambda: ConvProblem(1, 4, 3, 8, 8, 3, 3, groups=2), "groups"),
    (lambda: ConvProblem(1, 3, 4, 4, 8, 7, 3, padding=1), "r=7"),
    (lambda: ConvProblem(1, 3, 4, 8, 4, 3, 3, dilation=3), "s=3"),
    (lambda: ConvProblem(1, 3, 4, 8, 8, 3, 3, dtypes=("f32", "f33", "f32", "f32")), "dtypes[weight]"),
    (lambda: ConvProblem.parse("n1c3h8k4"), "'r'"),
    (lambda: ConvProblem.parse("n1c3h8k4r3zz9"), "zz9"),
    (lambda: ConvProblem.parse("n1c3n2h8k4r3"), "'n'"),
    (lambda: ConvProblem.parse("mb2ic3oc4kh3"), "'ih'"),
    (lambda: ConvProblem.parse("mb2ic3ih9oc4kh3xx7"), "xx7"),
    (lambda: ConvProblem.parse("mb2ic3ih16oc4oh4kh1sh2"), "oh=4"),
    (lambda: ConvProblem.parse("mb2ic3id4ih8oc4kh3kd3"), "3-D"),
    (lambda: ConvProblem.transposed(1, 4, 4, 5, 5, 3, stride=2, output_padding=2), "output_padding"),
    (lambda: Direction.of("backward"), "direction"),
])
def test_bad_problems_raise_naming_the_parameter(make, parameter):
    with pytest.raises(ValueError, match=__import__("re").escape(parameter)):
        make()


@pytest.mark.parametrize("make, parameter", [
    (lambda: ConvProblem(1.0, 3, 4, 8, 8, 3, 3), "n"),
    (lambda: ConvProblem(True, 3, 4, 8, 8, 3, 3), "n"),
    (lambda: ConvProblem(1, 3, 4, "8", 8, 3, 3), "h"),
    (lambda: ConvProblem.parse(42), "descriptor"),
])
def test_wrong_types_raise_type_error(make, parameter):
    with pytest.raises(TypeError, match=parameter):
        make()
