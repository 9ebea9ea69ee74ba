"""Ratings: the docs/design.md#ratings bands, their edges, and the medium case's ratings."""

from __future__ import annotations

import pytest

from perf.report.analysis import Analysis, analyze_run_dir
from perf.report.ratings import rate
from tests.run_fixtures import full_run


@pytest.fixture(scope="module")
def analysis(tmp_path_factory: pytest.TempPathFactory) -> Analysis:
    return analyze_run_dir(full_run(tmp_path_factory.mktemp("analysis")))


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
