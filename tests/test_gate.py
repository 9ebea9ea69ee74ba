"""The gate's refusals: every input it cannot trust ends in exit 2, never 0, and names
the file or ref and the command that fixes it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from perf.decide.policy import Mode
from perf.errors import ResultError
from perf.gate import GateConfig, RoundSamples, _sample_map
from perf.workload.plan import gated_keys

ROOT = Path(__file__).resolve().parent.parent


def _gate(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "GITHUB_ACTIONS"}
    return subprocess.run(
        [sys.executable, "-m", "perf.gate", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def test_base_ref_that_does_not_exist(tmp_path: Path) -> None:
    proc = _gate("--base", "no-such-ref-xyz", "--output", str(tmp_path / "out"))
    assert proc.returncode == 2, proc.stderr
    assert "no-such-ref-xyz" in proc.stderr and "--base REF" in proc.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("{ this is not json", "truncated"),
        (json.dumps({"kind": "crucible-perf-baseline", "schema_version": 99}), "newer"),
    ],
)
def test_corrupt_or_newer_baseline(tmp_path: Path, content: str, fragment: str) -> None:
    baseline = tmp_path / "quick.json"
    baseline.write_text(content)
    proc = _gate("--baseline", str(baseline), "--output", str(tmp_path / "out"))
    assert proc.returncode == 2
    assert str(baseline) in proc.stderr and fragment in proc.stderr
    assert "nox -s perf_baseline" in proc.stderr
    assert baseline.read_text() == content
    assert not (tmp_path / "out").exists()


def test_missing_baseline(tmp_path: Path) -> None:
    proc = _gate("--baseline", str(tmp_path / "none.json"), "--output", str(tmp_path / "o"))
    assert proc.returncode == 2
    assert "none.json" in proc.stderr and "nox -s perf_baseline" in proc.stderr


def test_unwritable_output_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    proc = _gate("--base", "HEAD", "--output", str(blocker / "results"))
    assert proc.returncode == 2
    assert str(blocker / "results") in proc.stderr and "--output DIR" in proc.stderr
    assert blocker.read_text() == "not a folder"


def test_crashed_benchmark(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = _gate(
        "--base",
        "HEAD",
        "--coordinators",
        "tests.gate_fixtures:CrashingCoordinator",
        "--output",
        str(out),
    )
    assert proc.returncode == 2, proc.stderr
    assert "crashed" in proc.stderr and "tests_gate_fixtures_CrashingCoordinator" in proc.stderr
    report = json.loads((out / "latest" / "report.json").read_text())
    assert report["verdict"] == "error"
    assert "could not decide" in (out / "latest" / "pr_comment.md").read_text()


PLAN = [
    {"bench": "s.a.core", "paced": False, "traced": False},
    {"bench": "s.b.core", "paced": True, "traced": True},
]


def test_gated_keys_follow_the_kind_of_case() -> None:
    assert gated_keys(PLAN) == [
        ("s.a.core", "time"),
        ("s.a.core", "rss_peak"),
        ("s.b.core", "latency_p99"),
        ("s.b.core", "allocated"),
    ]


def _round(samples: dict[str, dict[str, float | None]]) -> dict[str, object]:
    return {"calibration": {"seconds": 0.01}, "samples": samples}


def test_benchmark_on_one_side_only_is_an_error() -> None:
    samples = RoundSamples()
    samples.add("base", _round({"s.a.core": {"time": 1.0, "rss_peak": 2.0}}))
    samples.add("head", _round({"s.x.core": {"time": 1.0, "rss_peak": 2.0}}))
    keys = gated_keys(PLAN[:1])
    _sample_map(samples, "base", keys)
    with pytest.raises(ResultError, match="no time samples on the head side"):
        _sample_map(samples, "head", keys)


def test_zero_or_missing_samples_are_errors() -> None:
    samples = RoundSamples()
    samples.add("head", _round({"s.a.core": {"time": 0.0, "rss_peak": 2.0}}))
    with pytest.raises(ResultError, match="non-positive"):
        _sample_map(samples, "head", gated_keys(PLAN[:1]))
    samples = RoundSamples()
    samples.add("head", _round({"s.a.core": {"time": None, "rss_peak": 2.0}}))
    with pytest.raises(ResultError, match="missing"):
        _sample_map(samples, "head", gated_keys(PLAN[:1]))
    with pytest.raises(ResultError):
        _sample_map(RoundSamples(), "head", gated_keys(PLAN[:1]))


def test_differential_scenario_of_a_case() -> None:
    from perf.profiling.gate_profiles import _scenario_of

    assert _scenario_of({"crucible_scenario": "heavy"}) == "heavy"
    assert _scenario_of({"crucible_scenario": "light"}) == "medium"
    assert _scenario_of({"crucible_scenario": "payload16k_events1000"}) == "medium"
    assert _scenario_of({}) == "medium"


def test_repeats_merge_to_the_median_and_keep_missing_figures_missing() -> None:
    from perf.gate import merge_repeats

    merged = merge_repeats(
        [
            {"time": 3.0, "rss_peak": 10.0, "allocated": 7.0},
            {"time": 1.0, "rss_peak": 30.0},
            {"time": 2.0, "rss_peak": 20.0},
        ]
    )
    # The traced figure comes from the first ask alone; the others are medians.
    assert merged == {"time": 2.0, "rss_peak": 20.0, "allocated": 7.0}
    assert merge_repeats([{"time": 1.0}, {"time": None}]) == {"time": None}
    with pytest.raises(ValueError):
        merge_repeats([])


def test_unpaced_cases_repeat_and_paced_cases_do_not() -> None:
    from perf.workload.plan import UNPACED_REPEATS, plan_cases

    plan = [i for i in plan_cases("quick", ("core",)) if i.get("gated", True)]
    assert UNPACED_REPEATS > 1
    assert {item["repeats"] for item in plan if item["paced"]} == {1}
    assert {item["repeats"] for item in plan if not item["paced"]} == {UNPACED_REPEATS}


def test_transport_case_is_measured_on_the_head_side_and_not_gated() -> None:
    from perf.workload.plan import plan_cases

    plan = plan_cases("quick", ("data", "core"))
    daemon = [i for i in plan if i["coordinator"] == "core-daemon"]
    assert [i["bench"] for i in daemon] == ["daemon_performance.medium.core-daemon"]
    assert daemon[0]["sides"] == ["head"] and daemon[0]["gated"] is False
    assert all(bench != daemon[0]["bench"] for bench, _ in gated_keys(plan))
    # Without core there is nothing to set the daemon beside.
    assert not [i for i in plan_cases("quick", ("data",)) if "daemon" in i["coordinator"]]


def test_sample_worker_honours_warmup_and_traced_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    import perf.measure.sample as sample

    calls: list[tuple[int, bool, bool]] = []

    def fake(case: object, loops: int, warmup: bool, traced: bool = True) -> dict[str, float]:
        calls.append((loops, warmup, traced))
        return {"time": 1.0}

    monkeypatch.setattr(sample, "measure_case", fake)

    class Named:
        name = "s.a.core"

    item = {"loops": 3, "warmup": True}
    sample._case_result(Named(), item, {"case": 0})  # type: ignore[arg-type]
    sample._case_result(Named(), item, {"case": 0, "warmup": False, "traced": False})  # type: ignore[arg-type]
    sample._case_result(Named(), {"loops": 1, "warmup": False}, {"case": 0})  # type: ignore[arg-type]
    assert calls == [(3, True, True), (3, False, False), (1, False, True)]


def test_rounds_are_counted_with_or_without_a_calibration_figure() -> None:
    samples = RoundSamples()
    samples.add("head", {"calibration": None, "samples": {"s.a.core": {"time": 1.0}}})
    samples.add("head", {"calibration": None, "samples": {}})  # a round of other cases
    samples.add("base", _round({"s.a.core": {"time": 1.0}}))
    assert samples.rounds("head") == 2
    assert samples.rounds("base") == 1
    assert samples.calibration_s == {"base": [0.01]}
    assert samples.values["head"]["s.a.core"]["time"] == [1.0]


@pytest.mark.parametrize(("flag", "timed"), [({}, True), ({"calibrate": False}, False)])
def test_sample_worker_times_the_kernel_only_when_the_plan_asks(
    monkeypatch: pytest.MonkeyPatch, flag: dict[str, bool], timed: bool
) -> None:
    import perf.measure.sample as sample
    import perf.workload.calibration as calibration

    kernel_runs: list[int] = []

    def calibrate() -> float:
        kernel_runs.append(1)
        return 0.02

    monkeypatch.setattr(calibration, "calibrate", calibrate)
    plan = {"set": "smoke", "cases": [], "coordinators": ["core"], **flag}
    hello, cases = sample._setup(plan)
    assert cases == []
    assert kernel_runs == ([1] if timed else [])
    assert hello["calibration"] == (
        {"version": calibration.CALIBRATION_VERSION, "seconds": 0.02} if timed else None
    )


def test_sample_worker_names_a_coordinator_whose_warm_up_crashes() -> None:
    import io

    import perf.measure.sample as sample

    plan = {
        "set": "smoke",
        "cases": [],
        "coordinators": ["tests.gate_fixtures:CrashingCoordinator"],
        "calibrate": False,
    }
    replies = io.StringIO()
    assert sample.serve(plan, io.StringIO('{"case": 0}\n'), replies) == 1
    (line,) = replies.getvalue().splitlines()  # the hello only; no request was answered
    hello = json.loads(line)
    assert hello["bench"] == "tests_gate_fixtures_CrashingCoordinator"
    assert "warm-up workload crashed" in hello["error"] and "boom" in hello["error"]


def _synthetic_rounds(head_ratio: dict[str, float], calls: list[list[int]]) -> object:
    """A stand-in for perf.gate._run_rounds: each round adds base and head samples of the
    chosen cases; head is base times its case's ratio, with noise that makes 'flat'
    inconclusive forever and 'slow' a clear regression."""
    import random

    rng = random.Random(3)

    def run_rounds(
        sides: object,
        plan: list[dict[str, object]],
        samples: RoundSamples,
        count: int,
        rng_: object,
        work: object,
        t0: float,
        total_hint: int,
        indices: list[int] | None = None,
        budget_s: float | None = None,
    ) -> float:
        chosen = list(range(len(plan))) if indices is None else list(indices)
        for _ in range(count):
            calls.append(chosen)
            docs: dict[str, dict[str, dict[str, float | None]]] = {"base": {}, "head": {}}
            for i in chosen:
                bench = str(plan[i]["bench"])
                base = 1.0 + rng.uniform(-0.3, 0.3)
                spread = 0.15 if bench == "s.flat.core" else 0.02
                noise = rng.uniform(1 - spread, 1 + spread)
                rss = 100.0 + rng.uniform(-1.0, 1.0)
                docs["base"][bench] = {"time": base, "rss_peak": rss}
                docs["head"][bench] = {
                    "time": base * head_ratio[bench] * noise,
                    "rss_peak": rss + rng.uniform(-0.1, 0.1),
                }
            for side, per_bench in docs.items():
                samples.add(side, _round(dict(per_bench)))
        return 0.01

    return run_rounds


def _config(output: Path, budget_s: float) -> GateConfig:
    return GateConfig(
        mode=Mode.PR,
        base_ref="HEAD",
        baseline_path=None,
        set_name="quick",
        coordinators=("core",),
        strict=False,
        output=output,
        keep=1,
        rounds=None,
        budget_s=budget_s,
        seed=0,
    )


def test_extra_rounds_rerun_only_the_inconclusive_cases(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import random

    import perf.gate as gate
    from perf.decide.policy import Policy
    from perf.decide.verdict import Verdict, compare

    plan: list[dict[str, object]] = [
        {"bench": "s.slow.core", "paced": False, "traced": False},
        {"bench": "s.flat.core", "paced": False, "traced": False},
    ]
    calls: list[list[int]] = []
    runner = _synthetic_rounds({"s.slow.core": 1.2, "s.flat.core": 1.0}, calls)
    monkeypatch.setattr(gate, "_run_rounds", runner)
    policy = Policy(min_rounds=10, max_rounds=16)
    keys = gated_keys(plan)
    samples = RoundSamples()
    runner({}, plan, samples, 12, None, tmp_path, 0.0, 12)  # type: ignore[operator]

    def decide() -> list[object]:
        return compare(  # type: ignore[return-value]
            gate._sample_map(samples, "base", keys),
            gate._sample_map(samples, "head", keys),
            policy,
            paired=True,
        )

    config = _config(tmp_path, budget_s=1e9)
    final = gate._rounds_until_decided(
        {},
        plan,
        samples,
        random.Random(0),
        tmp_path,
        time.monotonic(),
        config,
        policy,
        decide,  # type: ignore[arg-type]
    )
    verdicts = {(c.benchmark, c.metric): c.verdict for c in final}
    assert verdicts[("s.slow.core", "time")] is Verdict.FAIL
    assert verdicts[("s.flat.core", "time")] is Verdict.INCONCLUSIVE
    # The 12 full rounds, then the flat case alone until it reached max_rounds.
    assert calls[:12] == [[0, 1]] * 12
    assert calls[12:] == [[1]] * 4
    assert {c.n_head for c in final if c.benchmark == "s.flat.core"} == {16}
    assert {c.n_head for c in final if c.benchmark == "s.slow.core"} == {12}


def test_extra_rounds_stop_at_the_time_budget(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import random

    import perf.gate as gate
    from perf.decide.policy import Policy
    from perf.decide.verdict import compare

    plan: list[dict[str, object]] = [{"bench": "s.flat.core", "paced": False, "traced": False}]
    calls: list[list[int]] = []
    runner = _synthetic_rounds({"s.flat.core": 1.0}, calls)
    monkeypatch.setattr(gate, "_run_rounds", runner)
    policy = Policy(min_rounds=10, max_rounds=30)
    keys = gated_keys(plan)
    samples = RoundSamples()
    runner({}, plan, samples, 12, None, tmp_path, 0.0, 12)  # type: ignore[operator]
    config = _config(tmp_path, budget_s=100.0)
    # Started 99.9 s ago: 12 rounds of 8.3 s each, so the next one would end past 100 s.
    started = time.monotonic() - 99.9
    final = gate._rounds_until_decided(
        {},
        plan,
        samples,
        random.Random(0),
        tmp_path,
        started,
        config,
        policy,
        lambda: compare(
            gate._sample_map(samples, "base", keys),
            gate._sample_map(samples, "head", keys),
            policy,
            paired=True,
        ),
    )
    assert len(calls) == 12
    assert {c.n_head for c in final} == {12}


def test_differential_profiles_stop_at_the_deadline(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import perf.profile
    from perf.decide.verdict import Comparison, Verdict
    from perf.profile import Capture, DiffResult
    from perf.profiling.gate_profiles import differentials

    profiled: list[tuple[str, str]] = []

    def fake(
        run_dir: Path, scenario: str, coordinator: str, *args: object, **kwargs: object
    ) -> DiffResult:
        profiled.append((coordinator, scenario))
        return DiffResult(
            run_dir=run_dir,
            scenario=scenario,
            coordinator=coordinator,
            cpu=None,
            alloc=None,
            base=Capture(
                coordinator=coordinator, scenario=scenario, label="b", folder="b", tree="b"
            ),
            head=Capture(
                coordinator=coordinator, scenario=scenario, label="h", folder="h", tree="h"
            ),
            artifacts=(),
            notes=(),
            duration_s=0.0,
        )

    monkeypatch.setattr(perf.profile, "differential", fake)

    def failed(bench: str) -> Comparison:
        return Comparison(
            benchmark=bench,
            metric="time",
            ratio=1.1,
            ci_low=1.05,
            ci_high=1.15,
            p_value=0.001,
            p_adjusted=0.01,
            threshold_pct=2.0,
            noise_pct=1.0,
            min_detectable_pct=2.0,
            n_base=12,
            n_head=12,
            verdict=Verdict.FAIL,
        )

    comparisons = [failed("s.medium.core"), failed("s.heavy.data")]
    meta = {
        "s.medium.core": {"crucible_coordinator_spec": "core", "crucible_scenario": "medium"},
        "s.heavy.data": {"crucible_coordinator_spec": "data", "crucible_scenario": "heavy"},
    }
    section = differentials(tmp_path, comparisons, meta, tmp_path, tmp_path, None)
    assert profiled == [("core", "medium"), ("data", "heavy")]
    profiled.clear()
    late = differentials(tmp_path, comparisons, meta, tmp_path, tmp_path, time.monotonic())
    assert profiled == []
    assert any("core on medium, data on heavy" in note for note in late.notes)
    assert "time limit" in (tmp_path / "differential.md").read_text()
    assert not any("time limit" in note for note in section.notes)


def test_a_round_alternates_sides_per_repeat_and_asks_head_only_cases_of_head(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import random

    import perf.gate as gate

    asked: list[tuple[str, dict[str, object]]] = []

    class FakeWorker:
        def __init__(self, side: str, tree: Path, plan_file: Path, label: str) -> None:
            self.side, self.tree, self.label = side, tree, label
            self.values = iter([3.0, 1.0, 2.0, 5.0, 4.0] * 4)

        def read(self) -> dict[str, object]:
            return {
                "crucible_file": str(self.tree / "crucible" / "__init__.py"),
                "calibration": {"seconds": 0.01},
            }

        def ask(self, request: dict[str, object]) -> dict[str, object]:
            asked.append((self.side, dict(request)))
            bench = "s.a.core" if request["case"] == 0 else "s.d.core-daemon"
            return {"bench": bench, "values": {"time": next(self.values)}}

        def close(self) -> None:
            pass

    monkeypatch.setattr(gate, "_Worker", FakeWorker)
    plan = [
        {"bench": "s.a.core", "warmup": True, "repeats": 3},
        {"bench": "s.d.core-daemon", "warmup": False, "repeats": 1, "sides": ["head"]},
    ]
    sides = {"base": tmp_path / "b", "head": tmp_path / "h"}
    docs = gate._run_round(sides, plan, tmp_path / "plan.json", random.Random(1), 1, [0, 1])
    # Case 0: three repeats, each asking both sides (in some order) before the next.
    first = asked[:6]
    for repeat in range(3):
        pair = first[2 * repeat : 2 * repeat + 2]
        assert {side for side, _ in pair} == {"base", "head"}
        assert all(r["warmup"] is (repeat == 0) and r["traced"] is (repeat == 0) for _, r in pair)
    # Case 1 is asked of the head side only, once.
    assert [(side, r["case"]) for side, r in asked[6:]] == [("head", 1)]
    # Each side's figure of case 0 is the median of its three answers (3, 1, 2) -> 2.
    assert docs["base"]["samples"] == {"s.a.core": {"time": 2.0}}
    assert docs["head"]["samples"]["s.a.core"] == {"time": 2.0}
    assert docs["head"]["samples"]["s.d.core-daemon"] == {"time": 5.0}


def _baseline_file(tmp_path: Path, kernel_s: list[float]) -> Path:
    from perf.decide.baseline import write_baseline
    from perf.workload.calibration import CALIBRATION_VERSION
    from tests.baseline_fixtures import baseline_document

    times = [0.020, 0.021, 0.0205, 0.0198, 0.0202, 0.0207]
    path = tmp_path / "quick.json"
    document = baseline_document(
        calibration={"version": CALIBRATION_VERSION, "seconds": kernel_s},
        samples={"s.a.core": {"time": times, "rss_peak": [3e7] * 6}},
    )
    write_baseline(path, document)
    return path


def _head_rounds(level: float, kernel_s: float) -> RoundSamples:
    samples = RoundSamples()
    for i in range(6):
        time_s = 0.0203 * level * (1.0 + 0.01 * (i % 3 - 1))
        samples.add(
            "head",
            {
                "calibration": {"seconds": kernel_s},
                "samples": {"s.a.core": {"time": time_s, "rss_peak": 3e7}},
            },
        )
    return samples


@pytest.mark.parametrize(
    ("kernel_s", "held", "note"),
    [(0.034, True, "70.0% slower"), (0.0199, False, "0.5% faster")],
)
def test_baseline_mode_holds_time_for_a_machine_that_moved(
    tmp_path: Path, kernel_s: float, held: bool, note: str
) -> None:
    from types import SimpleNamespace

    from perf.decide.baseline import load_baseline
    from perf.decide.policy import Policy
    from perf.decide.verdict import Verdict
    from perf.gate import _against_baseline

    baseline = load_baseline(_baseline_file(tmp_path, [0.019, 0.020, 0.021]))
    machine = SimpleNamespace(fingerprint="f" * 16, python_version="3.11.7")
    policy = Policy(mode=Mode.BASELINE, min_rounds=5)
    notes = ["an earlier note"]
    keys = gated_keys(PLAN[:1])
    found = _against_baseline(
        _head_rounds(1.65, kernel_s), keys, policy, 0, baseline, machine, notes
    )
    time_c = next(c for c in found if c.metric == "time")
    rss = next(c for c in found if c.metric == "rss_peak")
    assert time_c.machine_held is held
    assert time_c.verdict is (Verdict.INCONCLUSIVE if held else Verdict.FAIL)
    assert rss.verdict is Verdict.PASS and not rss.machine_held
    assert notes[0] == "an earlier note" and note in notes[-1] and len(notes) == 2
    # Asked again after more rounds: one kernel note, updated, not a second one.
    _against_baseline(_head_rounds(1.65, kernel_s), keys, policy, 0, baseline, machine, notes)
    assert len(notes) == 2


def test_baseline_from_another_machine_is_rescaled_not_held(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from perf.decide.baseline import load_baseline
    from perf.decide.policy import Policy
    from perf.gate import _against_baseline

    baseline = load_baseline(_baseline_file(tmp_path, [0.019, 0.020, 0.021]))
    machine = SimpleNamespace(fingerprint="0" * 16, python_version="3.11.7")
    notes: list[str] = []
    found = _against_baseline(
        _head_rounds(1.7, 0.034),
        gated_keys(PLAN[:1]),
        Policy(mode=Mode.BASELINE, min_rounds=5),
        0,
        baseline,
        machine,
        notes,
    )
    assert not any(c.machine_held for c in found)
    assert len(notes) == 1 and "another machine" in notes[0]


def test_progress_counts_rounds_then_the_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import random

    import perf.gate as gate

    monkeypatch.setattr(
        gate, "_run_round", lambda *a: {"head": {"calibration": None, "samples": {}}}
    )
    samples = RoundSamples()
    sides = {"head": tmp_path}
    t0 = time.monotonic()
    gate._run_rounds(sides, [{}], samples, 2, random.Random(0), tmp_path, t0, 12)
    gate._run_rounds(sides, [{}], samples, 1, random.Random(0), tmp_path, t0, 3, [0], 360.0)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("[gate] round 1/12 done") and "s left" in lines[0]
    assert lines[2].startswith("[gate] round 3 done") and "of the budget left" in lines[2]
    assert "at most 36" in lines[2] or "at most 35" in lines[2]
