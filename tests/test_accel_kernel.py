"""AccelKernel is a convforge Kernel: the same attributes and call contract as the host kernel."""

from __future__ import annotations

import numpy as np
import pytest
from accel_helpers import operands, typed

import convforge as cf
from convforge.backends.accel import compile_accel
from convforge.kernel import Kernel


@pytest.mark.parametrize("target", ["gemmini", "vta", "davinci"])
def test_kernel_contract(target):
    p = typed(cf.ConvProblem(2, 5, 7, 6, 5, 3, 2, stride=(2, 1), padding=(1, 0, 1, 1)), target)
    kernel = compile_accel(p, "bwd_weight", target, algorithm="phase_split")
    assert isinstance(kernel, Kernel)
    assert kernel.target == target and kernel.accelerator.name == target
    assert kernel.macs == p.useful_macs and kernel.out_shape == p.w_shape
    assert kernel.config["algorithm"] == "phase_split" and kernel.provenance
    assert kernel.source.splitlines()[0].lstrip().startswith("0  [")  # the instruction listing
    assert kernel.stats["cycles"] == kernel.stats.cycles > 0 and set(kernel.stats) >= {"busy", "dram_bytes"}
    x, dy = operands(p, "bwd_weight", target, 5)
    want = kernel(x, dy)
    out = np.full(kernel.out_shape, -1, dtype=want.dtype)
    assert kernel(x, dy, out=out) is out and np.array_equal(out, want)
    assert np.allclose(want, cf.reference.bwd_weight(p, x, dy), rtol=1e-5, atol=1e-5 * np.abs(want).max())
    assert f"target={target}" in repr(kernel)


def test_call_errors_name_the_argument():
    p = typed(cf.ConvProblem(1, 4, 4, 5, 5, 3, 3), "gemmini")
    kernel = compile_accel(p, "fwd", "gemmini", algorithm="direct")
    x, w = operands(p, "fwd", "gemmini", 0)
    with pytest.raises(TypeError, match="out must have dtype int32"):
        kernel(x, w, out=np.zeros(kernel.out_shape, np.float32))
    with pytest.raises(ValueError, match=r"out must have shape \(1, 4, 3, 3\)"):
        kernel(x, w, out=np.zeros((1, 4, 3, 4), np.int32))
    with pytest.raises(TypeError, match="operand 'w' must be a numpy.ndarray"):
        kernel(x, w.tolist())


def test_vta_with_a_small_uop_memory_uses_row_form_gemms(tmp_path):
    """A VTA whose uop memory holds fewer micro-ops than an acc half: GEMMs fall back to one per
    filter row (micro-ops over (b, kb, q)), still exact."""
    from convforge.backends.accel import Tile
    from convforge.targets import load

    text = open(load("vta").source).read()
    assert "[buffers.uop]\nbytes = 32768" in text
    text = text.replace("[buffers.uop]\nbytes = 32768", "[buffers.uop]\nbytes = 256")  # 64 micro-ops
    path = tmp_path / "vta_small_uop.toml"
    path.write_text(text)
    p = typed(cf.ConvProblem(1, 5, 20, 9, 9, 3, 3, padding=1), "vta")
    kernel = compile_accel(p, "fwd", str(path), algorithm="direct", tile=Tile(1, 4, 9, 20, 5, 3, 3))
    gemms = [ins for ins in kernel.program if ins.opcode == "GEMM"]
    assert gemms and all(g.uop_end - g.uop_bgn <= 2 * 9 for g in gemms)  # (b, kb, q) micro-ops
    x, w = operands(p, "fwd", "vta", 3)
    assert np.array_equal(kernel(x, w).astype(np.int64), cf.reference.fwd(p, x, w).astype(np.int64))
