"""A gate that could not decide says so without letting its error text act: the PR comment
escapes it, the annotation cannot be split into a second command."""

from __future__ import annotations

import json
from pathlib import Path

from perf.errors import ResultError
from perf.report.github import error_annotation
from perf.report.run_folder import write_error_files

HOSTILE = "benchmark @crucible/maintainers crashed: see https://evil.example\n::warning::fake"


def test_the_error_comment_escapes_mentions_links_and_lines(tmp_path: Path) -> None:
    write_error_files(tmp_path, "pr", ResultError(HOSTILE, "s.a.core", "rerun"))
    comment = (tmp_path / "pr_comment.md").read_text(encoding="utf-8")
    assert "could not decide (exit 2)" in comment
    assert "@crucible" not in comment and "&#64;crucible/maintainers" in comment
    assert "https://" not in comment
    assert "\n::warning" not in comment
    assert json.loads((tmp_path / "report.json").read_text())["verdict"] == "error"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "manifest.json",
        "pr_comment.md",
        "report.json",
    ]


def test_the_error_annotation_is_one_command() -> None:
    line = error_annotation("perf gate could not decide", HOSTILE)
    assert "\n" not in line and "\r" not in line
    assert line.startswith("::error title=perf gate could not decide::")
    # A workflow command ends at the line's end: with the newline escaped, the rest stays
    # this command's message and cannot start a second one.
    assert line.endswith("%0A::warning::fake")
