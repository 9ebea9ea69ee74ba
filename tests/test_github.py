"""GitHub workflow annotations: escaped, one per failure or warning, capped per level."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from perf.decide.verdict import Verdict
from perf.report.github import github_annotations
from tests.report_fixtures import comp, mixed, outcome


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
