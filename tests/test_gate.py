"""The gate's refusals: every input it cannot trust ends in exit 2, never 0, and names
the file or ref and the command that fixes it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from perf.errors import ResultError
from perf.gate import RoundSamples, _sample_map, gated_keys

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
    from perf.gate_profiles import _scenario_of

    assert _scenario_of({"crucible_scenario": "heavy"}) == "heavy"
    assert _scenario_of({"crucible_scenario": "light"}) == "medium"
    assert _scenario_of({"crucible_scenario": "payload16k_events1000"}) == "medium"
    assert _scenario_of({}) == "medium"
