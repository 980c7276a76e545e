"""Build generated C into shared objects and load them, with a content-addressed on-disk cache.

A library is keyed by hash(source + flags + ISA + compiler version), so any change that could
change the machine code gives a new file. Builds are safe across processes: a per-key file lock
serializes compilers, the object is written to a temporary name and renamed into place atomically,
and a reader only ever sees complete files.
"""

from __future__ import annotations

import ctypes
import fcntl
import functools
import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

# checking builds: -O1 keeps the same vector code paths and halves the instrumented compile time
SANITIZE_FLAGS = ("-O1", "-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=all")


class CompilerNotFoundError(RuntimeError):
    """No usable C compiler: the host backend needs one (set $CC or install gcc/clang)."""


class CompileError(RuntimeError):
    """The C compiler rejected generated code (a bug in ConvForge: please report the source)."""


@dataclass
class BuildStats:
    """Counters a test or a report can read: how many compiler runs and cache hits happened here."""

    compiler_calls: int = 0
    cache_hits: int = 0


STATS = BuildStats()


def cache_dir() -> Path:
    return Path(os.environ.get("CONVFORGE_CACHE") or Path.cwd() / ".convforge-cache")


@functools.cache
def compiler() -> str:
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return shutil.which(name)  # type: ignore[return-value]
    raise CompilerNotFoundError("no C compiler found for target 'host': set $CC or install gcc or clang")


@functools.cache
def compiler_version() -> str:
    out = subprocess.run([compiler(), "--version"], capture_output=True, text=True, check=False)
    return out.stdout.splitlines()[0] if out.stdout else "unknown"


def cpu_flags() -> set[str]:
    """The feature flags the kernel reports for this CPU (empty where /proc/cpuinfo is unreadable)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def isa_from_flags(flags: set[str]) -> str:
    """'avx512', 'avx2' or 'generic': the widest FMA vector ISA among `flags`."""
    if {"avx512f", "fma"} <= flags:
        return "avx512"
    if {"avx2", "fma"} <= flags:
        return "avx2"
    return "generic"


@functools.cache
def isa() -> str:
    return isa_from_flags(cpu_flags())


def vector_width() -> int:
    """fp32 lanes of the widest vector the generated kernels use."""
    return {"avx512": 16, "avx2": 8}.get(isa(), 4)


def base_flags() -> tuple[str, ...]:
    return ("-O3", "-march=native", "-fopenmp", "-fPIC", "-shared", "-std=gnu11", "-fno-math-errno")


def library_key(source: str, flags: tuple[str, ...]) -> str:
    text = "\n".join([source, " ".join(flags), isa(), compiler_version()])
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def build(source: str, sanitize: bool = False, extra_flags: tuple[str, ...] = ()) -> Path:
    """Compile `source` (or reuse the cached object) and return the shared object's path."""
    flags = base_flags() + tuple(extra_flags) + (SANITIZE_FLAGS if sanitize else ())
    key = library_key(source, flags)
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"cf_{key}.so"
    if target.exists():
        STATS.cache_hits += 1
        return target
    with open(folder / f"cf_{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.exists():  # another process built it while we waited
            STATS.cache_hits += 1
            return target
        c_path = folder / f"cf_{key}.c"
        fd, tmp_c = tempfile.mkstemp(suffix=".c", dir=folder)
        with os.fdopen(fd, "w") as f:
            f.write(source)
        os.replace(tmp_c, c_path)
        fd, tmp_so = tempfile.mkstemp(suffix=".so", dir=folder)
        os.close(fd)
        STATS.compiler_calls += 1
        result = subprocess.run([compiler(), *flags, str(c_path), "-o", tmp_so, "-lm"],
                                capture_output=True, text=True, check=False)
        if result.returncode != 0:
            os.unlink(tmp_so)
            raise CompileError(f"{compiler()} failed on {c_path}:\n{result.stderr[-4000:]}")
        os.replace(tmp_so, target)
    return target


@functools.cache
def _load(path: str) -> ctypes.CDLL:
    return ctypes.CDLL(path)


def load(source: str, sanitize: bool = False) -> ctypes.CDLL:
    """Build (or fetch from the cache) and load a library."""
    return _load(str(build(source, sanitize)))
