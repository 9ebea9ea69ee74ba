from __future__ import annotations

import asyncio

from crucible import Event, FaultSpec, Kind, RejectReason, SimulatedService, WorkSpec
from crucible._reference import ReferenceCoordinator

from .conftest import make_event


class Recorder(SimulatedService):
    def __init__(self, name: str, role: str, faults: FaultSpec | None = None) -> None:
        super().__init__(name, role, work=WorkSpec(kind="none"), faults=faults or FaultSpec())
        self.seen: list[str] = []

    async def handle(self, event: Event) -> None:
        await super().handle(event)
        self.seen.append(event.id)


def test_same_wiring_one_replica_per_role_round_robin() -> None:
    async def main() -> None:
        coord = ReferenceCoordinator()
        await coord.start()
        replicas = [Recorder(f"database-{i}", "database") for i in range(2)]
        for r in replicas:
            await coord.register(r)
        for i in range(6):
            await coord.publish(make_event(Kind.RECORD_UPDATED, event_id=f"e{i}"))
        await coord.settle(5)
        await coord.stop()
        assert len(replicas[0].seen) == len(replicas[1].seen) == 3
        assert sorted(replicas[0].seen + replicas[1].seen) == [f"e{i}" for i in range(6)]

    asyncio.run(main())


def test_errors_count_as_failed_and_invariant_holds() -> None:
    async def main() -> None:
        coord = ReferenceCoordinator()
        await coord.start()
        await coord.register(Recorder("file-0", "file", FaultSpec(error_rate=0.5)))
        for _ in range(200):
            await coord.publish(make_event(Kind.FILE_MODIFIED))
        await coord.settle(5)
        stats = coord.stats()
        await coord.stop()
        assert stats.failed > 0 and stats.delivered > 0
        assert stats.delivered + stats.failed == 200 and stats.in_flight == 0

    asyncio.run(main())


def test_rejections() -> None:
    async def main() -> None:
        coord = ReferenceCoordinator(max_event_bytes=10)
        problem = await coord.publish(make_event())
        assert problem is not None and problem.reason is RejectReason.NOT_RUNNING
        await coord.start()
        problem = await coord.publish(make_event())
        assert problem is not None and problem.reason is RejectReason.OVERSIZED
        problem = await coord.publish(make_event(payload=b"1"))
        assert problem is not None and problem.reason is RejectReason.NO_ROUTE
        await coord.stop()
        assert coord.stats().rejected == 3 and coord.stats().balanced

    asyncio.run(main())


def test_settle_waits_for_work_published_while_settling() -> None:
    async def main() -> None:
        coord = ReferenceCoordinator()
        await coord.start()
        svc = Recorder("event-0", "event")
        await coord.register(svc)

        async def late() -> None:
            await asyncio.sleep(0.01)
            await coord.publish(make_event(Kind.HEALTH_CHECK, event_id="late"))

        await coord.publish(make_event(Kind.HEALTH_CHECK, event_id="early"))
        task = asyncio.create_task(late())
        await asyncio.sleep(0.02)
        await coord.settle(5)
        await task
        await coord.stop()
        assert svc.seen == ["early", "late"]

    asyncio.run(main())
