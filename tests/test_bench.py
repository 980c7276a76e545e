"""The benchmark harness with stand-in candidates and a fake clock: structure, ratios, alternation,
correctness gating, JSON round trip and report/plot output. No timing assertions on real time."""

import json
import math

import numpy as np
import pytest

from convforge import ConvProblem, Direction, reference
from convforge.bench import harness, report
from convforge.bench.baselines import reference_check
from convforge.bench.candidates import FunctionCandidate, KernelRunner, accepts_out
from convforge.bench.results import Results, geomean
from convforge.bench.timing import Case, Policy, StaticGroup, run_rounds, time_calls

TINY = [ConvProblem(1, 3, 4, 5, 6, 3, 2, stride=(2, 1), padding=(1, 0, 0, 1), name="tiny_a"),
        ConvProblem(2, 4, 2, 7, 7, 1, 1, name="tiny_b")]
FAST = Policy(rounds=2, warmup=0, min_calls=1, min_seconds=0.0)


class FakeClock:
    """Time only moves when a stand-in kernel says it spent some; `log` records who ran when."""

    def __init__(self):
        self.now, self.log = 0.0, []

    def __call__(self):
        return self.now

    def spend(self, who, seconds):
        self.now += seconds
        self.log.append(who)


def fake(clock, label, seconds, role="candidate", wrong=False, with_out=True):
    """A correct (or deliberately wrong) kernel that costs `seconds` on the fake clock per call."""

    def factory(problem, direction):
        def compute(a, b):
            result = reference.compute(problem, direction, a, b).astype(np.float32)
            clock.spend((problem.name, direction.value, label), seconds)
            return result * 1.5 if wrong else result

        if not with_out:
            return compute

        def kernel(a, b, out=None):
            result = compute(a, b)
            if out is None:
                return result
            out[...] = result
            return out
        return kernel
    return FunctionCandidate(label, factory, role)


def run(clock, candidates, baseline, policy=FAST, jobs=None, directions=tuple(Direction)):
    jobs = jobs or [harness.Job(p, repeat=i + 1) for i, p in enumerate(TINY)]
    timed = harness.prepare(jobs, list(directions), lambda d: candidates, [baseline] if baseline else [])
    clock.log.clear()
    return Results(harness.measure(timed, policy, clock), {"settings": {"threads": 2, "against": ["torch"]}})


def test_ratios_and_structure_with_fake_clock():
    clock = FakeClock()
    results = run(clock, [fake(clock, "cand", 0.001)], fake(clock, "base", 0.003, "baseline"))
    assert len(results.groups) == len(TINY) * 3
    for g in results.groups:
        assert [e.label for e in g.entries] == ["base", "cand"]
        cand = g.entry("cand")
        assert cand.check.ok and cand.check.against == "base"
        assert cand.rounds == [[pytest.approx(0.001)]] * 2
        assert cand.best == pytest.approx(0.001)
        assert g.ratio(cand) == pytest.approx(3.0)
        assert g.gflops(cand) == pytest.approx(g.problem.flops / 0.001 / 1e9)
    summary = report.direction_table(results, "cand")
    assert [row[:3] for row in summary.rows] == [[d, n, "1/1"] for d in ("fwd", "bwd_data", "bwd_weight")
                                                 for n in ("1", "2")]
    assert all(row[3] == "3.00" for row in summary.rows)


def test_alternation_interleaves_candidate_and_baseline():
    clock = FakeClock()
    run(clock, [fake(clock, "cand", 0.001)], fake(clock, "base", 0.002, "baseline"),
        directions=[Direction.fwd])
    names = [(layer, who) for layer, _, who in clock.log]
    first = [("tiny_a", "base"), ("tiny_a", "cand"), ("tiny_b", "base"), ("tiny_b", "cand")]
    second = [("tiny_a", "cand"), ("tiny_a", "base"), ("tiny_b", "cand"), ("tiny_b", "base")]
    assert names == first + second


def test_time_calls_warmup_min_calls_min_seconds_and_cap():
    clock = FakeClock()
    call = lambda: clock.spend("k", 0.01)  # noqa: E731
    times = time_calls(call, Policy(warmup=2, min_calls=3, min_seconds=0.0), clock)
    assert len(clock.log) == 5 and times == [pytest.approx(0.01)] * 3
    clock.log.clear()
    times = time_calls(call, Policy(warmup=0, min_calls=3, min_seconds=0.095, max_calls=100), clock)
    assert len(times) == 10
    times = time_calls(call, Policy(warmup=0, min_calls=3, min_seconds=10.0, max_calls=20), clock)
    assert len(times) == 20


def test_run_rounds_reverses_order_on_odd_rounds():
    clock = FakeClock()
    cases = [Case(k, lambda k=k: clock.spend(k, 0.001)) for k in "abc"]
    run_rounds([StaticGroup(cases)], Policy(rounds=3, warmup=0, min_calls=1, min_seconds=0), clock)
    assert clock.log == list("abc") + list("cba") + list("abc")
    assert all(len(c.rounds) == 3 for c in cases)


def test_wrong_and_failing_candidates_are_recorded_not_timed():
    clock = FakeClock()

    def broken(problem, direction):
        raise NotImplementedError("no such kernel")
    candidates = [fake(clock, "good", 0.001), fake(clock, "wrong", 0.0001, wrong=True),
                  FunctionCandidate("broken", broken)]
    results = run(clock, candidates, fake(clock, "base", 0.002, "baseline"))
    assert {who for _, _, who in clock.log} == {"good", "base"}
    for g in results.groups:
        wrong, failed = g.entry("wrong"), g.entry("broken")
        assert wrong.error.startswith("WrongResult") and not wrong.check.ok and not wrong.timed
        assert failed.error == "NotImplementedError: no such kernel" and failed.check is None
        assert math.isnan(g.ratio(wrong)) and g.ratio(g.entry("good")) == pytest.approx(2.0)
    table = report.algorithm_table(results)
    assert all(row[4:6] == ["fail", "fail"] and row[-2] == "good" for row in table.rows)
    assert any("NotImplementedError" in note for note in table.notes)


def test_without_baseline_candidates_are_checked_against_reference():
    clock = FakeClock()
    results = run(clock, [fake(clock, "cand", 0.001), fake(clock, "wrong", 0.001, wrong=True)], None)
    for g in results.groups:
        assert g.baseline is None and g.entry("cand").check.against == "float64 reference"
        assert g.entry("wrong").error.startswith("WrongResult")
        assert math.isnan(g.ratio(g.entry("cand")))


def test_output_is_preallocated_and_poisoned_for_the_check():
    seen = []

    def kernel(a, b, out=None):
        seen.append((id(out), bool(np.isnan(out).all())))
        out[...] = 1.0
        return out
    runner = KernelRunner(kernel, (2, 3))
    assert runner.uses_out and runner.info["preallocated_output"]
    assert (runner.result((None, None)) == 1.0).all()
    call = runner.timed_call((None, None))
    call(), call()
    assert seen[0][1] and seen[1][0] == seen[2][0]
    assert not accepts_out(lambda a, b: a) and accepts_out(lambda a, b, **kw: a)


def test_unwritten_output_fails_the_check():
    clock = FakeClock()
    lazy = FunctionCandidate("lazy", lambda p, d: (lambda a, b, out=None: out))
    results = run(clock, [lazy], fake(clock, "base", 0.001, "baseline"), directions=[Direction.fwd])
    assert all(g.entry("lazy").error.startswith("WrongResult") for g in results.groups)
    assert all(math.isnan(g.entry("lazy").check.max_rel_err) for g in results.groups)
    text = json.dumps(results.to_dict(), allow_nan=False)  # strict JSON even with a NaN error
    again = Results.from_dict(json.loads(text))
    assert math.isnan(again.groups[0].entry("lazy").check.max_rel_err) and not again.groups[0].entry("lazy").check.ok
    assert any("tiny_a N=1 fwd lazy: WrongResult" in note for note in report.layer_table(results, "lazy").notes)


def test_json_round_trip_keeps_raw_data_and_derived_figures():
    clock = FakeClock()
    results = run(clock, [fake(clock, "cand", 0.001), fake(clock, "other", 0.004)],
                  fake(clock, "base", 0.002, "baseline"))
    results.meta.update(command="convforge bench --suite x", peak={"isa": "avx2", "gflops": {"2": 100.0}})
    text = json.dumps(results.to_dict())
    again = Results.from_dict(json.loads(text))
    assert again.to_dict() == results.to_dict()
    assert [g.problem for g in again.groups] == [g.problem for g in results.groups]
    assert [g.repeat for g in again.groups] == [1, 1, 1, 2, 2, 2]
    assert report.markdown_section(again) == report.markdown_section(results)
    with pytest.raises(ValueError, match="not a convforge-bench"):
        Results.from_dict({"groups": []})


def test_report_tables_and_markdown():
    clock = FakeClock()
    results = run(clock, [fake(clock, "cand", 0.001), fake(clock, "other", 0.004)],
                  fake(clock, "base", 0.002, "baseline"))
    results.meta.update(command="convforge bench --suite x", peak={"isa": "avx2", "gflops": {"2": 100.0}})
    layer, summary, algos = report.tables(results)
    g = results.groups[0]
    assert layer.rows[0][:6] == ["tiny_a", "1", "fwd", f"{g.problem.flops / 1e9:.3f}", "1.000", "2.000"]
    assert layer.rows[0][8] == f"{100 * g.gflops(g.entry('cand')) / 100.0:.0f}"
    assert layer.rows[0][9] == "2.00"
    assert all(row[3] == "2.00" and row[-1] == "2.00" for row in summary.rows)
    assert all(row[-2] == "cand" and row[-1] == "2.00" for row in algos.rows)
    text = report.markdown_section(results)
    assert "convforge bench --suite x" in text and "alternating" in text and "| tiny_b |" in text
    assert "% peak: of the measured FMA peak 100.0 GFLOP/s" in text and "WARNING" not in text
    assert report.contention_note(results.meta) == ""
    results.meta["rounds"] = [{"fma_probe_gflops": 95.0}, {"fma_probe_gflops": 50.0}]
    assert report.contention_note(results.meta) == ("FMA probe before each round, as % of peak: 95%, 50%; "
                                                    "1 of 2 round(s) ran on a busy host (below 90%).")
    assert report.contention_note(results.meta) in report.markdown_section(results)
    results.meta["peak"]["gflops"]["2"] = g.gflops(g.entry("cand")) / 2
    assert any(n.startswith("WARNING: ") and "exceed the measured peak" in n
               for n in report.layer_table(results, "cand").notes)
    assert geomean([1.0, 4.0, math.nan]) == pytest.approx(2.0)


def test_plot_writes_png(tmp_path):
    clock = FakeClock()
    results = run(clock, [fake(clock, "cand", 0.001)], fake(clock, "base", 0.002, "baseline"))
    from convforge.bench.plot import ratio_chart

    path = ratio_chart(results, tmp_path / "ratios.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("problem", [
    ConvProblem(2, 3, 4, 9, 8, 3, 3, stride=2, padding=(1, 2, 0, 1), name="asym"),
    ConvProblem(1, 4, 6, 10, 9, 3, 2, stride=(1, 2), padding=(2, 1), dilation=(2, 1), groups=2, name="dil_grp")])
@pytest.mark.parametrize("direction", list(Direction))
@pytest.mark.parametrize("channels_last", [False, True])
def test_torch_baseline_matches_reference(problem, direction, channels_last):
    pytest.importorskip("torch")
    assert reference_check(problem, direction, np.random.default_rng(1), channels_last) < 1e-5


def test_two_baselines_ratio_against_first_and_best():
    clock = FakeClock()
    jobs = [harness.Job(p) for p in TINY]
    baselines = [fake(clock, "torch", 0.004, "baseline"), fake(clock, "torch_cl", 0.002, "baseline")]
    timed = harness.prepare(jobs, [Direction.fwd], lambda d: [fake(clock, "cand", 0.001)], baselines)
    meta = {"settings": {"threads": 2, "against": ["torch", "torch_cl"]}}
    results = Results(harness.measure(timed, FAST, clock), meta)
    g = results.groups[0]
    assert g.entry("torch_cl").check.against == "torch" and g.best_baseline.label == "torch_cl"
    assert g.ratio(g.entry("cand")) == pytest.approx(4.0)
    assert g.ratio(g.entry("cand"), g.best_baseline) == pytest.approx(2.0)
    layer = report.layer_table(results, "cand")
    assert layer.headers[4:7] == ["cand ms", "torch ms", "torch_cl ms"]
    assert layer.rows[0][-3:-1] == ["4.00", "2.00"]
    assert report.direction_table(results, "cand").rows[0][-1] == "2.00"
    assert report.algorithm_table(results).rows[0][3:8] == ["1.000", "4.000", "2.000", "cand", "4.00"]
    assert "torch and torch_cl and the candidates" in report.method_note(results.meta)


def test_policy_rejects_bad_values():
    with pytest.raises(ValueError, match="rounds"):
        Policy(rounds=0)
    with pytest.raises(ValueError, match="max_calls"):
        Policy(min_calls=10, max_calls=5)
    with pytest.raises(ValueError, match="warmup"):
        Policy(warmup=-1)


def test_convforge_kernel_candidate_follows_the_compile_contract(monkeypatch):
    """Until the host backend lands, a stand-in `convforge.compile` checks the wiring of the contract."""
    import convforge
    from convforge.bench.candidates import ConvForgeKernel

    calls = []

    class StandIn:
        provenance, config = "heuristic", {"algorithm": "direct", "tile": (4, 8)}

        def __init__(self, problem, direction):
            self.problem, self.direction, self.macs = problem, direction, problem.useful_macs

        def __call__(self, a, b, out=None):
            out[...] = reference.compute(self.problem, self.direction, a, b)
            return out

    def compile_(problem, direction, target="host", algorithm="auto", layout="NCHW", **options):
        calls.append((direction, target, algorithm, layout, options))
        return StandIn(problem, direction)
    monkeypatch.setattr(convforge, "compile", compile_, raising=False)
    clock = FakeClock()
    candidate = ConvForgeKernel("host", "direct", options={"tune": 4})
    results = run(clock, [candidate], fake(clock, "base", 0.001, "baseline"), directions=[Direction.bwd_data])
    assert calls == [(Direction.bwd_data, "host", "direct", "NCHW", {"tune": 4})] * len(TINY)
    entry = results.groups[0].entry("convforge[direct]")
    assert entry.timed and entry.check.ok
    assert entry.info["provenance"] == "heuristic" and entry.info["config"]["tile"] == [4, 8]
    assert entry.info["options"] == {"tune": 4}
    assert entry.info["preallocated_output"] is True and entry.info["macs"] == TINY[0].useful_macs
    monkeypatch.delattr(convforge, "compile")
    missing = run(clock, [candidate], None, directions=[Direction.fwd])
    assert "convforge.compile is not available" in missing.groups[0].entry("convforge[direct]").error


def test_ctrl_c_keeps_only_complete_rounds():
    clock = FakeClock()
    base = fake(clock, "base", 0.002, "baseline")
    timed = harness.prepare([harness.Job(p) for p in TINY], [Direction.fwd], lambda d: [fake(clock, "cand", 0.001)],
                            [base])
    calls = []

    def on_case(case):
        calls.append(case.key)
        if len(calls) == 10:  # second case of round 2 (4 cases per round)
            raise KeyboardInterrupt
    groups = harness.measure(timed, Policy(rounds=5, warmup=0, min_calls=1, min_seconds=0), clock, on_case)
    assert all(len(e.rounds) == 2 for g in groups for e in g.entries)


def test_run_is_prepare_then_measure():
    clock = FakeClock()
    results = harness.run([harness.Job(TINY[1], repeat=3)], ["fwd"], lambda d: [fake(clock, "cand", 0.001)],
                          [fake(clock, "base", 0.004, "baseline")], FAST, clock, meta={"command": "x"})
    (group,) = results.groups
    assert group.repeat == 3 and group.ratio(group.entry("cand")) == pytest.approx(4.0)
    assert results.meta == {"command": "x"} and results.candidate_labels == ["cand"]
