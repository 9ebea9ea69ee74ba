"""Architecture comparison (the original suite's comparison_analysis) from ONE run folder.

DataCoordinator (``data``, the current approach) against CrucibleCore (``core``, the
candidate), with the ``reference`` dispatcher as the floor, per KPI and per case, from the
result files ``python -m perf run`` writes: one pyperf JSON per suite and the JSON summary
beside it (``{suite}.crucible.json``). :func:`perf.measure.results.load_run` reads them;
everything here is pure and works on the :class:`~perf.measure.results.RunData` it returns.

Conventions, the same for every KPI:

- **Improvement %** is the candidate against the base, positive when the candidate is
  better. With ``r = median(core) / median(data)`` (the ratio of medians of the per-sample
  values) it is ``(r - 1) x 100`` for higher-is-better KPIs (the
  docs/design.md#key-indicators formula
  ``(core - data) / data x 100`` for throughput) and ``(1 - r) x 100`` for lower-is-better
  ones (``(data - core) / data x 100``: a latency 20 % lower is +20 %). The interval is
  the same transform of the ratio's interval, :func:`perf.decide.stats.ratio_ci_unpaired` (seeded
  percentile bootstrap); significance is :func:`perf.decide.stats.unpaired_test` (Mann-Whitney U,
  valid for unequal sample counts), Holm-corrected across every KPI comparison of the
  analysis (:func:`perf.decide.stats.holm`).
- **Throughput** is derived per sample from pyperf's time benchmark: published events per
  workload (the case's ``crucible_events``) divided by the measured seconds per workload.
- **Error rate %** = failed / total x 100, pooled over every workload of every sample:
  per sample, ``failed = error_rate_pct x published / 100`` (rounded back to the integer
  count it came from) with ``published = events x loops``.
- **Memory efficiency %** = freed / allocated x 100 from the memory suite's tracemalloc
  figures, pooled over the samples (sum of freed over sum of allocated).
- **Scalability factor** = actual improvement / expected improvement. The *expected*
  improvement is measured, never assumed: the headroom of the base over the reference
  floor, i.e. the improvement the reference dispatcher (the leanest honest coordinator)
  shows over ``data`` on the same KPI in the same run. A factor of 1 means the candidate
  closed the whole gap to the floor, 0 that it gained nothing, below 0 that it lost ground.
  It is not defined when the headroom is not significant or not positive (nothing to
  close), and then says so.
- **Ratings** use the docs/design.md#ratings thresholds on the medium daemon_performance case.
  The suite records latency percentiles, not the mean, so the "average latency" rating is
  applied to the median (p50) latency and labelled as such. Memory is peak RSS in MiB
  (2**20 bytes, as ``psutil`` RSS / 1024 / 1024).

Nothing is estimated or hard-coded: a figure that is not in the files is reported as
missing, with what is missing, and no number.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from perf.decide.policy import DEFAULT_ALPHA, DEFAULT_CONFIDENCE, Direction
from perf.decide.stats import DEGENERATE_P_FLOOR, holm, ratio_ci_unpaired, unpaired_test
from perf.measure.results import (
    BASE,
    CANDIDATE,
    FLOOR,
    SUITES,
    CaseResult,
    Missing,
    RunData,
    SweepPointData,
    float_or_none,
    load_run,
)
from perf.report.format import format_change_pct, format_value, median

__all__ = [
    "KPIS",
    "Analysis",
    "Bottleneck",
    "ErrorRate",
    "ErrorRateRow",
    "Figure",
    "Finding",
    "KpiComparison",
    "KpiDef",
    "KpiVerdict",
    "LatencyProfile",
    "LeakFigure",
    "MemoryEfficiency",
    "Rating",
    "Recommendation",
    "RssSeries",
    "ScalabilityFactor",
    "SweepCurve",
    "TargetItem",
    "TargetStatus",
    "analyze",
    "analyze_run_dir",
    "rate",
]

RATING_CASE = ("daemon_performance", "medium")
MIB = 2**20


# --------------------------------------------------------------------------------------------
# KPIs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KpiDef:
    """One KPI: ``metric`` is the result files' metric it is measured from ("time" for the
    derived throughput); ``unit`` is one of "eps", "s", "bytes", "pct", "count"."""

    name: str
    label: str
    metric: str
    unit: str
    direction: Direction


_HI, _LO = Direction.HIGHER_IS_BETTER, Direction.LOWER_IS_BETTER

KPIS: tuple[KpiDef, ...] = (
    KpiDef("throughput", "Throughput", "time", "eps", _HI),
    KpiDef("latency_p50", "Latency p50", "latency_p50", "s", _LO),
    KpiDef("latency_p95", "Latency p95", "latency_p95", "s", _LO),
    KpiDef("latency_p99", "Latency p99", "latency_p99", "s", _LO),
    KpiDef("rss_peak", "Peak RSS", "rss_peak", "bytes", _LO),
    KpiDef("cpu", "CPU", "cpu_pct", "pct", _LO),
    KpiDef("success_rate", "Success rate", "success_rate_pct", "pct", _HI),
    KpiDef("allocated", "Traced peak allocation", "allocated", "bytes", _LO),
    KpiDef("mem_efficiency", "Memory efficiency", "mem_efficiency_pct", "pct", _HI),
    KpiDef("throughput_max", "Max sustainable throughput", "throughput_max_eps", "eps", _HI),
    KpiDef("knee_rate", "Knee (offered rate)", "knee_eps", "eps", _HI),
    KpiDef("services_max", "Max services sustained", "services_max", "count", _HI),
    KpiDef("knee_services", "Knee (services)", "knee_services", "count", _HI),
    KpiDef("payload_max", "Max payload sustained", "payload_max_bytes", "bytes", _HI),
    KpiDef("knee_payload", "Knee (payload)", "knee_payload_bytes", "bytes", _HI),
)
_KPI = {k.name: k for k in KPIS}
# The sweep capacity KPIs the scalability factor is computed for, by sweep axis.
_CAPACITY_KPI = {"rate": "throughput_max", "services": "services_max", "payload": "payload_max"}


# --------------------------------------------------------------------------------------------
# Analysis data
# --------------------------------------------------------------------------------------------


class KpiVerdict(StrEnum):
    """How the candidate compares with the base on one KPI of one case."""

    BETTER = "better"  # significant after correction, interval entirely on the better side
    WORSE = "worse"  # significant after correction, interval entirely on the worse side
    EQUAL = "equal"  # the test ran and found no significant difference
    UNDETERMINED = "undetermined"  # too few samples for the test, or no interval
    MISSING = "missing"  # a side was not measured


@dataclass(frozen=True, slots=True, kw_only=True)
class Figure:
    """One coordinator's figure for a KPI: the median of its ``n`` sample values."""

    coordinator: str
    median: float
    n: int


@dataclass(frozen=True, slots=True, kw_only=True)
class KpiComparison:
    """Candidate against base on one KPI of one case; see the module docstring for the sign
    of ``improvement_pct``. ``ratio`` is ``median(candidate) / median(base)``. The floor's
    ``headroom_pct`` (reference against base, same sign) is the expected improvement of
    ``scalability_factor``. Figures that could not be computed are None, and ``note`` says
    why."""

    suite: str
    case: str
    kpi: str
    label: str
    unit: str
    direction: Direction
    base: str
    candidate: str
    figures: tuple[Figure, ...]
    verdict: KpiVerdict
    improvement_pct: float | None = None
    ci_low_pct: float | None = None
    ci_high_pct: float | None = None
    ratio: float | None = None
    ratio_ci_low: float | None = None
    ratio_ci_high: float | None = None
    p_value: float | None = None
    p_adjusted: float | None = None
    test: str = ""
    headroom_pct: float | None = None
    headroom_ci_low_pct: float | None = None
    headroom_ci_high_pct: float | None = None
    headroom_p_value: float | None = None
    scalability_factor: float | None = None
    note: str = ""

    @property
    def subject(self) -> str:
        return f"{self.suite}.{self.case} {self.label.lower()}"

    def figure(self, coordinator: str) -> Figure | None:
        for fig in self.figures:
            if fig.coordinator == coordinator:
                return fig
        return None


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
class Rating:
    """A docs/design.md#ratings rating of one coordinator's medium-load figure; ``rating``
    is None and ``note`` says why when the figure is missing."""

    kpi: str
    label: str
    coordinator: str
    value: float | None
    unit: str
    rating: str | None
    scale: str
    note: str = ""


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


@dataclass(frozen=True, slots=True, kw_only=True)
class Analysis:
    """The architecture comparison of one run."""

    source: str
    base: str
    candidate: str
    floor: str
    confidence: float
    alpha: float
    set_name: str | None
    commit: str | None
    suites: tuple[str, ...]
    coordinators: tuple[str, ...]
    missing: tuple[Missing, ...]
    kpis: tuple[KpiComparison, ...]
    error_rates: tuple[ErrorRateRow, ...]
    memory_efficiency: tuple[MemoryEfficiency, ...]
    leaks: tuple[LeakFigure, ...]
    scalability: tuple[ScalabilityFactor, ...]
    bottlenecks: tuple[Bottleneck, ...]
    ratings: tuple[Rating, ...]
    strengths: tuple[Finding, ...]
    weaknesses: tuple[Finding, ...]
    recommendations: tuple[Recommendation, ...]
    target: tuple[TargetItem, ...]
    latency: tuple[LatencyProfile, ...]
    sweeps: tuple[SweepCurve, ...]
    rss: tuple[RssSeries, ...]

    @property
    def target_met(self) -> bool:
        return bool(self.target) and all(t.status is TargetStatus.MET for t in self.target)


# --------------------------------------------------------------------------------------------
# Pure computations
# --------------------------------------------------------------------------------------------


def _improvement(ratio: float, direction: Direction) -> float:
    return (ratio - 1.0) * 100.0 if direction is _HI else (1.0 - ratio) * 100.0


def _improvement_interval(low: float, high: float, direction: Direction) -> tuple[float, float]:
    a, b = _improvement(low, direction), _improvement(high, direction)
    return min(a, b), max(a, b)


def kpi_samples(result: CaseResult, kpi: KpiDef) -> tuple[tuple[float, ...], str]:
    """The per-sample values of ``kpi`` for one case result, and why there are none."""
    if kpi.name == "throughput":
        if result.kind != "workload":
            return (), "throughput applies to workload cases only"
        if result.events is None:
            return (), f"{result.name}: the event count per workload is not recorded"
        times = [t for t in result.measured("time") if t > 0]
        return tuple(result.events / t for t in times), "" if times else "no time values"
    values = result.measured(kpi.metric)
    return values, "" if values else f"{result.name}: no {kpi.metric} values"


def compare_kpi(
    kpi: KpiDef,
    results: Mapping[str, CaseResult],
    *,
    base: str = BASE,
    candidate: str = CANDIDATE,
    floor: str = FLOOR,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
) -> KpiComparison | None:
    """Candidate against base (and the floor's headroom over base) on one KPI of one case.

    ``results`` maps coordinator -> its result for the case. None when the KPI does not
    apply to the case at all (no coordinator has values for it). ``p_adjusted`` is left
    None here; :func:`analyze` corrects across all KPI comparisons.
    """
    any_result = next(iter(results.values()))
    samples: dict[str, tuple[float, ...]] = {}
    why: dict[str, str] = {}
    for coordinator, result in results.items():
        values, reason = kpi_samples(result, kpi)
        if values:
            samples[coordinator] = values
        else:
            why[coordinator] = reason
    if not samples:
        return None
    figures = tuple(Figure(coordinator=c, median=median(v), n=len(v)) for c, v in samples.items())
    common: dict[str, Any] = {
        "suite": any_result.suite,
        "case": any_result.case,
        "kpi": kpi.name,
        "label": kpi.label,
        "unit": kpi.unit,
        "direction": kpi.direction,
        "base": base,
        "candidate": candidate,
        "figures": figures,
    }
    absent = [c for c in (base, candidate) if c not in samples]
    if absent:
        detail = "; ".join(why.get(c, f"{c} not measured for this case") for c in absent)
        return KpiComparison(verdict=KpiVerdict.MISSING, note=f"missing: {detail}", **common)
    base_values, cand_values = samples[base], samples[candidate]
    if not all(v > 0 for v in (*base_values, *cand_values)):
        base_med, cand_med = median(base_values), median(cand_values)
        improvement = (
            _improvement(cand_med / base_med, kpi.direction)
            if base_med > 0 and cand_med > 0
            else None
        )
        return KpiComparison(
            verdict=KpiVerdict.UNDETERMINED,
            improvement_pct=improvement,
            note="zero or negative sample values: no ratio interval or test",
            **common,
        )
    estimate = ratio_ci_unpaired(base_values, cand_values, confidence=confidence, seed=seed)
    significance = unpaired_test(base_values, cand_values)
    low, high = _improvement_interval(estimate.ci_low, estimate.ci_high, kpi.direction)
    headroom: dict[str, Any] = {}
    floor_values = samples.get(floor)
    if (
        floor_values is not None
        and floor not in (base, candidate)
        and all(v > 0 for v in floor_values)
    ):
        head = ratio_ci_unpaired(base_values, floor_values, confidence=confidence, seed=seed)
        head_test = unpaired_test(base_values, floor_values)
        h_low, h_high = _improvement_interval(head.ci_low, head.ci_high, kpi.direction)
        headroom = {
            "headroom_pct": _improvement(head.ratio, kpi.direction),
            "headroom_ci_low_pct": h_low,
            "headroom_ci_high_pct": h_high,
            "headroom_p_value": None if head_test.degenerate else head_test.p_value,
        }
    note = ""
    verdict = KpiVerdict.EQUAL
    if significance.degenerate:
        enough = significance.min_attainable_p <= DEGENERATE_P_FLOOR
        if len(set(base_values + cand_values)) == 1 and enough:
            # Every sample of both sides is the same value: equal, and enough of them to
            # have shown a difference had there been one.
            note = f"all {len(base_values) + len(cand_values)} samples identical"
        elif enough:
            verdict, note = KpiVerdict.UNDETERMINED, f"not tested: {significance.note}"
        else:
            verdict = KpiVerdict.UNDETERMINED
            note = (
                f"too few samples to test ({len(base_values)} {base}, {len(cand_values)} "
                f"{candidate}: the smallest attainable p is {significance.min_attainable_p:.3g})"
            )
    return KpiComparison(
        verdict=verdict,
        improvement_pct=_improvement(estimate.ratio, kpi.direction),
        ci_low_pct=low,
        ci_high_pct=high,
        ratio=estimate.ratio,
        ratio_ci_low=estimate.ci_low,
        ratio_ci_high=estimate.ci_high,
        p_value=significance.p_value,
        test=significance.test,
        note=note,
        **headroom,
        **common,
    )


def _headroom_measurable(c: KpiComparison, alpha: float) -> bool:
    """The floor's headroom over the base is real: a test that ran, ``p < alpha`` and an
    interval entirely above zero (the reference better than the base)."""
    return (
        c.headroom_p_value is not None
        and c.headroom_p_value < alpha
        and c.headroom_ci_low_pct is not None
        and c.headroom_ci_low_pct > 0
    )


def _settle(comparison: KpiComparison, p_adjusted: float, alpha: float) -> KpiComparison:
    """Apply the corrected p-value: the final verdict and the scalability factor."""
    verdict = comparison.verdict
    note = comparison.note
    if verdict is KpiVerdict.EQUAL and p_adjusted < alpha:
        low, high = comparison.ci_low_pct, comparison.ci_high_pct
        if low is not None and low > 0:
            verdict = KpiVerdict.BETTER
        elif high is not None and high < 0:
            verdict = KpiVerdict.WORSE
        else:
            verdict = KpiVerdict.UNDETERMINED
            note = "significant, but the interval includes no change"
    factor = None
    if (
        comparison.improvement_pct is not None
        and comparison.headroom_pct is not None
        and _headroom_measurable(comparison, alpha)
    ):
        factor = comparison.improvement_pct / comparison.headroom_pct
    return replace(
        comparison, p_adjusted=p_adjusted, verdict=verdict, note=note, scalability_factor=factor
    )


def _describe(c: KpiComparison) -> str:
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


# Ratings: (upper bound, name) ascending for lower-is-better, the last entry open-ended.
_RATING_SCALES: Mapping[str, tuple[str, Direction, tuple[tuple[float, str], ...], str]] = {
    "throughput": (
        "eps",
        _HI,
        ((500.0, "poor"), (1000.0, "acceptable"), (math.inf, "good")),
        "good > 1,000 events/s; acceptable 500-1,000; poor < 500",
    ),
    "latency_p50": (
        "s",
        _LO,
        ((0.010, "excellent"), (0.050, "good"), (0.200, "acceptable"), (math.inf, "poor")),
        "excellent < 10 ms; good 10-50 ms; acceptable 50-200 ms; poor > 200 ms "
        "(average-latency scale applied to the median: the suite records percentiles)",
    ),
    "rss_peak": (
        "bytes",
        _LO,
        ((100.0 * MIB, "efficient"), (500.0 * MIB, "acceptable"), (math.inf, "poor")),
        "efficient < 100 MB; acceptable 100-500 MB; poor > 500 MB (MB = 2**20 bytes)",
    ),
    "cpu": (
        "pct",
        _LO,
        ((50.0, "efficient"), (80.0, "acceptable"), (math.inf, "poor")),
        "efficient < 50 %; acceptable 50-80 %; poor > 80 % (of one core)",
    ),
}


_RANK = {"excellent": 0, "good": 1, "efficient": 1, "acceptable": 2, "poor": 3}


def rate(kpi: str, value: float) -> str:
    """The docs/design.md#ratings rating of a medium-load figure: ``kpi`` is throughput (events/s),
    latency_p50 (seconds), rss_peak (bytes) or cpu (percent of one core). A value on a
    shared band edge takes the band that names it in the range form ("good 10-50 ms",
    "acceptable 500-1,000"): 50 ms is good, 1,000 events/s acceptable, 80 % acceptable."""
    _, _, bands, _ = _RATING_SCALES[kpi]
    first_bound, first_name = bands[0]
    if kpi == "throughput":
        if value < first_bound:
            return first_name
        return "acceptable" if value <= bands[1][0] else "good"
    if value < first_bound:
        return first_name
    for bound, name in bands[1:]:
        if value <= bound:
            return name
    return bands[-1][1]


def _ratings(run: RunData, coordinators: Sequence[str]) -> list[Rating]:
    suite, case = RATING_CASE
    out: list[Rating] = []
    for kpi_name, (unit, _, _, scale) in _RATING_SCALES.items():
        kpi = _KPI[kpi_name]
        for coordinator in coordinators:
            result = run.case(suite, case, coordinator)
            if result is None:
                out.append(
                    Rating(
                        kpi=kpi_name,
                        label=kpi.label,
                        coordinator=coordinator,
                        value=None,
                        unit=unit,
                        rating=None,
                        scale=scale,
                        note=f"{suite}.{case} not measured for {coordinator} in this run",
                    )
                )
                continue
            values, why = kpi_samples(result, kpi)
            value = median(values) if values else None
            out.append(
                Rating(
                    kpi=kpi_name,
                    label=kpi.label,
                    coordinator=coordinator,
                    value=value,
                    unit=unit,
                    rating=rate(kpi_name, value) if value is not None else None,
                    scale=scale,
                    note=f"median of {len(values)} samples of {suite}.{case}" if values else why,
                )
            )
    return out


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
        f"{_describe(c)} [{c.verdict.value}{': ' + c.note if c.note else ''}]" for c in counted
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


def _target(kpis: Sequence[KpiComparison], error_rows: Sequence[ErrorRateRow]) -> list[TargetItem]:
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
            pick(["scalability_testing"], list(_CAPACITY_KPI.values())),
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


def _findings(
    kpis: Sequence[KpiComparison],
    ratings: Sequence[Rating],
    leaks: Sequence[LeakFigure],
    candidate: str,
    base: str,
) -> tuple[list[Finding], list[Finding]]:
    strengths: list[Finding] = []
    weaknesses: list[Finding] = []
    for c in kpis:
        if c.verdict is KpiVerdict.BETTER:
            strengths.append(
                Finding(
                    text=f"{candidate} is better than {base} on {c.subject}", figure=_describe(c)
                )
            )
        elif c.verdict is KpiVerdict.WORSE:
            weaknesses.append(
                Finding(
                    text=f"{candidate} is worse than {base} on {c.subject}", figure=_describe(c)
                )
            )
    for r in ratings:
        if r.coordinator != candidate or r.rating is None:
            continue
        figure = f"{r.label} {format_value(r.value, r.unit)} on {RATING_CASE[0]}.{RATING_CASE[1]}"
        if r.rating in ("excellent", "good", "efficient"):
            strengths.append(
                Finding(text=f"{candidate} {r.label.lower()} rated {r.rating}", figure=figure)
            )
        elif r.rating == "poor":
            weaknesses.append(
                Finding(text=f"{candidate} {r.label.lower()} rated poor", figure=figure)
            )
    for leak in leaks:
        if leak.coordinator == candidate and leak.suspected:
            weaknesses.append(
                Finding(
                    text=f"{candidate} retains memory as events flow ({leak.case})",
                    figure=_leak_text(leak),
                )
            )
    return strengths, weaknesses


def _leak_text(leak: LeakFigure) -> str:
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


def _recommendations(
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
    out: list[Recommendation] = []
    for c in kpis:
        if c.verdict is KpiVerdict.WORSE:
            out.append(
                Recommendation(
                    text=f"Investigate {candidate}'s {c.label.lower()} on {c.suite}.{c.case}: it "
                    f"is significantly worse than {base}; compare their profiles of this case",
                    trigger=_describe(c),
                )
            )
    base_rating = {r.kpi: r.rating for r in ratings if r.coordinator == base}
    for r in ratings:
        if r.coordinator != candidate or r.rating is None or r.value is None:
            continue
        theirs = base_rating.get(r.kpi)
        # A band both share is the workload's (an unpaced run keeps a core busy whatever
        # coordinates it); recommend only where the candidate rates below the base.
        if _RANK[r.rating] > _RANK.get(theirs or "", -1) and r.rating in ("poor", "acceptable"):
            out.append(
                Recommendation(
                    text=f"Bring {candidate}'s medium-load {r.label.lower()} out of the "
                    f"{r.rating} band"
                    + (f" where {base} rates {theirs}" if theirs else "")
                    + f" ({r.scale})",
                    trigger=f"{r.label} {candidate} {format_value(r.value, r.unit)} ({r.rating}) "
                    f"on {RATING_CASE[0]}.{RATING_CASE[1]}",
                )
            )
    for b in bottlenecks:
        if b.coordinator == candidate and b.binding in _BINDING_ADVICE:
            out.append(
                Recommendation(
                    text=f"{b.case}: {_BINDING_ADVICE[b.binding]}",
                    trigger=f"binding resource {b.binding} for {b.coordinator}: {b.evidence}",
                )
            )
    for leak in leaks:
        if leak.coordinator == candidate and leak.suspected:
            out.append(
                Recommendation(
                    text=f"Find what {candidate} keeps per event (a memray flame graph of the "
                    f"{leak.case} run shows the allocation sites still alive)",
                    trigger=_leak_text(leak),
                )
            )
    decided = {
        (c.suite, c.case, c.kpi)
        for c in kpis
        if c.verdict in (KpiVerdict.BETTER, KpiVerdict.EQUAL, KpiVerdict.WORSE)
    }
    for f in factors:
        if f.factor is not None and f.factor < 1.0 and (f.suite, f.case, f.kpi) in decided:
            out.append(
                Recommendation(
                    text=f"{candidate} realises {f.factor:.2f} of the measured headroom on "
                    f"{f.case} {f.label.lower()}: the reference dispatcher shows what the same "
                    "handlers sustain with less coordination overhead",
                    trigger=f"actual {format_change_pct(f.actual_pct or 0.0, 1)} against expected "
                    f"{format_change_pct(f.expected_pct or 0.0, 1)} (reference over {base})",
                )
            )
    for row in error_rows:
        if row.faults and row.difference_pp is not None and row.difference_pp > 0:
            rates = ", ".join(f"{r.coordinator} {r.rate_pct:.2f} %" for r in row.rates)
            out.append(
                Recommendation(
                    text=f"{candidate} loses more events than {base} under injected faults on "
                    f"{row.suite}.{row.case}: check its retry and dead-letter settings",
                    trigger=f"error rate {rates} ({row.difference_pp:+.2f} points)",
                )
            )
    untested = [c for c in kpis if c.verdict is KpiVerdict.UNDETERMINED and c.test]
    if untested:
        smallest = min(min(f.n for f in c.figures) for c in untested)
        out.append(
            Recommendation(
                text="Measure more samples (the quick or full set, or pyperf --rigorous) so that "
                "these comparisons can be tested",
                trigger=f"{len(untested)} KPI comparisons with as few as {smallest} samples per "
                f"coordinator: {untested[0].note}",
            )
        )
    for m in missing:
        if m.what in SUITES and "no result files" in m.detail:
            out.append(
                Recommendation(
                    text=f"Run the {m.what} suite (python -m perf run --suites {m.what})",
                    trigger=f"{m.what}: {m.detail}",
                )
            )
    return out


def analyze(
    run: RunData,
    *,
    base: str = BASE,
    candidate: str = CANDIDATE,
    floor: str = FLOOR,
    confidence: float = DEFAULT_CONFIDENCE,
    alpha: float = DEFAULT_ALPHA,
    seed: int = 0,
) -> Analysis:
    """The architecture comparison of a loaded run; see the module docstring."""
    by_case: dict[tuple[str, str], dict[str, CaseResult]] = {}
    for result in run.cases:
        by_case.setdefault((result.suite, result.case), {})[result.coordinator] = result
    raw: list[KpiComparison] = []
    for (_, _), results in by_case.items():
        for kpi in KPIS:
            comparison = compare_kpi(
                kpi,
                results,
                base=base,
                candidate=candidate,
                floor=floor,
                confidence=confidence,
                seed=seed,
            )
            if comparison is not None:
                raw.append(comparison)
    tested = [i for i, c in enumerate(raw) if c.p_value is not None]
    adjusted = holm([raw[i].p_value or 1.0 for i in tested])
    kpis = list(raw)
    for i, p_adj in zip(tested, adjusted, strict=True):
        kpis[i] = _settle(raw[i], p_adj, alpha)

    error_rows: list[ErrorRateRow] = []
    efficiencies: list[MemoryEfficiency] = []
    leaks: list[LeakFigure] = []
    bottlenecks: list[Bottleneck] = []
    latency: list[LatencyProfile] = []
    sweeps: list[SweepCurve] = []
    rss: list[RssSeries] = []
    for (suite, case), results in by_case.items():
        rates = [r for r in (error_rate(x) for x in results.values()) if r is not None]
        if rates:
            by = {r.coordinator: r for r in rates}
            diff = (
                by[candidate].rate_pct - by[base].rate_pct
                if candidate in by and base in by
                else None
            )
            note = "" if diff is not None else f"{base} or {candidate} not measured"
            error_rows.append(
                ErrorRateRow(
                    suite=suite,
                    case=case,
                    faults=any(x.faults for x in results.values()),
                    rates=tuple(rates),
                    difference_pp=diff,
                    note=note,
                )
            )
        for result in results.values():
            eff = memory_efficiency(result)
            if eff is not None:
                efficiencies.append(eff)
            leak = leak_figure(result)
            if leak is not None:
                leaks.append(leak)
            neck = bottleneck(result)
            if neck is not None:
                bottlenecks.append(neck)
            p50, p95, p99 = (
                result.measured(m) for m in ("latency_p50", "latency_p95", "latency_p99")
            )
            if p50 and p95 and p99:
                latency.append(
                    LatencyProfile(
                        suite=suite,
                        case=case,
                        coordinator=result.coordinator,
                        p50_s=median(p50),
                        p95_s=median(p95),
                        p99_s=median(p99),
                        n=min(len(p50), len(p95), len(p99)),
                    )
                )
            if result.sweep_points and result.sweep_axis:
                sweeps.append(
                    SweepCurve(
                        suite=suite,
                        case=case,
                        axis=result.sweep_axis,
                        coordinator=result.coordinator,
                        points=result.sweep_points,
                        p99_bound_s=float_or_none(result.params.get("crucible_sweep_p99_bound_s")),
                    )
                )
            if result.rss_series:
                rss.append(
                    RssSeries(case=case, coordinator=result.coordinator, points=result.rss_series)
                )

    factors: list[ScalabilityFactor] = []
    for c in kpis:
        if c.suite != "scalability_testing" or c.kpi not in _CAPACITY_KPI.values():
            continue
        if c.scalability_factor is not None:
            note = (
                f"expected = reference's improvement over {base} "
                f"({format_change_pct(c.headroom_pct or 0.0, 1)})"
            )
        elif c.verdict is KpiVerdict.MISSING:
            note = c.note
        elif c.headroom_pct is None:
            note = f"not defined: {floor} not measured (or not testable) for this case"
        elif c.headroom_p_value is None:
            note = (
                f"not defined: too few samples to test the {floor}'s headroom over {base} "
                f"({format_change_pct(c.headroom_pct, 1)})"
            )
        else:
            note = (
                f"not defined: the {floor}'s headroom over {base} "
                f"({format_change_pct(c.headroom_pct, 1)}, "
                f"CI from {format_change_pct(c.headroom_ci_low_pct or 0.0, 1)}, "
                f"p {c.headroom_p_value:.3g}) is not significantly above zero"
            )
        factors.append(
            ScalabilityFactor(
                suite=c.suite,
                case=c.case,
                kpi=c.kpi,
                label=c.label,
                actual_pct=c.improvement_pct,
                expected_pct=c.headroom_pct,
                factor=c.scalability_factor,
                note=note,
            )
        )
    missing = list(run.missing)
    if "scalability_testing" in run.suites and not factors:
        missing.append(
            Missing(what="scalability factor", detail="no sweep capacity figure in the results")
        )
    shown = [c for c in (base, candidate, floor) if c in run.coordinators] + [
        c for c in run.coordinators if c not in (base, candidate, floor)
    ]
    ratings = _ratings(run, shown or [base, candidate, floor])
    strengths, weaknesses = _findings(kpis, ratings, leaks, candidate, base)
    recommendations = _recommendations(
        kpis, ratings, leaks, bottlenecks, factors, error_rows, missing, candidate, base
    )
    return Analysis(
        source=run.source,
        base=base,
        candidate=candidate,
        floor=floor,
        confidence=confidence,
        alpha=alpha,
        set_name=run.set_name,
        commit=run.commit,
        suites=run.suites,
        coordinators=tuple(shown),
        missing=tuple(missing),
        kpis=tuple(kpis),
        error_rates=tuple(error_rows),
        memory_efficiency=tuple(efficiencies),
        leaks=tuple(leaks),
        scalability=tuple(factors),
        bottlenecks=tuple(bottlenecks),
        ratings=tuple(ratings),
        strengths=tuple(strengths),
        weaknesses=tuple(weaknesses),
        recommendations=tuple(recommendations),
        target=tuple(_target(kpis, error_rows)),
        latency=tuple(latency),
        sweeps=tuple(sweeps),
        rss=tuple(rss),
    )


def analyze_run_dir(
    run_dir: str | Path,
    *,
    summaries: Sequence[str | Path] | None = None,
    pyperf_files: Sequence[str | Path] | None = None,
    **options: Any,
) -> Analysis:
    """:func:`load_run` then :func:`analyze` (keyword options as for :func:`analyze`)."""
    return analyze(load_run(run_dir, summaries=summaries, pyperf_files=pyperf_files), **options)
