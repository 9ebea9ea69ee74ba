"""KPI comparisons: the sign of an improvement, its interval, the verdict after the
correction, and what a comparison says when it cannot be tested."""

from __future__ import annotations

from pathlib import Path

import pytest

from perf.report.analysis import Analysis, analyze_run_dir
from perf.report.kpis import KpiVerdict
from tests.run_fixtures import FakeCase, full_run, kpi, workload, write_run


@pytest.fixture(scope="module")
def analysis(tmp_path_factory: pytest.TempPathFactory) -> Analysis:
    return analyze_run_dir(full_run(tmp_path_factory.mktemp("analysis")))


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
