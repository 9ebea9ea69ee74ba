"""The report's data: rows, their order and classes, the self-measurement, status,
links, the analysis arranged for tables, and the summary sentences."""

from __future__ import annotations

from pathlib import Path

import pytest

from perf.decide.policy import Direction
from perf.decide.verdict import Verdict
from perf.report.analysis import Analysis, analyze_run_dir
from perf.report.render import render_pr_comment
from perf.report.view import REPORT_FILES, build_report, comparison_row, rounds_text
from perf.rundir import Artifact
from tests.report_fixtures import MACHINE, comp, mixed, outcome
from tests.run_fixtures import full_run


@pytest.fixture(scope="module")
def analysis(tmp_path_factory: pytest.TempPathFactory) -> Analysis:
    return analyze_run_dir(full_run(tmp_path_factory.mktemp("report-analysis")))


def test_rows_are_sorted_fail_first_and_classified(tmp_path: Path) -> None:
    report = build_report(outcome(tmp_path, mixed(), machine=MACHINE))
    assert report.status == "fail"
    assert dict(report.counts) == {"pass": 4, "fail": 2, "inconclusive": 1, "total": 7}
    assert [r.verdict for r in report.comparisons[:3]] == ["fail", "fail", "inconclusive"]
    # the worse regression first
    assert report.regressions[0].benchmark == "daemon_performance.heavy.core"
    assert [r.benchmark for r in report.inconclusive] == ["load_testing.burst.core"]
    improved = {(r.benchmark, r.metric) for r in report.improvements}
    assert improved == {
        ("daemon_performance.medium.core", "latency_p99"),
        ("scalability_testing.rate_sweep.core", "throughput_max_eps"),
    }
    assert report.headline.startswith("Performance gate: FAIL, 2 regressions")


def test_comparison_row_worse_and_change_for_both_directions() -> None:
    lower = comparison_row(comp("a", 1.05, Verdict.FAIL))
    assert lower.change_pct == pytest.approx(5.0)
    assert lower.worse_pct == pytest.approx(5.0)
    higher = comparison_row(
        comp("b", 1.05, Verdict.PASS, direction=Direction.HIGHER_IS_BETTER, metric="throughput")
    )
    assert higher.change_pct == pytest.approx(5.0)
    assert higher.worse_pct == pytest.approx(-5.0)
    assert higher.improved
    assert higher.change_low_pct == pytest.approx(4.5)
    assert not lower.detectable or lower.min_detectable_pct <= lower.threshold_pct


def test_an_improvement_is_judged_by_its_interval_not_the_regression_test() -> None:
    # The p-value tests for a regression, so a real improvement has p near 1; its interval,
    # wholly on the good side and beyond the noise floor, is what marks it.
    clear = comparison_row(comp("a", 0.95, Verdict.PASS, p_adjusted=1.0))
    within_noise = comparison_row(comp("b", 0.998, Verdict.PASS, p_adjusted=1.0))
    assert clear.improved
    assert not within_noise.improved


def test_an_improvement_finding_quotes_its_interval_not_the_regression_p(tmp_path: Path) -> None:
    better = comp("daemon_performance.light.core", 0.95, Verdict.PASS, p_adjusted=1.0)
    report = build_report(outcome(tmp_path, [better], verdict=Verdict.PASS))
    (finding,) = [f for f in report.key_findings if f.startswith("Improvement:")]
    assert "+5.00 % better (change -5.50 % to -4.50 %, clear of the 0.40 % noise floor)" in finding
    assert "p_adj" not in finding


def test_self_measurement_figures(tmp_path: Path) -> None:
    report = build_report(outcome(tmp_path, mixed(), machine=MACHINE))
    noise = report.noise
    assert noise.comparisons == 7
    assert noise.median_noise_pct == pytest.approx(0.4)
    assert noise.max_noise_pct == pytest.approx(1.0)
    assert "rate_sweep" in noise.max_noise_subject
    assert noise.max_min_detectable_pct == pytest.approx(2.5)
    assert noise.undetectable == 1  # 2.5 % detectable against a 2 % threshold
    assert noise.load_avg_before == (1.2, 1.1, 0.9)
    assert noise.other_cpu_pct_max == pytest.approx(14.0)
    assert report.noise_rows[0].benchmark == "daemon_performance.light.core"
    unmeasured = build_report(outcome(tmp_path, mixed())).noise
    assert unmeasured.load_avg_before is None and unmeasured.cpu_samples == 0


@pytest.mark.parametrize(
    ("verdict", "exit_status", "errors", "status"),
    [
        (Verdict.PASS, 0, (), "pass"),
        (Verdict.INCONCLUSIVE, 0, (), "inconclusive"),
        (Verdict.INCONCLUSIVE, 1, (), "inconclusive"),
        (Verdict.FAIL, 1, (), "fail"),
        (Verdict.INCONCLUSIVE, 2, ("baseline.json: corrupt",), "undecided"),
        (Verdict.PASS, 2, ("a worker crashed",), "undecided"),
    ],
)
def test_status_follows_the_exit_status(
    tmp_path: Path, verdict: Verdict, exit_status: int, errors: tuple[str, ...], status: str
) -> None:
    report = build_report(
        outcome(tmp_path, mixed(), verdict=verdict, exit_status=exit_status, errors=errors)
    )
    assert report.status == status
    if errors:
        assert errors[0] in report.headline
        assert any(errors[0] in line for line in report.executive_summary)


def test_artifacts_profiles_and_links(tmp_path: Path) -> None:
    arts = [
        Artifact(label="daemon_performance results", path="daemon_performance.json", kind="pyperf"),
        Artifact(label="core publish flame graph", path="profiles/core publish.svg", kind="svg"),
        Artifact(label="memray", path="profiles/core.html", kind="flamegraph"),
    ]
    report = build_report(outcome(tmp_path, mixed(), artifacts=arts))
    assert [a.path for a in report.artifacts] == ["daemon_performance.json"]
    assert [a.kind for a in report.profiles] == ["svg", "flamegraph"]
    assert report.profiles[0].href == "profiles/core%20publish.svg"
    assert not report.profiles[0].absolute
    linked = build_report(
        outcome(tmp_path, mixed(), artifacts=arts), link_base="https://ci.example/run/7/"
    )
    assert linked.profiles[0].href == "https://ci.example/run/7/profiles/core%20publish.svg"
    assert {a.path for a in report.reports} == set(REPORT_FILES[1:])
    none = build_report(outcome(tmp_path, mixed()))
    assert none.profiles == ()
    assert "no profiles captured in this run" in render_pr_comment(none)


def test_analysis_view_aligns_figures_with_coordinators(tmp_path: Path, analysis: Analysis) -> None:
    report = build_report(outcome(tmp_path, mixed()), analysis)
    view = report.analysis
    assert view is not None
    assert view.coordinators == ("data", "core", "reference")
    medium = next(g for g in view.groups if g.case == "medium")
    row = next(r for r in medium.rows if r.kpi == "throughput")
    data, core, reference = row.values
    assert data is not None and core is not None and reference is not None
    assert core / data == pytest.approx(1.2)
    assert row.improvement_pct == pytest.approx(20.0)
    assert view.target_total == 4 and view.target_met == 4
    assert any("throughput" in line for line in report.key_findings)
    assert any("target" in line for line in report.executive_summary)
    ratings = {r.kpi: r for r in view.ratings}
    assert [c.coordinator for c in ratings["throughput"].cells] == ["data", "core", "reference"]


def test_rounds_text_tells_full_rounds_from_extra_ones() -> None:
    assert rounds_text(12, None, 50) == "12 rounds (up to 50 per comparison)"
    assert rounds_text(12, 12, 50) == "12 rounds (up to 50 per comparison)"
    assert rounds_text(30, 12, 50) == (
        "12 rounds of every case and 18 more of the inconclusive ones (up to 50 per comparison)"
    )
