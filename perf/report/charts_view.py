"""The HTML report's charts, assembled from the report's data: which charts a report has,
their captions, and the rows and series each one draws (:mod:`perf.report.charts` draws
them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup

from perf.decide.policy import Direction
from perf.report.analysis import Analysis
from perf.report.charts import (
    LatencyRow,
    RatioRow,
    Series,
    latency_chart,
    line_chart,
    ratio_chart,
)
from perf.report.figures import SweepCurve
from perf.report.view import ComparisonRow, ReportData

__all__ = ["RATIO_CHART_ROWS", "Chart", "build_charts"]

RATIO_CHART_ROWS = 60
_AXIS_UNIT = {"rate": "eps", "services": "count", "payload": "bytes"}
_AXIS_LABEL = {
    "rate": "offered rate (events/s)",
    "services": "services",
    "payload": "payload size",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Chart:
    """An inline SVG chart of the HTML report (trusted markup built by perf.report.charts)."""

    id: str
    title: str
    caption: str
    svg: Markup


def build_charts(report: ReportData, *, ratio_rows: int = RATIO_CHART_ROWS) -> tuple[Chart, ...]:
    """The HTML report's charts: ratios with intervals and threshold bands, latency
    distributions per suite, scalability curves per sweep, RSS over time per leak case."""
    charts: list[Chart] = []
    if report.comparisons:
        charts.append(_ratios(report, ratio_rows))
    if report.analysis is None:
        return tuple(charts)
    a = report.analysis.analysis
    charts += _latency(a)
    charts += _sweeps(a)
    charts += _rss(a)
    return tuple(charts)


def _ratio_rows(report: ReportData, limit: int) -> list[ComparisonRow]:
    shown = [r for r in report.comparisons if r.verdict != "pass"]
    rest = sorted(
        (r for r in report.comparisons if r.verdict == "pass"),
        key=lambda r: -abs(r.change_pct),
    )
    return (shown + rest)[:limit]


def _ratios(report: ReportData, limit: int) -> Chart:
    """Every failing and inconclusive comparison, then the largest changes, up to ``limit``."""
    rows = _ratio_rows(report, limit)
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
    return Chart(id="ratios", title="Ratios", caption=caption, svg=Markup(svg))


def _latency(a: Analysis) -> list[Chart]:
    """One latency distribution per suite."""
    charts: list[Chart] = []
    for suite in dict.fromkeys(p.suite for p in a.latency):
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
    return charts


def _sweeps(a: Analysis) -> list[Chart]:
    """Per sweep case: achieved against offered rate (rate sweeps), and p99 latency."""
    charts: list[Chart] = []
    for suite, case, axis in dict.fromkeys((s.suite, s.case, s.axis) for s in a.sweeps):
        curves = [s for s in a.sweeps if (s.suite, s.case) == (suite, case)]
        if axis == "rate":
            charts.append(_achieved(case, curves))
        charts.append(_p99(case, axis, curves))
    return charts


def _achieved(case: str, curves: Sequence[SweepCurve]) -> Chart:
    achieved = [
        Series(
            name=s.coordinator,
            points=tuple((p.offered_eps, p.achieved_eps) for p in s.points),
            hollow=tuple(not p.passed for p in s.points),
        )
        for s in curves
    ]
    return Chart(
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


def _p99(case: str, axis: str, curves: Sequence[SweepCurve]) -> Chart:
    bound = next((s.p99_bound_s for s in curves if s.p99_bound_s), None)
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
    return Chart(
        id=f"sweep-{case}-p99",
        title=f"{case}: p99 latency vs {axis}",
        caption="Open markers: failed steps; red line: the sweep's p99 bound.",
        svg=Markup(
            line_chart(
                p99,
                title=f"{case}: p99 latency vs {_AXIS_LABEL.get(axis, axis)}",
                x_label=_AXIS_LABEL.get(axis, axis),
                y_label="p99 latency",
                x_unit=_AXIS_UNIT.get(axis, ""),
                y_unit="s",
                log_y=True,
                hlines=[(bound, "p99 bound")] if bound else [],
            )
        ),
    )


def _rss(a: Analysis) -> list[Chart]:
    """RSS over time per leak case, one line per coordinator."""
    charts: list[Chart] = []
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
    return charts
