"""`convforge bench`: argument parsing, clear errors, and one tiny end-to-end run (plan executor vs torch)."""

import argparse
import json

import pytest

from convforge import Direction
from convforge.commands import bench

TINY_RUN = ["--suite", "deepbench", "--layers", "server_03", "--target", "plan", "--rounds", "2",
            "--warmup", "0", "--min-calls", "1", "--min-time", "0", "--no-peak", "--allocator", "default"]


def parse(argv):
    parser = argparse.ArgumentParser(prog="convforge bench")
    bench.add_arguments(parser)
    return parser.parse_args(argv)


def test_parses_the_documented_command_line():
    args = parse(["--suite", "resnet50", "--batch", "1,8", "--directions", "fwd,bwd_data,bwd_weight",
                  "--against", "torch", "--algorithms", "all", "--threads", "2", "--rounds", "3",
                  "--json", "r.json", "--plot", "r.png", "--layers", "res2"])
    assert args.suite == "resnet50" and args.batch == [1, 8] and args.threads == 2 and args.rounds == 3
    assert args.directions == [Direction.fwd, Direction.bwd_data, Direction.bwd_weight]
    assert str(args.json) == "r.json" and args.layers == "res2" and args.against == ["torch"]
    assert parse(["--against", "torch_cl,torch"]).against == ["torch_cl", "torch"]
    assert parse(["--against", "none"]).against == []


@pytest.mark.parametrize("argv, message", [
    (["--suite", "vgg"], "unknown suite 'vgg'"),
    (["--batch", "0"], "positive ints, got '0'"),
    (["--batch", "1,x"], "positive ints, got '1,x'"),
    (["--batch", ""], "positive ints"),
    (["--directions", "fwd,backward"], "direction must be one of"),
    (["--against", "tvm"], "unknown baseline 'tvm'"),
    (["--against", "torch,none"], "unknown baseline 'none'"),
    (["--rounds", "0"], "positive int"),
    (["--min-time", "-1"], "number >= 0"),
])
def test_bad_arguments_fail_clearly(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_algorithm_lists():
    dirs = list(Direction)
    assert bench.algorithm_lists("auto", dirs) == {d: ["auto"] for d in dirs}
    every = bench.algorithm_lists("all", dirs)
    assert every[Direction.fwd] == ["auto", "direct", "im2col_gemm", "trim"]
    assert "gemm_col2im" in every[Direction.bwd_data] and "gemm_col2im" not in every[Direction.bwd_weight]
    named = bench.algorithm_lists("direct,gemm_col2im", dirs)
    assert named[Direction.fwd] == ["direct"] and named[Direction.bwd_data] == ["direct", "gemm_col2im"]
    with pytest.raises(ValueError, match="unknown algorithm 'winograd'"):
        bench.algorithm_lists("winograd", dirs)
    with pytest.raises(ValueError, match="unknown algorithm 'gemm_col2im'"):
        bench.algorithm_lists("gemm_col2im", [Direction.fwd])


@pytest.mark.parametrize("argv, message", [
    (["--layers", "nosuchlayer"], "matches no layer"),
    (["--algorithms", "winograd"], "unknown algorithm 'winograd'"),
])
def test_run_errors_are_reported_not_raised(argv, message, capsys):
    assert bench.run(parse(argv + ["--no-peak"])) == 2
    assert message in capsys.readouterr().err


def test_tiny_end_to_end_run_writes_json_plot_markdown(tmp_path, capsys, monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the run sets it; monkeypatch restores it afterwards
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)
    out = tmp_path / "r.json"
    argv = TINY_RUN + ["--json", str(out), "--plot", str(tmp_path / "r.png"), "--markdown", str(tmp_path / "b.md")]
    assert bench.run(parse(argv)) == 0
    printed = capsys.readouterr().out
    assert "plan[auto] vs torch" in printed and "alternating" in printed
    data = json.loads(out.read_text())
    assert data["format"] == "convforge-bench/1" and "command" in data["meta"] and data["meta"]["machine"]["cpu"]
    assert data["meta"]["settings"]["policy"]["rounds"] == 2
    assert [g["direction"] for g in data["groups"]] == ["fwd", "bwd_data", "bwd_weight"]
    for g in data["groups"]:
        assert g["layer"] == "server_03" and [e["label"] for e in g["entries"]] == ["torch", "plan[auto]"]
        for e in g["entries"]:
            assert e["error"] is None and len(e["rounds"]) == 2 and e["best_s"] > 0
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"
    markdown = (tmp_path / "b.md").read_text()
    assert "### plan[auto] vs torch" in markdown and "server_03" in markdown

    assert bench.run(parse(["--from-json", str(out), "--markdown", str(tmp_path / "again.md")])) == 0
    assert (tmp_path / "again.md").read_text() == markdown
