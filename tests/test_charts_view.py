"""The HTML report's charts as assembled from the report's data."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from perf.decide.verdict import Verdict
from perf.report.analysis import Analysis, analyze_run_dir
from perf.report.charts_view import build_charts
from perf.report.view import build_report
from tests.report_fixtures import comp, mixed, outcome
from tests.run_fixtures import full_run


@pytest.fixture(scope="module")
def analysis(tmp_path_factory: pytest.TempPathFactory) -> Analysis:
    return analyze_run_dir(full_run(tmp_path_factory.mktemp("report-analysis")))


def test_charts_are_built_and_well_formed(tmp_path: Path, analysis: Analysis) -> None:
    report = build_report(outcome(tmp_path, mixed()), analysis)
    charts = build_charts(report)
    ids = [c.id for c in charts]
    assert ids[0] == "ratios"
    assert "latency-daemon_performance" in ids
    assert "sweep-rate_sweep-achieved" in ids and "sweep-rate_sweep-p99" in ids
    assert "rss-leak" in ids
    for chart in charts:
        ET.fromstring(str(chart.svg))
    many = build_report(
        outcome(
            tmp_path,
            [comp(f"b{i}", 1.0, Verdict.PASS) for i in range(200)],
            verdict=Verdict.PASS,
            exit_status=0,
        )
    )
    (ratios,) = build_charts(many, ratio_rows=30)
    assert "30 of 200" in ratios.caption
