from __future__ import annotations

import asyncio
from typing import Any

import pytest

from crucible import Event, Rejected, Service, Stats
from crucible._measure import RunSpec
from crucible._reference import ReferenceCoordinator
from crucible._workload import Scenario
from perf.measure.memory import _leak_run, leak_record, leak_sample, leak_slopes, traced_workload
from perf.workload.cases import LeakSpec

TINY = Scenario(name="tiny", events=30, services=4, payload_bytes=(64, 256))


class LeakyCoordinator:
    """The reference coordinator, plus a leak: it keeps every event it is given."""

    name = "leaky"

    def __init__(self) -> None:
        self._inner = ReferenceCoordinator()
        self.kept: list[Any] = []

    async def start(self) -> None:
        await self._inner.start()

    async def stop(self) -> None:
        await self._inner.stop()

    async def register(self, service: Service) -> None:
        await self._inner.register(service)

    async def publish(self, event: Event) -> Rejected | None:
        self.kept.append((event, bytearray(2000)))
        return await self._inner.publish(event)

    async def settle(self, timeout_s: float | None = None) -> None:
        await self._inner.settle(timeout_s)

    def stats(self) -> Stats:
        return self._inner.stats()


def test_leak_slopes_known_answer() -> None:
    runs = [
        {
            "events": [1000, 2000, 3000, 4000, 5000, 6000],
            # 999 bytes of first-use caches in the first batch, then 250 bytes per 1,000.
            "retained_bytes": [999, 5250, 5500, 5750, 6000, 6250],
            "rss_bytes": [10, 20, 20, 20, 20, 20],
        }
    ]
    s = leak_slopes(runs, warmup_batches=1)
    assert s["leak_slope"] == pytest.approx(250.0)
    assert s["leak_slope_ci_low"] == pytest.approx(250.0)
    assert s["leak_slope_ci_high"] == pytest.approx(250.0)
    assert s["rss_slope"] == pytest.approx(0.0)
    with pytest.raises(ValueError):
        leak_slopes([], 0)


def test_leak_run_shows_a_leak_as_a_positive_slope() -> None:
    spec = RunSpec(coordinator="reference", scenario=TINY)
    leak = LeakSpec(batches=8, batch_events=200, warmup_batches=2, rss_interval_s=0.01)
    leaky = asyncio.run(_leak_run("leaky", spec, leak, LeakyCoordinator()))
    honest = asyncio.run(_leak_run("reference", spec, leak))
    assert leaky.events == tuple(200 * (i + 1) for i in range(8))
    bad = leak_slopes(leak_record([leaky]), leak.warmup_batches)
    good = leak_slopes(leak_record([honest]), leak.warmup_batches)
    bad_slope, bad_low, good_slope = bad["leak_slope"], bad["leak_slope_ci_low"], good["leak_slope"]
    assert bad_slope is not None and bad_low is not None and good_slope is not None
    # ~2 KB kept per event: about 2 MB per 1,000 events.
    assert bad_low > 1_000_000
    assert good_slope < bad_slope / 10
    figures = leak_sample([honest])
    assert (figures["rss_peak"] or 0) > 0
    assert figures["retained_memory"] == honest.retained_bytes[-1]
    assert honest.rss_series and honest.wall_s > 0


def test_traced_workload_measures_allocation() -> None:
    figures = traced_workload(RunSpec(coordinator="reference", scenario=TINY))
    allocated = figures["allocated"]
    freed = figures["freed"]
    assert allocated is not None and freed is not None and allocated > 10_000
    assert figures["retained_memory"] is not None
    assert allocated == pytest.approx(freed + figures["retained_memory"])
    assert 0 < (figures["mem_efficiency_pct"] or 0) <= 100
