"""Architecture comparison: known answers on small synthetic run folders
(tests/run_fixtures.py writes them as ``python -m perf run`` does)."""

from __future__ import annotations

import math
from pathlib import Path

import pyperf
import pytest

from perf.measure.results import load_run
from perf.report.analysis import (
    Analysis,
    KpiComparison,
    KpiVerdict,
    TargetStatus,
    analyze,
    analyze_run_dir,
    rate,
)
from tests.run_fixtures import FakeCase, full_run, spread, workload, write_run, write_suite


def kpi(analysis: Analysis, suite: str, case: str, name: str) -> KpiComparison:
    for c in analysis.kpis:
        if (c.suite, c.case, c.kpi) == (suite, case, name):
            return c
    raise AssertionError(f"no KPI {name} for {suite}.{case}")


@pytest.fixture(scope="module")
def analysis(tmp_path_factory: pytest.TempPathFactory) -> Analysis:
    return analyze_run_dir(full_run(tmp_path_factory.mktemp("analysis")))


# --------------------------------------------------------------------------------------------
# Known answers
# --------------------------------------------------------------------------------------------


def test_core_20pct_faster_gives_plus_20pct_throughput_with_interval(analysis: Analysis) -> None:
    c = kpi(analysis, "daemon_performance", "medium", "throughput")
    assert c.improvement_pct == pytest.approx(20.0, abs=1e-6)
    assert c.ci_low_pct is not None and c.ci_high_pct is not None
    assert c.ci_low_pct <= 20.0 <= c.ci_high_pct
    assert c.ci_low_pct > 0  # the +-1 % spread cannot reach a 20 % shift
    assert c.verdict is KpiVerdict.BETTER
    assert c.p_adjusted is not None and c.p_adjusted < analysis.alpha
    data = c.figure("data")
    assert data is not None and data.median == pytest.approx(1000 / 0.010, rel=1e-3)
    assert data.n == 10


def test_lower_is_better_sign_is_flipped(analysis: Analysis) -> None:
    # p99 4 ms against 5 ms: 20 % lower latency is a +20 % improvement.
    c = kpi(analysis, "daemon_performance", "medium", "latency_p99")
    assert c.improvement_pct == pytest.approx(20.0, abs=1e-6)
    assert c.ratio == pytest.approx(0.8)
    assert c.verdict is KpiVerdict.BETTER


def test_identical_figures_are_equal_not_better(analysis: Analysis) -> None:
    c = kpi(analysis, "daemon_performance", "medium", "rss_peak")
    assert c.improvement_pct == pytest.approx(0.0, abs=1e-9)
    assert c.verdict is KpiVerdict.EQUAL


def test_headroom_and_scalability_factor_from_the_reference(analysis: Analysis) -> None:
    # actual +50 % (1,500 vs 1,000); expected = reference's +100 % (2,000 vs 1,000).
    (factor,) = [f for f in analysis.scalability if f.kpi == "throughput_max"]
    assert factor.actual_pct == pytest.approx(50.0)
    assert factor.expected_pct == pytest.approx(100.0)
    assert factor.factor == pytest.approx(0.5)
    through = kpi(analysis, "daemon_performance", "medium", "throughput")
    assert through.headroom_pct == pytest.approx(50.0)
    assert through.scalability_factor == pytest.approx(0.4)


def test_error_rate_is_failed_over_total(analysis: Analysis) -> None:
    (row,) = [r for r in analysis.error_rates if r.case == "spike_faults"]
    rates = {e.coordinator: e for e in row.rates}
    # 10 samples x 2 loops x 1,000 events; 10 % and 5 % failed.
    assert rates["data"].total == 20_000
    assert rates["data"].failed == 2_000
    assert rates["data"].rate_pct == pytest.approx(10.0)
    assert rates["core"].rate_pct == pytest.approx(5.0)
    assert row.difference_pp == pytest.approx(-5.0)
    assert row.faults


def test_memory_efficiency_is_freed_over_allocated(analysis: Analysis) -> None:
    eff = {e.coordinator: e for e in analysis.memory_efficiency}
    assert eff["data"].efficiency_pct == pytest.approx(90.0)
    assert eff["core"].efficiency_pct == pytest.approx(95.0)
    assert eff["core"].allocated_bytes == pytest.approx(10_000.0)


def test_leak_suspected_when_the_interval_is_above_zero(analysis: Analysis) -> None:
    leaks = {x.coordinator: x for x in analysis.leaks}
    assert leaks["core"].suspected and leaks["core"].slope_bytes_per_1k == pytest.approx(500.0)
    assert not leaks["data"].suspected
    assert any("retains memory" in w.text for w in analysis.weaknesses)


def test_bottlenecks_come_from_the_sweep_labels(analysis: Analysis) -> None:
    necks = {b.coordinator: b for b in analysis.bottlenecks}
    assert necks["core"].binding == "queue"
    assert necks["data"].binding == "cpu"
    assert necks["core"].max_sustainable == pytest.approx(1500.0, rel=1e-3)
    assert necks["core"].limit_reached


def test_ratings_on_the_medium_case(analysis: Analysis) -> None:
    got = {(r.kpi, r.coordinator): r for r in analysis.ratings}
    assert got[("throughput", "data")].rating == "good"  # 100,000 events/s
    assert got[("latency_p50", "core")].rating == "excellent"  # 1 ms
    assert got[("rss_peak", "core")].rating == "efficient"  # 40 MiB
    assert got[("cpu", "core")].rating == "acceptable"  # 60 %
    assert got[("cpu", "core")].value == pytest.approx(60.0, rel=1e-2)


@pytest.mark.parametrize(
    ("kpi_name", "value", "expected"),
    [
        ("throughput", 1000.1, "good"),
        ("throughput", 1000.0, "acceptable"),
        ("throughput", 500.0, "acceptable"),
        ("throughput", 499.9, "poor"),
        ("latency_p50", 0.0099, "excellent"),
        ("latency_p50", 0.010, "good"),
        ("latency_p50", 0.050, "good"),
        ("latency_p50", 0.0501, "acceptable"),
        ("latency_p50", 0.2001, "poor"),
        ("rss_peak", 99 * 2**20, "efficient"),
        ("rss_peak", 300 * 2**20, "acceptable"),
        ("rss_peak", 501 * 2**20, "poor"),
        ("cpu", 49.0, "efficient"),
        ("cpu", 80.0, "acceptable"),
        ("cpu", 80.5, "poor"),
    ],
)
def test_rating_thresholds(kpi_name: str, value: float, expected: str) -> None:
    assert rate(kpi_name, value) == expected


def test_target_items_met_or_not_with_figures(analysis: Analysis) -> None:
    target = {t.name: t for t in analysis.target}
    assert set(target) == {"throughput", "memory", "scalability", "resilience"}
    assert target["throughput"].status is TargetStatus.MET
    assert target["memory"].status is TargetStatus.MET  # identical allocations count as equal
    assert target["scalability"].status is TargetStatus.MET
    assert target["resilience"].status is TargetStatus.MET
    assert any("error rate" in f for f in target["resilience"].figures)
    for t in target.values():
        assert t.figures, t.name
        assert any(ch.isdigit() for f in t.figures for ch in f)


def test_recommendations_name_their_trigger(analysis: Analysis) -> None:
    assert analysis.recommendations
    for rec in analysis.recommendations:
        assert rec.text and rec.trigger
        assert any(ch.isdigit() for ch in rec.trigger), rec.trigger
    triggers = " ".join(r.trigger for r in analysis.recommendations)
    assert "binding resource queue" in triggers  # core's sweep bottleneck
    assert "retained bytes" in triggers  # core's leak


def test_worse_kpi_is_a_weakness_and_fails_the_target(tmp_path: Path) -> None:
    cases = [
        workload("medium", "data", 0.010, rss_peak=spread(40e6)),
        workload("medium", "core", 0.010, rss_peak=spread(60e6)),
    ]
    result = analyze_run_dir(write_run(tmp_path / "run", {"daemon_performance": cases}))
    rss = kpi(result, "daemon_performance", "medium", "rss_peak")
    assert rss.verdict is KpiVerdict.WORSE
    assert rss.improvement_pct == pytest.approx(-50.0)
    memory = next(t for t in result.target if t.name == "memory")
    assert memory.status is TargetStatus.NOT_MET
    assert any("peak rss" in w.text for w in result.weaknesses)
    assert any("peak rss" in r.trigger for r in result.recommendations)


# --------------------------------------------------------------------------------------------
# Missing data: said, never invented
# --------------------------------------------------------------------------------------------


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


def test_too_few_samples_is_undetermined_with_a_reason(tmp_path: Path) -> None:
    cases = [
        FakeCase(case="medium", coordinator="data", values={"time": [0.010, 0.011]}),
        FakeCase(case="medium", coordinator="core", values={"time": [0.008, 0.0085]}),
    ]
    result = analyze_run_dir(write_run(tmp_path / "run", {"daemon_performance": cases}))
    c = kpi(result, "daemon_performance", "medium", "throughput")
    assert c.verdict is KpiVerdict.UNDETERMINED
    assert c.improvement_pct is not None  # measured medians, not invented
    assert "too few samples" in c.note
    assert any("more samples" in r.text.lower() for r in result.recommendations)


def test_zero_values_get_no_interval(tmp_path: Path) -> None:
    cases = [
        workload("medium", "data", 0.01, success_rate_pct=[0.0] * 10),
        workload("medium", "core", 0.01, success_rate_pct=[0.0] * 10),
    ]
    result = analyze_run_dir(write_run(tmp_path / "run", {"daemon_performance": cases}))
    c = kpi(result, "daemon_performance", "medium", "success_rate")
    assert c.verdict is KpiVerdict.UNDETERMINED
    assert c.ci_low_pct is None and c.improvement_pct is None


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


def test_chart_series_are_carried(analysis: Analysis) -> None:
    assert {p.coordinator for p in analysis.latency} >= {"data", "core", "reference"}
    (curve,) = [s for s in analysis.sweeps if s.coordinator == "core"]
    assert curve.p99_bound_s == pytest.approx(0.01)
    assert [p.passed for p in curve.points] == [True, False]
    assert all(len(r.points) == 3 for r in analysis.rss)
    assert all(math.isfinite(p.p99_s) for p in analysis.latency)


def test_rating_recommendation_only_where_the_candidate_rates_below_the_base(
    tmp_path: Path,
) -> None:
    cases = [
        workload("medium", "data", 0.01, cpu_pct=spread(40.0), latency_p50=spread(0.3)),
        workload("medium", "core", 0.01, cpu_pct=spread(90.0), latency_p50=spread(0.3)),
    ]
    result = analyze_run_dir(write_run(tmp_path / "run", {"daemon_performance": cases}))
    triggers = [r.trigger for r in result.recommendations if "medium-load" in r.text]
    # CPU: core poor where data is efficient; latency: both poor (300 ms), so no advice.
    assert len(triggers) == 1
    assert "CPU core 90" in triggers[0] and "(poor)" in triggers[0]


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
