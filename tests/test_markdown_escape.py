"""Markdown text in reports and the PR comment cannot mention, link or format."""

from __future__ import annotations

import pytest

from perf.report.render import environment

md = environment().filters["md"]


@pytest.mark.parametrize(
    ("text", "absent"),
    [
        ("ping @crucible/maintainers", "@"),
        ("see https://evil.example/x", "https:"),
        ("or www.evil.example", "www."),
        ("mail me: a@b.example", "@"),
        ("~~struck~~ and __bold__", "~~"),
        ("__bold__", "__"),
        ("[link](http://x)", "[link]("),
        ("<img src=x onerror=alert(1)>", "<img"),
        ("a | b", " | "),
    ],
)
def test_md_neutralises_what_github_would_act_on(text: str, absent: str) -> None:
    assert absent not in md(text)


def test_md_keeps_plain_text_readable() -> None:
    assert md("daemon_performance.medium.core: +3.1% (p 0.01)") == (
        "daemon\\_performance.medium.core: +3.1% (p 0.01)"
    )


def test_md_shows_the_escaped_characters_as_entities_a_browser_renders() -> None:
    assert md("@team") == "&#64;team"
    assert md("https://x") == "https&#58;//x"
    assert md("WWW.example") == "WWW&#46;example"
