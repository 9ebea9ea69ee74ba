"""Rendering the reports: escaping, size limits, the JSON shape, writing the files."""

from __future__ import annotations

import json
from pathlib import Path

import jinja2
import pytest

from perf.decide.verdict import Verdict
from perf.errors import OutputError
from perf.report.analysis import Analysis, analyze_run_dir
from perf.report.github import github_summary
from perf.report.render import (
    PR_COMMENT_LIMIT,
    environment,
    render_html,
    render_markdown,
    render_pr_comment,
    report_json,
    write_reports,
)
from perf.report.view import REPORT_FILES, build_report
from tests.report_fixtures import EVIL, MACHINE, comp, mixed, outcome
from tests.run_fixtures import full_run


@pytest.fixture(scope="module")
def analysis(tmp_path_factory: pytest.TempPathFactory) -> Analysis:
    return analyze_run_dir(full_run(tmp_path_factory.mktemp("report-analysis")))


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
