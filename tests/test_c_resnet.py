"""Every distinct ResNet-50 conv layer (v1 and the v1.5 strided 3x3s), batch 1 and 3, all directions.

The layer list is kept here (papers.md section 7.2) until `convforge.suites` lands on this branch.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import convforge as cf

# (H=W in, C in, C out, R=S, stride, pad)
RESNET50 = [
    (224, 3, 64, 7, 2, 3), (56, 64, 64, 1, 1, 0), (56, 64, 64, 3, 1, 1), (56, 64, 256, 1, 1, 0),
    (56, 256, 64, 1, 1, 0), (56, 256, 128, 1, 2, 0), (28, 128, 128, 3, 1, 1), (28, 128, 512, 1, 1, 0),
    (56, 256, 512, 1, 2, 0), (28, 512, 128, 1, 1, 0), (28, 512, 256, 1, 2, 0), (14, 256, 256, 3, 1, 1),
    (14, 256, 1024, 1, 1, 0), (28, 512, 1024, 1, 2, 0), (14, 1024, 256, 1, 1, 0), (14, 1024, 512, 1, 2, 0),
    (7, 512, 512, 3, 1, 1), (7, 512, 2048, 1, 1, 0), (14, 1024, 2048, 1, 2, 0), (7, 2048, 512, 1, 1, 0),
    # v1.5: the stride moves to the 3x3
    (56, 256, 128, 1, 1, 0), (56, 128, 128, 3, 2, 1), (28, 512, 256, 1, 1, 0), (28, 256, 256, 3, 2, 1),
    (14, 1024, 512, 1, 1, 0), (14, 512, 512, 3, 2, 1),
]


@pytest.fixture(scope="module", autouse=True)
def cache_folder(tmp_path_factory):
    old = os.environ.get("CONVFORGE_CACHE")
    os.environ["CONVFORGE_CACHE"] = str(tmp_path_factory.mktemp("cf-cache"))
    yield
    if old is None:
        del os.environ["CONVFORGE_CACHE"]
    else:
        os.environ["CONVFORGE_CACHE"] = old


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("layer", RESNET50, ids=lambda t: "h{}c{}k{}r{}s{}p{}".format(*t))
def test_resnet50_layer(layer, batch):
    h, c, k, r, stride, pad = layer
    p = cf.ConvProblem(batch, c, k, h, h, r, r, stride=stride, padding=pad)
    rng = np.random.default_rng(batch)
    for direction in ("fwd", "bwd_data", "bwd_weight"):
        kernel = cf.compile(p, direction)
        ops = [o.astype(np.float32) for o in cf.reference.random_operands(p, direction, rng)]
        out = np.full(kernel.out_shape, np.nan, np.float32)
        kernel(*ops, out=out)
        ref = cf.reference.compute(p, direction, *ops)
        err = np.abs(out - ref).max() / np.abs(ref).max()
        assert err < 1e-4, f"{direction} relative error {err:.2e} on {p}"
