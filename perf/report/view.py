"""The reports' view model: a gate run as plain, frozen data the templates only format.

:func:`build_report` turns a :class:`~perf.decide.outcome.GateOutcome` and the architecture
:class:`~perf.report.analysis.Analysis` into :class:`ReportData`: the comparisons as rows,
the run's measurement of its own noise, links to its files, the headline, the executive
summary and the key findings, and the analysis arranged for tables.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote

from perf.decide.outcome import GateOutcome
from perf.decide.policy import Direction
from perf.decide.verdict import Comparison, Verdict
from perf.report.analysis import Analysis
from perf.report.findings import TargetStatus
from perf.report.format import format_change_pct, format_pct, median
from perf.report.kpis import KpiComparison, KpiVerdict
from perf.rundir import Artifact

__all__ = [
    "PROFILE_KINDS",
    "REPORT_FILES",
    "AnalysisView",
    "ArtifactLink",
    "ComparisonRow",
    "KpiGroup",
    "KpiRow",
    "NoiseSummary",
    "RatingCell",
    "RatingRow",
    "ReportData",
    "build_report",
    "comparison_row",
    "rounds_text",
]

REPORT_FILES = ("pr_comment.md", "report.md", "report.html", "report.json")
PROFILE_KINDS = frozenset({"flamegraph", "speedscope", "profile", "memray", "py-spy", "pyspy"})
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
