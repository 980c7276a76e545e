"""`convforge bench`: time ConvForge kernels against torch on a suite, in the same run, alternating.

Candidate and baseline run in the same process, in alternating rounds; the report gives the minimum
over rounds of per-round medians, GFLOP/s, % of the measured FMA peak and the torch/ConvForge ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from .. import suites
from ..plan import algorithms as plan_algorithms
from ..problem import Direction

TARGET_PLAN = "plan"
"""--target value selecting the NumPy plan executor (a slow stand-in that needs no compiler)."""


def _positive_ints(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        values = []
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of positive ints, got {text!r}")
    return list(dict.fromkeys(values))


def _directions(text: str) -> list[Direction]:
    try:
        return list(dict.fromkeys(Direction.of(part) for part in text.split(",")))
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


BASELINES = ("torch", "torch_cl")
"""torch: NCHW tensors; torch_cl: channels_last tensors (converted outside the timed call)."""


def _baselines(text: str) -> list[str]:
    names = list(dict.fromkeys(part.strip() for part in text.split(",")))
    if names == ["none"]:
        return []
    unknown = [n for n in names if n not in BASELINES]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown baseline {unknown[0]!r}; choose from {', '.join(BASELINES)} "
                                         "(comma-separated; the first is the one ratios refer to) or none")
    return names


def _suite(text: str) -> str:
    if text not in suites.names():
        raise argparse.ArgumentTypeError(f"unknown suite {text!r}; choose from {', '.join(suites.names())}")
    return text


def _positive_int(text: str) -> int:
    values = _positive_ints(text)
    if len(values) != 1:
        raise argparse.ArgumentTypeError(f"expected one positive int, got {text!r}")
    return values[0]


def _nonnegative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--suite", type=_suite, default="resnet18", help=f"one of {', '.join(suites.names())}")
    parser.add_argument("--batch", type=_positive_ints, default=[1], help="batch sizes, e.g. 1,8")
    parser.add_argument("--directions", type=_directions, default=list(Direction),
                        help="comma-separated: fwd,bwd_data,bwd_weight")
    parser.add_argument("--against", type=_baselines, default=["torch"],
                        help="baselines timed alternately with the candidates: torch (NCHW), torch_cl "
                             "(channels_last), comma-separated, or none (check against the reference only)")
    parser.add_argument("--algorithms", default="auto",
                        help="auto, all (auto + every plan algorithm of each direction), or a comma list")
    parser.add_argument("--target", default="host",
                        help=f"convforge.compile target; '{TARGET_PLAN}' = the NumPy plan executor")
    parser.add_argument("--layout", default="NCHW", help="activation layout passed to convforge.compile")
    parser.add_argument("--tune", type=int, default=0,
                        help="passed to convforge.compile as tune=N (host: measure up to N configs, cached); "
                             "tuning happens while compiling, before and outside the timing")
    parser.add_argument("--threads", type=_positive_int, default=2, help="threads for candidate and baseline")
    parser.add_argument("--rounds", type=_positive_int, default=5, help="alternating rounds over all cases")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls per case per round")
    parser.add_argument("--min-calls", type=_positive_int, default=10, help="timed calls per case per round, at least")
    parser.add_argument("--min-time", type=_nonnegative_float, default=0.2,
                        help="seconds of timed calls per case per round, at least (max 100 calls)")
    parser.add_argument("--layers", default=None, help="only layers whose name contains this (comma = any of)")
    parser.add_argument("--json", type=Path, help="write every raw measurement, machine info and the command")
    parser.add_argument("--plot", type=Path, help="write a PNG bar chart of the ratios")
    parser.add_argument("--markdown", type=Path, help="write a BENCHMARKS.md-style section")
    parser.add_argument("--from-json", type=Path, help="re-render tables / plot / markdown of an earlier run")
    parser.add_argument("--allocator", choices=["pinned", "default"], default="pinned",
                        help="pinned: raise glibc's trim/mmap thresholds so per-call outputs do not page-fault")
    parser.add_argument("--no-peak", action="store_true", help="skip the FMA peak probe (no %% peak column)")
    parser.add_argument("--refresh-peak", action="store_true", help="re-measure the FMA peak instead of the cache")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random operands")


def algorithm_lists(spec: str, directions: list[Direction]) -> dict[Direction, list[str]]:
    """The algorithms to time per direction; each named one must apply to some chosen direction."""
    names = [s.strip() for s in spec.split(",") if s.strip()]
    if not names:
        raise ValueError("--algorithms must not be empty")
    if names == ["all"]:
        return {d: ["auto", *plan_algorithms(d)] for d in directions}
    for name in names:
        if name != "auto" and not any(name in plan_algorithms(d) for d in directions):
            known = sorted({a for d in directions for a in plan_algorithms(d)})
            raise ValueError(f"--algorithms: unknown algorithm {name!r} for directions "
                             f"{', '.join(d.value for d in directions)}; known: auto, all, {', '.join(known)}")
    return {d: [n for n in names if n == "auto" or n in plan_algorithms(d)] for d in directions}


def jobs_for(args) -> list:
    from ..bench.harness import Job

    jobs = []
    for n in args.batch:
        for row in suites.rows(args.suite, batch=n):
            if args.layers and not any(part in row.problem.name for part in args.layers.split(",")):
                continue
            jobs.append(Job(row.problem, row.repeat))
    if not jobs:
        raise ValueError(f"--layers {args.layers!r} matches no layer of suite {args.suite!r}; layers: "
                         f"{', '.join(p.name for p in suites.load(args.suite))}")
    return jobs


def _candidates(args, per_direction: dict[Direction, list[str]]):
    from ..bench.candidates import ConvForgeKernel, PlanExecutor

    def make(algorithm: str):
        if args.target == TARGET_PLAN:
            return PlanExecutor(algorithm)
        return ConvForgeKernel(args.target, algorithm, args.layout, {"tune": args.tune} if args.tune else {})
    made = {d: [make(a) for a in names] for d, names in per_direction.items()}
    return lambda direction: made[direction]


def _command_line() -> str:
    argv = sys.argv
    if argv and Path(argv[0]).name in ("convforge", "cli.py", "__main__.py"):
        return shlex.join(["convforge", *argv[1:]])
    return shlex.join(argv)


def run(args) -> int:
    try:
        if args.from_json:
            from ..bench.results import Results

            results = Results.from_dict(json.loads(args.from_json.read_text()))
        else:
            results = _measure(args)
    except (ValueError, RuntimeError, OSError) as error:
        print(f"convforge bench: error: {error}", file=sys.stderr)
        return 2
    _write_outputs(args, results)
    return 0


def _measure(args):
    from ..bench import harness, machine
    from ..bench.results import Results
    from ..bench.timing import Policy

    policy = Policy(rounds=args.rounds, warmup=args.warmup, min_calls=args.min_calls, min_seconds=args.min_time,
                    max_calls=max(100, args.min_calls))
    per_direction = algorithm_lists(args.algorithms, args.directions)
    jobs = jobs_for(args)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # before any kernel library loads its OpenMP runtime
    allocator = machine.pin_allocator() if args.allocator == "pinned" else {"allocator": "default"}
    from ..bench.baselines import Torch

    baselines = [Torch(args.threads, channels_last=name == "torch_cl") for name in args.against]
    probe, peak_info = _peak(args)
    results = Results([], _meta(args, policy, per_direction, allocator, peak_info))

    def on_round(index: int) -> None:
        """Checkpoint the finished rounds, then record when this one starts, the load, and the FMA probe."""
        if index and args.json:
            _save(results, args.json)
        record = {"round": index, "started": _now(), "loadavg": machine.loadavg()}
        if probe is not None:
            record["fma_probe_gflops"] = probe.run(args.threads)
        results.meta["rounds"].append(record)

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    members = sum(len(v) for v in per_direction.values()) + len(args.directions) * len(baselines)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("{task.fields[what]}", markup=False))
    with Progress(*columns) as bar:
        prep = bar.add_task("compile + check", total=len(jobs) * members, what="")
        timed = harness.prepare(jobs, args.directions, _candidates(args, per_direction), baselines, args.seed,
                                on_step=lambda what: bar.update(prep, advance=1, what=what))
        results.groups = [state.group for state in timed]
        task = bar.add_task("timing (alternating)", total=sum(len(t.cases) for t in timed) * policy.rounds, what="")
        harness.measure(timed, policy, on_case=lambda case: bar.update(task, advance=1, what=case.key),
                        on_round=on_round)
    done = min((len(e.rounds) for g in results.groups for e in g.entries if e.error is None), default=0)
    if done < policy.rounds:
        results.meta["interrupted_after_rounds"] = done
        print(f"convforge bench: interrupted; reporting the {done} complete round(s)", file=sys.stderr)
    if probe is not None:  # a quieter moment during the run may have shown a higher peak
        results.meta["peak"]["gflops"] = {str(t): g for t, g in probe.best().items() if str(t) in peak_info["gflops"]}
    results.meta["finished"] = _now()
    results.meta["machine"]["loadavg_end"] = machine.loadavg()
    return results


def _peak(args):
    """(probe, JSON facts) of the FMA peak, or (None, None) when skipped or impossible here."""
    from ..bench import peak

    if args.no_peak:
        return None, None
    try:
        probe = peak.Probe()
        measured = peak.measure(sorted({1, args.threads}), refresh=args.refresh_peak, probe=probe)
    except (RuntimeError, OSError, subprocess.SubprocessError) as error:
        print(f"convforge bench: warning: no FMA peak ({error}); the % peak column stays empty", file=sys.stderr)
        return None, None
    return probe, {"isa": measured.isa, "gflops": {str(t): g for t, g in measured.gflops.items()},
                   "now": {str(t): g for t, g in measured.now.items()}, "source": measured.source}


def _meta(args, policy, per_direction, allocator, peak_info) -> dict:
    from ..bench import machine

    return {"command": _command_line(), "argv": list(sys.argv), "cwd": os.getcwd(), "started": _now(),
            "machine": {**machine.info(), "loadavg_start": machine.loadavg()}, "peak": peak_info,
            "settings": {"suite": args.suite, "batch": args.batch, "directions": [d.value for d in args.directions],
                         "against": args.against, "algorithms": {d.value: a for d, a in per_direction.items()},
                         "target": args.target, "layout": args.layout, "tune": args.tune, "threads": args.threads,
                         "policy": vars(policy), "seed": args.seed, **allocator},
            "method": "alternating rounds; per-round median; minimum over rounds (see convforge.bench.timing)",
            "rounds": []}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _save(results, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(results.to_dict(), indent=1, allow_nan=False))
    os.replace(tmp, path)


def _write_outputs(args, results) -> None:
    from rich.console import Console
    from rich.markup import escape

    from ..bench import report

    console = Console(width=None if sys.stdout.isatty() else 200)
    for table in report.tables(results):
        console.print(report.to_rich(table))
    console.print(escape(report.method_note(results.meta)))
    if report.contention_note(results.meta):
        console.print(escape(report.contention_note(results.meta)))
    if args.json and not args.from_json:
        _save(results, args.json)
        console.print(escape(f"raw measurements: {args.json}"))
    if args.plot:
        from ..bench.plot import ratio_chart

        console.print(escape(f"chart: {ratio_chart(results, args.plot)}"))
    if args.markdown:
        args.markdown.write_text(report.markdown_section(results))
        console.print(escape(f"markdown: {args.markdown}"))
