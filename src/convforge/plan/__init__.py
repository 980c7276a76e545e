"""Plans: (problem, direction, algorithm) -> stages in forward form, with their costs."""

from __future__ import annotations

from ..problem import ConvProblem, Direction
from .algorithms import ALGORITHMS, DEFAULT_LAYOUTS, ROLES
from .plan import Plan
from .stages import Buffer, ConvCore, CoreGeometry, Gemm, Lattice, Operand, ScatterAdd, Stage, Transform, ZeroFill


def plan(problem: ConvProblem, direction: Direction | str = Direction.fwd, algorithm: str = "direct",
         layouts: dict[str, str] | None = None) -> Plan:
    """Rewrite one direction of `problem` with `algorithm`.

    `layouts` names the caller's layout per tensor role: "x" (activations), "w" (weights),
    "y" (output activations); defaults NCHW / OIHW / NCHW.
    """
    from .algorithms import build

    if not isinstance(problem, ConvProblem):
        raise TypeError(f"problem must be a ConvProblem, got {type(problem).__name__}")
    d = Direction.of(direction)
    chosen = dict(DEFAULT_LAYOUTS)
    for role, name in (layouts or {}).items():
        if role not in chosen:
            raise ValueError(f"layouts: unknown tensor role {role!r}; use 'x', 'w' or 'y'")
        chosen[role] = name
    return build(problem, d, algorithm, chosen)


def algorithms(direction: Direction | str) -> list[str]:
    return list(ALGORITHMS[Direction.of(direction)])


__all__ = ["ALGORITHMS", "Buffer", "ConvCore", "CoreGeometry", "Gemm", "Lattice", "Operand", "Plan", "ROLES",
           "ScatterAdd", "Stage", "Transform", "ZeroFill", "algorithms", "plan"]
