"""The metrics the suites record, and how each is extracted from measured runs. Pure.

Every metric is measured in the run that reports it. A *sample* is one pyperf value: the
``loops`` workloads one call of a benchmark's time function runs. Its figures pool those
workloads: latency percentiles over all their latencies, peak memory as the maximum, CPU
and success rates as totals over totals.

Where a metric goes in the result files (``Metric.storage``):

- ``benchmark``: its own pyperf benchmark ``"{suite}.{case}.{coordinator}.{metric}"``, one
  run per worker process. pyperf accepts only values > 0, so only metrics that cannot be 0
  are stored this way.
- ``metadata``: metrics that can be 0 or negative (error rate, retried, dead-lettered and
  dropped counts, leak slopes) go into the run metadata of every metric run of the worker as
  ``crucible_<metric>`` (the mean over the worker's samples) and, per sample, into the JSON
  summary beside the pyperf file.
- ``label``: strings (the binding resource of a sweep), stored like ``metadata``.

A ``benchmark`` metric whose measured value is not > 0 in some sample (a success rate of 0 %
when every event failed) is not stored in pyperf for that sample; the summary keeps it and
the run metadata says so as ``crucible_<metric>_nonpositive``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from perf.workload.library import RunResult, percentile_summary

__all__ = [
    "LABEL_METRICS",
    "LEAK_METRICS",
    "METRICS",
    "SWEEP_METRICS",
    "TRACED_METRICS",
    "WORKLOAD_METRICS",
    "AccountingError",
    "Direction",
    "Metric",
    "Storage",
    "check_accounting",
    "downsample",
    "metric",
    "traced_sample",
    "workload_sample",
]

SampleValues = dict[str, float | None]


class Storage(StrEnum):
    BENCHMARK = "benchmark"
    METADATA = "metadata"
    LABEL = "label"


class Direction(StrEnum):
    """Which way a metric improves; NONE for figures that inform but should not be gated."""

    LOWER = "lower"
    HIGHER = "higher"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class Metric:
    """One metric. ``unit`` is pyperf's ("second", "byte", "integer"; percentages and
    counts are "integer" although their values may be fractional) or "label"."""

    name: str
    unit: str
    storage: Storage
    direction: Direction
    description: str


def _m(name: str, unit: str, storage: Storage, direction: Direction, text: str) -> Metric:
    return Metric(name, unit, storage, direction, text)


_B, _MD, _L = Storage.BENCHMARK, Storage.METADATA, Storage.LABEL
_LO, _HI, _NO = Direction.LOWER, Direction.HIGHER, Direction.NONE

METRICS: Mapping[str, Metric] = {
    m.name: m
    for m in (
        _m("time", "second", _B, _LO, "wall time of one workload, first publish to settle"),
        _m("latency_p50", "second", _B, _LO, "median publish-to-handler-done latency"),
        _m("latency_p95", "second", _B, _LO, "95th percentile latency"),
        _m("latency_p99", "second", _B, _LO, "99th percentile latency"),
        _m("rss_peak", "byte", _B, _LO, "peak RSS sampled every 5 ms during the workloads"),
        _m("memory_uss", "byte", _B, _LO, "unique set size after settle (psutil)"),
        _m("cpu_pct", "integer", _B, _LO, "process CPU time over wall time, % of one core"),
        _m("success_rate_pct", "integer", _B, _HI, "delivered / published x 100"),
        _m("error_rate_pct", "integer", _MD, _LO, "(failed + dead-lettered) / published x 100"),
        _m("retried", "integer", _MD, _NO, "re-deliveries per workload"),
        _m("dead_lettered", "integer", _MD, _LO, "dead-lettered events per workload"),
        _m("dropped", "integer", _MD, _LO, "failed + rejected events per workload"),
        _m("throughput_eps", "integer", _MD, _HI, "delivered events / wall time"),
        _m("schedule_lag_p99", "second", _MD, _LO, "p99 lateness of scheduled publishes"),
        _m("allocated", "byte", _B, _LO, "tracemalloc peak above the start of the workload"),
        _m("freed", "byte", _B, _NO, "bytes released from that peak by the end"),
        _m("retained_memory", "byte", _B, _LO, "traced bytes still held after the workload"),
        _m("mem_efficiency_pct", "integer", _B, _HI, "freed / allocated x 100"),
        _m("leak_slope", "byte", _MD, _LO, "retained bytes per 1,000 events (OLS slope)"),
        _m("leak_slope_ci_low", "byte", _MD, _LO, "lower end of the slope's 95 % interval"),
        _m("leak_slope_ci_high", "byte", _MD, _LO, "upper end of the slope's 95 % interval"),
        _m("rss_slope", "byte", _MD, _LO, "RSS after each settle per 1,000 events (OLS)"),
        _m("throughput_max_eps", "integer", _B, _HI, "max sustainable throughput (measured)"),
        _m("knee_eps", "integer", _B, _HI, "offered rate where p99 starts to climb"),
        _m("services_max", "integer", _B, _HI, "most services sustained at the fixed rate"),
        _m("knee_services", "integer", _B, _HI, "services count where p99 starts to climb"),
        _m("payload_max_bytes", "byte", _B, _HI, "largest payload sustained at the rate"),
        _m("knee_payload_bytes", "byte", _B, _HI, "payload size where p99 starts to climb"),
        _m("limit_reached", "integer", _MD, _NO, "1 if the sweep hit its limit, else 0"),
        _m("binding", "label", _L, _NO, "resource judged to bind at the limit"),
    )
}

WORKLOAD_METRICS: tuple[str, ...] = (
    "time",
    "latency_p50",
    "latency_p95",
    "latency_p99",
    "rss_peak",
    "memory_uss",
    "cpu_pct",
    "success_rate_pct",
    "error_rate_pct",
    "retried",
    "dead_lettered",
    "dropped",
    "throughput_eps",
)
PACED_METRICS: tuple[str, ...] = (*WORKLOAD_METRICS, "schedule_lag_p99")
TRACED_METRICS: tuple[str, ...] = (
    *WORKLOAD_METRICS,
    "allocated",
    "freed",
    "retained_memory",
    "mem_efficiency_pct",
)
LEAK_METRICS: tuple[str, ...] = (
    "time",
    "rss_peak",
    "retained_memory",
    "leak_slope",
    "leak_slope_ci_low",
    "leak_slope_ci_high",
    "rss_slope",
)
SWEEP_METRICS: Mapping[str, tuple[str, ...]] = {
    "rate": ("time", "throughput_max_eps", "knee_eps", "limit_reached", "binding"),
    "services": ("time", "services_max", "knee_services", "limit_reached", "binding"),
    "payload": ("time", "payload_max_bytes", "knee_payload_bytes", "limit_reached", "binding"),
}
LABEL_METRICS: frozenset[str] = frozenset(n for n, m in METRICS.items() if m.storage is _L)


def metric(name: str) -> Metric:
    try:
        return METRICS[name]
    except KeyError:
        raise ValueError(f"unknown metric {name!r}; known: {', '.join(METRICS)}") from None


class AccountingError(RuntimeError):
    """A coordinator broke the accounting invariant; its figures cannot be trusted."""


def check_accounting(result: RunResult) -> None:
    """Raise AccountingError unless published = delivered + failed + dead-lettered +
    rejected with nothing in flight after settle."""
    if result.invariant_holds and result.in_flight == 0:
        return
    raise AccountingError(
        f"{result.coordinator} on {result.scenario}: published {result.published} != "
        f"delivered {result.delivered} + failed {result.failed} + dead-lettered "
        f"{result.dead_lettered} + rejected {result.rejected} with {result.in_flight} in "
        "flight after settle; the accounting invariant is broken, no figure is recorded"
    )


def workload_sample(results: Sequence[RunResult]) -> SampleValues:
    """The figures of one sample from its workloads' results.

    Latency percentiles pool every latency of every workload (inclusive method, as
    ``crucible.measure.percentile_summary``); ``rss_peak`` and ``memory_uss`` are maxima;
    ``cpu_pct`` is total CPU time over total wall time; rates are totals over totals;
    ``retried``, ``dead_lettered`` and ``dropped`` are per-workload means.
    ``schedule_lag_p99`` is the largest workload p99 (None for unpaced runs).
    """
    if not results:
        raise ValueError("a sample needs at least one workload result")
    n = len(results)
    pooled = [lat for r in results for lat in r.latencies_s]
    lat = percentile_summary(pooled)
    wall = math.fsum(r.wall_s for r in results)
    cpu = math.fsum(r.cpu_percent * r.wall_s / 100.0 for r in results)
    published = sum(r.published for r in results)
    delivered = sum(r.delivered for r in results)
    not_delivered = sum(r.failed + r.dead_lettered for r in results)
    lags = [r.schedule_lag_p99_s for r in results if r.schedule_lag_p99_s is not None]
    return {
        "latency_p50": lat.p50_s,
        "latency_p95": lat.p95_s,
        "latency_p99": lat.p99_s,
        "rss_peak": float(max(r.peak_rss_bytes for r in results)),
        "memory_uss": float(max(r.uss_bytes for r in results)),
        "cpu_pct": 100.0 * cpu / wall if wall > 0 else None,
        "success_rate_pct": 100.0 * delivered / published if published else None,
        "error_rate_pct": 100.0 * not_delivered / published if published else None,
        "retried": sum(r.retried for r in results) / n,
        "dead_lettered": sum(r.dead_lettered for r in results) / n,
        "dropped": sum(r.failed + r.rejected for r in results) / n,
        "throughput_eps": delivered / wall if wall > 0 else None,
        "schedule_lag_p99": max(lags) if lags else None,
    }


def traced_sample(start_bytes: int, peak_bytes: int, end_bytes: int) -> SampleValues:
    """Memory figures from three tracemalloc readings of one workload: traced bytes at its
    start, the traced peak during it, and traced bytes after it (and a gc) ended.

    ``allocated`` is the high-water mark above the start (tracemalloc counts live bytes, not
    a cumulative total), ``retained_memory`` what is still held at the end, ``freed`` what
    was released from the peak, and ``mem_efficiency_pct`` = freed / allocated x 100.
    """
    if not 0 <= start_bytes <= peak_bytes or end_bytes > peak_bytes:
        raise ValueError(
            f"inconsistent tracemalloc readings: start {start_bytes}, peak {peak_bytes}, "
            f"end {end_bytes}"
        )
    allocated = peak_bytes - start_bytes
    retained = max(end_bytes - start_bytes, 0)
    freed = peak_bytes - max(end_bytes, start_bytes)
    return {
        "allocated": float(allocated),
        "freed": float(freed),
        "retained_memory": float(retained),
        "mem_efficiency_pct": 100.0 * freed / allocated if allocated else None,
    }


def downsample(series: Sequence[tuple[float, float]], max_points: int) -> list[tuple[float, float]]:
    """At most ``max_points`` points of a time series for a chart: evenly spaced by index,
    always keeping the first and last point and the point with the largest value."""
    if max_points < 3:
        raise ValueError(f"max_points must be >= 3, not {max_points}")
    n = len(series)
    if n <= max_points:
        return [(float(t), float(v)) for t, v in series]
    peak = max(range(n), key=lambda i: series[i][1])
    step = (n - 1) / (max_points - 2)
    keep = {round(k * step) for k in range(max_points - 1)} | {0, n - 1}
    if peak not in keep:
        inner = keep - {0, n - 1}
        if len(keep) >= max_points and inner:
            keep.discard(min(inner, key=lambda i: abs(i - peak)))
        keep.add(peak)
    return [(float(series[i][0]), float(series[i][1])) for i in sorted(keep)]
