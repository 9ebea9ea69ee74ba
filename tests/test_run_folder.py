"""The gate's own files of a run folder: the manifest of a decided run, and the files of a
run that could not decide."""

from __future__ import annotations

import json
from pathlib import Path

from perf.decide.outcome import GateOutcome
from perf.decide.verdict import Verdict
from perf.errors import BaselineError
from perf.report.run_folder import write_error_files, write_manifest


def test_manifest_lists_the_decision_and_every_file(tmp_path: Path) -> None:
    (tmp_path / "report.md").write_text("report")
    outcome = GateOutcome(
        mode="pr",
        verdict=Verdict.PASS,
        exit_status=0,
        strict=False,
        comparisons=(),
        head_commit="b" * 40,
        head_dirty=False,
        base_label="a" * 40,
        rounds=12,
        max_rounds=70,
        started_utc="2026-11-26T00:00:00Z",
        duration_s=300.0,
        machine=None,
        run_dir=tmp_path,
    )
    write_manifest(outcome)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["kind"] == "gate" and manifest["verdict"] == "pass"
    assert manifest["base"] == "a" * 40 and manifest["rounds"] == 12
    assert manifest["files"] == ["report.md"]


def test_a_run_that_could_not_decide_says_so(tmp_path: Path) -> None:
    error = BaselineError("no stored baseline", "baselines/quick.json", "nox -s perf_baseline")
    write_error_files(tmp_path, "baseline", error)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["verdict"] == "error" and report["exit_status"] == 2
    assert "baselines/quick.json" in report["error"]
    assert "could not decide" in (tmp_path / "pr_comment.md").read_text()
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["mode"] == "baseline" and manifest["verdict"] == "error"
    assert manifest["files"] == ["pr_comment.md", "report.json"]
