"""Loading a run folder's results: pyperf files, summaries and manifest, and what is
reported missing when they are absent, unreadable or ambiguous."""

from __future__ import annotations

import json
from pathlib import Path

from perf.measure.results import load_run
from tests.run_fixtures import workload, write_run, write_suite


def test_time_comes_from_pyperf_not_the_summary(tmp_path: Path) -> None:
    root = tmp_path / "run"
    write_run(root, {"daemon_performance": [workload("medium", "core", 0.01)]})
    summary = root / "daemon_performance.crucible.json"
    doc = json.loads(summary.read_text())
    for sample in doc["benchmarks"]["daemon_performance.medium.core"]["samples"]:
        sample["values"]["time"] = 99.0
    summary.write_text(json.dumps(doc))
    (result,) = load_run(root).cases
    assert max(result.measured("time")) < 1.0


def test_corrupt_and_newer_files_are_reported(tmp_path: Path) -> None:
    root = write_run(
        tmp_path / "run",
        {
            "daemon_performance": [workload("medium", "data", 0.01)],
            "load_testing": [workload("burst", "data", 0.01)],
        },
    )
    (root / "daemon_performance.json").write_text("{not json", encoding="utf-8")
    summary = root / "load_testing.crucible.json"
    doc = json.loads(summary.read_text())
    doc["schema_version"] = 99
    summary.write_text(json.dumps(doc))
    run = load_run(root)
    details = {m.what: m.detail for m in run.missing}
    assert "unreadable" in details["daemon_performance.json"]
    assert "99" in details["load_testing.crucible.json"]


def test_two_summaries_of_one_suite_are_ambiguous_unless_named(tmp_path: Path) -> None:
    root = tmp_path / "run"
    root.mkdir()
    for side, t in (("base", 0.01), ("head", 0.008)):
        side_dir = tmp_path / side
        side_dir.mkdir()
        write_suite(side_dir, "daemon_performance", [workload("medium", "core", t)])
        for name in ("daemon_performance.json", "daemon_performance.crucible.json"):
            target = root / name.replace("daemon_performance", side)
            text = (side_dir / name).read_text()
            target.write_text(text.replace('"daemon_performance.json"', f'"{side}.json"'))
    run = load_run(root)
    assert not run.cases
    (entry,) = [m for m in run.missing if m.what == "daemon_performance"]
    assert "base.crucible.json" in entry.detail and "head.crucible.json" in entry.detail
    head = load_run(root, summaries=["head.crucible.json"])
    (case,) = head.cases
    assert max(case.measured("time")) < 0.0085
