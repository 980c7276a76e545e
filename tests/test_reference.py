"""The float64 references agree with PyTorch's convolution and its autograd-facing gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import examples, problems

import convforge as cf


def torch_result(p: cf.ConvProblem, direction: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """PyTorch's answer; asymmetric padding is applied with F.pad (conv2d pads symmetrically)."""
    pt, pb, pl, pr = p.padding
    kw = dict(stride=p.stride, dilation=p.dilation, groups=p.groups)
    padded = (p.n, p.c, p.h + pt + pb, p.w + pl + pr)
    if direction == "fwd":
        x = torch.nn.functional.pad(torch.tensor(a), (pl, pr, pt, pb))
        return torch.nn.functional.conv2d(x, torch.tensor(b), **kw).numpy()
    if direction == "bwd_data":
        dx = torch.nn.grad.conv2d_input(padded, torch.tensor(b), torch.tensor(a), **kw).numpy()
        return dx[:, :, pt:pt + p.h, pl:pl + p.w]
    x = torch.nn.functional.pad(torch.tensor(a), (pl, pr, pt, pb))
    return torch.nn.grad.conv2d_weight(x, p.w_shape, torch.tensor(b), **kw).numpy()


def assert_agrees(p: cf.ConvProblem, direction: str, seed: int = 0) -> None:
    operands = cf.reference.random_operands(p, direction, np.random.default_rng(seed))
    ours = cf.reference.compute(p, direction, *operands)
    theirs = torch_result(p, direction, *operands)
    assert ours.shape == theirs.shape
    assert np.max(np.abs(ours - theirs)) <= 1e-10 * max(np.max(np.abs(theirs)), 1e-30), (str(p), direction)


@pytest.mark.parametrize("direction", ["fwd", "bwd_data", "bwd_weight"])
@settings(max_examples=examples(50))
@given(p=problems(), seed=st.integers(0, 1000))
def test_reference_agrees_with_torch_on_random_problems(direction, p, seed):
    assert_agrees(p, direction, seed)


@pytest.mark.parametrize("direction", ["fwd", "bwd_data", "bwd_weight"])
def test_reference_agrees_with_torch_on_resnet18(direction):
    from convforge.suites import load

    layers = load("resnet18")
    assert len(layers) == 12
    for p in layers:
        assert_agrees(p, direction)


@pytest.mark.parametrize("stride, padding, output_padding, dilation, groups", [
    (2, 1, 1, 1, 1), (3, 0, 2, 1, 1), ((2, 3), (1, 0), (1, 2), (1, 2), 2), (2, 2, 1, 2, 1)])
def test_transposed_conv_with_output_padding(stride, padding, output_padding, dilation, groups):
    rng = np.random.default_rng(3)
    n, cin, cout, h, w = 2, 4, 6, 5, 7
    p = cf.ConvProblem.transposed(n, cin, cout, h, w, 3, stride, padding, output_padding, dilation, groups)
    x = rng.uniform(-1, 1, (n, cin, h, w))
    weight = rng.uniform(-1, 1, (cin, cout // groups, 3, 3))  # ConvTranspose2d weight: [Cin, Cout/g, R, S]
    want = torch.nn.functional.conv_transpose2d(torch.tensor(x), torch.tensor(weight), stride=stride,
                                                padding=padding, output_padding=output_padding,
                                                dilation=dilation, groups=groups).numpy()
    got = cf.reference.bwd_data(p, x, weight)
    assert got.shape == want.shape
    assert np.max(np.abs(got - want)) <= 1e-10 * np.max(np.abs(want))
    for algorithm in cf.algorithms("bwd_data"):
        planned = cf.plan(p, "bwd_data", algorithm).run(x, weight)
        assert np.max(np.abs(planned - want)) <= 1e-10 * np.max(np.abs(want)), algorithm
