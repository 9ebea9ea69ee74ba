"""The figures beside the KPIs: error rates, memory efficiency, leaks, bottlenecks, the
scalability factor and the series the charts draw."""

from __future__ import annotations

import math

import pytest

from perf.report.analysis import Analysis, analyze_run_dir
from tests.run_fixtures import full_run, kpi


@pytest.fixture(scope="module")
def analysis(tmp_path_factory: pytest.TempPathFactory) -> Analysis:
    return analyze_run_dir(full_run(tmp_path_factory.mktemp("analysis")))


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


def test_chart_series_are_carried(analysis: Analysis) -> None:
    assert {p.coordinator for p in analysis.latency} >= {"data", "core", "reference"}
    (curve,) = [s for s in analysis.sweeps if s.coordinator == "core"]
    assert curve.p99_bound_s == pytest.approx(0.01)
    assert [p.passed for p in curve.points] == [True, False]
    assert all(len(r.points) == 3 for r in analysis.rss)
    assert all(math.isfinite(p.p99_s) for p in analysis.latency)
