"""Compile-time measurement: time a few candidate configs, keep the fastest, remember it on disk.

The candidates are the heuristic algorithm's neighbours (other algorithms that multiply no
inserted zeros) crossed with the best-ranked register blocks of every conv core. Each candidate
runs on the same random operands; one whose result disagrees with the first candidate's is dropped
(a wrong answer never wins). Winners go to `tuned.json` in the cache folder, written under a file
lock with an atomic rename, keyed by problem, direction, layout, ISA and compiler.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
import time
from collections.abc import Callable

import numpy as np

from ...problem import ConvProblem, Direction
from . import toolchain

MAX_CANDIDATES = 32
RECORDS = "tuned.json"


def record_key(problem: ConvProblem, direction: Direction, layout: str) -> str:
    return "|".join([str(problem), str(direction), layout, toolchain.isa(), toolchain.compiler_version()])


def _path():
    return toolchain.cache_dir() / RECORDS


def lookup(key: str) -> dict | None:
    try:
        return json.loads(_path().read_text()).get(key)
    except (OSError, ValueError):
        return None


def remember(key: str, record: dict) -> None:
    folder = toolchain.cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / (RECORDS + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            records = json.loads(_path().read_text())
        except (OSError, ValueError):
            records = {}
        records[key] = record
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump(records, f, indent=1, sort_keys=True)
        os.replace(tmp, _path())


def time_kernel(kernel, operands, out, budget_s: float = 0.05, max_runs: int = 10) -> float:
    """Best of a few runs (the minimum is the least disturbed by other processes)."""
    kernel(*operands, out=out)
    best, spent, runs = float("inf"), 0.0, 0
    while runs < max_runs and (runs < 3 or spent < budget_s):
        start = time.perf_counter()
        kernel(*operands, out=out)
        elapsed = time.perf_counter() - start
        best, spent, runs = min(best, elapsed), spent + elapsed, runs + 1
    return best


def best_of(candidates: list[dict], build: Callable[[dict], object]) -> tuple[object, int]:
    """(fastest correct kernel, number of candidates measured)."""
    rng = np.random.default_rng(0)
    best = reference = operands = None
    measured = 0
    for config in candidates[:MAX_CANDIDATES]:
        kernel = build(config)
        if operands is None:
            operands = [rng.uniform(-1, 1, size=kernel.plan.buffer(name).shape).astype(np.float32)
                        for name in kernel.plan.inputs]
        out = np.empty(kernel.out_shape, np.float32)
        seconds = time_kernel(kernel, operands, out)
        measured += 1
        if reference is None:
            reference = out.copy()
        elif not np.allclose(out, reference, rtol=1e-4, atol=1e-4 * float(np.abs(reference).max())):
            continue
        if best is None or seconds < best[0]:
            best = (seconds, kernel)
    assert best is not None
    return best[1], measured
