"""Build and cache behaviour of the host backend: cache hits, concurrent builds, sanitizers, errors."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import convforge as cf
from convforge.backends.c import CompilerNotFoundError, toolchain
from convforge.compile import compile as cf_compile

SRC = str(Path(__file__).resolve().parents[1] / "src")
PROBLEMS = ("[cf.ConvProblem(3, 5, 7, 9, 8, 3, 2, stride=(2, 1), padding=(1, 0, 2, 1), dilation=(1, 2)), "
            "cf.ConvProblem(1, 6, 34, 11, 13, 3, 1, stride=(4, 1), padding=(0, 2, 1, 0), dilation=(3, 1), groups=2), "
            "cf.ConvProblem(2, 20, 8, 4, 8, 1, 1)]")


def run_python(code: str, cache: Path, extra_env: dict | None = None) -> subprocess.Popen:
    env = dict(os.environ, CONVFORGE_CACHE=str(cache), PYTHONPATH=SRC, **(extra_env or {}))
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_second_compile_hits_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVFORGE_CACHE", str(tmp_path))
    p = cf.ConvProblem(1, 3, 4, 6, 6, 3, 3, padding=1)
    before = toolchain.STATS.compiler_calls
    first = cf_compile(p, "bwd_data", algorithm="direct")
    built = toolchain.STATS.compiler_calls - before
    assert built >= 1
    second = cf_compile(p, "bwd_data", algorithm="direct")
    assert toolchain.STATS.compiler_calls - before == built, "the second compile ran the compiler"
    assert first.source == second.source
    assert list(tmp_path.glob("cf_*.so"))


def test_cache_key_covers_flags_and_source():
    a = toolchain.library_key("int x;", ("-O3",))
    assert a != toolchain.library_key("int x;", ("-O2",))
    assert a != toolchain.library_key("int y;", ("-O3",))
    assert a != toolchain.library_key("int x;", ("-O3",) + toolchain.SANITIZE_FLAGS)


# pinned configs reach code paths the heuristic may not pick for the problems above
PINNED = ("[(cf.ConvProblem(2, 34, 40, 9, 47, 1, 1, stride=(2, 2), groups=2), 'fwd', "
          "{'core': 'fwd', 'style': 'vector_ext', 'qb': 12, 'kb': 2, 'order': 'npk'}), "
          "(cf.ConvProblem(1, 18, 17, 8, 16, 3, 3, dilation=(1, 2)), 'fwd', "
          "{'core': 'fwd', 'style': 'vector_ext', 'qb': 14, 'kb': 2, 'order': 'npk'}), "
          "(cf.ConvProblem(2, 12, 16, 7, 8, 3, 2, dilation=(2, 1)), 'bwd_weight', "
          "{'core': 'wgrad', 'style': 'vector_ext', 'nb': 4, 'qb': 2, 'kb': 1})]")

CHECK_ONE = f"""
import numpy as np, convforge as cf
from convforge.compile import compile
def check(k, p, d):
    ops = [o.astype(np.float32) for o in cf.reference.random_operands(p, d, np.random.default_rng(0))]
    out = np.full(k.out_shape, np.nan, np.float32)
    k(*ops, out=out)
    ref = cf.reference.compute(p, d, *ops)
    assert np.abs(out - ref).max() <= 1e-4 * np.abs(ref).max(), d
for index, p in enumerate({PROBLEMS}[:COUNT]):
  for d in ("fwd", "bwd_data", "bwd_weight"):
    check(compile(p, d, **OPTIONS), p, d)
for p, d, stage in {PINNED}[:PINNED_COUNT]:  # cores reading (and writing) the caller's arrays in place
    config = {{"algorithm": "direct", "stages": [stage]}}
    check(compile(p, d, config=config, sanitize=OPTIONS.get("sanitize", False)), p, d)
import convforge.backends.c.configs as host_configs
host_configs.SLICE_BYTES, host_configs.WGRAD_SLICE_PACKS = 64, 0  # every batch sliced: offsets, partial sums
q = cf.ConvProblem(3, 5, 6, 9, 10, 3, 3, stride=2, padding=(1, 0, 2, 1))
for d in ("bwd_data", "bwd_weight"):
  check(compile(q, d, **OPTIONS), q, d)
print("ok")
"""


# every algorithm on the first problem, the heuristic's choice on the others
CHECK_ALL_ALGORITHMS = CHECK_ONE.replace(
    '  for d in ("fwd", "bwd_data", "bwd_weight"):\n    check(compile(p, d, **OPTIONS), p, d)',
    '  for d, alg in [(d, a) for d in ("fwd", "bwd_data", "bwd_weight")\n'
    '                 for a in (cf.algorithms(d) if index == 0 else ["auto"])]:\n'
    '    check(compile(p, d, algorithm=alg, **OPTIONS), p, d)')


def test_concurrent_processes_compile_the_same_kernel(tmp_path):
    code = "OPTIONS = {}\nCOUNT = 1\nPINNED_COUNT = 0\n" + CHECK_ONE
    procs = [run_python(code, tmp_path) for _ in range(2)]
    results = [p.communicate(timeout=240) + (p.returncode,) for p in procs]
    for out, err, rc in results:
        assert rc == 0 and out.strip() == "ok", err[-2000:]
    assert not list(tmp_path.glob("tmp*")), "temporary files were left behind"


def test_sanitized_kernels_run_clean(tmp_path):
    libasan = subprocess.run([toolchain.compiler(), "-print-file-name=libasan.so"], capture_output=True,
                             text=True, check=False).stdout.strip()
    if not os.path.isabs(libasan):
        pytest.skip("the compiler has no AddressSanitizer runtime")
    code = "OPTIONS = {'sanitize': True}\nCOUNT = 3\nPINNED_COUNT = 3\n" + CHECK_ALL_ALGORITHMS
    proc = run_python(code, tmp_path, {"LD_PRELOAD": libasan, "ASAN_OPTIONS": "detect_leaks=0",
                                       "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1",
                                       "OMP_NUM_THREADS": "2"})
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0 and out.strip() == "ok", err[-3000:]
    assert "runtime error" not in err and "AddressSanitizer" not in err, err[-3000:]


def test_missing_compiler_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("CC", "")
    monkeypatch.setenv("PATH", str(tmp_path))
    toolchain.compiler.cache_clear()
    try:
        with pytest.raises(CompilerNotFoundError, match="no C compiler"):
            cf_compile(cf.ConvProblem(1, 1, 1, 3, 3, 1, 1, name="nocc"), "fwd")
    finally:
        toolchain.compiler.cache_clear()


def test_avx2_lowering_is_correct(tmp_path):
    """8-lane vectors and the scalar transpose fallback, as on a CPU without AVX-512."""
    code = """
from convforge.backends.c import toolchain
toolchain.isa = lambda: "avx2"
base = toolchain.base_flags
toolchain.base_flags = lambda: base() + ("-mno-avx512f",)
assert toolchain.vector_width() == 8
""" + "OPTIONS = {}\nCOUNT = 3\nPINNED_COUNT = 3\n" + CHECK_ALL_ALGORITHMS
    proc = run_python(code, tmp_path)
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0 and out.strip() == "ok", err[-3000:]
