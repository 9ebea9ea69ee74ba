"""python -m perf.tools.oc, run as a user runs it: a markdown table of simulated runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _oc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "perf.tools.oc", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_table_has_a_row_per_noise_model_and_a_column_per_change() -> None:
    proc = _oc("--runs", "3", "--models", "normal,t3", "--spreads", "0.1", "--multiples", "0,2")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("| noise") and "2x: time of medium.core failing" in lines[0]
    rows = [line for line in lines[2:] if line.startswith("|")]
    assert [row.split("|")[1].strip() for row in rows] == ["normal 0.1 %", "t3 0.1 %"]
    # No run of identical code failed; the doubled threshold always did.
    assert all(row.split("|")[2].strip() == "0.0 %" for row in rows)
    assert all(row.split("|")[4].strip() == "100.0 %" for row in rows)
    assert "3 runs per cell" in proc.stdout
    # The margin of a binomial rate at 1 %, 5 % and 50 % with 3 runs (normal approximation).
    assert "+/-11.3 points at 1 %, +/-24.7 at 5 %, +/-56.6 at 50 %" in proc.stdout


def test_the_timing_is_derived_from_a_run_folder(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    plan = [{"bench": "s.a.core", "paced": False, "traced": False, "repeats": 5, "warmup": True}]
    values = {
        side: {"s.a.core": {"time": [0.01, 0.011, 0.012], "rss_peak": [1e7, 1.01e7, 1e7]}}
        for side in ("base", "head")
    }
    durations = {side: {"s.a.core": [0.5, 0.6, 0.5]} for side in ("base", "head")}
    samples = {"plan": plan, "values": values, "durations_s": durations}
    (folder / "samples.json").write_text(json.dumps(samples))
    report = {
        "rounds": 3,
        "rounds_all_cases": 3,
        "duration_s": 9.0,
        "started_utc": "2026-12-08T00:00:00Z",
        "head_commit": "a" * 40,
        "base_label": "b" * 40,
    }
    (folder / "report.json").write_text(json.dumps(report))
    out = tmp_path / "timing.json"
    proc = _oc("--derive-timing", str(folder), "--timing", str(out))
    assert proc.returncode == 0, proc.stderr
    document = json.loads(out.read_text())
    assert document["kind"] == "crucible-perf-sim-timing" and document["date"] == "2026-12-08"
    assert "aaaaaaaaaa" in document["source"]
    assert document["cases"][0]["seconds"] == 1.0  # the median round, both sides
    assert document["round_s"] == pytest.approx((9.0 - 3.2) / 3, abs=1e-3)
