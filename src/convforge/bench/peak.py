"""Measured FMA peak: a tiny generated C program of independent FMA chains, compiled with gcc.

"% of peak" is reported against what this machine actually sustains, not a datasheet clock: under
AVX-512 load this host runs about 2.38 GHz instead of the 2.5 GHz nominal (reference/baseline.md).
Each thread keeps `accumulators` independent vector FMA chains in registers (more than latency x
ports, so the FMA units never wait), calibrates its loop to about 0.1 s, and the best of 5 timed
runs counts. The binary and the best reading so far are cached per (source, flags, compiler, CPU) in
the cache folder; every run probes again (about a second per thread count), which also shows how
busy the host is right now.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ..backends.c.toolchain import cache_dir, cpu_flags, isa_from_flags

ISAS = {
    # name: (vector type, intrinsic prefix, float lanes, accumulators, gcc flags)
    "avx512": ("__m512", "_mm512", 16, 24, ("-mavx512f", "-mfma")),
    "avx2": ("__m256", "_mm256", 8, 12, ("-mavx2", "-mfma")),
}

SOURCE = r"""
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#define ACC {acc}
#define LANES {lanes}

/* ACC independent FMA chains of `iters` steps; returns a value that depends on all of them. */
static float chains(long iters) {{
    {vec} a[ACC];
    const {vec} m = {pre}_set1_ps(0.9999999f), c = {pre}_set1_ps(1e-7f);
    for (int i = 0; i < ACC; ++i) a[i] = {pre}_set1_ps(1.0f + 1e-3f * (float)i);
    for (long it = 0; it < iters; ++it) {{
        #pragma GCC unroll {acc}
        for (int i = 0; i < ACC; ++i) a[i] = {pre}_fmadd_ps(a[i], m, c);
    }}
    float lane[LANES], total = 0.0f;
    for (int i = 0; i < ACC; ++i) {{
        {pre}_storeu_ps(lane, a[i]);
        for (int j = 0; j < LANES; ++j) total += lane[j];
    }}
    return total;
}}

static double run(long iters, float *sink) {{
    double start = omp_get_wtime();
    float total = 0.0f;
    #pragma omp parallel reduction(+ : total)
    total += chains(iters);
    *sink += total;
    return omp_get_wtime() - start;
}}

int main(void) {{
    float sink = 0.0f;
    long iters = 1L << 16;
    while (run(iters, &sink) < 0.1) iters *= 2;
    double best = 1e30;
    for (int rep = 0; rep < 5; ++rep) {{
        double t = run(iters, &sink);
        if (t < best) best = t;
    }}
    double flops = 2.0 * ACC * LANES * (double)iters * omp_get_max_threads();
    printf("%d %.3f %g\n", omp_get_max_threads(), flops / best / 1e9, (double)sink);
    return 0;
}}
"""


@dataclass(frozen=True)
class Peak:
    isa: str
    gflops: dict[int, float]
    """Best GFLOP/s per thread count over this probe and every cached one."""
    now: dict[int, float]
    """This probe's reading (lower than `gflops` when the host is busy)."""
    source: str


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def best_isa(flags: set[str]) -> str:
    found = isa_from_flags(flags)
    if found == "generic":
        raise RuntimeError("the FMA peak probe needs AVX2+FMA or AVX-512F; this CPU reports neither")
    return found


def program(isa: str) -> tuple[str, tuple[str, ...]]:
    """C source and gcc flags of the probe for `isa`."""
    if isa not in ISAS:
        raise ValueError(f"isa must be one of {sorted(ISAS)}, got {isa!r}")
    vec, pre, lanes, acc, flags = ISAS[isa]
    return SOURCE.format(vec=vec, pre=pre, lanes=lanes, acc=acc), ("-O2", "-fopenmp", *flags)


def _compiler() -> tuple[str, str]:
    cc = os.environ.get("CC", "gcc")
    if shutil.which(cc) is None:
        raise RuntimeError(f"the FMA peak probe needs a C compiler; {cc!r} is not on PATH")
    version = subprocess.run([cc, "--version"], capture_output=True, text=True, check=True).stdout
    return cc, version.splitlines()[0] if version else cc


class Probe:
    """The compiled probe for this machine's best ISA (built once per source/flags/compiler/CPU)."""

    def __init__(self, folder: Path | None = None):
        self.folder = folder or cache_dir() / "peak"
        self.isa = best_isa(cpu_flags())
        source, flags = program(self.isa)
        cc, cc_version = _compiler()
        key = hashlib.sha256("\0".join((source, *flags, cc_version, cpu_model())).encode()).hexdigest()[:16]
        self.binary = self.folder / f"peak-{self.isa}-{key}"
        self.record = self.folder / f"peak-{self.isa}-{key}.json"
        if not self.binary.exists():
            self._compile(cc, source, flags)

    def _compile(self, cc: str, source: str, flags: tuple[str, ...]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.folder) as tmp:
            src = Path(tmp) / "peak.c"
            src.write_text(source)
            built = Path(tmp) / "peak"
            result = subprocess.run([cc, *flags, str(src), "-o", str(built)], capture_output=True, text=True)
            if result.returncode != 0:
                raise RuntimeError(f"compiling the FMA peak probe failed:\n{result.stderr.strip()}")
            os.replace(built, self.binary)

    def run(self, threads: int) -> float:
        """GFLOP/s with `threads` threads now; a new best reading is remembered in the cache."""
        gflops = _run(self.binary, threads)
        record = self._record()
        best = record.setdefault("gflops", {})
        best[str(threads)] = max(best.get(str(threads), 0.0), gflops)
        record.update(isa=self.isa, cpu=cpu_model(), probes=record.get("probes", 0) + 1, updated=_utc_now())
        record.setdefault("since", _utc_now())
        tmp = self.record.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=1))
        os.replace(tmp, self.record)
        return gflops

    def best(self) -> dict[int, float]:
        """The best reading per thread count seen on this machine (what "peak" means here)."""
        return {int(t): g for t, g in self._record().get("gflops", {}).items()}

    def forget(self) -> None:
        self.record.unlink(missing_ok=True)

    def _record(self) -> dict:
        return json.loads(self.record.read_text()) if self.record.exists() else {}


def _run(binary: Path, threads: int) -> float:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OMP_PROC_BIND="true")
    result = subprocess.run([str(binary)], capture_output=True, text=True, env=env, timeout=120, check=True)
    reported_threads, gflops, _ = result.stdout.split()
    if int(reported_threads) != threads:
        raise RuntimeError(f"the peak probe ran {reported_threads} threads instead of {threads}")
    return float(gflops)


def measure(threads: list[int], refresh: bool = False, probe: Probe | None = None, repeats: int = 3) -> Peak:
    """Probe now; the peak is the best reading ever seen on this machine (`refresh` forgets the old ones).

    The probe never reads above the true peak (it is register-only), so a low reading can only mean
    another process took the core; the maximum over probes is the best estimate.
    """
    if not threads or any(isinstance(t, bool) or not isinstance(t, int) or t < 1 for t in threads):
        raise ValueError(f"threads must be a non-empty list of positive ints, got {threads!r}")
    probe = probe or Probe()
    if refresh:
        probe.forget()
    now = {t: max(probe.run(t) for _ in range(repeats)) for t in threads}  # contention is often brief
    best = probe.best()
    record = probe._record()
    source = f"best of {record['probes']} probe run(s) since {record['since']} ({probe.record})"
    return Peak(probe.isa, {t: best[t] for t in threads}, now, source)


def _utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
