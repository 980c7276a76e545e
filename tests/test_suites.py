"""Suite files: counts, validity, and output sizes / GFLOP typed separately from the source tables."""

import pytest

from convforge import ConvProblem, suites

# "Out H×W" columns of papers.md §7.1 / §7.2 / §7.3, typed independently of the CSV files.
RESNET18_OUT = [112, 56, 56, 28, 28, 28, 14, 14, 14, 7, 7, 7]
RESNET50_OUT = [112, 56, 56, 56, 56, 28, 28, 28, 28, 28, 14, 14, 14, 14, 14, 7, 7, 7, 7, 7,
                56, 28, 28, 14, 14, 7]
DEEPBENCH_OUT = [
    (79, 341), (38, 166), (48, 480), (24, 240), (12, 120), (6, 60), (54, 54), (54, 54), (27, 27),
    (14, 14), (7, 7), (224, 224), (112, 112), (56, 56), (28, 28), (14, 14), (7, 7), (112, 112),
    (28, 28), (28, 28), (14, 14), (14, 14), (7, 7), (7, 7), (56, 56), (28, 28), (28, 28), (14, 14),
    (14, 14), (14, 14), (7, 7), (7, 7), (7, 7), (80, 349), (80, 350), (39, 174), (40, 175), (19, 87),
    (20, 84), (9, 41), (10, 42), (112, 112), (56, 56), (56, 56), (28, 28), (28, 28), (28, 28),
    (14, 14), (14, 14), (14, 14), (14, 14), (7, 7), (7, 7), (7, 7), (7, 7)]
# GFLOP at N=1 from the §7.3 table, for a sample of rows (1-based row number -> GFLOP)
DEEPBENCH_GFLOP = {1: 0.172, 2: 0.646, 13: 1.850, 19: 0.241, 33: 0.103, 36: 2.780, 40: 2.418, 54: 0.206}


def test_names():
    assert suites.names() == ["deepbench", "resnet18", "resnet50"]


@pytest.mark.parametrize("name, count", [("resnet18", 12), ("resnet50", 26), ("deepbench", 55)])
def test_counts_and_validity(name, count):
    problems = suites.load(name)
    assert len(problems) == count
    assert all(isinstance(p, ConvProblem) and p.name for p in problems)
    assert len({p.name for p in problems}) == count, "row names must be unique"
    distinct = {ConvProblem.parse(str(p).split('_"')[0]) for p in problems}
    assert len(distinct) == count, "rows must be distinct shapes"
    assert all(p.n == 1 and p.dilation == (1, 1) and p.groups == 1 for p in problems)


def test_output_sizes_match_tables():
    assert [(p.p, p.q) for p in suites.load("resnet18")] == [(o, o) for o in RESNET18_OUT]
    assert [(p.p, p.q) for p in suites.load("resnet50")] == [(o, o) for o in RESNET50_OUT]
    assert [(p.p, p.q) for p in suites.load("deepbench")] == DEEPBENCH_OUT


def test_deepbench_gflop_spot_check():
    problems = suites.load("deepbench")
    for row, gflop in DEEPBENCH_GFLOP.items():
        assert problems[row - 1].flops / 1e9 == pytest.approx(gflop, abs=0.0015), row


def test_resnet50_repeats():
    rows = suites.rows("resnet50")
    v1 = [r for r in rows if r.repeat > 0]
    v15 = [r for r in rows if int(r.extra["repeat_v1_5"]) > 0]
    assert len(v1) == 20 and len(v15) == 23
    assert sum(r.repeat for r in rows) == 53
    assert sum(int(r.extra["repeat_v1_5"]) for r in rows) == 53
    assert all(r.problem.name.endswith("_v1.5") for r in rows if r.repeat == 0)


def test_batch_override_and_errors():
    assert {p.n for p in suites.load("resnet18", batch=8)} == {8}
    with pytest.raises(ValueError, match="unknown suite 'vgg'"):
        suites.load("vgg")
    with pytest.raises(ValueError, match="batch"):
        suites.load("resnet18", batch=0)


def test_provenance_recorded():
    assert "W, H, C, N, K, S=filter_w, R=filter_h, pad_w, pad_h, stride_w, stride_h" in suites.provenance("deepbench")
    for name in suites.names():
        text = suites.provenance(name)
        assert "Source:" in text
        assert "dilation" in text
