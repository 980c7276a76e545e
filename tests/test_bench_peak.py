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


def test_peak_is_the_best_reading_ever_cached(tmp_path, monkeypatch):
    if shutil.which("gcc") is None or not (peak.cpu_flags() & {"avx2", "avx512f"}):
        pytest.skip("needs gcc and an x86 FMA ISA")
    readings = iter([10.0, 20.0, 5.0, 40.0, 50.0, 7.0])
    monkeypatch.setattr(peak, "_run", lambda binary, threads: next(readings))
    probe = peak.Probe(tmp_path)
    assert probe.binary.exists()
    first = peak.measure([1, 2], probe=probe, repeats=1)
    assert first.gflops == {1: 10.0, 2: 20.0} == first.now
    busy = peak.measure([1, 2], probe=peak.Probe(tmp_path), repeats=1)  # lower 1-thread reading: a busy host
    assert busy.now == {1: 5.0, 2: 40.0} and busy.gflops == {1: 10.0, 2: 40.0}
    assert busy.source.startswith("best of 4 probe run(s)")
    assert probe.run(2) == 50.0 and probe.best() == {1: 10.0, 2: 50.0}  # e.g. a probe between rounds
    readings = iter([7.0, 9.0, 8.0])
    fresh = peak.measure([1], refresh=True, probe=probe)
    assert fresh.gflops == {1: 9.0} == fresh.now  # best of 3 readings, the old ones forgotten
    with pytest.raises(ValueError, match="threads"):
        peak.measure([0], probe=probe)
