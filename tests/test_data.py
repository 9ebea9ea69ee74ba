from __future__ import annotations

import asyncio

import pytest

from crucible import Event, FaultSpec, Kind, RejectReason, SimulatedService, WorkSpec
from crucible._data import DataConfig, DataCoordinator

from .conftest import make_event


class Recorder(SimulatedService):
    def __init__(self, name: str, role: str, **kwargs: object) -> None:
        super().__init__(name, role, work=WorkSpec(kind="none"), **kwargs)  # type: ignore[arg-type]
        self.seen: list[str] = []

    async def handle(self, event: Event) -> None:
        await super().handle(event)
        self.seen.append(event.id)


async def _started(**overrides: float) -> tuple[DataCoordinator, dict[str, Recorder]]:
    coord = DataCoordinator(**overrides)
    await coord.start()
    services = {role: Recorder(f"{role}-0", role) for role in ("file", "sync", "database", "event")}
    for service in services.values():
        await coord.register(service)
    return coord, services


def test_fixed_wiring_per_category() -> None:
    async def main() -> None:
        coord, svc = await _started()
        await coord.publish(make_event(Kind.FILE_CREATED, event_id="fs"))
        await coord.publish(make_event(Kind.RECORD_UPDATED, event_id="db"))
        await coord.publish(make_event(Kind.HEALTH_CHECK, event_id="svc"))
        await coord.publish(make_event(Kind.TOOL_CALL, event_id="mcp"))
        await coord.settle(5)
        await coord.stop()
        assert svc["file"].seen == ["fs", "mcp"]
        assert svc["sync"].seen == ["fs", "mcp"]
        assert svc["database"].seen == ["db", "mcp"]
        assert svc["event"].seen == ["svc", "mcp"]

    asyncio.run(main())


def test_handler_error_is_counted_and_event_dropped() -> None:
    async def main() -> None:
        coord = DataCoordinator()
        await coord.start()
        bad = Recorder("database-0", "database", faults=FaultSpec(error_rate=1.0))
        await coord.register(bad)
        for _ in range(5):
            assert await coord.publish(make_event(Kind.RECORD_CREATED)) is None
        await coord.settle(5)
        stats = coord.stats()
        await coord.stop()
        assert (stats.published, stats.delivered, stats.failed, stats.in_flight) == (5, 0, 5, 0)
        assert stats.retried == 0 and stats.dead_lettered == 0
        assert stats.balanced

    asyncio.run(main())


def test_no_route_and_malformed_are_rejected() -> None:
    async def main() -> None:
        coord = DataCoordinator()
        await coord.start()
        await coord.register(Recorder("file-0", "file"))
        problem = await coord.publish(make_event(Kind.RECORD_CREATED))
        assert problem is not None and problem.reason is RejectReason.NO_ROUTE
        broken = make_event()
        broken.id = ""
        problem = await coord.publish(broken)
        assert problem is not None and problem.reason is RejectReason.MALFORMED
        await coord.settle(5)
        stats = coord.stats()
        await coord.stop()
        assert stats.rejected == 2 and stats.published == 2 and stats.balanced

    asyncio.run(main())


def test_publish_before_start_is_rejected() -> None:
    async def main() -> None:
        coord = DataCoordinator()
        problem = await coord.publish(make_event())
        assert problem is not None and problem.reason is RejectReason.NOT_RUNNING
        assert coord.stats().rejected == 1

    asyncio.run(main())


def test_one_drain_loop_runs_handlers_one_at_a_time() -> None:
    active = 0
    peak = 0

    class Slow(SimulatedService):
        async def handle(self, event: Event) -> None:
            nonlocal active, peak
            active += 1
            peak = max(peak, active)
            await asyncio.sleep(0.001)
            active -= 1

    async def main() -> None:
        coord = DataCoordinator()
        await coord.start()
        for i in range(3):
            await coord.register(Slow(f"database-{i}", "database"))
        for _ in range(12):
            await coord.publish(make_event(Kind.RECORD_UPDATED))
        await coord.settle(5)
        await coord.stop()

    asyncio.run(main())
    assert peak == 1


def test_hung_handler_times_out_and_loop_goes_on() -> None:
    async def main() -> None:
        coord = DataCoordinator(event_timeout_s=0.05)
        await coord.start()
        hang = Recorder("database-0", "database", faults=FaultSpec(hang_rate=1.0, hang_s=60))
        await coord.register(hang)
        await coord.publish(make_event(Kind.RECORD_UPDATED))
        await coord.settle(10)
        hang.faults = FaultSpec()
        hang._faulty = False
        await coord.publish(make_event(Kind.RECORD_UPDATED))
        await coord.settle(10)
        stats = coord.stats()
        await coord.stop()
        assert stats.failed == 1 and stats.delivered == 1
        assert stats.extra["timeouts"] == 1

    asyncio.run(main())


def test_health_and_metrics_are_polled() -> None:
    async def main() -> None:
        coord = DataCoordinator(health_interval_s=0.01, metrics_interval_s=0.01)
        await coord.start()
        down = Recorder("file-0", "file", faults=FaultSpec(crash_after=0))
        down.crashed = True
        await coord.register(down)
        await asyncio.sleep(0.1)
        await coord.stop()
        assert coord.unhealthy == frozenset({"file-0"})
        assert len(coord.metrics_history) >= 2
        assert coord.metrics_history[-1].unhealthy == 1

    asyncio.run(main())


def test_stop_counts_queued_events_as_failed() -> None:
    async def main() -> None:
        coord, _ = await _started()
        for _ in range(20):
            await coord.publish(make_event(Kind.RECORD_UPDATED))
        await coord.stop()  # the drain loop never ran
        stats = coord.stats()
        assert stats.failed == 20 and stats.in_flight == 0 and stats.balanced

    asyncio.run(main())


def test_duplicate_service_name_is_refused() -> None:
    async def main() -> None:
        coord = DataCoordinator()
        await coord.register(Recorder("file-0", "file"))
        with pytest.raises(Exception, match="already registered"):
            await coord.register(Recorder("file-0", "file"))

    asyncio.run(main())


def test_config_is_validated() -> None:
    with pytest.raises(ValueError, match="event_timeout_s"):
        DataConfig(event_timeout_s=0)
