"""Reports: the data the builder produces, escaping, size limits, JSON shape, file writing."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import jinja2
import pytest

from perf.decide.outcome import GateOutcome
from perf.decide.policy import Direction
from perf.decide.verdict import Comparison, Verdict
from perf.errors import OutputError
from perf.measure.machine import MachineLoad
from perf.report.analysis import Analysis, analyze_run_dir
from perf.report.charts_view import build_charts
from perf.report.github import github_annotations, github_summary
from perf.report.render import (
    PR_COMMENT_LIMIT,
    environment,
    render_html,
    render_markdown,
    render_pr_comment,
    report_json,
    write_reports,
)
from perf.report.view import REPORT_FILES, build_report, comparison_row
from perf.rundir import Artifact
from tests.run_fixtures import full_run

EVIL = "evil.<script>alert(1)</script>.core"


def comp(
    benchmark: str,
    ratio: float,
    verdict: Verdict,
    *,
    metric: str = "time",
    direction: Direction = Direction.LOWER_IS_BETTER,
    threshold_pct: float = 2.0,
    noise_pct: float = 0.4,
    min_detectable_pct: float = 0.9,
    p_adjusted: float = 0.001,
    half_width: float = 0.005,
) -> Comparison:
    return Comparison(
        benchmark=benchmark,
        metric=metric,
        ratio=ratio,
        ci_low=ratio - half_width,
        ci_high=ratio + half_width,
        p_value=p_adjusted / 4,
        p_adjusted=p_adjusted,
        threshold_pct=threshold_pct,
        noise_pct=noise_pct,
        min_detectable_pct=min_detectable_pct,
        n_base=20,
        n_head=20,
        verdict=verdict,
        direction=direction,
        reason=f"{verdict.value} because of the figures",
    )


def outcome(
    tmp_path: Path,
    comparisons: Sequence[Comparison],
    *,
    verdict: Verdict = Verdict.FAIL,
    exit_status: int = 1,
    artifacts: Sequence[Artifact] = (),
    errors: Sequence[str] = (),
    warnings: Sequence[str] = (),
    machine: MachineLoad | None = None,
) -> GateOutcome:
    return GateOutcome(
        mode="pr",
        verdict=verdict,
        exit_status=exit_status,
        strict=False,
        comparisons=tuple(comparisons),
        head_commit="abcdef1234567890abcdef1234567890abcdef12",
        head_dirty=False,
        base_label="0123456789ab",
        rounds=20,
        max_rounds=30,
        started_utc="2026-11-26T20:00:00Z",
        duration_s=372.0,
        machine=machine,
        run_dir=tmp_path,
        artifacts=tuple(artifacts),
        warnings=tuple(warnings),
        errors=tuple(errors),
    )


MACHINE = MachineLoad(
    load_avg_before=(1.2, 1.1, 0.9),
    load_avg_after=(1.5, 1.2, 1.0),
    other_cpu_pct_mean=3.2,
    other_cpu_pct_max=14.0,
    samples=370,
)


def mixed() -> list[Comparison]:
    return [
        comp("daemon_performance.light.core", 1.06, Verdict.FAIL, min_detectable_pct=2.5),
        comp("daemon_performance.heavy.core", 1.10, Verdict.FAIL),
        comp("daemon_performance.medium.core", 1.003, Verdict.PASS),
        comp(
            "daemon_performance.medium.core",
            0.85,
            Verdict.PASS,
            metric="latency_p99",
            threshold_pct=10.0,
        ),
        comp(
            "load_testing.burst.core",
            1.08,
            Verdict.INCONCLUSIVE,
            metric="latency_p99",
            threshold_pct=10.0,
            p_adjusted=0.2,
        ),
        comp(
            "scalability_testing.rate_sweep.core",
            1.2,
            Verdict.PASS,
            metric="throughput_max_eps",
            direction=Direction.HIGHER_IS_BETTER,
            threshold_pct=10.0,
            noise_pct=1.0,
        ),
        comp(EVIL, 0.999, Verdict.PASS, p_adjusted=0.9),
    ]


@pytest.fixture(scope="module")
def analysis(tmp_path_factory: pytest.TempPathFactory) -> Analysis:
    return analyze_run_dir(full_run(tmp_path_factory.mktemp("report-analysis")))


# --------------------------------------------------------------------------------------------
# The builder's data
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------


def test_environment_is_cached_strict_and_escapes_html_only() -> None:
    env = environment()
    assert env is environment()
    assert env.undefined is jinja2.StrictUndefined
    assert callable(env.autoescape)
    assert env.autoescape("report.html") is True
    assert env.autoescape("report.md.j2") is False
    assert env.autoescape("pr_comment.md.j2") is False


def test_html_escapes_a_script_in_a_benchmark_name(tmp_path: Path, analysis: Analysis) -> None:
    html = render_html(build_report(outcome(tmp_path, mixed()), analysis))
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script" not in html.lower()  # self-contained, and no scripts at all
    assert "<svg" in html and "<style>" in html
    assert 'src="http' not in html and 'href="http' not in html


def test_markdown_escapes_a_script_in_a_benchmark_name(tmp_path: Path) -> None:
    report = build_report(outcome(tmp_path, mixed()))
    for text in (render_markdown(report), render_pr_comment(report)):
        for line in text.splitlines():
            if "<script>" in line:
                # only inside a code span, where markdown shows it as text
                assert f"`{EVIL}`" in line


def test_pr_comment_stays_under_the_limit_with_2000_comparisons(tmp_path: Path) -> None:
    verdicts = (Verdict.FAIL, Verdict.INCONCLUSIVE, Verdict.PASS)
    comparisons = [
        comp(
            f"daemon_performance.case_{i:04d}_with_a_long_descriptive_name.core",
            1.05 if i % 3 == 0 else (0.9 if i % 3 == 2 else 1.03),
            verdicts[i % 3],
        )
        for i in range(2000)
    ]
    report = build_report(outcome(tmp_path, comparisons, machine=MACHINE))
    text = render_pr_comment(report)
    assert len(text) <= PR_COMMENT_LIMIT
    assert "more rows in report.md" in text
    assert text.lstrip().startswith("## ❌ Performance gate: FAIL")
    assert github_summary(outcome(tmp_path, comparisons, machine=MACHINE)) == text
    small = render_pr_comment(build_report(outcome(tmp_path, mixed())))
    assert "more rows" not in small
    assert len(render_pr_comment(report, limit=5_000)) <= 5_000


def test_report_json_has_the_required_keys_and_types(tmp_path: Path, analysis: Analysis) -> None:
    report = build_report(outcome(tmp_path, mixed(), machine=MACHINE), analysis)
    doc = json.loads(json.dumps(report_json(report), allow_nan=False))
    assert doc["verdict"] in {"pass", "fail", "inconclusive"}
    assert doc["verdict"] == "fail"
    assert len(doc["comparisons"]) == 7
    types = {
        "benchmark": str,
        "metric": str,
        "ratio": float,
        "ci_low": float,
        "ci_high": float,
        "p_value": float,
        "threshold_pct": float,
        "verdict": str,
    }
    for item in doc["comparisons"]:
        for key, kind in types.items():
            assert isinstance(item[key], kind), (key, item[key])
        assert item["verdict"] in {"pass", "fail", "inconclusive"}
    assert doc["self_measurement"]["load_avg_before"] == [1.2, 1.1, 0.9]
    assert doc["analysis"]["candidate"] == "core"
    assert {t["name"] for t in doc["analysis"]["target"]} == {
        "throughput",
        "memory",
        "scalability",
        "resilience",
    }
    assert doc["exit_status"] == 1 and doc["mode"] == "pr"
    no_analysis = report_json(build_report(outcome(tmp_path, mixed())))
    assert no_analysis["analysis"] is None


def test_write_reports_writes_the_four_files(tmp_path: Path, analysis: Analysis) -> None:
    paths = write_reports(outcome(tmp_path, mixed(), machine=MACHINE), analysis)
    assert [p.name for p in paths] == list(REPORT_FILES)
    assert all(p.parent == tmp_path and p.stat().st_size > 0 for p in paths)
    doc = json.loads((tmp_path / "report.json").read_text())
    assert doc["verdict"] == "fail"
    assert not list(tmp_path.glob(".*.tmp"))


def test_write_reports_to_a_missing_folder_is_an_output_error(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "dir"
    with pytest.raises(OutputError) as info:
        write_reports(outcome(missing, mixed()), None)
    assert str(missing) in str(info.value)
    assert not missing.exists()


def test_reports_render_without_analysis_or_comparisons(tmp_path: Path) -> None:
    empty = outcome(
        tmp_path, [], verdict=Verdict.INCONCLUSIVE, exit_status=2, errors=("no results",)
    )
    report = build_report(empty)
    assert report.status == "undecided"
    for text in (render_markdown(report), render_pr_comment(report), render_html(report)):
        assert "no results" in text


# --------------------------------------------------------------------------------------------
# GitHub annotations
# --------------------------------------------------------------------------------------------


def test_annotations_for_fails_inconclusive_warnings_and_errors(tmp_path: Path) -> None:
    tricky = replace(comp("a,b:c", 1.1, Verdict.FAIL), reason="line one\nline two 100%")
    lines = github_annotations(
        outcome(
            tmp_path,
            [tricky, *mixed()],
            warnings=("budget reached",),
            errors=("worker crashed",),
        )
    )
    errors = [x for x in lines if x.startswith("::error ")]
    warnings = [x for x in lines if x.startswith("::warning ")]
    assert len(errors) == 4  # one gate error, three regressions
    assert len(warnings) == 2  # one inconclusive, one warning
    assert errors[0] == "::error title=Perf gate could not decide::worker crashed"
    first = errors[1]
    assert first.startswith("::error title=Perf regression%3A a%2Cb%3Ac (time)::")
    assert "\n" not in first and "%0A" in first and "100%25" in first


def test_annotations_are_capped_per_level(tmp_path: Path) -> None:
    many = [comp(f"b{i}", 1.1, Verdict.FAIL) for i in range(25)]
    lines = github_annotations(outcome(tmp_path, many), limit=10)
    assert len(lines) == 10
    assert "16 more errors" in lines[-1]
    assert len(github_annotations(outcome(tmp_path, many), limit=None)) == 25


def test_rounds_text_tells_full_rounds_from_extra_ones() -> None:
    from perf.report.view import rounds_text

    assert rounds_text(12, None, 50) == "12 rounds (up to 50 per comparison)"
    assert rounds_text(12, 12, 50) == "12 rounds (up to 50 per comparison)"
    assert rounds_text(30, 12, 50) == (
        "12 rounds of every case and 18 more of the inconclusive ones (up to 50 per comparison)"
    )
