"""Memory measurements: tracemalloc figures of one workload, and the long leak run.

Both run outside the timed part of a benchmark: tracemalloc slows Python down several
times, so the suites time their workloads without it and trace one extra workload per
recorded value (``traced_workload``). The leak run traces throughout; its time is reported
but is not comparable with untraced workloads.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import time
import tracemalloc
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import psutil

from perf.workload.cases import LeakSpec
from perf.workload.library import (
    Coordinator,
    RssSampler,
    RunSpec,
    build_services,
    generate_events,
    load_coordinator,
    measure,
    publish_unpaced,
)
from perf.workload.metrics import AccountingError, SampleValues, traced_sample

__all__ = [
    "LeakResult",
    "leak_record",
    "leak_run",
    "leak_sample",
    "leak_slopes",
    "traced_workload",
]


def traced_workload(spec: RunSpec) -> SampleValues:
    """Run ``spec`` once under tracemalloc and return its memory figures
    (``perf.workload.metrics.traced_sample``): the traced bytes at the start, the traced peak during
    the run, and the traced bytes still alive after it returned and a full gc."""
    if tracemalloc.is_tracing():
        raise RuntimeError("tracemalloc is already tracing; the figures would be mixed")
    gc.collect()
    tracemalloc.start()
    try:
        start, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        result = asyncio.run(measure(spec))
        _, peak = tracemalloc.get_traced_memory()
        if not result.invariant_holds or result.in_flight:
            raise AccountingError(f"{result.coordinator}: accounting broken in traced run")
        del result
        gc.collect()
        end, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return traced_sample(start, peak, end)


@dataclass(frozen=True, slots=True)
class LeakResult:
    """One leak run. ``retained_bytes[i]`` (traced bytes held above the start) and
    ``rss_bytes[i]`` are read after batch i's settle and a gc; ``events[i]`` is how many
    events had been published by then."""

    coordinator: str
    events: tuple[int, ...]
    retained_bytes: tuple[int, ...]
    rss_bytes: tuple[int, ...]
    rss_series: tuple[tuple[float, int], ...]
    peak_rss_bytes: int
    wall_s: float
    warmup_batches: int


class ArrayRssSampler(RssSampler):
    """An ``RssSampler`` that stores its readings in arrays allocated up front.

    It creates no lasting Python objects while it runs (each reading is stored as a machine
    integer), so under tracemalloc it adds nothing to the bytes a leak run sees retained.
    Stops recording when ``capacity`` is reached.
    """

    def __init__(self, interval_s: float, capacity: int = 50_000) -> None:
        super().__init__(interval_s)
        self._times = array("d", bytes(8 * capacity))
        self._rss = array("q", bytes(8 * capacity))
        self._n = 0
        # Held while sampling: a reading of the traced bytes taken under it does not catch
        # psutil's transient buffers in the sampler thread.
        self.lock = threading.Lock()

    def _sample(self) -> None:
        with self.lock:
            if self._n < len(self._rss):
                self._times[self._n] = time.perf_counter() - self._t0
                self._rss[self._n] = self._proc.memory_info().rss
                self._n += 1

    @property
    def series(self) -> tuple[tuple[float, int], ...]:
        return tuple(zip(self._times[: self._n], self._rss[: self._n], strict=True))

    @property
    def peak_bytes(self) -> int:
        return max(self._rss[: self._n])


async def _leak_run(
    coordinator: str,
    spec: RunSpec,
    leak: LeakSpec,
    coord: Coordinator | None = None,
) -> LeakResult:
    scenario = spec.scenario
    services = build_services(scenario, faults=spec.faults(), seed=spec.seed)
    coord = coord or load_coordinator(coordinator, **spec.coordinator_options)
    proc = psutil.Process()
    # Readings go into arrays allocated before tracing starts: the harness must not grow
    # the traced bytes it measures.
    events_done = array("q", bytes(8 * leak.batches))
    retained = array("q", bytes(8 * leak.batches))
    rss = array("q", bytes(8 * leak.batches))
    wall_s = 0.0
    published = 0
    await coord.start()
    try:
        for service in services:
            await coord.register(service)
        gc.collect()
        sampler = ArrayRssSampler(leak.rss_interval_s)
        sampler.start()
        tracemalloc.start()
        try:
            with sampler.lock:
                base, _ = tracemalloc.get_traced_memory()
            for batch in range(leak.batches):
                # A fresh seed per batch gives fresh event ids: a coordinator that
                # de-duplicates by id must not drop the later batches.
                events = generate_events(
                    scenario, seed=spec.seed * 100_003 + batch, count=leak.batch_events
                )
                t0 = time.perf_counter()
                await publish_unpaced(coord, events)
                await coord.settle(spec.settle_timeout_s)
                wall_s += time.perf_counter() - t0
                published += len(events)
                del events
                gc.collect()
                with sampler.lock:
                    current, _ = tracemalloc.get_traced_memory()
                events_done[batch] = published
                retained[batch] = current - base
                rss[batch] = proc.memory_info().rss
        finally:
            tracemalloc.stop()
            sampler.stop()
        stats = coord.stats()
    finally:
        await coord.stop()
    if not stats.balanced or stats.in_flight:
        raise AccountingError(
            f"{coord.name}: accounting broken after the leak run: {stats.as_dict()}"
        )
    return LeakResult(
        coordinator=coord.name,
        events=tuple(events_done),
        retained_bytes=tuple(retained),
        rss_bytes=tuple(rss),
        rss_series=tuple(sampler.series),
        peak_rss_bytes=sampler.peak_bytes,
        wall_s=wall_s,
        warmup_batches=leak.warmup_batches,
    )


def leak_run(coordinator: str, spec: RunSpec, leak: LeakSpec) -> LeakResult:
    """Publish ``leak.batches`` batches through one coordinator instance, settling after
    each, and read the traced bytes and RSS after every settle. Raises AccountingError if
    the coordinator's accounting does not balance at the end."""
    if tracemalloc.is_tracing():
        raise RuntimeError("tracemalloc is already tracing; the figures would be mixed")
    return asyncio.run(_leak_run(coordinator, spec, leak))


def _slope_per_1k(events: Sequence[int], values: Sequence[float]) -> tuple[float, float, float]:
    """OLS slope of ``values`` per 1,000 events with its 95 % t interval
    (``perf.workload.slope.linear_slope_ci``: scipy linregress, t with n - 2 degrees of freedom)."""
    from perf.workload.slope import linear_slope_ci  # scipy: imported only where a slope is needed

    estimate = linear_slope_ci([e / 1000 for e in events], list(values), 0.95)
    return estimate.slope, estimate.ci_low, estimate.ci_high


def leak_sample(results: Sequence[LeakResult]) -> SampleValues:
    """The figures of one sample of leak runs that need no statistics (computed in the
    worker): the peak RSS (maximum) and the traced bytes held after the last settle (mean
    over the sample's runs). The slopes come from ``leak_slopes`` over ``leak_record``."""
    if not results:
        raise ValueError("a sample needs at least one leak run")
    return {
        "rss_peak": float(max(r.peak_rss_bytes for r in results)),
        "retained_memory": sum(r.retained_bytes[-1] for r in results) / len(results),
    }


def leak_record(results: Sequence[LeakResult]) -> list[dict[str, list[int]]]:
    """The after-settle readings of each run, as the side file stores them."""
    return [
        {
            "events": list(r.events),
            "retained_bytes": list(r.retained_bytes),
            "rss_bytes": list(r.rss_bytes),
        }
        for r in results
    ]


def leak_slopes(runs: Sequence[Mapping[str, Sequence[int]]], warmup_batches: int) -> SampleValues:
    """Leak slopes of one sample (bytes per 1,000 events, mean over its runs), leaving out
    each run's first ``warmup_batches`` readings: ``leak_slope`` with its 95 % interval from
    the traced bytes, ``rss_slope`` from the RSS. Imports scipy, so the suites call it in
    the main process when merging, not in the timed workers."""
    if not runs:
        raise ValueError("a sample needs at least one leak run")
    slopes, lows, highs, rss_slopes = [], [], [], []
    for run in runs:
        events = run["events"][warmup_batches:]
        slope, low, high = _slope_per_1k(events, run["retained_bytes"][warmup_batches:])
        slopes.append(slope)
        lows.append(low)
        highs.append(high)
        rss_slopes.append(_slope_per_1k(events, run["rss_bytes"][warmup_batches:])[0])
    n = len(runs)
    return {
        "leak_slope": sum(slopes) / n,
        "leak_slope_ci_low": sum(lows) / n,
        "leak_slope_ci_high": sum(highs) / n,
        "rss_slope": sum(rss_slopes) / n,
    }
