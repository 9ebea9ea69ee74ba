"""The gate's refusals: every input it cannot trust ends in exit 2, never 0, and names
the file or ref and the command that fixes it; and the extra rounds it adds while
comparisons are inconclusive."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

import perf.gate as gate
from perf.decide.policy import Policy
from perf.decide.verdict import Comparison, Verdict, compare
from perf.measure.rounds import RoundRunner, sample_map
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


def test_a_folder_at_latest_neither_hides_the_error_nor_is_replaced(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "latest").mkdir(parents=True)
    (out / "latest" / "notes.txt").write_text("mine\n")
    proc = _gate(
        "--base",
        "HEAD",
        "--coordinators",
        "tests.gate_fixtures:CrashingCoordinator",
        "--output",
        str(out),
    )
    assert proc.returncode == 2, proc.stderr
    assert "crashed" in proc.stderr and "IsADirectoryError" not in proc.stderr
    assert "internal error" not in proc.stderr
    assert f"{out / 'latest'} is a folder" in proc.stderr
    assert (out / "latest" / "notes.txt").read_text() == "mine\n"
    (run,) = [p for p in out.iterdir() if p.name != "latest"]
    assert json.loads((run / "report.json").read_text())["verdict"] == "error"


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


class _SyntheticRounds(RoundRunner):
    """A stand-in for the rounds of perf.measure.rounds: each round adds base and head
    samples of the chosen cases; head is base times its case's ratio, with noise that makes
    'flat' inconclusive forever and 'slow' a clear regression. ``calls`` records the cases
    of each round."""

    def __init__(
        self, plan: list[dict[str, object]], head_ratio: dict[str, float], t0: float
    ) -> None:
        super().__init__(
            sides={},
            plan=plan,
            plan_file=Path("plan.json"),
            rng=random.Random(0),
            t0=t0,
            say=lambda text: None,
        )
        self.head_ratio = head_ratio
        self.noise = random.Random(3)
        self.calls: list[list[int]] = []

    def run(
        self,
        count: int,
        total_hint: int,
        indices: Sequence[int] | None = None,
        budget_s: float | None = None,
    ) -> float:
        rng = self.noise
        chosen = list(range(len(self.plan))) if indices is None else list(indices)
        for _ in range(count):
            self.calls.append(chosen)
            docs: dict[str, dict[str, dict[str, float | None]]] = {"base": {}, "head": {}}
            for i in chosen:
                bench = str(self.plan[i]["bench"])
                base = 1.0 + rng.uniform(-0.3, 0.3)
                spread = 0.15 if bench == "s.flat.core" else 0.02
                noise = rng.uniform(1 - spread, 1 + spread)
                rss = 100.0 + rng.uniform(-1.0, 1.0)
                docs["base"][bench] = {"time": base, "rss_peak": rss}
                docs["head"][bench] = {
                    "time": base * self.head_ratio[bench] * noise,
                    "rss_peak": rss + rng.uniform(-0.1, 0.1),
                }
            for side, per_bench in docs.items():
                self.samples.add(side, {"calibration": {"seconds": 0.01}, "samples": per_bench})
        return 0.01


def _paired(runner: RoundRunner, policy: Policy) -> Callable[[], list[Comparison]]:
    keys = gated_keys(runner.plan)

    def decide() -> list[Comparison]:
        return compare(
            sample_map(runner.samples, "base", keys),
            sample_map(runner.samples, "head", keys),
            policy,
            paired=True,
        )

    return decide


def test_extra_rounds_rerun_only_the_inconclusive_cases() -> None:
    plan: list[dict[str, object]] = [
        {"bench": "s.slow.core", "paced": False, "traced": False},
        {"bench": "s.flat.core", "paced": False, "traced": False},
    ]
    runner = _SyntheticRounds(plan, {"s.slow.core": 1.2, "s.flat.core": 1.0}, time.monotonic())
    policy = Policy(min_rounds=10, max_rounds=16)
    runner.run(12, 12)
    final = gate._rounds_until_decided(runner, policy, 1e9, _paired(runner, policy))
    verdicts = {(c.benchmark, c.metric): c.verdict for c in final}
    assert verdicts[("s.slow.core", "time")] is Verdict.FAIL
    assert verdicts[("s.flat.core", "time")] is Verdict.INCONCLUSIVE
    # The 12 full rounds, then the flat case alone until it reached max_rounds.
    assert runner.calls[:12] == [[0, 1]] * 12
    assert runner.calls[12:] == [[1]] * 4
    assert {c.n_head for c in final if c.benchmark == "s.flat.core"} == {16}
    assert {c.n_head for c in final if c.benchmark == "s.slow.core"} == {12}


def test_extra_rounds_stop_at_the_time_budget() -> None:
    plan: list[dict[str, object]] = [{"bench": "s.flat.core", "paced": False, "traced": False}]
    # Started 99.9 s ago: 12 rounds of 8.3 s each, so the next one would end past 100 s.
    runner = _SyntheticRounds(plan, {"s.flat.core": 1.0}, time.monotonic() - 99.9)
    policy = Policy(min_rounds=10, max_rounds=30)
    runner.run(12, 12)
    final = gate._rounds_until_decided(runner, policy, 100.0, _paired(runner, policy))
    assert len(runner.calls) == 12
    assert {c.n_head for c in final} == {12}
