"""Ratings: the docs/design.md#ratings bands of a medium-load figure (throughput, median
latency, peak RSS, CPU) on the medium daemon_performance case.

The suite records latency percentiles, not the mean, so the "average latency" rating is
applied to the median (p50) latency and labelled as such. Memory is peak RSS in MiB
(2**20 bytes, as ``psutil`` RSS / 1024 / 1024).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from perf.decide.policy import Direction
from perf.measure.results import RunData
from perf.report.format import median
from perf.report.kpis import KPI_BY_NAME, kpi_samples

__all__ = ["MIB", "RATING_CASE", "RATING_RANK", "Rating", "rate", "ratings"]

RATING_CASE = ("daemon_performance", "medium")
MIB = 2**20


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


# Ratings: (upper bound, name) ascending for lower-is-better, the last entry open-ended.
_RATING_SCALES: Mapping[str, tuple[str, Direction, tuple[tuple[float, str], ...], str]] = {
    "throughput": (
        "eps",
        Direction.HIGHER_IS_BETTER,
        ((500.0, "poor"), (1000.0, "acceptable"), (math.inf, "good")),
        "good > 1,000 events/s; acceptable 500-1,000; poor < 500",
    ),
    "latency_p50": (
        "s",
        Direction.LOWER_IS_BETTER,
        ((0.010, "excellent"), (0.050, "good"), (0.200, "acceptable"), (math.inf, "poor")),
        "excellent < 10 ms; good 10-50 ms; acceptable 50-200 ms; poor > 200 ms "
        "(average-latency scale applied to the median: the suite records percentiles)",
    ),
    "rss_peak": (
        "bytes",
        Direction.LOWER_IS_BETTER,
        ((100.0 * MIB, "efficient"), (500.0 * MIB, "acceptable"), (math.inf, "poor")),
        "efficient < 100 MB; acceptable 100-500 MB; poor > 500 MB (MB = 2**20 bytes)",
    ),
    "cpu": (
        "pct",
        Direction.LOWER_IS_BETTER,
        ((50.0, "efficient"), (80.0, "acceptable"), (math.inf, "poor")),
        "efficient < 50 %; acceptable 50-80 %; poor > 80 % (of one core)",
    ),
}


# Better bands rank lower: advice compares the candidate's band with the base's.
RATING_RANK = {"excellent": 0, "good": 1, "efficient": 1, "acceptable": 2, "poor": 3}


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


def ratings(run: RunData, coordinators: Sequence[str]) -> list[Rating]:
    """Each rated KPI of each coordinator on the rating case; a figure the run does not
    have is a rating of None that says why.
    """
    suite, case = RATING_CASE
    out: list[Rating] = []
    for kpi_name, (unit, _, _, scale) in _RATING_SCALES.items():
        kpi = KPI_BY_NAME[kpi_name]
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
