"""The FMA peak probe: generated C compiles for each ISA; results are cached. The probe itself is a
measurement and is not run here (its runner is replaced)."""

import shutil
import subprocess

import pytest

from convforge.bench import peak


@pytest.mark.parametrize("isa", sorted(peak.ISAS))
def test_probe_source_compiles(isa, tmp_path):
    if shutil.which("gcc") is None:
        pytest.skip("no gcc")
    source, flags = peak.program(isa)
    (tmp_path / "p.c").write_text(source)
    result = subprocess.run(["gcc", *flags, "-c", str(tmp_path / "p.c"), "-o", str(tmp_path / "p.o")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert peak.ISAS[isa][0] in source and "_fmadd_ps" in source


def test_isa_choice():
    assert peak.best_isa({"avx512f", "avx2", "fma"}) == "avx512"
    assert peak.best_isa({"avx2", "fma"}) == "avx2"
    with pytest.raises(RuntimeError, match="AVX2"):
        peak.best_isa({"sse2"})
    with pytest.raises(ValueError, match="isa"):
        peak.program("neon")


def test_results_are_cached_per_thread_count(tmp_path, monkeypatch):
    if shutil.which("gcc") is None or not (peak.cpu_flags() & {"avx2", "avx512f"}):
        pytest.skip("needs gcc and an x86 FMA ISA")
    calls = []
    monkeypatch.setattr(peak, "_run", lambda binary, threads: calls.append(threads) or 10.0 * threads)
    first = peak.measure([1, 2], folder=tmp_path)
    assert first.gflops == {1: 10.0, 2: 20.0} and first.source == "measured now" and calls == [1, 2]
    again = peak.measure([2, 4], folder=tmp_path)
    assert again.gflops == {2: 20.0, 4: 40.0} and calls == [1, 2, 4]
    cached = peak.measure([1, 4], folder=tmp_path)
    assert cached.source.startswith("cached") and calls == [1, 2, 4]
    peak.measure([1], folder=tmp_path, refresh=True)
    assert calls == [1, 2, 4, 1]
    with pytest.raises(ValueError, match="threads"):
        peak.measure([0], folder=tmp_path)
