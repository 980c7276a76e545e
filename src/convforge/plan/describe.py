"""Human-readable plan listings (what `convforge plan` prints)."""

from __future__ import annotations

from .plan import Plan
from .stages import ConvCore, Gemm, ScatterAdd, Transform, ZeroFill


def _operand(o) -> str:
    return o.buffer if o.view.is_identity() else f"{o.buffer} via {' ∘ '.join(o.view.parts)}"


def _stage_line(stage) -> tuple[str, str, str]:
    if isinstance(stage, ConvCore):
        g = stage.geometry
        text = (f"conv core  x{list(g.x_shape)} * w{list(g.w_shape)} -> y{list(g.y_shape)}  "
                f"stride {g.stride} dil {g.dilation} offset {g.offset}"
                + (f" input_dil {g.input_dilation}" if g.input_dilation != (1, 1) else "")
                + (f" groups {g.groups}" if g.groups > 1 else "") + ("  trimmed" if stage.trim else ""))
        reads = ", ".join(_operand(o) for o in (stage.x, stage.w))
        return "conv", f"{text}\n{'':13}reads {reads}; writes {_operand(stage.y)}", f"{stage.executed_macs:,}"
    if isinstance(stage, Gemm):
        return "gemm", (f"gemm  [{stage.groups}] {stage.m}x{stage.k} @ {stage.k}x{stage.n}  "
                        f"{stage.a.buffer}, {stage.b.buffer} -> {stage.c.buffer}"), f"{stage.executed_macs:,}"
    if isinstance(stage, Transform):
        return "transform", (f"{stage.src} -> {stage.dst}{list(stage.index_map.out_shape)}  one gather of "
                             f"{' ∘ '.join(stage.index_map.parts)}"), "0"
    if isinstance(stage, ScatterAdd):
        return "scatter_add", f"{stage.src} -> {stage.dst}  col2im ({' ∘ '.join(stage.index_map.parts)})", "0"
    if isinstance(stage, ZeroFill):
        return "zero_fill", f"{stage.dst}  {' ∘ '.join(stage.index_map.parts)}", "0"
    raise TypeError(stage)


def describe(plan: Plan) -> str:
    lines = [f"{plan.direction} of {plan.problem}  algorithm {plan.algorithm}"]
    for i, stage in enumerate(plan.stages, 1):
        kind, text, macs = _stage_line(stage)
        lines.append(f"stage {i:<2} {kind:<11} {text}   MACs {macs}")
    lines.append(f"executed MACs {plan.executed_macs:,}  useful MACs {plan.useful_macs:,}  "
                 f"(executed/useful {plan.waste:.3f})")
    lines.append(f"transform bytes {plan.transform_bytes:,}  scratch bytes {plan.scratch_bytes:,}")
    return "\n".join(lines)
