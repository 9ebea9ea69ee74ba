"""KPI comparisons: the candidate against the base on one KPI of one case, with the
floor's headroom over the base, as :mod:`perf.report.analysis` states the conventions
(the sign of an improvement, the interval, the test and its correction).

Pure functions of loaded results (:class:`~perf.measure.results.CaseResult`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from perf.decide.policy import DEFAULT_CONFIDENCE, Direction
from perf.decide.stats import (
    DEGENERATE_P_FLOOR,
    Significance,
    holm,
    ratio_ci_unpaired,
    unpaired_test,
)
from perf.measure.results import BASE, CANDIDATE, FLOOR, CaseResult
from perf.report.format import median

__all__ = [
    "CAPACITY_KPI",
    "KPIS",
    "KPI_BY_NAME",
    "Figure",
    "KpiComparison",
    "KpiDef",
    "KpiVerdict",
    "compare_kpi",
    "kpi_samples",
    "settle",
]


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
KPI_BY_NAME = {k.name: k for k in KPIS}
# The sweep capacity KPIs the scalability factor is computed for, by sweep axis.
CAPACITY_KPI = {"rate": "throughput_max", "services": "services_max", "payload": "payload_max"}


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
    None here; :func:`settle` corrects across all KPI comparisons.
    """
    samples, why = _samples(kpi, results)
    if not samples:
        return None
    any_result = next(iter(results.values()))
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
        return _without_interval(kpi, base_values, cand_values, common)
    estimate = ratio_ci_unpaired(base_values, cand_values, confidence=confidence, seed=seed)
    significance = unpaired_test(base_values, cand_values)
    low, high = _improvement_interval(estimate.ci_low, estimate.ci_high, kpi.direction)
    floor_values = samples.get(floor) if floor not in (base, candidate) else None
    headroom = _headroom(kpi, base_values, floor_values, confidence=confidence, seed=seed)
    verdict, note = _before_correction(significance, base_values, cand_values, base, candidate)
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


def _samples(
    kpi: KpiDef, results: Mapping[str, CaseResult]
) -> tuple[dict[str, tuple[float, ...]], dict[str, str]]:
    """coordinator -> its sample values of ``kpi``, and coordinator -> why it has none."""
    samples: dict[str, tuple[float, ...]] = {}
    why: dict[str, str] = {}
    for coordinator, result in results.items():
        values, reason = kpi_samples(result, kpi)
        if values:
            samples[coordinator] = values
        else:
            why[coordinator] = reason
    return samples, why


def _without_interval(
    kpi: KpiDef,
    base_values: Sequence[float],
    cand_values: Sequence[float],
    common: Mapping[str, Any],
) -> KpiComparison:
    """Zero or negative values have no ratio interval and no test: the medians' change
    only, where both medians are positive."""
    base_med, cand_med = median(base_values), median(cand_values)
    improvement = (
        _improvement(cand_med / base_med, kpi.direction) if base_med > 0 and cand_med > 0 else None
    )
    return KpiComparison(
        verdict=KpiVerdict.UNDETERMINED,
        improvement_pct=improvement,
        note="zero or negative sample values: no ratio interval or test",
        **common,
    )


def _headroom(
    kpi: KpiDef,
    base_values: Sequence[float],
    floor_values: Sequence[float] | None,
    *,
    confidence: float,
    seed: int,
) -> dict[str, Any]:
    """The floor's improvement over the base (the expected improvement of the scalability
    factor) as :class:`KpiComparison` fields; none without positive floor values."""
    if floor_values is None or not all(v > 0 for v in floor_values):
        return {}
    head = ratio_ci_unpaired(base_values, floor_values, confidence=confidence, seed=seed)
    head_test = unpaired_test(base_values, floor_values)
    h_low, h_high = _improvement_interval(head.ci_low, head.ci_high, kpi.direction)
    return {
        "headroom_pct": _improvement(head.ratio, kpi.direction),
        "headroom_ci_low_pct": h_low,
        "headroom_ci_high_pct": h_high,
        "headroom_p_value": None if head_test.degenerate else head_test.p_value,
    }


def _before_correction(
    significance: Significance,
    base_values: Sequence[float],
    cand_values: Sequence[float],
    base: str,
    candidate: str,
) -> tuple[KpiVerdict, str]:
    """EQUAL until the corrected p-value says otherwise (:func:`settle`), unless the test
    could not run: then UNDETERMINED with the reason, or EQUAL for identical samples."""
    if not significance.degenerate:
        return KpiVerdict.EQUAL, ""
    enough = significance.min_attainable_p <= DEGENERATE_P_FLOOR
    if len(set(base_values) | set(cand_values)) == 1 and enough:
        # Every sample of both sides is the same value: equal, and enough of them to
        # have shown a difference had there been one.
        return KpiVerdict.EQUAL, f"all {len(base_values) + len(cand_values)} samples identical"
    if enough:
        return KpiVerdict.UNDETERMINED, f"not tested: {significance.note}"
    return KpiVerdict.UNDETERMINED, (
        f"too few samples to test ({len(base_values)} {base}, {len(cand_values)} "
        f"{candidate}: the smallest attainable p is {significance.min_attainable_p:.3g})"
    )


def settle(comparisons: Sequence[KpiComparison], alpha: float) -> list[KpiComparison]:
    """Holm-correct the p-values of the comparisons that were tested, across all of them,
    and settle each tested one at ``alpha``: its final verdict and scalability factor."""
    tested = [i for i, c in enumerate(comparisons) if c.p_value is not None]
    adjusted = holm([comparisons[i].p_value or 1.0 for i in tested])
    settled = list(comparisons)
    for i, p_adj in zip(tested, adjusted, strict=True):
        settled[i] = _settle_one(comparisons[i], p_adj, alpha)
    return settled


def _headroom_measurable(c: KpiComparison, alpha: float) -> bool:
    """The floor's headroom over the base is real: a test that ran, ``p < alpha`` and an
    interval entirely above zero (the reference better than the base)."""
    return (
        c.headroom_p_value is not None
        and c.headroom_p_value < alpha
        and c.headroom_ci_low_pct is not None
        and c.headroom_ci_low_pct > 0
    )


def _settle_one(comparison: KpiComparison, p_adjusted: float, alpha: float) -> KpiComparison:
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
