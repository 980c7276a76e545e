"""Plan stages normalized for accelerator lowering.

Every arithmetic stage becomes a `CoreJob`: a forward-form conv with one group, each operand a DRAM
tensor seen through a composed index map. A `Gemm` is a 1x1 conv (c = reduction, k = rows, q =
columns); groups split into independent cores by composing a channel-offset map onto the views.
Data-movement stages (Transform, ZeroFill, ScatterAdd) pass through unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...layouts import IndexMap
from ...plan import Plan
from ...plan.stages import ConvCore, CoreGeometry, Gemm, Operand


@dataclass(frozen=True)
class CoreJob:
    geometry: CoreGeometry  # groups == 1, input_dilation == 1
    x: Operand
    w: Operand
    y: Operand
    trim: bool


def _group_views(core: ConvCore) -> list[CoreJob]:
    g = core.geometry
    if g.input_dilation != (1, 1):
        raise ValueError("algorithm needs a conv core with input dilation (zero insertion on chip); "
                         "the accel backend lowers fwd_reuse / phase_split / gemm_col2im instead")
    if g.groups == 1:
        return [CoreJob(g, core.x, core.w, core.y, core.trim)]
    cg, kg = g.c // g.groups, g.k // g.groups
    one = CoreGeometry(g.n, cg, kg, g.h, g.w, g.r, g.s, g.p, g.q, g.stride, g.dilation, g.offset, (1, 1), 1)
    jobs = []
    for gi in range(g.groups):
        x = IndexMap.build(one.x_shape, g.x_shape, lambda n, c, h, w, gi=gi: (n, gi * cg + c, h, w), f"group {gi}")
        w = IndexMap.build(one.w_shape, g.w_shape, lambda k, c, r, s, gi=gi: (gi * kg + k, c, r, s), f"group {gi}")
        y = IndexMap.build(one.y_shape, g.y_shape, lambda n, k, p, q, gi=gi: (n, gi * kg + k, p, q), f"group {gi}")
        jobs.append(CoreJob(one, Operand(core.x.buffer, core.x.view.then(x)),
                            Operand(core.w.buffer, core.w.view.then(w)),
                            Operand(core.y.buffer, core.y.view.then(y)), core.trim))
    return jobs


def _gemm_jobs(stage: Gemm) -> list[CoreJob]:
    """c[g, m, j] = sum_k a[g, m, k] b[g, k, j] as a 1x1 conv: x[0, k, 0, j], w[m, k, 0, 0], y[0, m, 0, j]."""
    one = CoreGeometry(1, stage.k, stage.m, 1, stage.n, 1, 1, 1, stage.n)
    gshape_a, gshape_b, gshape_c = (stage.groups, stage.m, stage.k), (stage.groups, stage.k, stage.n), \
        (stage.groups, stage.m, stage.n)
    jobs = []
    for gi in range(stage.groups):
        x = IndexMap.build(one.x_shape, gshape_b, lambda n, c, h, w, gi=gi: (gi, c, w), "gemm B as x")
        w = IndexMap.build(one.w_shape, gshape_a, lambda k, c, r, s, gi=gi: (gi, k, c), "gemm A as w")
        y = IndexMap.build(one.y_shape, gshape_c, lambda n, k, p, q, gi=gi: (gi, k, q), "gemm C as y")
        jobs.append(CoreJob(one, Operand(stage.b.buffer, stage.b.view.then(x)),
                            Operand(stage.a.buffer, stage.a.view.then(w)),
                            Operand(stage.c.buffer, stage.c.view.then(y)), False))
    return jobs


def downsampled(job: CoreJob) -> CoreJob:
    """A strided 1x1 core reads only every stride-th pixel: make the stride part of the input view (a
    strided DMA read, Gemmini's `downsample`) and run a stride-1 core on the p x q pixels it needs."""
    g = job.geometry
    if (g.r, g.s) != (1, 1) or g.stride == (1, 1):
        return job
    (sh, sw), (oh, ow) = g.stride, g.offset
    one = CoreGeometry(g.n, g.c, g.k, g.p, g.q, 1, 1, g.p, g.q)
    pick = IndexMap.build(one.x_shape, g.x_shape, lambda n, c, i, j: (n, c, i * sh - oh, j * sw - ow),
                          f"downsample {g.stride}")
    return CoreJob(one, Operand(job.x.buffer, job.x.view.then(pick)), job.w, job.y, job.trim)


def normalize(plan: Plan) -> list:
    """The plan's stages with every ConvCore / Gemm replaced by its (downsampled) CoreJobs."""
    out: list = []
    for stage in plan.stages:
        if isinstance(stage, ConvCore):
            out.extend(downsampled(j) for j in _group_views(stage))
        elif isinstance(stage, Gemm):
            out.extend(_gemm_jobs(stage))
        else:
            out.append(stage)
    return out
