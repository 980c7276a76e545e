"""Run the functional simulation with one BLAS thread.

A functional run does thousands of small matrix products (one per mmad / execute loop); on them
extra BLAS threads only spin and, on a loaded machine, make a run many times slower (17 s instead
of 1 s for one DaVinci backward-weight layer). NumPy's bundled OpenBLAS is found in `numpy.libs`;
with another BLAS (or none found) this is a no-op.
"""

from __future__ import annotations

import ctypes
import glob
import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from itertools import product

import numpy as np


@cache
def _openblas():
    folder = os.path.join(os.path.dirname(os.path.dirname(np.__file__)), "numpy.libs")
    for path in glob.glob(os.path.join(folder, "*openblas*")):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix in product(("scipy_openblas", "openblas"), ("64_", "")):
            get, put = f"{prefix}_get_num_threads{suffix}", f"{prefix}_set_num_threads{suffix}"
            if hasattr(lib, get) and hasattr(lib, put):
                getattr(lib, put).argtypes = [ctypes.c_int]
                return getattr(lib, get), getattr(lib, put)
    return None


@contextmanager
def one_thread() -> Iterator[None]:
    """BLAS limited to one thread inside the block, the previous count restored after."""
    found = _openblas()
    if found is None:
        yield
        return
    get, put = found
    before = get()
    put(1)
    try:
        yield
    finally:
        put(before)
