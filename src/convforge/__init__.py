"""ConvForge: verified convolution kernels (forward, backward-data, backward-weight) for CPUs,
GPUs and layout-constrained accelerators."""

from . import layouts, reference
from .plan import Plan, algorithms, plan
from .problem import ConvProblem, Direction

__all__ = ["ConvProblem", "Direction", "Plan", "algorithms", "layouts", "plan", "reference"]
__version__ = "0.1.0"
