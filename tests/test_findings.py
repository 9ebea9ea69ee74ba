"""Findings: strengths and weaknesses, recommendations with their triggers, and the
centralized daemon target."""

from __future__ import annotations

from pathlib import Path

import pytest

from perf.report.analysis import Analysis, analyze_run_dir
from perf.report.findings import TargetStatus
from perf.report.kpis import KpiVerdict
from tests.run_fixtures import full_run, kpi, spread, workload, write_run


@pytest.fixture(scope="module")
def analysis(tmp_path_factory: pytest.TempPathFactory) -> Analysis:
    return analyze_run_dir(full_run(tmp_path_factory.mktemp("analysis")))


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
