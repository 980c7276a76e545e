"""Shared checks for the accelerator tests: random operands in the target's dtype, exact or 1e-5 checks."""

from __future__ import annotations

import dataclasses

import numpy as np

import convforge as cf
from convforge.backends.accel import compile_accel

DTYPES = {"gemmini": ("i8", "i8", "i32", "i32"), "vta": ("i8", "i8", "i32", "i32"),
          "davinci": ("f16", "f16", "f32", "f32")}


def typed(p: cf.ConvProblem, target: str) -> cf.ConvProblem:
    return dataclasses.replace(p, dtypes=DTYPES[target])


def operands(p: cf.ConvProblem, direction: str, target: str, seed: int):
    rng = np.random.default_rng(seed)
    shapes, _ = p.operand_shapes(direction)
    if DTYPES[target][0] == "i8":
        ops = [rng.integers(-128, 128, size=s).astype(np.int8) for s in shapes]
        for op in ops:  # never all zero
            op.flat[0] = 7
        return ops
    return [rng.standard_normal(s).astype(np.float16) for s in shapes]


def check_kernel(kernel, p: cf.ConvProblem, direction: str, target: str, seed: int) -> None:
    ops = operands(p, direction, target, seed)
    got = kernel(*ops)
    want = cf.reference.compute(p, direction, *ops)
    assert got.shape == want.shape
    if DTYPES[target][0] == "i8":
        assert got.dtype == np.int32
        assert np.array_equal(got.astype(np.int64), want.astype(np.int64)), (str(p), direction, target)
    else:
        assert got.dtype == np.float32
        err = np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-30)
        assert err <= 1e-5, (str(p), direction, target, err)
    assert kernel.stats.executed_macs >= 0 and kernel.stats.cycles > 0


def compile_and_check(p, direction, target, seed, **options):
    p = typed(p, target)
    kernel = compile_accel(p, direction, target, **options)
    check_kernel(kernel, p, direction, target, seed)
    return kernel
