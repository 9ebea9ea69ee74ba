"""Reports of a gate run: the PR comment, report.md, report.html and report.json.

:func:`build_report` turns a :class:`~perf.decide.outcome.GateOutcome` and the architecture
:class:`~perf.report.analysis.Analysis` into plain, frozen data (:class:`ReportData`); the Jinja2
templates in ``templates/`` only format it. One cached environment renders them all: HTML
templates are autoescaped, markdown ones are not and escape their cells with the ``md`` and
``mdcode`` filters; every template runs under ``StrictUndefined``.

:func:`write_reports` is the only function here that writes files. :func:`github_summary`
and :func:`github_annotations` return text for ``$GITHUB_STEP_SUMMARY`` and the workflow
log; the caller writes them out.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, is_dataclass
from enum import Enum
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from markupsafe import Markup

from perf.decide.outcome import GateOutcome
from perf.decide.policy import Direction
from perf.decide.verdict import Comparison, Verdict
from perf.errors import OutputError
from perf.files import dumps
from perf.paths import TEMPLATES
from perf.report.analysis import Analysis
from perf.report.charts import (
    LatencyRow,
    RatioRow,
    Series,
    latency_chart,
    line_chart,
    ratio_chart,
)
from perf.report.findings import TargetStatus
from perf.report.format import (
    format_change_pct,
    format_duration,
    format_factor,
    format_loadavg,
    format_pct,
    format_pvalue,
    format_ratio,
    format_value,
    median,
)
from perf.report.kpis import KpiComparison, KpiVerdict
from perf.rundir import Artifact

__all__ = [
    "ANNOTATION_LIMIT",
    "PR_COMMENT_LIMIT",
    "REPORT_FILES",
    "REPORT_SCHEMA_VERSION",
    "AnalysisView",
    "ArtifactLink",
    "Chart",
    "ComparisonRow",
    "KpiGroup",
    "KpiRow",
    "NoiseSummary",
    "RatingCell",
    "RatingRow",
    "ReportData",
    "build_charts",
    "build_report",
    "environment",
    "github_annotations",
    "github_summary",
    "render_html",
    "render_markdown",
    "render_pr_comment",
    "report_json",
    "write_reports",
]

REPORT_SCHEMA_VERSION = 1
PR_COMMENT_LIMIT = 60_000  # GitHub's comment limit is 65,536; leave room for a header
ANNOTATION_LIMIT = 10  # GitHub shows at most 10 annotations of each level per step
REPORT_FILES = ("pr_comment.md", "report.md", "report.html", "report.json")

PROFILE_KINDS = frozenset({"flamegraph", "speedscope", "profile", "memray", "py-spy", "pyspy"})
RATIO_CHART_ROWS = 60
_PR_ROW_LIMITS = (50, 25, 10, 5, 0)
_STATUS_ICON = {"pass": "✅", "fail": "❌", "inconclusive": "⚠️", "undecided": "⛔"}


# --------------------------------------------------------------------------------------------
# Data the templates format
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ComparisonRow:
    """One gate comparison, ready to print. ``change_*_pct`` are signed changes of the
    metric (``(ratio - 1) x 100``); ``worse_pct`` is the change in its bad direction.
    ``detectable`` tells whether this run could have caught a threshold-sized change
    (``min_detectable_pct <= threshold_pct``); ``improved`` marks a change in the good
    direction whose whole interval clears the noise floor."""

    benchmark: str
    metric: str
    verdict: str
    direction: str
    ratio: float
    ci_low: float
    ci_high: float
    change_pct: float
    change_low_pct: float
    change_high_pct: float
    worse_pct: float
    p_value: float
    p_adjusted: float
    threshold_pct: float
    noise_pct: float
    min_detectable_pct: float
    detectable: bool
    improved: bool
    n_base: int
    n_head: int
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class NoiseSummary:
    """The run's measurement of itself: noise floors and smallest detectable changes over
    its comparisons, and the machine's load (None where the gate did not measure it)."""

    comparisons: int
    median_noise_pct: float | None
    max_noise_pct: float | None
    max_noise_subject: str
    median_min_detectable_pct: float | None
    max_min_detectable_pct: float | None
    undetectable: int
    load_avg_before: tuple[float, float, float] | None
    load_avg_after: tuple[float, float, float] | None
    other_cpu_pct_mean: float | None
    other_cpu_pct_max: float | None
    cpu_samples: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ArtifactLink:
    """A link to a file of the run; ``href`` is relative to the run folder unless
    ``absolute`` (a ``link_base`` was given)."""

    label: str
    href: str
    kind: str
    path: str
    absolute: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class KpiRow:
    """One KPI of one case; ``values`` and ``samples`` align with the view's
    ``coordinators`` (None where a coordinator has no figure)."""

    kpi: str
    label: str
    unit: str
    direction: str
    values: tuple[float | None, ...]
    samples: tuple[int | None, ...]
    verdict: str
    improvement_pct: float | None
    ci_low_pct: float | None
    ci_high_pct: float | None
    p_adjusted: float | None
    headroom_pct: float | None
    scalability_factor: float | None
    note: str


@dataclass(frozen=True, slots=True, kw_only=True)
class KpiGroup:
    suite: str
    case: str
    rows: tuple[KpiRow, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class RatingCell:
    coordinator: str
    value: float | None
    rating: str | None
    note: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RatingRow:
    kpi: str
    label: str
    unit: str
    scale: str
    cells: tuple[RatingCell, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class AnalysisView:
    """The architecture comparison arranged for tables."""

    analysis: Analysis
    coordinators: tuple[str, ...]
    groups: tuple[KpiGroup, ...]
    ratings: tuple[RatingRow, ...]
    significant: tuple[KpiComparison, ...]
    target_met: int
    target_total: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportData:
    """Everything a report shows. ``status`` is the run's result as CI sees it: "pass",
    "fail", "inconclusive" (passes with a warning unless strict) or "undecided" (the gate
    could not decide, exit 2)."""

    title: str
    status: str
    icon: str
    headline: str
    verdict: str
    mode: str
    exit_status: int
    strict: bool
    head_commit: str
    head_dirty: bool
    base_label: str
    rounds: int
    rounds_all_cases: int
    max_rounds: int
    started_utc: str
    duration_s: float
    counts: Mapping[str, int]
    comparisons: tuple[ComparisonRow, ...]
    regressions: tuple[ComparisonRow, ...]
    inconclusive: tuple[ComparisonRow, ...]
    improvements: tuple[ComparisonRow, ...]
    noise: NoiseSummary
    noise_rows: tuple[ComparisonRow, ...]
    artifacts: tuple[ArtifactLink, ...]
    profiles: tuple[ArtifactLink, ...]
    reports: tuple[ArtifactLink, ...]
    warnings: tuple[str, ...]
    errors: tuple[str, ...]
    notes: tuple[str, ...]
    executive_summary: tuple[str, ...]
    key_findings: tuple[str, ...]
    analysis: AnalysisView | None
    run_dir: str

    @property
    def rounds_text(self) -> str:
        return rounds_text(self.rounds, self.rounds_all_cases, self.max_rounds)


@dataclass(frozen=True, slots=True, kw_only=True)
class Chart:
    """An inline SVG chart of the HTML report (trusted markup built by perf.report.charts)."""

    id: str
    title: str
    caption: str
    svg: Markup


# --------------------------------------------------------------------------------------------
# Builder
# --------------------------------------------------------------------------------------------


def _worse_interval_pct(c: Comparison) -> tuple[float, float]:
    ends = [(r - 1.0) * 100.0 for r in (c.ci_low, c.ci_high)]
    if c.direction is Direction.HIGHER_IS_BETTER:
        ends = [-e for e in ends]
    return min(ends), max(ends)


def comparison_row(c: Comparison) -> ComparisonRow:
    """A gate comparison as a printable row."""
    _, worse_high = _worse_interval_pct(c)
    change_low, change_high = sorted(((c.ci_low - 1.0) * 100.0, (c.ci_high - 1.0) * 100.0))
    return ComparisonRow(
        benchmark=c.benchmark,
        metric=c.metric,
        verdict=str(c.verdict.value),
        direction=str(c.direction.value),
        ratio=c.ratio,
        ci_low=c.ci_low,
        ci_high=c.ci_high,
        change_pct=c.change_pct,
        change_low_pct=change_low,
        change_high_pct=change_high,
        worse_pct=c.worse_pct,
        p_value=c.p_value,
        p_adjusted=c.p_adjusted,
        threshold_pct=c.threshold_pct,
        noise_pct=c.noise_pct,
        min_detectable_pct=c.min_detectable_pct,
        detectable=c.min_detectable_pct <= c.threshold_pct,
        # The test looks for regressions only; an improvement is judged by its interval.
        improved=(c.verdict is Verdict.PASS and worse_high < -c.noise_pct),
        n_base=c.n_base,
        n_head=c.n_head,
        reason=c.reason,
    )


_VERDICT_ORDER = {"fail": 0, "inconclusive": 1, "pass": 2}


def _sorted_rows(rows: Iterable[ComparisonRow]) -> tuple[ComparisonRow, ...]:
    return tuple(
        sorted(rows, key=lambda r: (_VERDICT_ORDER.get(r.verdict, 3), -r.worse_pct, r.benchmark))
    )


def _noise(rows: Sequence[ComparisonRow], outcome: GateOutcome) -> NoiseSummary:
    noisiest = max(rows, key=lambda r: r.noise_pct, default=None)
    machine = outcome.machine
    return NoiseSummary(
        comparisons=len(rows),
        median_noise_pct=median([r.noise_pct for r in rows]) if rows else None,
        max_noise_pct=noisiest.noise_pct if noisiest else None,
        max_noise_subject=f"{noisiest.benchmark} ({noisiest.metric})" if noisiest else "",
        median_min_detectable_pct=(median([r.min_detectable_pct for r in rows]) if rows else None),
        max_min_detectable_pct=max((r.min_detectable_pct for r in rows), default=None),
        undetectable=sum(not r.detectable for r in rows),
        load_avg_before=machine.load_avg_before if machine else None,
        load_avg_after=machine.load_avg_after if machine else None,
        other_cpu_pct_mean=machine.other_cpu_pct_mean if machine else None,
        other_cpu_pct_max=machine.other_cpu_pct_max if machine else None,
        cpu_samples=machine.samples if machine else 0,
    )


def _href(path: str, link_base: str | None) -> str:
    quoted = quote(path, safe="/:#?=&%~.-_+@")
    if link_base:
        return link_base.rstrip("/") + "/" + quoted.lstrip("/")
    return quoted


def _is_profile(a: Artifact) -> bool:
    kind = a.kind.lower()
    return kind in PROFILE_KINDS or "flame" in kind or "flame" in a.label.lower()


def _links(artifacts: Iterable[Artifact], link_base: str | None) -> tuple[ArtifactLink, ...]:
    return tuple(
        ArtifactLink(
            label=a.label,
            href=_href(a.path, link_base),
            kind=a.kind,
            path=a.path,
            absolute=bool(link_base),
        )
        for a in artifacts
    )


def _status(outcome: GateOutcome) -> str:
    """pass / fail / inconclusive / undecided, as CI reads the run (exit 2 is undecided
    whatever the comparisons said: a gate that could not decide never reports a pass)."""
    if outcome.exit_status not in (0, 1):
        return "undecided"
    if outcome.verdict is Verdict.FAIL:
        return "fail"
    return str(outcome.verdict.value)


def rounds_text(rounds: int, all_cases: int | None, max_rounds: int) -> str:
    """How many rounds a run took, in words: ``"12 rounds"`` when every round measured
    every case, else how many more measured only the inconclusive cases; with the cap."""
    if all_cases is None or all_cases >= rounds:
        return f"{rounds} rounds (up to {max_rounds} per comparison)"
    return (
        f"{all_cases} rounds of every case and {rounds - all_cases} more of the inconclusive "
        f"ones (up to {max_rounds} per comparison)"
    )


def _headline(status: str, outcome: GateOutcome, counts: Mapping[str, int]) -> str:
    fails, unsure = counts["fail"], counts["inconclusive"]
    if status == "undecided":
        first = outcome.errors[0] if outcome.errors else "no reason recorded"
        return f"Performance gate could not decide (exit {outcome.exit_status}): {first}"
    if status == "fail":
        return f"Performance gate: FAIL, {fails} regression{'s' if fails != 1 else ''}"
    if status == "inconclusive":
        tail = (
            "fails under --strict"
            if outcome.strict
            else "passes with a warning (--strict would fail it)"
        )
        return f"Performance gate: INCONCLUSIVE, {unsure} undecided comparisons; {tail}"
    return f"Performance gate: PASS, {counts['pass']} comparisons within their thresholds"


def _executive_summary(
    report_rows: Sequence[ComparisonRow],
    regressions: Sequence[ComparisonRow],
    improvements: Sequence[ComparisonRow],
    noise: NoiseSummary,
    outcome: GateOutcome,
    view: AnalysisView | None,
) -> list[str]:
    mode = (
        "PR mode (head and base interleaved in this run)"
        if outcome.mode == "pr"
        else ("baseline mode (head against a stored baseline)")
    )
    lines = [
        f"{len(report_rows)} benchmark metrics compared in {mode}: head {outcome.head_commit[:12]}"
        f"{' (dirty)' if outcome.head_dirty else ''} against {outcome.base_label}, "
        f"{rounds_text(outcome.rounds, outcome.rounds_all_cases, outcome.max_rounds)}, "
        f"{outcome.duration_s:.0f} s."
    ]
    if regressions:
        worst = regressions[0]
        lines.append(
            f"Largest regression: {worst.benchmark} ({worst.metric}) "
            f"{format_change_pct(worst.worse_pct)} worse "
            f"(CI {format_change_pct(worst.change_low_pct)} to "
            f"{format_change_pct(worst.change_high_pct)} change), "
            f"threshold {worst.threshold_pct:g} %."
        )
    if improvements:
        best = min(improvements, key=lambda r: r.worse_pct)
        lines.append(
            f"Largest improvement: {best.benchmark} ({best.metric}) "
            f"{format_change_pct(-best.worse_pct)} better."
        )
    if noise.comparisons:
        lines.append(
            f"This run's noise floor: median {format_pct(noise.median_noise_pct)}, max "
            f"{format_pct(noise.max_noise_pct)} ({noise.max_noise_subject}); smallest "
            f"detectable change median {format_pct(noise.median_min_detectable_pct)}; "
            f"{noise.undetectable} of {noise.comparisons} comparisons could not have detected "
            "a change of their threshold's size."
        )
    for error in outcome.errors:
        lines.append(f"Error: {error}")
    if view is not None and view.target_total:
        items = ", ".join(f"{t.name} {t.status.value}" for t in view.analysis.target)
        lines.append(
            f"Centralized daemon target ({view.analysis.candidate} equal or better than "
            f"{view.analysis.base}): {view.target_met} of {view.target_total} met ({items})."
        )
    return lines


def _key_findings(
    regressions: Sequence[ComparisonRow],
    improvements: Sequence[ComparisonRow],
    view: AnalysisView | None,
) -> list[str]:
    out = [
        f"Regression: {r.benchmark} ({r.metric}) {format_change_pct(r.worse_pct)} worse, "
        "beyond its "
        f"{r.threshold_pct:g} % threshold (p_adj {r.p_adjusted:.3g})."
        for r in regressions[:5]
    ]
    out += [
        # The p-value tests for a regression; an improvement is shown by its interval.
        f"Improvement: {r.benchmark} ({r.metric}) {format_change_pct(-r.worse_pct)} better "
        f"(change {format_change_pct(r.change_low_pct)} to "
        f"{format_change_pct(r.change_high_pct)}, clear of the "
        f"{format_pct(r.noise_pct)} noise floor)."
        for r in sorted(improvements, key=lambda r: r.worse_pct)[:3]
    ]
    if view is not None:
        a = view.analysis
        for c in view.significant[:5]:
            out.append(
                f"{a.candidate} vs {a.base}, {c.suite}.{c.case} {c.label.lower()}: "
                f"{format_change_pct(c.improvement_pct)} "
                f"(CI {format_change_pct(c.ci_low_pct)} to {format_change_pct(c.ci_high_pct)}), "
                f"{c.verdict.value}."
            )
        for b in a.bottlenecks:
            if b.coordinator == a.candidate and b.binding != "none":
                out.append(f"{a.candidate} {b.case}: {b.binding} binds ({b.evidence}).")
        for m in a.missing:
            out.append(f"Missing from the architecture comparison: {m.what}: {m.detail}.")
    return out


def _analysis_view(analysis: Analysis) -> AnalysisView:
    coordinators = analysis.coordinators
    groups: dict[tuple[str, str], list[KpiRow]] = {}
    for c in analysis.kpis:
        figures = {f.coordinator: f for f in c.figures}
        groups.setdefault((c.suite, c.case), []).append(
            KpiRow(
                kpi=c.kpi,
                label=c.label,
                unit=c.unit,
                direction=str(c.direction.value),
                values=tuple(
                    figures[name].median if name in figures else None for name in coordinators
                ),
                samples=tuple(
                    figures[name].n if name in figures else None for name in coordinators
                ),
                verdict=str(c.verdict.value),
                improvement_pct=c.improvement_pct,
                ci_low_pct=c.ci_low_pct,
                ci_high_pct=c.ci_high_pct,
                p_adjusted=c.p_adjusted,
                headroom_pct=c.headroom_pct,
                scalability_factor=c.scalability_factor,
                note=c.note,
            )
        )
    rating_rows: dict[str, list[RatingCell]] = {}
    meta: dict[str, tuple[str, str, str]] = {}
    for r in analysis.ratings:
        rating_rows.setdefault(r.kpi, []).append(
            RatingCell(coordinator=r.coordinator, value=r.value, rating=r.rating, note=r.note)
        )
        meta[r.kpi] = (r.label, r.unit, r.scale)
    significant = sorted(
        (c for c in analysis.kpis if c.verdict in (KpiVerdict.BETTER, KpiVerdict.WORSE)),
        key=lambda c: -abs(c.improvement_pct or 0.0),
    )
    return AnalysisView(
        analysis=analysis,
        coordinators=coordinators,
        groups=tuple(
            KpiGroup(suite=suite, case=case, rows=tuple(rows))
            for (suite, case), rows in groups.items()
        ),
        ratings=tuple(
            RatingRow(
                kpi=kpi,
                label=meta[kpi][0],
                unit=meta[kpi][1],
                scale=meta[kpi][2],
                cells=tuple(cells),
            )
            for kpi, cells in rating_rows.items()
        ),
        significant=tuple(significant),
        target_met=sum(t.status is TargetStatus.MET for t in analysis.target),
        target_total=len(analysis.target),
    )


def build_report(
    outcome: GateOutcome,
    analysis: Analysis | None = None,
    *,
    link_base: str | None = None,
) -> ReportData:
    """The report's data from a gate outcome and (optionally) the architecture analysis.

    ``link_base`` prefixes artifact links (for example the URL of the run's CI artifact);
    without it links are relative to the run folder.
    """
    rows = _sorted_rows(comparison_row(c) for c in outcome.comparisons)
    counts = {v.value: sum(r.verdict == v.value for r in rows) for v in Verdict}
    counts["total"] = len(rows)
    regressions = tuple(r for r in rows if r.verdict == "fail")
    inconclusive = tuple(r for r in rows if r.verdict == "inconclusive")
    improvements = tuple(sorted((r for r in rows if r.improved), key=lambda r: r.worse_pct))
    noise = _noise(rows, outcome)
    view = _analysis_view(analysis) if analysis is not None else None
    status = _status(outcome)
    profiles = tuple(a for a in outcome.artifacts if _is_profile(a))
    others = tuple(a for a in outcome.artifacts if not _is_profile(a))
    reports = tuple(Artifact(label=name, path=name, kind="report") for name in REPORT_FILES[1:])
    return ReportData(
        title=f"Crucible performance gate: {outcome.head_commit[:12]} vs {outcome.base_label}",
        status=status,
        icon=_STATUS_ICON[status],
        headline=_headline(status, outcome, counts),
        verdict=str(outcome.verdict.value),
        mode=outcome.mode,
        exit_status=outcome.exit_status,
        strict=outcome.strict,
        head_commit=outcome.head_commit,
        head_dirty=outcome.head_dirty,
        base_label=outcome.base_label,
        rounds=outcome.rounds,
        rounds_all_cases=outcome.rounds_all_cases or outcome.rounds,
        max_rounds=outcome.max_rounds,
        started_utc=outcome.started_utc,
        duration_s=outcome.duration_s,
        counts=counts,
        comparisons=rows,
        regressions=regressions,
        inconclusive=inconclusive,
        improvements=improvements,
        noise=noise,
        noise_rows=tuple(
            sorted(rows, key=lambda r: (r.detectable, -r.min_detectable_pct, r.benchmark))
        ),
        artifacts=_links(others, link_base),
        profiles=_links(profiles, link_base),
        reports=_links(reports, link_base),
        warnings=outcome.warnings,
        errors=outcome.errors,
        notes=outcome.notes,
        executive_summary=tuple(
            _executive_summary(rows, regressions, improvements, noise, outcome, view)
        ),
        key_findings=tuple(_key_findings(regressions, improvements, view)),
        analysis=view,
        run_dir=str(outcome.run_dir),
    )


# --------------------------------------------------------------------------------------------
# Charts
# --------------------------------------------------------------------------------------------


def _ratio_rows(report: ReportData, limit: int) -> list[ComparisonRow]:
    shown = [r for r in report.comparisons if r.verdict != "pass"]
    rest = sorted(
        (r for r in report.comparisons if r.verdict == "pass"),
        key=lambda r: -abs(r.change_pct),
    )
    return (shown + rest)[:limit]


def build_charts(report: ReportData, *, ratio_rows: int = RATIO_CHART_ROWS) -> tuple[Chart, ...]:
    """The HTML report's charts: ratios with intervals and threshold bands, latency
    distributions per suite, scalability curves per sweep, RSS over time per leak case."""
    charts: list[Chart] = []
    if report.comparisons:
        rows = _ratio_rows(report, ratio_rows)
        caption = (
            f"{len(rows)} of {len(report.comparisons)} comparisons: every failing and "
            "inconclusive one, then the largest changes; all are in the table below."
            if len(rows) < len(report.comparisons)
            else f"All {len(rows)} comparisons."
        )
        svg = ratio_chart(
            [
                RatioRow(
                    label=f"{r.benchmark} · {r.metric}",
                    ratio=r.ratio,
                    ci_low=r.ci_low,
                    ci_high=r.ci_high,
                    threshold_pct=r.threshold_pct,
                    lower_is_better=r.direction == Direction.LOWER_IS_BETTER.value,
                    verdict=r.verdict,
                )
                for r in rows
            ],
            title="head / base ratio with its interval; red: beyond the threshold",
        )
        charts.append(Chart(id="ratios", title="Ratios", caption=caption, svg=Markup(svg)))
    if report.analysis is None:
        return tuple(charts)
    a = report.analysis.analysis
    suites = list(dict.fromkeys(p.suite for p in a.latency))
    for suite in suites:
        lat_rows = [
            LatencyRow(
                group=p.case, series=p.coordinator, p50_s=p.p50_s, p95_s=p.p95_s, p99_s=p.p99_s
            )
            for p in a.latency
            if p.suite == suite
        ]
        charts.append(
            Chart(
                id=f"latency-{suite}",
                title=f"Latency distribution: {suite}",
                caption="Median over the samples of each percentile, per case and coordinator.",
                svg=Markup(latency_chart(lat_rows, title=f"{suite}: latency p50 / p95 / p99")),
            )
        )
    cases = list(dict.fromkeys((s.suite, s.case, s.axis) for s in a.sweeps))
    axis_unit = {"rate": "eps", "services": "count", "payload": "bytes"}
    axis_label = {
        "rate": "offered rate (events/s)",
        "services": "services",
        "payload": "payload size",
    }
    for suite, case, axis in cases:
        curves = [s for s in a.sweeps if (s.suite, s.case) == (suite, case)]
        bound = next((s.p99_bound_s for s in curves if s.p99_bound_s), None)
        if axis == "rate":
            achieved = [
                Series(
                    name=s.coordinator,
                    points=tuple((p.offered_eps, p.achieved_eps) for p in s.points),
                    hollow=tuple(not p.passed for p in s.points),
                )
                for s in curves
            ]
            charts.append(
                Chart(
                    id=f"sweep-{case}-achieved",
                    title=f"{case}: offered vs achieved rate",
                    caption="Open markers: steps that failed (p99 bound or error rate); "
                    "dashed: achieved = offered.",
                    svg=Markup(
                        line_chart(
                            achieved,
                            title=f"{case}: achieved vs offered rate",
                            x_label="offered (events/s)",
                            y_label="achieved (events/s)",
                            x_unit="eps",
                            y_unit="eps",
                            diagonal=True,
                        )
                    ),
                )
            )
        p99 = [
            Series(
                name=s.coordinator,
                points=tuple(
                    (p.value, p.latency_p99_s) for p in s.points if p.latency_p99_s is not None
                ),
                hollow=tuple(not p.passed for p in s.points if p.latency_p99_s is not None),
            )
            for s in curves
        ]
        charts.append(
            Chart(
                id=f"sweep-{case}-p99",
                title=f"{case}: p99 latency vs {axis}",
                caption="Open markers: failed steps; red line: the sweep's p99 bound.",
                svg=Markup(
                    line_chart(
                        p99,
                        title=f"{case}: p99 latency vs {axis_label.get(axis, axis)}",
                        x_label=axis_label.get(axis, axis),
                        y_label="p99 latency",
                        x_unit=axis_unit.get(axis, ""),
                        y_unit="s",
                        log_y=True,
                        hlines=[(bound, "p99 bound")] if bound else [],
                    )
                ),
            )
        )
    for case in dict.fromkeys(r.case for r in a.rss):
        series = [
            Series(
                name=r.coordinator,
                points=tuple((t - r.points[0][0], v) for t, v in r.points),
                markers=False,
            )
            for r in a.rss
            if r.case == case and r.points
        ]
        charts.append(
            Chart(
                id=f"rss-{case}",
                title=f"RSS over time: {case}",
                caption="Process RSS sampled during the leak run (last sample of each "
                "coordinator).",
                svg=Markup(
                    line_chart(
                        series,
                        title=f"{case}: RSS over time",
                        x_label="time (s)",
                        y_label="RSS",
                        x_unit="s",
                        y_unit="bytes",
                        y_zero=False,
                    )
                ),
            )
        )
    return tuple(charts)


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------


_MD_SPECIAL = str.maketrans(
    {
        "\\": "\\\\",
        "|": "\\|",
        "<": "&lt;",
        ">": "&gt;",
        "&": "&amp;",
        "[": "\\[",
        "]": "\\]",
        "*": "\\*",
        "`": "\\`",
        "#": "\\#",
        "\n": " ",
        "\r": " ",
    }
)


def _f_md(value: object) -> str:
    """Text safe in a markdown table cell or line: no table breaks, no HTML, no links."""
    return str(value).translate(_MD_SPECIAL)


def _f_mdcode(value: object) -> str:
    """Text as a markdown code span, safe inside a table cell."""
    text = str(value).replace("`", "'").replace("|", "\\|").replace("\n", " ").replace("\r", " ")
    return f"`{text}`"


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
        md=_f_md,
        mdcode=_f_mdcode,
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
# Files and GitHub
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
