"""Findings of the architecture comparison, in words: the candidate's strengths and
weaknesses, the recommendations (each with the measured figure that triggered it) and the
centralized daemon target, item by item.

Pure functions of the settled KPI comparisons, figures and ratings; each sentence quotes
the figures it rests on.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from perf.measure.results import SUITES, Missing
from perf.report.figures import Bottleneck, ErrorRateRow, LeakFigure, ScalabilityFactor
from perf.report.format import format_change_pct, format_value
from perf.report.kpis import CAPACITY_KPI, KpiComparison, KpiVerdict
from perf.report.ratings import RATING_CASE, RATING_RANK, Rating

__all__ = [
    "Finding",
    "Recommendation",
    "TargetItem",
    "TargetStatus",
    "describe",
    "leak_text",
    "recommendations",
    "strengths",
    "target",
    "weaknesses",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """A strength or weakness of the candidate, with the figure behind it."""

    text: str
    figure: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Recommendation:
    """What to do, and the measured figure that triggered it."""

    text: str
    trigger: str


class TargetStatus(StrEnum):
    MET = "met"
    NOT_MET = "not met"
    UNDETERMINED = "undetermined"


@dataclass(frozen=True, slots=True, kw_only=True)
class TargetItem:
    """One item of the centralized daemon target: the candidate equal or better than the
    base. Met when it is not significantly worse on any KPI of the item and every KPI of the
    item could be tested; not met when any is significantly worse."""

    name: str
    status: TargetStatus
    figures: tuple[str, ...]
    reason: str


def describe(c: KpiComparison) -> str:
    """One line with the comparison's figures, for findings, recommendations and targets."""
    medians = ", ".join(
        f"{f.coordinator} {format_value(f.median, c.unit)}"
        for f in c.figures
        if f.coordinator in (c.base, c.candidate)
    )
    parts = [f"{c.subject}: {medians}"]
    if c.improvement_pct is not None:
        parts.append(f"-> {c.candidate} {format_change_pct(c.improvement_pct, 1)}")
    if c.ci_low_pct is not None and c.ci_high_pct is not None:
        low, high = format_change_pct(c.ci_low_pct, 1), format_change_pct(c.ci_high_pct, 1)
        parts.append(f"(CI {low} to {high})")
    if c.p_adjusted is not None:
        parts.append(f"p_adj {c.p_adjusted:.3g}")
    return " ".join(parts)


def strengths(
    kpis: Sequence[KpiComparison], ratings: Sequence[Rating], candidate: str, base: str
) -> list[Finding]:
    """The KPIs where the candidate is significantly better, then its good ratings."""
    out = [
        Finding(text=f"{candidate} is better than {base} on {c.subject}", figure=describe(c))
        for c in kpis
        if c.verdict is KpiVerdict.BETTER
    ]
    for r in ratings:
        if r.coordinator == candidate and r.rating in ("excellent", "good", "efficient"):
            out.append(
                Finding(text=f"{candidate} {r.label.lower()} rated {r.rating}", figure=_rated(r))
            )
    return out


def weaknesses(
    kpis: Sequence[KpiComparison],
    ratings: Sequence[Rating],
    leaks: Sequence[LeakFigure],
    candidate: str,
    base: str,
) -> list[Finding]:
    """The KPIs where the candidate is significantly worse, its poor ratings, its leaks."""
    out = [
        Finding(text=f"{candidate} is worse than {base} on {c.subject}", figure=describe(c))
        for c in kpis
        if c.verdict is KpiVerdict.WORSE
    ]
    for r in ratings:
        if r.coordinator == candidate and r.rating == "poor":
            out.append(Finding(text=f"{candidate} {r.label.lower()} rated poor", figure=_rated(r)))
    for leak in leaks:
        if leak.coordinator == candidate and leak.suspected:
            out.append(
                Finding(
                    text=f"{candidate} retains memory as events flow ({leak.case})",
                    figure=leak_text(leak),
                )
            )
    return out


def _rated(r: Rating) -> str:
    return f"{r.label} {format_value(r.value, r.unit)} on {RATING_CASE[0]}.{RATING_CASE[1]}"


def leak_text(leak: LeakFigure) -> str:
    interval = (
        f" (95 % CI {leak.ci_low:,.0f} to {leak.ci_high:,.0f})"
        if leak.ci_low is not None and leak.ci_high is not None
        else ""
    )
    return (
        f"{leak.case} on {leak.coordinator}: {leak.slope_bytes_per_1k:,.0f} retained bytes "
        f"per 1,000 events{interval}"
    )


_BINDING_ADVICE = {
    "cpu": "the process is CPU-bound at its limit: profile the per-event path (flame graphs) "
    "and cut work per event before adding concurrency",
    "memory": "memory grows at the limit: bound the queues and avoid copying payloads",
    "io_wait": "I/O wait binds at the limit: move blocking I/O off the event loop",
    "queue": "events wait in queues with no resource saturated: raise per-service concurrency "
    "or drain queues in parallel",
}


def recommendations(
    kpis: Sequence[KpiComparison],
    ratings: Sequence[Rating],
    leaks: Sequence[LeakFigure],
    bottlenecks: Sequence[Bottleneck],
    factors: Sequence[ScalabilityFactor],
    error_rows: Sequence[ErrorRateRow],
    missing: Sequence[Missing],
    candidate: str,
    base: str,
) -> list[Recommendation]:
    """What to do next, each with its trigger: worse KPIs, ratings below the base's,
    binding resources, leaks, unrealised headroom, losses under faults, comparisons too
    small to test, suites not run."""
    return [
        *_worse_kpi_advice(kpis, candidate, base),
        *_rating_advice(ratings, candidate, base),
        *_bottleneck_advice(bottlenecks, candidate),
        *_leak_advice(leaks, candidate),
        *_headroom_advice(kpis, factors, candidate, base),
        *_fault_advice(error_rows, candidate, base),
        *_sample_advice(kpis),
        *_suite_advice(missing),
    ]


def _worse_kpi_advice(
    kpis: Sequence[KpiComparison], candidate: str, base: str
) -> Iterable[Recommendation]:
    for c in kpis:
        if c.verdict is KpiVerdict.WORSE:
            yield Recommendation(
                text=f"Investigate {candidate}'s {c.label.lower()} on {c.suite}.{c.case}: it "
                f"is significantly worse than {base}; compare their profiles of this case",
                trigger=describe(c),
            )


def _rating_advice(
    ratings: Sequence[Rating], candidate: str, base: str
) -> Iterable[Recommendation]:
    base_rating = {r.kpi: r.rating for r in ratings if r.coordinator == base}
    for r in ratings:
        if r.coordinator != candidate or r.rating is None or r.value is None:
            continue
        theirs = base_rating.get(r.kpi)
        # A band both share is the workload's (an unpaced run keeps a core busy whatever
        # coordinates it); recommend only where the candidate rates below the base.
        below = RATING_RANK[r.rating] > RATING_RANK.get(theirs or "", -1)
        if below and r.rating in ("poor", "acceptable"):
            yield Recommendation(
                text=f"Bring {candidate}'s medium-load {r.label.lower()} out of the "
                f"{r.rating} band"
                + (f" where {base} rates {theirs}" if theirs else "")
                + f" ({r.scale})",
                trigger=f"{r.label} {candidate} {format_value(r.value, r.unit)} ({r.rating}) "
                f"on {RATING_CASE[0]}.{RATING_CASE[1]}",
            )


def _bottleneck_advice(
    bottlenecks: Sequence[Bottleneck], candidate: str
) -> Iterable[Recommendation]:
    for b in bottlenecks:
        if b.coordinator == candidate and b.binding in _BINDING_ADVICE:
            yield Recommendation(
                text=f"{b.case}: {_BINDING_ADVICE[b.binding]}",
                trigger=f"binding resource {b.binding} for {b.coordinator}: {b.evidence}",
            )


def _leak_advice(leaks: Sequence[LeakFigure], candidate: str) -> Iterable[Recommendation]:
    for leak in leaks:
        if leak.coordinator == candidate and leak.suspected:
            yield Recommendation(
                text=f"Find what {candidate} keeps per event (a memray flame graph of the "
                f"{leak.case} run shows the allocation sites still alive)",
                trigger=leak_text(leak),
            )


def _headroom_advice(
    kpis: Sequence[KpiComparison],
    factors: Sequence[ScalabilityFactor],
    candidate: str,
    base: str,
) -> Iterable[Recommendation]:
    decided = {
        (c.suite, c.case, c.kpi)
        for c in kpis
        if c.verdict in (KpiVerdict.BETTER, KpiVerdict.EQUAL, KpiVerdict.WORSE)
    }
    for f in factors:
        if f.factor is not None and f.factor < 1.0 and (f.suite, f.case, f.kpi) in decided:
            yield Recommendation(
                text=f"{candidate} realises {f.factor:.2f} of the measured headroom on "
                f"{f.case} {f.label.lower()}: the reference dispatcher shows what the same "
                "handlers sustain with less coordination overhead",
                trigger=f"actual {format_change_pct(f.actual_pct or 0.0, 1)} against expected "
                f"{format_change_pct(f.expected_pct or 0.0, 1)} (reference over {base})",
            )


def _fault_advice(
    error_rows: Sequence[ErrorRateRow], candidate: str, base: str
) -> Iterable[Recommendation]:
    for row in error_rows:
        if row.faults and row.difference_pp is not None and row.difference_pp > 0:
            rates = ", ".join(f"{r.coordinator} {r.rate_pct:.2f} %" for r in row.rates)
            yield Recommendation(
                text=f"{candidate} loses more events than {base} under injected faults on "
                f"{row.suite}.{row.case}: check its retry and dead-letter settings",
                trigger=f"error rate {rates} ({row.difference_pp:+.2f} points)",
            )


def _sample_advice(kpis: Sequence[KpiComparison]) -> Iterable[Recommendation]:
    untested = [c for c in kpis if c.verdict is KpiVerdict.UNDETERMINED and c.test]
    if untested:
        smallest = min(min(f.n for f in c.figures) for c in untested)
        yield Recommendation(
            text="Measure more samples (the quick or full set, or pyperf --rigorous) so that "
            "these comparisons can be tested",
            trigger=f"{len(untested)} KPI comparisons with as few as {smallest} samples per "
            f"coordinator: {untested[0].note}",
        )


def _suite_advice(missing: Sequence[Missing]) -> Iterable[Recommendation]:
    for m in missing:
        if m.what in SUITES and "no result files" in m.detail:
            yield Recommendation(
                text=f"Run the {m.what} suite (python -m perf run --suites {m.what})",
                trigger=f"{m.what}: {m.detail}",
            )


def _target_item(name: str, comparisons: Sequence[KpiComparison], empty: str) -> TargetItem:
    # A case measured on the candidate only (candidate-specific options) cannot be compared
    # and does not count; a case the candidate is missing from does.
    counted = [
        c
        for c in comparisons
        if not (c.verdict is KpiVerdict.MISSING and c.figure(c.base) is None)
        or c.figure(c.candidate) is None
    ]
    if not counted:
        return TargetItem(name=name, status=TargetStatus.UNDETERMINED, figures=(), reason=empty)
    candidate = counted[0].candidate
    figures = tuple(
        f"{describe(c)} [{c.verdict.value}{': ' + c.note if c.note else ''}]" for c in counted
    )
    worse = [c for c in counted if c.verdict is KpiVerdict.WORSE]
    if worse:
        return TargetItem(
            name=name,
            status=TargetStatus.NOT_MET,
            figures=figures,
            reason=f"{candidate} is significantly worse on {len(worse)} of {len(counted)}: "
            + ", ".join(c.subject for c in worse),
        )
    open_ = [c for c in counted if c.verdict in (KpiVerdict.UNDETERMINED, KpiVerdict.MISSING)]
    if open_:
        return TargetItem(
            name=name,
            status=TargetStatus.UNDETERMINED,
            figures=figures,
            reason=f"{len(open_)} of {len(counted)} could not be decided: "
            + "; ".join(f"{c.subject} ({c.note or c.verdict.value})" for c in open_),
        )
    better = sum(c.verdict is KpiVerdict.BETTER for c in counted)
    return TargetItem(
        name=name,
        status=TargetStatus.MET,
        figures=figures,
        reason=f"equal or better on all {len(counted)} ({better} significantly better)",
    )


def target(kpis: Sequence[KpiComparison], error_rows: Sequence[ErrorRateRow]) -> list[TargetItem]:
    """The centralized daemon target's four items (throughput, memory, scalability,
    resilience under injected faults), each met, not met or undetermined, with the figures
    behind it."""

    def pick(suites: Iterable[str], names: Iterable[str]) -> list[KpiComparison]:
        s, n = set(suites), set(names)
        return [c for c in kpis if c.suite in s and c.kpi in n]

    fault_cases = {(r.suite, r.case) for r in error_rows if r.faults}
    resilience = [
        c for c in pick(["load_testing"], ["success_rate"]) if (c.suite, c.case) in fault_cases
    ]
    items = [
        _target_item(
            "throughput",
            pick(["daemon_performance"], ["throughput"]),
            "no daemon_performance throughput measured in this run",
        ),
        _target_item(
            "memory",
            pick(["daemon_performance", "memory_profiling"], ["rss_peak", "allocated"]),
            "no peak RSS or traced allocation measured in this run",
        ),
        _target_item(
            "scalability",
            pick(["scalability_testing"], list(CAPACITY_KPI.values())),
            "no scalability sweep measured in this run",
        ),
        _target_item(
            "resilience",
            resilience,
            "no load_testing case with injected faults measured in this run",
        ),
    ]
    fault_rows = [r for r in error_rows if r.faults and r.suite == "load_testing"]
    if fault_rows:
        extra = tuple(
            f"{r.suite}.{r.case} error rate: "
            + ", ".join(
                f"{e.coordinator} {e.rate_pct:.2f} % ({e.failed}/{e.total})" for e in r.rates
            )
            for r in fault_rows
        )
        items[3] = replace(items[3], figures=items[3].figures + extra)
    return items
