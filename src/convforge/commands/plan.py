"""Print the stages of a plan with their costs (executed vs useful MACs, transform and scratch bytes).

DESCRIPTOR is ConvForge's one-line problem descriptor or a oneDNN benchdnn conv descriptor.
"""

from __future__ import annotations

import argparse

from ..plan import algorithms, plan
from ..problem import ConvProblem, Direction


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "descriptor", help="e.g. n1c64h56w56k64r3s3_sh2sw2_pt1pb1pl1pr1 or mb1ic64ih56oc64oh28kh3sh2ph1")
    parser.add_argument("--direction", "-d", default="fwd", choices=[d.value for d in Direction])
    parser.add_argument("--algorithm", "-a", default="all",
                        help="an algorithm of this direction, or 'all' (default)")


def run(args: argparse.Namespace) -> int:
    problem = ConvProblem.parse(args.descriptor)
    chosen = algorithms(args.direction) if args.algorithm == "all" else [args.algorithm]
    for i, name in enumerate(chosen):
        if i:
            print()
        print(plan(problem, args.direction, name).describe())
    return 0
