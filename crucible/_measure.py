"""Run one scenario through one coordinator and measure it.

Everything reported here is measured in the run: latency from the publish call to the end
of each successful handler call, throughput as delivered events over the wall time from the
first publish to settle, peak RSS sampled by a thread every few milliseconds, USS at the
end, CPU % as process CPU time over wall time.
"""

from __future__ import annotations

import asyncio
import gc
import math
import statistics
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import psutil

from crucible._loader import load_coordinator
from crucible._protocol import Coordinator, Stats
from crucible._services import FaultSpec
from crucible._workload import (
    Scenario,
    build_services,
    generate_events,
    get_scenario,
    named_pattern,
)

__all__ = [
    "RssSampler",
    "RunResult",
    "RunSpec",
    "measure",
    "percentile_summary",
    "publish_unpaced",
    "run",
]

DEFAULT_SETTLE_TIMEOUT_S = 300.0
RSS_SAMPLE_INTERVAL_S = 0.005
# In a run without a schedule the publisher yields to the loop every this many events, as
# a producer in a real program would; otherwise a non-suspending publish would queue the
# whole workload before the first handler runs.
PUBLISH_YIELD_EVERY = 64


@dataclass(frozen=True, slots=True, kw_only=True)
class RunSpec:
    """What to run. ``pattern`` None means publish as fast as the coordinator accepts."""

    coordinator: str = "core"
    scenario: Scenario = field(default_factory=lambda: get_scenario("medium"))
    pattern: str | None = None
    rate_eps: float = 1000.0
    failure_rate: float = 0.0
    crashed_services: int = 0
    slow_services: int = 0
    slow_s: float = 0.002
    seed: int = 0
    settle_timeout_s: float = DEFAULT_SETTLE_TIMEOUT_S
    coordinator_options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0.0 <= self.failure_rate <= 1.0:
            raise ValueError(f"failure rate must be within [0, 1], not {self.failure_rate}")
        if self.rate_eps <= 0:
            raise ValueError(f"rate must be > 0 events/s, not {self.rate_eps}")
        if self.crashed_services < 0 or self.slow_services < 0:
            raise ValueError("crashed_services and slow_services must be >= 0")
        if self.crashed_services + self.slow_services > self.scenario.services:
            raise ValueError(
                f"{self.crashed_services} crashed + {self.slow_services} slow services exceed "
                f"the scenario's {self.scenario.services} services"
            )

    def faults(self) -> dict[int, FaultSpec]:
        """Fault per service index: the first ``crashed_services`` crash at once, the next
        ``slow_services`` are slow replicas, and every service fails ``failure_rate``."""
        out: dict[int, FaultSpec] = {}
        for i in range(self.scenario.services):
            crash = 0 if i < self.crashed_services else None
            slow = (
                self.slow_s
                if self.crashed_services <= i < self.crashed_services + (self.slow_services)
                else 0.0
            )
            spec = FaultSpec(error_rate=self.failure_rate, crash_after=crash, slow_s=slow)
            if spec.any:
                out[i] = spec
        return out


@dataclass(frozen=True, slots=True)
class LatencySummary:
    count: int
    mean_s: float | None
    p50_s: float | None
    p95_s: float | None
    p99_s: float | None
    max_s: float | None


def percentile_summary(samples: Sequence[float]) -> LatencySummary:
    """Mean, p50, p95, p99 and max; percentiles by the inclusive method of
    ``statistics.quantiles``. None for an empty sample."""
    n = len(samples)
    if n == 0:
        return LatencySummary(0, None, None, None, None, None)
    if n == 1:
        v = samples[0]
        return LatencySummary(1, v, v, v, v, v)
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return LatencySummary(n, math.fsum(samples) / n, cuts[49], cuts[94], cuts[98], max(samples))


class RssSampler:
    """Samples the process RSS from a thread; ``peak_bytes`` and ``series`` after stop().
    Subclasses change where readings go by overriding ``_sample`` and ``series``."""

    def __init__(self, interval_s: float = RSS_SAMPLE_INTERVAL_S) -> None:
        self._proc = psutil.Process()
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._t0 = 0.0
        self._series: list[tuple[float, int]] = []

    def _sample(self) -> None:
        self._series.append((time.perf_counter() - self._t0, self._proc.memory_info().rss))

    @property
    def series(self) -> Sequence[tuple[float, int]]:
        """(seconds since start, RSS bytes) per reading, oldest first."""
        return self._series

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self._sample()

    def start(self) -> None:
        self._t0 = time.perf_counter()
        self._sample()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    @property
    def peak_bytes(self) -> int:
        return max(rss for _, rss in self.series)


@dataclass(frozen=True, slots=True, kw_only=True)
class RunResult:
    """The figures of one run, all measured in it."""

    coordinator: str
    scenario: str
    pattern: str | None
    seed: int
    events: int
    services: int
    published: int
    delivered: int
    failed: int
    dead_lettered: int
    rejected: int
    in_flight: int
    retried: int
    wall_s: float
    throughput_eps: float
    offered_rate_eps: float | None
    latency_mean_s: float | None
    latency_p50_s: float | None
    latency_p95_s: float | None
    latency_p99_s: float | None
    latency_max_s: float | None
    latency_samples: int
    schedule_lag_p99_s: float | None
    peak_rss_bytes: int
    rss_start_bytes: int
    uss_bytes: int
    cpu_percent: float
    success_rate_pct: float
    error_rate_pct: float
    invariant_holds: bool
    coordinator_stats: Mapping[str, float]
    rss_series: tuple[tuple[float, int], ...] = ()
    latencies_s: tuple[float, ...] = ()

    def as_dict(self, *, series: bool = False) -> dict[str, Any]:
        out = asdict(self)
        out["coordinator_stats"] = dict(self.coordinator_stats)
        out.pop("latencies_s")
        if not series:
            out.pop("rss_series")
        return out


async def measure(spec: RunSpec, coordinator: Coordinator | None = None) -> RunResult:
    """Run ``spec`` once and measure it. The coordinator is started and stopped here."""
    scenario = spec.scenario
    latencies: list[float] = []
    services = build_services(
        scenario, on_done=latencies.append, faults=spec.faults(), seed=spec.seed
    )
    schedule: list[float] | None = None
    if spec.pattern is not None:
        schedule = named_pattern(spec.pattern, scenario.events, spec.rate_eps).schedule()
    events = generate_events(scenario, seed=spec.seed)
    coord = coordinator or load_coordinator(spec.coordinator, **spec.coordinator_options)
    await coord.start()
    try:
        for service in services:
            await coord.register(service)
        gc.collect()
        sampler = RssSampler()
        sampler.start()
        lags: list[float] = []
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        try:
            if schedule is None:
                await publish_unpaced(coord, events)
            else:
                await _publish_scheduled(coord, events, schedule, t0, lags)
            await coord.settle(spec.settle_timeout_s)
        finally:
            wall_s = time.perf_counter() - t0
            cpu_s = time.process_time() - cpu0
            sampler.stop()
        stats = coord.stats()
        uss = psutil.Process().memory_full_info().uss
    finally:
        await coord.stop()
    return _result(spec, coord, stats, latencies, lags, sampler, wall_s, cpu_s, uss, schedule)


async def publish_unpaced(coord: Coordinator, events: Sequence[Any]) -> None:
    """Publish ``events`` as fast as accepted, stamping ``published_at`` and yielding to the
    loop every PUBLISH_YIELD_EVERY events."""
    publish = coord.publish
    perf_counter = time.perf_counter
    sleep = asyncio.sleep
    for i, event in enumerate(events, 1):
        event.published_at = perf_counter()
        await publish(event)
        if not i % PUBLISH_YIELD_EVERY:
            await sleep(0)


async def _publish_scheduled(
    coord: Coordinator,
    events: Sequence[Any],
    schedule: Sequence[float],
    t0: float,
    lags: list[float],
) -> None:
    """Open loop: each event is published at its scheduled time whether or not the
    coordinator has kept up; how late the publisher was is recorded as schedule lag."""
    publish = coord.publish
    perf_counter = time.perf_counter
    for event, offset in zip(events, schedule, strict=False):
        due = t0 + offset
        now = perf_counter()
        if due > now:
            await asyncio.sleep(due - now)
            now = perf_counter()
        lags.append(max(0.0, now - due))
        event.published_at = now
        await publish(event)


def _result(
    spec: RunSpec,
    coord: Coordinator,
    stats: Stats,
    latencies: list[float],
    lags: list[float],
    sampler: RssSampler,
    wall_s: float,
    cpu_s: float,
    uss: int,
    schedule: list[float] | None,
) -> RunResult:
    lat = percentile_summary(latencies)
    lag = percentile_summary(lags)
    # docs/design.md#key-indicators: error rate % = failed events / total events x 100; an
    # event that was dead-lettered failed too. Rejected events never reached a handler and
    # count in neither.
    total = stats.published
    not_delivered = stats.failed + stats.dead_lettered
    offered = None
    if schedule:
        span = schedule[-1] - schedule[0]
        offered = (len(schedule) - 1) / span if span > 0 else None
    return RunResult(
        coordinator=coord.name,
        scenario=spec.scenario.name,
        pattern=spec.pattern,
        seed=spec.seed,
        events=spec.scenario.events,
        services=spec.scenario.services,
        published=stats.published,
        delivered=stats.delivered,
        failed=stats.failed,
        dead_lettered=stats.dead_lettered,
        rejected=stats.rejected,
        in_flight=stats.in_flight,
        retried=stats.retried,
        wall_s=wall_s,
        throughput_eps=stats.delivered / wall_s if wall_s > 0 else 0.0,
        offered_rate_eps=offered,
        latency_mean_s=lat.mean_s,
        latency_p50_s=lat.p50_s,
        latency_p95_s=lat.p95_s,
        latency_p99_s=lat.p99_s,
        latency_max_s=lat.max_s,
        latency_samples=lat.count,
        schedule_lag_p99_s=lag.p99_s,
        peak_rss_bytes=sampler.peak_bytes,
        rss_start_bytes=sampler.series[0][1],
        uss_bytes=uss,
        cpu_percent=100.0 * cpu_s / wall_s if wall_s > 0 else 0.0,
        success_rate_pct=100.0 * stats.delivered / total if total else 0.0,
        error_rate_pct=100.0 * not_delivered / total if total else 0.0,
        invariant_holds=stats.balanced,
        coordinator_stats=stats.as_dict(),
        rss_series=tuple(sampler.series),
        latencies_s=tuple(latencies),
    )


def run(spec: RunSpec) -> RunResult:
    """Measure ``spec`` in a fresh event loop."""
    return asyncio.run(measure(spec))
