"""The figures of a run beside the KPI comparisons: error rates, memory efficiency,
leaks, the binding resource of each sweep, latency profiles, sweep curves, RSS series and
the scalability factors, as :mod:`perf.report.analysis` defines them.

Pure functions of loaded results and of settled KPI comparisons.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from perf.measure.results import CaseResult, SweepPointData, float_or_none
from perf.report.format import format_change_pct, median
from perf.report.kpis import CAPACITY_KPI, KpiComparison, KpiVerdict

__all__ = [
    "Bottleneck",
    "ErrorRate",
    "ErrorRateRow",
    "LatencyProfile",
    "LeakFigure",
    "MemoryEfficiency",
    "RssSeries",
    "ScalabilityFactor",
    "SweepCurve",
    "bottleneck",
    "error_rate",
    "error_rate_row",
    "latency_profile",
    "leak_figure",
    "memory_efficiency",
    "rss_series",
    "scalability_factors",
    "sweep_curve",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorRate:
    """failed / total x 100, pooled over every workload of every sample."""

    coordinator: str
    failed: int
    total: int
    rate_pct: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorRateRow:
    suite: str
    case: str
    faults: bool
    rates: tuple[ErrorRate, ...]
    difference_pp: float | None  # candidate minus base, percentage points (lower is better)
    note: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryEfficiency:
    """freed / allocated x 100 from tracemalloc, pooled over the samples."""

    case: str
    coordinator: str
    freed_bytes: float
    allocated_bytes: float
    efficiency_pct: float
    n: int


@dataclass(frozen=True, slots=True, kw_only=True)
class LeakFigure:
    """A leak run's slope of retained (traced) bytes per 1,000 events: medians over the
    samples of the slope and of its 95 % interval ends. ``suspected`` when the interval's
    lower end is above 0."""

    case: str
    coordinator: str
    slope_bytes_per_1k: float
    ci_low: float | None
    ci_high: float | None
    rss_slope_bytes_per_1k: float | None
    suspected: bool
    n: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ScalabilityFactor:
    """actual / expected improvement of a capacity KPI (see the module docstring)."""

    suite: str
    case: str
    kpi: str
    label: str
    actual_pct: float | None
    expected_pct: float | None
    factor: float | None
    note: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Bottleneck:
    """The resource judged to bind where a coordinator's sweep hit its limit."""

    case: str
    axis: str
    coordinator: str
    binding: str
    evidence: str
    max_sustainable: float | None
    knee: float | None
    limit_reached: bool
    unit: str


@dataclass(frozen=True, slots=True, kw_only=True)
class LatencyProfile:
    """Median p50 / p95 / p99 latency (seconds) of one coordinator on one case."""

    suite: str
    case: str
    coordinator: str
    p50_s: float
    p95_s: float
    p99_s: float
    n: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SweepCurve:
    suite: str
    case: str
    axis: str
    coordinator: str
    points: tuple[SweepPointData, ...]
    p99_bound_s: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RssSeries:
    """RSS (bytes) over time (seconds) of one leak run."""

    case: str
    coordinator: str
    points: tuple[tuple[float, float], ...]


def error_rate(result: CaseResult) -> ErrorRate | None:
    """failed / total x 100 pooled over the samples; None without the figures."""
    rates = result.values.get("error_rate_pct", ())
    if result.events is None or not rates:
        return None
    loops = result.loops or (1,) * len(rates)
    failed = total = 0
    for rate_pct, n_loops in zip(rates, loops, strict=False):
        if rate_pct is None:
            continue
        published = result.events * n_loops
        failed += round(rate_pct * published / 100.0)
        total += published
    if total == 0:
        return None
    return ErrorRate(
        coordinator=result.coordinator,
        failed=failed,
        total=total,
        rate_pct=100.0 * failed / total,
    )


def memory_efficiency(result: CaseResult) -> MemoryEfficiency | None:
    """freed / allocated x 100 pooled over the samples that have both figures."""
    allocated = result.values.get("allocated", ())
    freed = result.values.get("freed", ())
    pairs = [(a, f) for a, f in zip(allocated, freed, strict=False) if a is not None]
    pairs_known = [(a, f if f is not None else 0.0) for a, f in pairs]
    total_allocated = math.fsum(a for a, _ in pairs_known)
    if not pairs_known or total_allocated <= 0:
        return None
    total_freed = math.fsum(f for _, f in pairs_known)
    return MemoryEfficiency(
        case=result.case,
        coordinator=result.coordinator,
        freed_bytes=total_freed,
        allocated_bytes=total_allocated,
        efficiency_pct=100.0 * total_freed / total_allocated,
        n=len(pairs_known),
    )


def leak_figure(result: CaseResult) -> LeakFigure | None:
    slopes = result.measured("leak_slope")
    if not slopes:
        return None
    lows = result.measured("leak_slope_ci_low")
    highs = result.measured("leak_slope_ci_high")
    rss = result.measured("rss_slope")
    low = median(lows) if lows else None
    return LeakFigure(
        case=result.case,
        coordinator=result.coordinator,
        slope_bytes_per_1k=median(slopes),
        ci_low=low,
        ci_high=median(highs) if highs else None,
        rss_slope_bytes_per_1k=median(rss) if rss else None,
        suspected=low is not None and low > 0,
        n=len(slopes),
    )


_MAX_METRIC = {
    "rate": "throughput_max_eps",
    "services": "services_max",
    "payload": "payload_max_bytes",
}
_KNEE_METRIC = {"rate": "knee_eps", "services": "knee_services", "payload": "knee_payload_bytes"}
_AXIS_UNIT = {"rate": "eps", "services": "count", "payload": "bytes"}


def bottleneck(result: CaseResult) -> Bottleneck | None:
    if result.kind != "sweep" or result.sweep_axis is None:
        return None
    axis = result.sweep_axis
    maxima = result.measured(_MAX_METRIC.get(axis, ""))
    knees = result.measured(_KNEE_METRIC.get(axis, ""))
    limits = result.measured("limit_reached")
    binding = result.labels.get("binding")
    if binding is None:
        return None
    return Bottleneck(
        case=result.case,
        axis=axis,
        coordinator=result.coordinator,
        binding=binding,
        evidence=result.labels.get("binding_evidence", ""),
        max_sustainable=median(maxima) if maxima else None,
        knee=median(knees) if knees else None,
        limit_reached=bool(limits) and median(limits) > 0,
        unit=_AXIS_UNIT.get(axis, "count"),
    )


def error_rate_row(
    suite: str, case: str, results: Mapping[str, CaseResult], *, base: str, candidate: str
) -> ErrorRateRow | None:
    """The case's error rates per coordinator and the candidate's difference from the base;
    None when no coordinator has the figures."""
    rates = [r for r in (error_rate(x) for x in results.values()) if r is not None]
    if not rates:
        return None
    by = {r.coordinator: r for r in rates}
    diff = by[candidate].rate_pct - by[base].rate_pct if candidate in by and base in by else None
    note = "" if diff is not None else f"{base} or {candidate} not measured"
    return ErrorRateRow(
        suite=suite,
        case=case,
        faults=any(x.faults for x in results.values()),
        rates=tuple(rates),
        difference_pp=diff,
        note=note,
    )


def latency_profile(result: CaseResult) -> LatencyProfile | None:
    """Medians of the p50, p95 and p99 samples; None unless all three were measured."""
    p50, p95, p99 = (result.measured(m) for m in ("latency_p50", "latency_p95", "latency_p99"))
    if not (p50 and p95 and p99):
        return None
    return LatencyProfile(
        suite=result.suite,
        case=result.case,
        coordinator=result.coordinator,
        p50_s=median(p50),
        p95_s=median(p95),
        p99_s=median(p99),
        n=min(len(p50), len(p95), len(p99)),
    )


def sweep_curve(result: CaseResult) -> SweepCurve | None:
    if not (result.sweep_points and result.sweep_axis):
        return None
    return SweepCurve(
        suite=result.suite,
        case=result.case,
        axis=result.sweep_axis,
        coordinator=result.coordinator,
        points=result.sweep_points,
        p99_bound_s=float_or_none(result.params.get("crucible_sweep_p99_bound_s")),
    )


def rss_series(result: CaseResult) -> RssSeries | None:
    if not result.rss_series:
        return None
    return RssSeries(case=result.case, coordinator=result.coordinator, points=result.rss_series)


def scalability_factors(
    kpis: Sequence[KpiComparison], *, base: str, floor: str
) -> list[ScalabilityFactor]:
    """The factor of each sweep capacity KPI, or a note saying why it is not defined."""
    return [
        ScalabilityFactor(
            suite=c.suite,
            case=c.case,
            kpi=c.kpi,
            label=c.label,
            actual_pct=c.improvement_pct,
            expected_pct=c.headroom_pct,
            factor=c.scalability_factor,
            note=_factor_note(c, base, floor),
        )
        for c in kpis
        if c.suite == "scalability_testing" and c.kpi in CAPACITY_KPI.values()
    ]


def _factor_note(c: KpiComparison, base: str, floor: str) -> str:
    if c.scalability_factor is not None:
        return (
            f"expected = reference's improvement over {base} "
            f"({format_change_pct(c.headroom_pct or 0.0, 1)})"
        )
    if c.verdict is KpiVerdict.MISSING:
        return c.note
    if c.headroom_pct is None:
        return f"not defined: {floor} not measured (or not testable) for this case"
    if c.headroom_p_value is None:
        return (
            f"not defined: too few samples to test the {floor}'s headroom over {base} "
            f"({format_change_pct(c.headroom_pct, 1)})"
        )
    return (
        f"not defined: the {floor}'s headroom over {base} "
        f"({format_change_pct(c.headroom_pct, 1)}, "
        f"CI from {format_change_pct(c.headroom_ci_low_pct or 0.0, 1)}, "
        f"p {c.headroom_p_value:.3g}) is not significantly above zero"
    )
