"""The NumPy executor: runs any plan in float64, stage by stage, exactly as the stages say.

It favours clarity over speed: the semantic model the generated kernels must match. Scratch
and output buffers start poisoned with NaN, so a stage that forgets to write an element shows up.
"""

from __future__ import annotations

import numpy as np

from ..layouts import pad, zero_insert
from ..reference import check_operand
from .plan import Plan
from .stages import ConvCore, CoreGeometry, Gemm, ScatterAdd, Transform, ZeroFill


def conv_core(g: CoreGeometry, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The forward-form core on logical arrays (see CoreGeometry for the formula)."""
    (sh, sw), (dh, dw), (oh, ow) = g.stride, g.dilation, g.offset
    rows, cols = (g.p - 1) * sh + (g.r - 1) * dh + 1, (g.q - 1) * sw + (g.s - 1) * dw + 1
    dilated = zero_insert(x.shape, {2: g.input_dilation[0], 3: g.input_dilation[1]})
    zh, zw = dilated.out_shape[2:]
    window = pad(dilated.out_shape, [(0, 0), (0, 0), (oh, rows - oh - zh), (ow, cols - ow - zw)])
    xv = dilated.then(window).apply(x)
    xg = xv.reshape(g.n, g.groups, g.c // g.groups, rows, cols)
    wg = w.reshape(g.groups, g.k // g.groups, g.c // g.groups, g.r, g.s)
    y = np.zeros((g.n, g.groups, g.k // g.groups, g.p, g.q))
    for r in range(g.r):
        for s in range(g.s):
            tap = xg[:, :, :, r * dh:r * dh + (g.p - 1) * sh + 1:sh, s * dw:s * dw + (g.q - 1) * sw + 1:sw]
            y += np.einsum("ngchw,gkc->ngkhw", tap, wg[:, :, :, r, s])
    return y.reshape(g.y_shape)


def execute(plan: Plan, operands) -> np.ndarray:
    if len(operands) != 2:
        raise TypeError(f"plan for {plan.direction} takes 2 operands ({', '.join(plan.inputs)}), "
                        f"got {len(operands)}")
    env: dict[str, np.ndarray] = {}
    for name, array in zip(plan.inputs, operands):
        env[name] = check_operand(name, array, plan.buffer(name).shape)
    for b in plan.buffers:
        if b.role != "input":
            env[b.name] = np.full(b.shape, np.nan)
    for stage in plan.stages:
        if isinstance(stage, Transform):
            env[stage.dst][...] = stage.index_map.apply(env[stage.src])
        elif isinstance(stage, ZeroFill):
            stage.index_map.scatter(np.zeros(stage.index_map.out_shape), env[stage.dst])
        elif isinstance(stage, ScatterAdd):
            env[stage.dst][...] = 0.0
            stage.index_map.scatter(env[stage.src], env[stage.dst], accumulate=True)
        elif isinstance(stage, Gemm):
            c = np.matmul(stage.a.view.apply(env[stage.a.buffer]), stage.b.view.apply(env[stage.b.buffer]))
            stage.c.view.scatter(c, env[stage.c.buffer])
        elif isinstance(stage, ConvCore):
            y = conv_core(stage.geometry, stage.x.view.apply(env[stage.x.buffer]),
                          stage.w.view.apply(env[stage.w.buffer]))
            stage.y.view.scatter(y, env[stage.y.buffer])
        else:  # pragma: no cover - the stage kinds are closed
            raise TypeError(f"unknown stage {stage!r}")
    return env[plan.output]
