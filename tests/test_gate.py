"""The gate's refusals: every input it cannot trust ends in exit 2, never 0, and names
the file or ref and the command that fixes it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

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
