"""Simulate a convolution on an accelerator target (cycles, traffic, MAC utilization).

One problem:  convforge sim DESCRIPTOR --target gemmini --direction fwd [--algorithm A | --vendor]
A suite table: convforge sim --suite resnet50:v1 --batch 1 --target gemmini --direction fwd \\
                   --variants convforge=default vendor=vendor
A variant is LABEL=SPEC with SPEC `default` (ConvForge's choice), `vendor` (the vendor baseline),
an algorithm name (ConvForge tiles), ALGORITHM/vendor (that algorithm with the vendor's tiles) or
`vendor-algorithm` (the vendor's algorithm with ConvForge's tiles: isolates the tiling).
The first variant is the baseline: each other variant gets a speedup column (baseline cycles / its
cycles) and a geometric mean.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time

import numpy as np

from ..backends.accel import compile_accel, vendor_algorithm
from ..backends.accel.suites import load as load_suite
from ..problem import ConvProblem, Direction
from ..targets import load as load_target

VENDOR_ALGORITHM = "@vendor-algorithm"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("descriptor", nargs="?", help="problem descriptor (ours or benchdnn)")
    parser.add_argument("--target", required=True, help="shipped target name or path to a .toml file")
    parser.add_argument("--direction", default="fwd", choices=[d.value for d in Direction])
    parser.add_argument("--algorithm", help="plan algorithm to lower (default: ConvForge's choice)")
    parser.add_argument("--vendor", action="store_true", help="the vendor baseline")
    parser.add_argument("--suite", help="run a shipped suite (resnet18, resnet50, deepbench) instead of one "
                        "descriptor; NAME:v1 keeps only the rows of the network's first version")
    parser.add_argument("--batch", type=int, default=1, help="batch size of the suite's layers")
    parser.add_argument("--variants", nargs="+", default=["convforge=default", "vendor=vendor"],
                        help="LABEL=SPEC columns of a suite table (see the command help)")
    parser.add_argument("--limit", type=int, help="only the first N layers of the suite")
    parser.add_argument("--skip", nargs="*", default=[], help="layer names of the suite to leave out")
    parser.add_argument("--only", nargs="*", help="only these layer names of the suite")
    parser.add_argument("--no-search", action="store_true",
                        help="use the bound-derived tile instead of searching (faster on big layers)")
    parser.add_argument("--functional", action="store_true",
                        help="also run the arithmetic on random operands and check it against the reference")
    parser.add_argument("--listing", action="store_true", help="print the instruction program")
    parser.add_argument("--json", help="write the results to this JSON file")


def _typed(p: ConvProblem, target) -> ConvProblem:
    return dataclasses.replace(p, dtypes=target.dtypes[0])


def _options(spec: str, search: bool) -> dict:
    if spec == "default":
        return {"search": search}
    if spec == "vendor":
        return {"vendor": True}
    if spec == "vendor-algorithm":
        return {"algorithm": VENDOR_ALGORITHM, "search": search}
    algorithm, _, tiles = spec.partition("/")
    if tiles not in ("", "vendor"):
        raise ValueError(f"variant spec {spec!r}: expected ALGORITHM or ALGORITHM/vendor")
    return {"algorithm": algorithm, "vendor": tiles == "vendor", "search": search}


def _measure(p: ConvProblem, direction: str, target, options: dict, functional: bool) -> dict:
    if options.get("algorithm") == VENDOR_ALGORITHM:
        options = options | {"algorithm": vendor_algorithm(p, Direction.of(direction), target)}
    start = time.perf_counter()
    kernel = compile_accel(p, direction, target, **options)
    compiled = time.perf_counter()
    stats = kernel.simulate(timing_only=True)
    timed = time.perf_counter()
    peak = target.intrinsic["macs_per_cycle"]
    row = {"problem": str(p), "name": p.name, "direction": direction, "target": target.name,
           "algorithm": kernel.algorithm, "provenance": kernel.provenance, "tiles": kernel.config["tiles"],
           **stats.as_dict(), "mac_utilization": stats.useful_macs / max(stats.cycles * peak, 1),
           "compile_s": compiled - start, "timing_s": timed - compiled}
    if functional:
        row.update(_functional(kernel, p, direction))
    return row, kernel


def _functional(kernel, p: ConvProblem, direction: str) -> dict:
    from ..reference import compute

    rng = np.random.default_rng(0)
    shapes, _ = p.operand_shapes(direction)
    if p.dtypes[0] == "i8":
        ops = [rng.integers(-128, 128, size=s).astype(np.int8) for s in shapes]
    else:
        ops = [rng.standard_normal(s).astype(np.float16) for s in shapes]
    start = time.perf_counter()
    got = kernel(*ops)
    elapsed = time.perf_counter() - start
    want = compute(p, direction, *ops)
    err = float(np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-30))
    return {"functional_s": elapsed, "relative_error": err}


def run(args: argparse.Namespace) -> int:
    target = load_target(args.target)
    if args.suite:
        return _suite(args, target)
    if not args.descriptor:
        raise ValueError("give a DESCRIPTOR or --suite NAME")
    if args.vendor and args.algorithm:
        raise ValueError("--vendor picks the vendor's algorithm; drop --algorithm or --vendor")
    p = _typed(ConvProblem.parse(args.descriptor), target)
    options = {"vendor": args.vendor, "search": not args.no_search} | (
        {"algorithm": args.algorithm} if args.algorithm else {})
    row, kernel = _measure(p, args.direction, target, options, args.functional)
    if args.listing:
        print(kernel.source)
    for key in ("problem", "direction", "target", "algorithm", "provenance", "tiles", "cycles", "busy", "bytes",
                "dram_bytes", "executed_macs", "useful_macs", "mac_utilization", "peak_bytes", "instructions",
                "primitives", "compile_s", "timing_s", "functional_s", "relative_error"):
        if key in row:
            print(f"{key:16} {row[key]}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(row, f, indent=1, default=str)
    return 0


def _suite(args: argparse.Namespace, target) -> int:
    variants = []
    for item in args.variants:
        label, sep, spec = item.partition("=")
        if not sep:
            raise ValueError(f"variant {item!r} must be LABEL=SPEC")
        variants.append((label, _options(spec, not args.no_search)))
    layers = [p for p in load_suite(args.suite, args.batch)
              if p.name not in args.skip and (not args.only or p.name in args.only)][: args.limit]
    rows = []
    head = ["layer"] + [f"{label} cycles" for label, _ in variants] + [f"{label} DRAM MB" for label, _ in variants] \
        + [f"{label} util" for label, _ in variants] + [f"{label} speedup" for label, _ in variants[1:]]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    ratios: list[list[float]] = [[] for _ in variants[1:]]
    for p in layers:
        p = _typed(p, target)
        results = {}
        for label, options in variants:
            try:
                results[label], _ = _measure(p, args.direction, target, options, args.functional)
            except ValueError as err:
                results[label] = {"error": str(err)}
        rows.append({"layer": p.name, "problem": str(p), "results": results})
        base = results[variants[0][0]]
        cells = [p.name]
        for key, scale, digits in (("cycles", 1, 0), ("dram_bytes", 1e6, 2), ("mac_utilization", 1, 2)):
            cells += [f"{results[lab][key] / scale:.{digits}f}" if "cycles" in results[lab] else "n/a"
                      for lab, _ in variants]
        for i, (label, _) in enumerate(variants[1:]):
            if "cycles" in base and "cycles" in results[label]:
                ratio = base["cycles"] / results[label]["cycles"]
                ratios[i].append(ratio)
                cells.append(f"{ratio:.2f}x")
            else:
                cells.append("n/a")
        print("| " + " | ".join(cells) + " |")
        sys.stdout.flush()
    geo = ["**geomean**"] + [""] * (3 * len(variants))
    geo += [f"**{math.exp(sum(map(math.log, r)) / len(r)):.2f}x**" if r else "n/a" for r in ratios]
    print("| " + " | ".join(geo) + " |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"suite": args.suite, "batch": args.batch, "target": target.name,
                       "direction": args.direction, "variants": args.variants, "rows": rows}, f, indent=1,
                      default=str)
    return 0
