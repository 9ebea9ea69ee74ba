"""GitHub's view of a gate run: the step summary (``$GITHUB_STEP_SUMMARY``) and the
workflow commands that annotate the log. Both return text; the caller writes it out.
"""

from __future__ import annotations

from perf.decide.outcome import GateOutcome
from perf.decide.verdict import Verdict
from perf.report.analysis import Analysis
from perf.report.render import render_pr_comment
from perf.report.view import build_report

__all__ = [
    "ANNOTATION_LIMIT",
    "error_annotation",
    "github_annotations",
    "github_summary",
]

ANNOTATION_LIMIT = 10  # GitHub shows at most 10 annotations of each level per step


def github_summary(
    outcome: GateOutcome, analysis: Analysis | None = None, *, link_base: str | None = None
) -> str:
    """The PR comment's markdown, for ``$GITHUB_STEP_SUMMARY``."""
    return render_pr_comment(build_report(outcome, analysis, link_base=link_base))


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _annotation(level: str, title: str, message: str) -> str:
    return f"::{level} title={_escape_property(title)}::{_escape_data(message)}"


def error_annotation(title: str, message: str) -> str:
    """One ``::error`` workflow command, its title and message escaped as GitHub requires
    (a message cannot end the command early or start another)."""
    return _annotation("error", title, message)


def github_annotations(outcome: GateOutcome, *, limit: int | None = ANNOTATION_LIMIT) -> list[str]:
    """Workflow commands for the log: ``::error`` for each failed comparison and each error
    that stopped the gate, ``::warning`` for each inconclusive comparison and each warning.
    At most ``limit`` of each level (GitHub shows no more per step); one more line then
    says how many were left out and where they are."""
    fails = [c for c in outcome.comparisons if c.verdict is Verdict.FAIL]
    unsure = [c for c in outcome.comparisons if c.verdict is Verdict.INCONCLUSIVE]
    errors = [_annotation("error", "Perf gate could not decide", e) for e in outcome.errors]
    errors += [
        _annotation(
            "error",
            f"Perf regression: {c.benchmark} ({c.metric})",
            f"{c.benchmark} {c.metric}: ratio {c.ratio:.4f} [{c.ci_low:.4f}, {c.ci_high:.4f}]; "
            f"{c.reason}",
        )
        for c in fails
    ]
    warnings = [
        _annotation(
            "warning",
            f"Perf inconclusive: {c.benchmark} ({c.metric})",
            f"{c.benchmark} {c.metric}: ratio {c.ratio:.4f} [{c.ci_low:.4f}, {c.ci_high:.4f}]; "
            f"{c.reason}",
        )
        for c in unsure
    ]
    warnings += [_annotation("warning", "Perf gate warning", w) for w in outcome.warnings]
    out: list[str] = []
    for level, lines in (("error", errors), ("warning", warnings)):
        if limit is not None and len(lines) > limit:
            hidden = len(lines) - (limit - 1)
            out += lines[: limit - 1]
            out.append(
                _annotation(
                    level,
                    f"Perf gate: {hidden} more {level}s",
                    f"{hidden} more {level} annotations are listed in the step summary and "
                    "report.md of the run",
                )
            )
        else:
            out += lines
    return out
