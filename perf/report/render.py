"""Reports of a gate run: the PR comment, report.md, report.html and report.json.

The view model (:mod:`perf.report.view`) is plain, frozen data; the Jinja2 templates in
``templates/`` only format it. One cached environment renders them all: HTML templates are
autoescaped, markdown ones are not and escape their cells with the ``md`` and ``mdcode``
filters; every template runs under ``StrictUndefined``. Figures are formatted by the
filters of :mod:`perf.report.format`.

:func:`write_reports` is the only function here that writes files.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import fields, is_dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from perf.decide.outcome import GateOutcome
from perf.errors import OutputError
from perf.files import dumps
from perf.paths import TEMPLATES
from perf.report.analysis import Analysis
from perf.report.charts_view import Chart, build_charts
from perf.report.format import (
    format_change_pct,
    format_duration,
    format_factor,
    format_loadavg,
    format_pct,
    format_pvalue,
    format_ratio,
    format_value,
    markdown_code,
    markdown_text,
)
from perf.report.view import ReportData, build_report

__all__ = [
    "PR_COMMENT_LIMIT",
    "REPORT_SCHEMA_VERSION",
    "environment",
    "render_html",
    "render_markdown",
    "render_pr_comment",
    "report_json",
    "write_reports",
]

REPORT_SCHEMA_VERSION = 1
PR_COMMENT_LIMIT = 60_000  # GitHub's comment limit is 65,536; leave room for a header
_PR_ROW_LIMITS = (50, 25, 10, 5, 0)


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------


@functools.cache
def environment() -> jinja2.Environment:
    """The one Jinja2 environment of the reports (cached): templates/ as loader,
    autoescape for .html, StrictUndefined, and the formatting filters."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html", "htm", "xml"),
            disabled_extensions=("j2", "md", "txt"),
            default_for_string=True,
            default=False,
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        fmt=format_value,
        pct=format_pct,
        spct=format_change_pct,
        ratio=format_ratio,
        pval=format_pvalue,
        duration=format_duration,
        loadavg=format_loadavg,
        factor=format_factor,
        md=markdown_text,
        mdcode=markdown_code,
    )
    return env


def _render(name: str, **context: Any) -> str:
    return environment().get_template(name).render(**context)


def render_markdown(report: ReportData) -> str:
    """report.md: the full report in markdown."""
    return _render("report.md.j2", report=report)


def render_html(report: ReportData, charts: Sequence[Chart] | None = None) -> str:
    """report.html: self-contained (inline CSS and SVG, no scripts or external files)."""
    return _render(
        "report.html", report=report, charts=build_charts(report) if charts is None else charts
    )


def render_pr_comment(report: ReportData, *, limit: int = PR_COMMENT_LIMIT) -> str:
    """pr_comment.md: verdict first, regressions, inconclusive and improvements, the noise
    line, links. Tables are cut to fewer rows (each cut says how many more rows are in
    report.md) until the text is at most ``limit`` characters."""
    text = ""
    for rows in _PR_ROW_LIMITS:
        text = _render("pr_comment.md.j2", report=report, max_rows=rows)
        if len(text) <= limit:
            return text
    notice = "\n\n_Comment truncated to fit GitHub's limit; the full report is in report.md._\n"
    return text[: max(limit - len(notice), 0)] + notice


# --------------------------------------------------------------------------------------------
# JSON
# --------------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """Dataclasses, enums, paths, mappings and sequences as JSON values; NaN and infinity
    as None (strict JSON has neither)."""
    if isinstance(value, Markup):
        return str(value)
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Enum):
        return _plain(value.value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


_COMPARISON_KEYS = (
    "benchmark",
    "metric",
    "ratio",
    "ci_low",
    "ci_high",
    "p_value",
    "p_adjusted",
    "threshold_pct",
    "noise_pct",
    "min_detectable_pct",
    "verdict",
    "direction",
    "change_pct",
    "worse_pct",
    "n_base",
    "n_head",
    "reason",
)


def report_json(report: ReportData) -> dict[str, Any]:
    """report.json's document: ``verdict``, ``comparisons`` (each with benchmark, metric,
    ratio, ci_low, ci_high, p_value, threshold_pct and verdict, and more), the rest of the
    outcome, the self-measurement and the architecture analysis."""
    doc: dict[str, Any] = {
        "schema_version": REPORT_SCHEMA_VERSION,
        "kind": "crucible-perf-report",
        "verdict": report.verdict,
        "status": report.status,
        "exit_status": report.exit_status,
        "strict": report.strict,
        "mode": report.mode,
        "head_commit": report.head_commit,
        "head_dirty": report.head_dirty,
        "base_label": report.base_label,
        "rounds": report.rounds,
        "rounds_all_cases": report.rounds_all_cases,
        "max_rounds": report.max_rounds,
        "started_utc": report.started_utc,
        "duration_s": report.duration_s,
        "run_dir": report.run_dir,
        "counts": dict(report.counts),
        "comparisons": [
            {key: _plain(getattr(r, key)) for key in _COMPARISON_KEYS} for r in report.comparisons
        ],
        "self_measurement": _plain(report.noise),
        "artifacts": [_plain(a) for a in (*report.artifacts, *report.profiles)],
        "warnings": list(report.warnings),
        "errors": list(report.errors),
        "notes": list(report.notes),
        "executive_summary": list(report.executive_summary),
        "key_findings": list(report.key_findings),
        "analysis": _plain(report.analysis.analysis) if report.analysis is not None else None,
    }
    return doc


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------


def write_reports(
    outcome: GateOutcome, analysis: Analysis | None = None, *, link_base: str | None = None
) -> list[Path]:
    """Write pr_comment.md, report.md, report.html and report.json into
    ``outcome.run_dir`` and return their paths. Everything is rendered before anything is
    written, and each file is replaced atomically; a folder that cannot be written is an
    :class:`~perf.errors.OutputError` naming it, and leaves no partial files behind."""
    report = build_report(outcome, analysis, link_base=link_base)
    texts = {
        "pr_comment.md": render_pr_comment(report),
        "report.md": render_markdown(report),
        "report.html": render_html(report),
        "report.json": dumps(report_json(report)),
    }
    run_dir = Path(outcome.run_dir)
    temps: list[Path] = []
    try:
        for name, text in texts.items():
            tmp = run_dir / f".{name}.{os.getpid()}.tmp"
            temps.append(tmp)
            tmp.write_text(text, encoding="utf-8")
        paths = []
        for tmp, name in zip(temps, texts, strict=True):
            path = run_dir / name
            os.replace(tmp, path)
            paths.append(path)
    except OSError as exc:
        for tmp in temps:
            with contextlib.suppress(OSError):
                tmp.unlink()
        raise OutputError(
            f"cannot write the reports ({exc.strerror or exc})",
            str(run_dir),
            "make the folder writable, or pass a writable --output folder",
        ) from exc
    return paths
