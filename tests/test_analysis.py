"""Architecture comparison end to end: a run folder analysed, and what is missing from it
said, never invented (tests/run_fixtures.py writes the folders as ``python -m perf run``
does)."""

from __future__ import annotations

from pathlib import Path

import pyperf
import pytest

from perf.measure.results import load_run
from perf.report.analysis import analyze, analyze_run_dir
from perf.report.findings import TargetStatus
from perf.report.kpis import KpiVerdict
from tests.run_fixtures import kpi, spread, workload, write_run, write_suite


def test_missing_coordinator_is_a_missing_entry_without_a_number(tmp_path: Path) -> None:
    cases = [
        workload("medium", "data", 0.010, latency_p99=spread(0.005)),
        workload("medium", "reference", 0.008, latency_p99=spread(0.004)),
    ]
    result = analyze_run_dir(write_run(tmp_path / "run", {"daemon_performance": cases}))
    c = kpi(result, "daemon_performance", "medium", "throughput")
    assert c.verdict is KpiVerdict.MISSING
    assert c.improvement_pct is None and c.ci_low_pct is None and c.p_value is None
    assert "core" in c.note and "missing" in c.note
    assert c.figure("core") is None and c.figure("data") is not None
    assert any(m.what == "coordinator core" for m in result.missing)
    assert all(t.status is TargetStatus.UNDETERMINED for t in result.target)
    assert not result.strengths and not result.scalability


def test_missing_suites_are_named(tmp_path: Path) -> None:
    cases = [workload("medium", c, 0.01) for c in ("data", "core", "reference")]
    result = analyze_run_dir(write_run(tmp_path / "run", {"daemon_performance": cases}))
    missing = {m.what for m in result.missing}
    assert {"load_testing", "memory_profiling", "scalability_testing"} <= missing
    assert not result.bottlenecks and not result.scalability and not result.error_rates
    scal = next(t for t in result.target if t.name == "scalability")
    assert scal.status is TargetStatus.UNDETERMINED and not scal.figures


def test_pyperf_file_without_summary_still_gives_throughput(tmp_path: Path) -> None:
    root = tmp_path / "run"
    root.mkdir()
    cases = [workload("medium", c, t) for c, t in (("data", 0.01), ("core", 0.01 / 1.2))]
    write_suite(root, "daemon_performance", cases, summary=False)
    run = load_run(root)
    assert any("summary not found" in m.detail for m in run.missing)
    result = analyze(run)
    c = kpi(result, "daemon_performance", "medium", "throughput")
    assert c.improvement_pct == pytest.approx(20.0, abs=1e-6)


def test_empty_folder_reports_every_suite_missing(tmp_path: Path) -> None:
    result = analyze_run_dir(tmp_path)
    assert {m.what for m in result.missing} >= {
        "daemon_performance",
        "load_testing",
        "memory_profiling",
        "scalability_testing",
    }
    assert not result.kpis
    assert all(t.status is TargetStatus.UNDETERMINED for t in result.target)
    assert all(r.rating is None and r.value is None for r in result.ratings)


def test_pyperf_files_of_several_suites_without_summaries(tmp_path: Path) -> None:
    """The gate's own run folder: one pyperf file per side holding every suite."""
    parts = tmp_path / "parts"
    parts.mkdir()
    write_suite(
        parts, "daemon_performance", [workload("medium", c, 0.01) for c in ("data", "core")]
    )
    write_suite(
        parts,
        "load_testing",
        [
            workload("burst", c, 0.25, latency_p99=spread(p))
            for c, p in (("data", 0.02), ("core", 0.01))
        ],
    )
    root = tmp_path / "run"
    root.mkdir()
    benches = [
        b
        for name in ("daemon_performance.json", "load_testing.json")
        for b in pyperf.BenchmarkSuite.load(str(parts / name)).get_benchmarks()
    ]
    pyperf.BenchmarkSuite(benches).dump(str(root / "head.json"))
    result = analyze_run_dir(root, pyperf_files=["head.json", "gone.json"])
    assert set(result.suites) == {"daemon_performance", "load_testing"}
    p99 = kpi(result, "load_testing", "burst", "latency_p99")
    assert p99.improvement_pct == pytest.approx(50.0)
    missing = {m.what: m.detail for m in result.missing}
    assert "summaries" in missing and "gone.json" in missing
    assert "memory_profiling" in missing
