"""The one entry point: (problem, direction, target) -> a runnable, verified-by-construction Kernel."""

from __future__ import annotations

from .kernel import Kernel
from .problem import ConvProblem, Direction


def compile(problem: ConvProblem, direction: Direction | str = Direction.fwd, target: str = "host",
            algorithm: str = "auto", layout: str = "NCHW", **options) -> Kernel:
    """Compile one direction of `problem` for `target`.

    target "host": generated C for this CPU (options: `config` = {"algorithm", "stages"} to pin
    every choice, `sanitize=True` for an ASan/UBSan build, `tune=N` to measure up to N candidates).
    `layout` is the caller's activation layout (NCHW, NHWC, NCHW16c); weights are OIHW.

    Other targets — a shipped accelerator ("gemmini", "vta", "davinci", "davinci_a2") or the path of
    a target TOML file — give a kernel that runs on the simulator (options: `vendor=True` for the
    vendor's algorithm and tiling, `tile`, `search`); its operands are logical NCHW / OIHW arrays
    of the target's input dtype.
    """
    if not isinstance(problem, ConvProblem):
        raise TypeError(f"problem must be a ConvProblem, got {type(problem).__name__}")
    direction = Direction.of(direction)
    if not isinstance(algorithm, str):
        raise TypeError(f"algorithm must be a str, got {type(algorithm).__name__}")
    if target == "host":
        from .backends.c import compile_host

        return compile_host(problem, direction, algorithm, layout, **options)
    if layout != "NCHW":
        raise ValueError(f"layout must be 'NCHW' for accelerator targets (the kernel moves data into the "
                         f"target's own layouts itself), got {layout!r}")
    from .backends.accel import compile_accel

    return compile_accel(problem, direction, target, None if algorithm == "auto" else algorithm, **options)
