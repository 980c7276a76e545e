"""Every distinct ResNet-50 conv layer (v1 and v1.5, the shipped suite), batch 1 and 3, all directions."""

from __future__ import annotations

import numpy as np
import pytest

import convforge as cf
from convforge.suites import load

RESNET50 = load("resnet50")


pytestmark = pytest.mark.usefixtures("private_kernel_cache")


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("layer", RESNET50, ids=lambda p: p.name)
def test_resnet50_layer(layer, batch):
    p = layer.with_batch(batch)
    rng = np.random.default_rng(batch)
    for direction in ("fwd", "bwd_data", "bwd_weight"):
        kernel = cf.compile(p, direction)
        ops = [o.astype(np.float32) for o in cf.reference.random_operands(p, direction, rng)]
        out = np.full(kernel.out_shape, np.nan, np.float32)
        kernel(*ops, out=out)
        ref = cf.reference.compute(p, direction, *ops)
        err = np.abs(out - ref).max() / np.abs(ref).max()
        assert err < 1e-4, f"{direction} relative error {err:.2e} on {p}"
