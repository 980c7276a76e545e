"""Facts about the machine and process that a benchmark result depends on."""

from __future__ import annotations

import ctypes
import os
import platform
import subprocess

from .peak import cpu_flags, cpu_model

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3


def pin_allocator() -> dict:
    """Stop glibc from returning large freed blocks to the OS between calls.

    With the default thresholds a fresh output of ~25 MB is mmapped and page-faults on every call,
    which costs 3-5x on some layers (reference/baseline.md); torch allocates its output per call, so
    this matters for a fair baseline. Returns what was set (glibc caps the mmap threshold, so the
    largest accepted value of those tried is kept).
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return {"allocator": "default (mallopt unavailable)"}
    trim_ok = bool(mallopt(M_TRIM_THRESHOLD, ctypes.c_int(2**31 - 1)))
    mmap_value = next((v for v in (2**31 - 1, 1 << 30, 1 << 25) if mallopt(M_MMAP_THRESHOLD, ctypes.c_int(v))), None)
    return {"allocator": "pinned" if trim_ok and mmap_value else "partly pinned",
            "M_TRIM_THRESHOLD": 2**31 - 1 if trim_ok else None, "M_MMAP_THRESHOLD": mmap_value}


def _version(module: str) -> str | None:
    try:
        return __import__(module).__version__
    except ImportError:
        return None


def _gcc() -> str | None:
    try:
        out = subprocess.run([os.environ.get("CC", "gcc"), "--version"], capture_output=True, text=True).stdout
    except OSError:
        return None
    return out.splitlines()[0] if out else None


def loadavg() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def info() -> dict:
    flags = cpu_flags()
    return {
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "isa_flags": sorted(flags & {"avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "amx_tile"}),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": _version("numpy"),
        "torch": _version("torch"),
        "gcc": _gcc(),
        "hostname": platform.node(),
        "env": {k: v for k, v in os.environ.items()
                if k.startswith(("OMP_", "MKL_", "MALLOC_", "KMP_", "CONVFORGE_", "ONEDNN_", "DNNL_"))},
    }
