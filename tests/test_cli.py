"""The CLI: `convforge plan` and `convforge check` print what they promise and fail clearly."""

from __future__ import annotations

from convforge.cli import main


def test_plan_shows_waste_of_fwd_reuse_and_none_for_phase_split(capsys):
    assert main(["plan", "mb1ic64ih56oc128oh28kh3sh2ph1", "--direction", "bwd_data"]) == 0
    out = capsys.readouterr().out
    blocks = {b.split("algorithm ")[1].split()[0]: b for b in out.split("\n\n")}
    assert "(executed/useful 1.000)" in blocks["phase_split"]
    assert "(executed/useful 4.0" in blocks["fwd_reuse"]
    assert "zero_insert ∘ pad" in blocks["fwd_reuse"]


def test_check_runs_every_algorithm_and_reports(capsys):
    assert main(["check", "mb3ic3ih11iw9oc4kh3kw2sh2sw3ph1pw0"]) == 0
    out = capsys.readouterr().out
    assert "13 passed, 0 failed" in out
    for name in ("phase_split", "gemm_col2im", "fwd_reuse", "im2col_gemm", "trim", "direct"):
        assert name in out


def test_bad_descriptor_is_a_clear_error(capsys):
    assert main(["plan", "n1c3h8k4r3zz9"]) == 2
    assert "cannot read 'zz9'" in capsys.readouterr().err
    assert main(["check"]) == 2
    assert "either a DESCRIPTOR or --suite" in capsys.readouterr().err
