"""ConvForge: verified convolution kernels (forward, backward-data, backward-weight) for CPUs,
GPUs and layout-constrained accelerators."""

from . import layouts, reference
from .compile import compile
from .kernel import Kernel
from .plan import Plan, algorithms, plan
from .problem import ConvProblem, Direction

__all__ = ["ConvProblem", "Direction", "Kernel", "compile", "Plan", "algorithms", "layouts", "plan", "reference"]
__version__ = "0.1.0"
