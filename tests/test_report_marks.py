"""The HTML report's verdict mark renders without an emoji font: an inline SVG and a word."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from perf.decide.verdict import Verdict
from perf.report.render import render_html
from perf.report.view import build_report
from tests.report_fixtures import comp, outcome

# Pictographs that need an emoji font (headless Chromium without one shows a box).
EMOJI = re.compile("[\u2705\u274c\u26d4\ufe0f\U0001f300-\U0001faff]")


@pytest.mark.parametrize(
    ("verdict", "exit_status", "status"),
    [
        (Verdict.PASS, 0, "pass"),
        (Verdict.FAIL, 1, "fail"),
        (Verdict.INCONCLUSIVE, 0, "inconclusive"),
    ],
)
def test_the_headline_marks_the_verdict_with_svg_and_a_word(
    tmp_path: Path, verdict: Verdict, exit_status: int, status: str
) -> None:
    comparisons = [comp("daemon_performance.medium.core", 1.0, verdict)]
    report = build_report(outcome(tmp_path, comparisons, verdict=verdict, exit_status=exit_status))
    assert report.status == status
    html = render_html(report)
    headline = re.search(r'<div class="headline">(.*?)</div>', html, re.S)
    assert headline is not None
    text = headline.group(1)
    assert f'<span class="mark {status}"><svg' in text
    assert f'aria-label="{status}"' in text
    assert status.upper() in text
    assert not EMOJI.search(html), EMOJI.findall(html)
