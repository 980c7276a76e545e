"""The torch (oneDNN) baseline, called the way a PyTorch user calls it: NCHW float32 tensors.

fwd is `torch.nn.functional.conv2d`; bwd_data and bwd_weight are `torch.nn.grad.conv2d_input` and
`conv2d_weight` (the `aten.convolution_backward` op autograd calls). torch.conv2d pads symmetrically,
so an asymmetric padding becomes an explicit `F.pad` of the input (fwd, bwd_weight) or a crop of a
wider gradient (bwd_data); that extra work is timed too and noted in the runner's info.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..problem import ConvProblem, Direction


@dataclass
class TorchOp:
    """A torch call for one (problem, direction) on tensors in reference operand order."""

    problem: ConvProblem
    direction: Direction

    def __post_init__(self):
        pt, pb, pl, pr = self.problem.padding
        self.symmetric = pt == pb and pl == pr
        self.padding = (pt, pl) if self.symmetric else (0, 0)

    def __call__(self, a, b):
        import torch
        import torch.nn.functional as F

        p = self.problem
        pt, pb, pl, pr = p.padding
        geometry = dict(stride=p.stride, padding=self.padding, dilation=p.dilation, groups=p.groups)
        if self.direction is Direction.fwd:
            return F.conv2d(self._pad(a), b, None, **geometry)
        if self.direction is Direction.bwd_weight:
            return torch.nn.grad.conv2d_weight(self._pad(a), p.w_shape, b, **geometry)
        size = p.x_shape if self.symmetric else (p.n, p.c, p.h + pt + pb, p.w + pl + pr)
        dx = torch.nn.grad.conv2d_input(size, b, a, **geometry)
        return dx if self.symmetric else dx[:, :, pt:pt + p.h, pl:pl + p.w]

    def _pad(self, x):
        import torch.nn.functional as F

        if self.symmetric:
            return x
        pt, pb, pl, pr = self.problem.padding
        return F.pad(x, (pl, pr, pt, pb))


@dataclass
class TorchRunner:
    op: TorchOp
    info: dict
    channels_last: bool = False

    def _tensors(self, operands):
        import torch

        tensors = [torch.from_numpy(o) for o in operands]
        if self.channels_last:  # converted once, outside the timed call (as a channels_last model would)
            tensors = [t.contiguous(memory_format=torch.channels_last) for t in tensors]
        return tensors

    def result(self, operands):
        import torch

        with torch.no_grad():
            return self.op(*self._tensors(operands)).contiguous().numpy()

    def timed_call(self, operands):
        import torch

        tensors = self._tensors(operands)
        op = self.op

        def call():
            with torch.no_grad():
                return op(*tensors)
        return call


@dataclass
class Torch:
    """torch==2.13.0 CPU convolutions with `threads` intra-op threads, NCHW or channels_last tensors.

    reference/baseline.md found channels_last up to 2x faster on 1x1, stride-2 and stem layers and
    slower elsewhere, so a fair comparison can time both and take the better one per layer.
    """

    threads: int
    channels_last: bool = False
    role: str = "baseline"

    def __post_init__(self):
        try:
            import torch
        except ImportError:
            raise RuntimeError("the torch baseline needs torch; install convforge[torch]") from None
        torch.set_num_threads(self.threads)

    @property
    def label(self) -> str:
        return "torch_cl" if self.channels_last else "torch"

    def prepare(self, problem, direction):
        import torch

        op = TorchOp(problem, Direction.of(direction))
        info = {"torch": torch.__version__, "threads": torch.get_num_threads(),
                "op": {Direction.fwd: "torch.nn.functional.conv2d",
                       Direction.bwd_data: "torch.nn.grad.conv2d_input",
                       Direction.bwd_weight: "torch.nn.grad.conv2d_weight"}[op.direction],
                "layout": "channels_last" if self.channels_last else "NCHW", "preallocated_output": False}
        if not op.symmetric:
            info["note"] = "asymmetric padding: explicit F.pad / crop included in the time"
        return TorchRunner(op, info, self.channels_last)


def reference_check(problem: ConvProblem, direction: Direction, rng: np.random.Generator,
                    channels_last: bool = False) -> float:
    """Relative max error of the torch baseline against the float64 reference (used by tests)."""
    from .. import reference

    ops = reference.random_operands(problem, direction, rng, dtype=np.float32)
    got = TorchRunner(TorchOp(problem, Direction.of(direction)), {}, channels_last).result(ops)
    want = reference.compute(problem, direction, *ops)
    return float(np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-30))
