import os
import sys

import pytest
from hypothesis import settings

sys.path.insert(0, os.path.dirname(__file__))  # tests/strategies.py

# CI runs a fixed, derandomized sample. Locally, CONVFORGE_HYPOTHESIS=random draws fresh problems and
# CONVFORGE_EXAMPLES_SCALE=10 runs ten times as many (see strategies.examples).
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("random", deadline=None, print_blob=True)
settings.load_profile(os.environ.get("CONVFORGE_HYPOTHESIS", "ci"))


@pytest.fixture(scope="module")
def private_kernel_cache(tmp_path_factory):
    """A fresh compiled-kernel cache per test module, so cache hits and misses are the module's own."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CONVFORGE_CACHE", str(tmp_path_factory.mktemp("cf-cache")))
        yield
