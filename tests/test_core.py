"""CrucibleCore, feature by feature. Each test fails if its feature is removed."""

from __future__ import annotations

import asyncio

import pytest

from crucible import (
    Coordinator,
    CoordinatorError,
    Event,
    Kind,
    Priority,
    Rejected,
    RejectReason,
    SettleTimeout,
    Source,
    SourceType,
)
from crucible._core import (
    HEALTH_BASED,
    LEAST_CONNECTIONS,
    PRIORITY_BASED,
    STRATEGIES,
    WEIGHTED_RANDOM,
    BreakerState,
    CoreConfig,
    CrucibleCore,
    DeadReason,
    Rule,
)

from .conftest import make_event
from .test_core_support import FakeClock, Svc, running, spin, until

# ---------------------------------------------------------------------------- protocol


def test_implements_the_coordinator_protocol() -> None:
    core = CrucibleCore()
    assert isinstance(core, Coordinator) and core.name == "core"


# ---------------------------------------------------------------------------- 1 validation


def test_rejects_when_not_running_malformed_and_oversized() -> None:
    async def main() -> None:
        core = CrucibleCore(max_event_bytes=100)
        problem = await core.publish(make_event())
        assert problem is not None and problem.reason is RejectReason.NOT_RUNNING
        await core.start()
        await core.register(Svc("file-0"))
        problem = await core.publish("not an event")  # type: ignore[arg-type]
        assert problem is not None and problem.reason is RejectReason.MALFORMED
        bad_kind = make_event()
        bad_kind.kind = "filesystem.nope"  # type: ignore[assignment]
        problem = await core.publish(bad_kind)
        assert problem is not None and problem.reason is RejectReason.MALFORMED
        problem = await core.publish(make_event(payload=b"x" * 101))
        assert problem is not None and problem.reason is RejectReason.OVERSIZED
        assert await core.publish(make_event(payload=b"x" * 100, targets=("file-0",))) is None
        await core.settle(5)
        await core.stop()
        stats = core.stats()
        assert (stats.published, stats.rejected, stats.delivered) == (5, 4, 1)
        assert stats.balanced

    asyncio.run(main())


# ---------------------------------------------------------------------------- 2 de-duplication


def test_duplicate_ids_rejected_within_window_accepted_after() -> None:
    async def main() -> None:
        clock = FakeClock()
        svc = Svc("file-0")
        async with running(svc, clock=clock, dedup_window_s=10.0) as core:
            assert await core.publish(make_event(event_id="a", targets=("file-0",))) is None
            problem = await core.publish(make_event(event_id="a", targets=("file-0",)))
            assert problem is not None and problem.reason is RejectReason.DUPLICATE
            assert "'a'" in problem.detail
            clock.advance(9.9)
            problem = await core.publish(make_event(event_id="a", targets=("file-0",)))
            assert problem is not None and problem.reason is RejectReason.DUPLICATE
            clock.advance(0.2)
            assert await core.publish(make_event(event_id="a", targets=("file-0",))) is None
            for i in range(50):
                await core.publish(make_event(event_id=f"b{i}", targets=("file-0",)))
            assert core.metrics().dedup_ids == 51
            clock.advance(25.0)
            await core.publish(make_event(event_id="c", targets=("file-0",)))
            assert core.metrics().dedup_ids == 1  # expired ids were evicted
            await core.settle(5)
            assert svc.seen.count("a") == 2 and core.stats().rejected == 2

    asyncio.run(main())


def test_rejected_event_id_is_not_remembered() -> None:
    async def main() -> None:
        async with running(Svc("file-0")) as core:
            problem = await core.publish(make_event(event_id="x", targets=("nobody",)))
            assert problem is not None and problem.reason is RejectReason.NO_ROUTE
            assert await core.publish(make_event(event_id="x", targets=("file-0",))) is None
            await core.settle(5)

    asyncio.run(main())


# ---------------------------------------------------------------------------- 3 rules


def test_default_rules_route_like_the_default_wiring_one_replica_per_role() -> None:
    async def main() -> None:
        svcs = [
            Svc(f"{role}-{i}") for role in ("file", "sync", "database", "event") for i in (0, 1)
        ]
        async with running(*svcs) as core:
            for i in range(10):
                await core.publish(make_event(Kind.FILE_MODIFIED, event_id=f"f{i}"))
            for i in range(4):
                await core.publish(make_event(Kind.RECORD_CREATED, event_id=f"d{i}"))
            await core.publish(make_event(Kind.TOOL_CALL, event_id="m0"))
            await core.settle(5)
            by_role: dict[str, list[str]] = {}
            for s in svcs:
                by_role.setdefault(s.role, []).extend(s.seen)
            # Each event reached exactly one replica of each wired role.
            assert sorted(by_role["file"]) == sorted([f"f{i}" for i in range(10)] + ["m0"])
            assert sorted(by_role["sync"]) == sorted([f"f{i}" for i in range(10)] + ["m0"])
            assert sorted(by_role["database"]) == ["d0", "d1", "d2", "d3", "m0"]
            assert by_role["event"] == ["m0"]
            assert core.stats().delivered == 15

    asyncio.run(main())


def test_custom_rules_filters_and_add_remove() -> None:
    async def main() -> None:
        audit, alerts, db = Svc("audit-0"), Svc("alerts-0"), Svc("database-0")
        rules = (
            Rule("db", "database", kinds={Kind.RECORD_CREATED}),
            Rule("audit", "audit", source_ids={"billing"}),
            Rule("urgent", "alerts", min_priority=Priority.HIGH),
        )
        async with running(audit, alerts, db, rules=rules) as core:
            billing = Source("billing", SourceType.DATABASE)
            e1 = Event(id="e1", kind=Kind.RECORD_CREATED, source=billing)
            e2 = Event(
                id="e2", kind=Kind.RECORD_UPDATED, source=billing, priority=Priority.CRITICAL
            )
            e3 = make_event(Kind.RECORD_CREATED, event_id="e3", priority=Priority.LOW)
            for e in (e1, e2, e3):
                assert await core.publish(e) is None
            problem = await core.publish(make_event(Kind.FILE_CREATED, event_id="e4"))
            assert problem is not None and problem.reason is RejectReason.NO_ROUTE
            assert "filesystem.file_created" in problem.detail
            await core.settle(5)
            # e2 is CRITICAL: it overtakes e1 in audit-0's queue.
            assert db.seen == ["e1", "e3"] and audit.seen == ["e2", "e1"]
            assert alerts.seen == ["e2"]

            core.add_rule(Rule("files", "audit", kinds={Kind.FILE_CREATED}))
            assert await core.publish(make_event(Kind.FILE_CREATED, event_id="e5")) is None
            with pytest.raises(CoordinatorError):
                core.add_rule(Rule("files", "audit"))
            removed = core.remove_rule("files")
            assert removed.name == "files" and "files" not in [r.name for r in core.rules]
            problem = await core.publish(make_event(Kind.FILE_CREATED, event_id="e6"))
            assert problem is not None and problem.reason is RejectReason.NO_ROUTE
            with pytest.raises(CoordinatorError):
                core.remove_rule("files")
            await core.settle(5)
            assert audit.seen == ["e2", "e1", "e5"]

    asyncio.run(main())


def test_explicit_targets_override_rules_and_unknown_targets_are_no_route() -> None:
    async def main() -> None:
        f0, f1, db = Svc("file-0"), Svc("file-1"), Svc("database-0")
        async with running(f0, f1, db) as core:
            # A filesystem event sent explicitly to a service name and a role.
            event = make_event(Kind.FILE_MODIFIED, event_id="x", targets=("file-1", "database"))
            assert await core.publish(event) is None
            problem = await core.publish(make_event(targets=("file-1", "ghost")))
            assert problem is not None and problem.reason is RejectReason.NO_ROUTE
            assert "'ghost'" in problem.detail
            await core.settle(5)
            assert f1.seen == ["x"] and db.seen == ["x"] and f0.seen == []

    asyncio.run(main())


def test_no_route_when_wired_roles_have_no_service() -> None:
    async def main() -> None:
        async with running(Svc("event-0")) as core:
            problem = await core.publish(make_event(Kind.FILE_MODIFIED))
            assert problem is not None and problem.reason is RejectReason.NO_ROUTE
            assert "file" in problem.detail and "sync" in problem.detail

    asyncio.run(main())


# ---------------------------------------------------------------------------- 4 balancing


def test_round_robin_spreads_evenly() -> None:
    async def main() -> None:
        svcs = [Svc(f"database-{i}") for i in range(3)]
        async with running(*svcs) as core:
            for i in range(9):
                await core.publish(make_event(Kind.RECORD_UPDATED, event_id=f"e{i}"))
            await core.settle(5)
            assert [len(s.seen) for s in svcs] == [3, 3, 3]

    asyncio.run(main())


def test_least_connections_avoids_the_busy_replica() -> None:
    async def main() -> None:
        busy, free = Svc("database-0", gated=True), Svc("database-1")
        async with running(busy, free, balancing=LEAST_CONNECTIONS) as core:
            for i in range(6):
                await core.publish(make_event(Kind.RECORD_UPDATED, event_id=f"e{i}"))
                await spin(3)
            # Round robin would have queued e2 and e4 behind the blocked call.
            assert busy.calls == 1 and free.seen == ["e1", "e2", "e3", "e4", "e5"]
            busy.open_gate()
            await core.settle(5)

    asyncio.run(main())


def test_weighted_random_follows_weights_and_is_seeded() -> None:
    async def draw(seed: int) -> list[int]:
        light, heavy = Svc("database-0"), Svc("database-1")
        async with running(balancing=WEIGHTED_RANDOM, seed=seed) as core:
            await core.register(light, weight=1)
            await core.register(heavy, weight=9)
            for _ in range(300):
                await core.publish(make_event(Kind.RECORD_UPDATED))
            await core.settle(5)
        return [len(light.seen), len(heavy.seen)]

    async def main() -> None:
        first = await draw(7)
        assert first[1] > 230 and first[0] > 0  # expected 270 : 30
        assert await draw(7) == first

    asyncio.run(main())


def test_health_based_skips_unhealthy_replicas() -> None:
    async def main() -> None:
        sick, well = Svc("database-0", healthy=False), Svc("database-1")
        async with running(sick, well, balancing=HEALTH_BASED) as core:
            for _ in range(5):
                await core.publish(make_event(Kind.RECORD_UPDATED))
            await core.settle(5)
            assert sick.calls == 0 and len(well.seen) == 5

    asyncio.run(main())


def test_priority_based_sends_urgent_events_to_the_least_loaded_replica() -> None:
    async def main() -> None:
        a, b = Svc("database-0", gated=True), Svc("database-1", gated=True)
        async with running(a, b, balancing=PRIORITY_BASED) as core:
            for i in range(3):  # load database-0 only
                await core.publish(make_event(event_id=f"pin{i}", targets=("database-0",)))
            await core.publish(
                make_event(Kind.RECORD_UPDATED, event_id="urgent", priority=Priority.CRITICAL)
            )
            await core.publish(make_event(Kind.RECORD_UPDATED, event_id="bulk"))
            a.open_gate()
            b.open_gate()
            await core.settle(5)
            # Urgent went to the idle replica, bulk round robin to the first one.
            assert "urgent" in b.seen and "bulk" in a.seen

    asyncio.run(main())


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_skips_replicas_whose_breaker_is_open(strategy: str) -> None:
    async def main() -> None:
        clock = FakeClock()
        broken, good = Svc("database-0", fail_always=True), Svc("database-1")
        async with running(
            broken,
            good,
            balancing=strategy,
            clock=clock,
            breaker_threshold=1,
            max_retries=0,
        ) as core:
            # Pin one failure on the broken replica: its breaker opens.
            await core.publish(make_event(targets=("database-0",), max_retries=0))
            await core.settle(5)
            assert core.health()["database-0"].breaker is BreakerState.OPEN
            for _ in range(20):
                await core.publish(make_event(Kind.RECORD_UPDATED))
            await core.settle(5)
            assert broken.calls == 1 and len(good.seen) == 20
            # The balancer itself skipped it: nothing had to be turned away at its door.
            assert core.metrics().services["database-0"].refused == 0

    asyncio.run(main())


# ---------------------------------------------------------------------------- 5 queues


def test_queue_delivers_by_priority_then_fifo() -> None:
    async def main() -> None:
        svc = Svc("file-0", gated=True)
        async with running(svc, service_concurrency=1) as core:
            await core.publish(make_event(event_id="first", targets=("file-0",)))
            await until(lambda: svc.active == 1)
            for event_id, priority in [
                ("low", Priority.LOW),
                ("n1", Priority.NORMAL),
                ("crit", Priority.CRITICAL),
                ("n2", Priority.NORMAL),
                ("high", Priority.HIGH),
            ]:
                event = make_event(event_id=event_id, priority=priority, targets=("file-0",))
                await core.publish(event)
            svc.open_gate()
            await core.settle(5)
            assert svc.seen == ["first", "crit", "high", "n1", "n2", "low"]

    asyncio.run(main())


def test_backpressure_reject_names_the_full_service() -> None:
    async def main() -> None:
        svc = Svc("file-0", gated=True)
        async with running(svc, max_queue=2, service_concurrency=1, backpressure="reject") as core:
            await core.publish(make_event(targets=("file-0",)))
            await until(lambda: svc.active == 1)
            assert await core.publish(make_event(targets=("file-0",))) is None
            assert await core.publish(make_event(targets=("file-0",))) is None
            problem = await core.publish(make_event(event_id="over", targets=("file-0",)))
            assert problem is not None and problem.reason is RejectReason.BACKPRESSURE
            assert "'file-0'" in problem.detail
            svc.open_gate()
            await core.settle(5)
            # The rejected id was not remembered: it can be published again.
            assert await core.publish(make_event(event_id="over", targets=("file-0",))) is None
            await core.settle(5)
            assert core.stats().delivered == 4 and core.stats().rejected == 1

    asyncio.run(main())


def test_backpressure_reject_is_all_or_nothing_for_several_targets() -> None:
    async def main() -> None:
        full, other = Svc("file-0", gated=True), Svc("sync-0")
        async with running(
            full, other, max_queue=1, service_concurrency=1, backpressure="reject"
        ) as core:
            await core.publish(make_event(targets=("file-0",)))
            await until(lambda: full.active == 1)
            await core.publish(make_event(targets=("file-0",)))
            problem = await core.publish(make_event(Kind.FILE_CREATED))  # file + sync
            assert problem is not None and problem.reason is RejectReason.BACKPRESSURE
            await spin()
            assert other.calls == 0
            full.open_gate()
            await core.settle(5)

    asyncio.run(main())


def test_backpressure_wait_blocks_the_publisher_until_there_is_room() -> None:
    async def main() -> None:
        svc = Svc("file-0", gated=True)
        async with running(svc, max_queue=2, service_concurrency=1) as core:
            await core.publish(make_event(targets=("file-0",)))
            await until(lambda: svc.active == 1)
            await core.publish(make_event(targets=("file-0",)))
            await core.publish(make_event(targets=("file-0",)))
            blocked = asyncio.create_task(
                core.publish(make_event(event_id="late", targets=("file-0",)))
            )
            await spin()
            assert not blocked.done() and core.metrics().waiting_publishers == 1
            assert core.stats().in_flight == 4 and core.stats().balanced
            svc.open_gate()
            assert await blocked is None
            await core.settle(5)
            assert svc.seen[-1] == "late" and core.stats().delivered == 4

    asyncio.run(main())


def test_publish_checked_still_holds_events_to_the_size_limit() -> None:
    async def main() -> None:
        async with running(Svc("file-0"), max_event_bytes=100) as core:
            big = make_event(payload=b"x" * 101, targets=("file-0",))
            problem = await core.publish(big, checked=True)
            assert isinstance(problem, Rejected) and problem.reason is RejectReason.OVERSIZED
            assert await core.publish(make_event(targets=("file-0",)), checked=True) is None
            await core.settle(5)
            assert (core.stats().rejected, core.stats().delivered) == (1, 1)

    asyncio.run(main())


# ---------------------------------------------------------------------------- 6 concurrency


def test_per_service_concurrency_limit() -> None:
    async def main() -> None:
        svc = Svc("file-0", gated=True)
        async with running(svc, service_concurrency=2) as core:
            for _ in range(3):
                await core.publish(make_event(targets=("file-0",)))
            await until(lambda: svc.active == 2)
            for _ in range(3):  # more work while the service is at its limit
                await core.publish(make_event(targets=("file-0",)))
                await spin()
            assert svc.active == 2 and core.health()["file-0"].queue_depth == 4
            svc.open_gate()
            await core.settle(5)
            assert svc.max_active == 2 and len(svc.seen) == 6

    asyncio.run(main())


def test_global_max_concurrent_limit() -> None:
    async def main() -> None:
        svcs = [Svc(f"file-{i}", gated=True) for i in range(3)]
        async with running(*svcs, service_concurrency=2, max_concurrent=4) as core:
            for s in svcs:
                for _ in range(2):
                    await core.publish(make_event(targets=(s.name,)))
            await until(lambda: sum(s.active for s in svcs) == 4)
            await spin()
            assert sum(s.active for s in svcs) == 4 and core.metrics().calls_in_flight == 4
            assert core.metrics().workers == 4
            for s in svcs:
                s.open_gate()
            await core.settle(5)
            assert sum(len(s.seen) for s in svcs) == 6

    asyncio.run(main())


# ---------------------------------------------------------------------------- 7 breaker


def test_circuit_breaker_open_half_open_closed_and_reopen() -> None:
    async def main() -> None:
        clock = FakeClock()
        svc = Svc("file-0", fail_always=True)
        async with running(
            svc, clock=clock, breaker_threshold=3, breaker_timeout_s=30.0, max_retries=0
        ) as core:

            async def send(n: int) -> None:
                for _ in range(n):
                    await core.publish(make_event(targets=("file-0",)))
                await core.settle(5)

            await send(3)
            assert core.breaker_state("file-0") is BreakerState.OPEN and svc.calls == 3
            await send(2)  # refused while open: the handler is not called
            assert svc.calls == 3
            assert [d.reason for d in core.dead_letters()][-2:] == [DeadReason.NO_REPLICA] * 2
            clock.advance(30.0)
            await send(1)  # half-open probe fails: open again
            assert svc.calls == 4 and core.breaker_state("file-0") is BreakerState.OPEN
            clock.advance(30.0)
            svc.fail_always = False
            await send(1)  # probe succeeds: closed
            assert core.breaker_state("file-0") is BreakerState.CLOSED and svc.calls == 5
            await send(2)
            assert svc.calls == 7 and len(svc.seen) == 3
            assert core.metrics().services["file-0"].breaker_opens == 2

    asyncio.run(main())


# ---------------------------------------------------------------------------- 8 retries, DLQ


def test_failed_delivery_is_retried_with_backoff_until_it_succeeds() -> None:
    async def main() -> None:
        svc = Svc("file-0", fail_first=2)
        async with running(svc) as core:
            event = make_event(targets=("file-0",), max_retries=3)
            await core.publish(event)
            await core.settle(5)
            assert svc.seen == [event.id] and event.retry_count == 2
            stats = core.stats()
            assert (stats.delivered, stats.retried, stats.dead_lettered) == (1, 2, 0)

    asyncio.run(main())


def test_retries_are_capped_then_dead_lettered_and_replayable() -> None:
    async def main() -> None:
        svc = Svc("file-0", fail_always=True)
        async with running(svc, max_retries=1) as core:
            a = make_event(event_id="a", targets=("file-0",), max_retries=5)  # config caps: 1
            b = make_event(event_id="b", targets=("file-0",), max_retries=0)
            await core.publish(a)
            await core.publish(b)
            await core.settle(5)
            letters = {d.event.id: d for d in core.dead_letters()}
            assert letters["a"].attempts == 2 and letters["b"].attempts == 1
            assert letters["a"].reason is DeadReason.ERROR and letters["a"].service == "file-0"
            assert letters["a"].error is not None and "refused a" in letters["a"].error
            stats = core.stats()
            assert (stats.dead_lettered, stats.delivered, stats.retried) == (2, 0, 1)

            svc.fail_always = False
            assert await core.replay_dead_letters() == 2
            assert core.stats().in_flight == 2 and core.stats().balanced  # moved back
            await core.settle(5)
            stats = core.stats()
            assert (stats.published, stats.dead_lettered, stats.delivered) == (2, 0, 2)
            assert sorted(svc.seen) == ["a", "b"] and core.dead_letters() == ()

    asyncio.run(main())


def test_no_available_replica_is_retried_later_then_dead_lettered() -> None:
    async def main() -> None:
        clock = FakeClock()
        svc = Svc("file-0", fail_always=True)
        async with running(svc, clock=clock, breaker_threshold=1) as core:
            event = make_event(targets=("file-0",), max_retries=3)
            await core.publish(event)
            await core.settle(5)
            # One real call opened the breaker; the 3 retries found no replica.
            assert svc.calls == 1
            (letter,) = core.dead_letters()
            assert letter.reason is DeadReason.NO_REPLICA and letter.attempts == 4
            assert core.stats().retried == 3

    asyncio.run(main())


def test_no_replica_retry_succeeds_once_the_breaker_lets_a_probe_through() -> None:
    async def main() -> None:
        clock = FakeClock()
        svc = Svc("file-0", fail_first=1)
        async with running(
            svc, clock=clock, breaker_threshold=1, retry_backoff_s=0.02, retry_backoff_max_s=0.02
        ) as core:
            await core.publish(make_event(event_id="x", targets=("file-0",), max_retries=3))
            await until(lambda: core.breaker_state("file-0") is BreakerState.OPEN)
            clock.advance(60.0)  # the open period ends while the retry waits
            await core.settle(5)
            assert svc.seen == ["x"] and core.breaker_state("file-0") is BreakerState.CLOSED

    asyncio.run(main())


# ---------------------------------------------------------------------------- 9 timeouts


def test_handler_overrunning_event_timeout_is_cancelled_retried_then_dead_lettered() -> None:
    async def main() -> None:
        svc = Svc("file-0", hang=True)
        async with running(svc, event_timeout_s=0.03) as core:
            await core.publish(make_event(targets=("file-0",), max_retries=1))
            await core.settle(10)
            assert svc.calls == 2 and svc.cancelled == 2
            (letter,) = core.dead_letters()
            assert letter.reason is DeadReason.TIMEOUT and letter.attempts == 2
            assert core.metrics().timeouts == 2
            # The worker survived its cancellations and still delivers.
            svc.hang = False
            await core.publish(make_event(targets=("file-0",)))
            await core.settle(5)
            assert len(svc.seen) == 1

    asyncio.run(main())


# ---------------------------------------------------------------------------- 10 registry


def test_register_errors_and_max_services() -> None:
    async def main() -> None:
        async with running(Svc("file-0"), max_services=2) as core:
            with pytest.raises(CoordinatorError, match="already"):
                await core.register(Svc("file-0"))
            await core.register(Svc("sync-0"))
            with pytest.raises(CoordinatorError, match="max_services"):
                await core.register(Svc("event-0"))
            with pytest.raises(CoordinatorError):
                await core.register(object())  # type: ignore[arg-type]
            with pytest.raises(CoordinatorError):
                await core.unregister("ghost")
            with pytest.raises(ValueError, match="weight"):
                await core.unregister("sync-0")
                await core.register(Svc("sync-0"), weight=0)
            assert core.services() == ("file-0",)

    asyncio.run(main())


def test_unregister_reroutes_queued_events_to_another_replica() -> None:
    async def main() -> None:
        leaving, staying = Svc("database-0", gated=True), Svc("database-1")
        async with running(leaving, staying, service_concurrency=1) as core:
            for i in range(6):
                await core.publish(make_event(Kind.RECORD_UPDATED, event_id=f"e{i}"))
            await until(lambda: leaving.active == 1)
            await core.unregister("database-0")
            leaving.open_gate()  # its call in progress completes normally
            await core.settle(5)
            assert sorted(leaving.seen + staying.seen) == [f"e{i}" for i in range(6)]
            assert leaving.seen == ["e0"] and core.stats().delivered == 6
            assert "database-0" not in core.health()

    asyncio.run(main())


def test_unregister_last_replica_dead_letters_queued_events() -> None:
    async def main() -> None:
        svc = Svc("database-0", gated=True)
        async with running(svc, service_concurrency=1) as core:
            for i in range(3):
                await core.publish(make_event(Kind.RECORD_UPDATED, event_id=f"e{i}"))
            await until(lambda: svc.active == 1)
            await core.unregister("database-0")
            svc.open_gate()
            await core.settle(5)
            reasons = {d.event.id: d.reason for d in core.dead_letters()}
            assert reasons == {"e1": DeadReason.UNREGISTERED, "e2": DeadReason.UNREGISTERED}
            assert core.stats().delivered == 1 and core.stats().dead_lettered == 2

    asyncio.run(main())


def test_periodic_health_checks_health_and_metrics() -> None:
    async def main() -> None:
        svc, flaky = Svc("file-0"), Svc("sync-0", fail_first=1)
        async with running(svc, flaky, health_check_interval_s=0.01) as core:
            await until(lambda: core.metrics().health_checks >= 2)
            assert svc.health_checks >= 3  # one at registration, then one per check
            svc.is_healthy = False
            checks = core.metrics().health_checks
            await until(lambda: core.metrics().health_checks > checks)
            health = core.health()["file-0"]
            assert not health.healthy and health.breaker is BreakerState.CLOSED
            assert health.queue_depth == 0 and health.in_flight == 0

            await core.publish(make_event(Kind.FILE_CREATED))
            await core.settle(5)
            metrics = core.metrics()
            m = metrics.services["sync-0"]
            assert (m.delivered, m.failed, m.retried) == (1, 1, 1)
            assert metrics.services["file-0"].delivered == 1 and metrics.queue_depth == 0
            assert core.stats().extra["handler_failures"] == 1

    asyncio.run(main())


# ---------------------------------------------------------------------------- 11 accounting


def test_event_with_several_targets_is_counted_once() -> None:
    async def main() -> None:
        svcs = [
            Svc("file-0", gated=True),
            Svc("sync-0"),
            Svc("database-0", fail_always=True),
            Svc("event-0"),
        ]
        async with running(*svcs) as core:
            # MCP events go to all four roles; the database delivery exhausts its retries
            # while the file delivery is still blocked: the event is not settled yet.
            await core.publish(make_event(Kind.TOOL_CALL, event_id="m", max_retries=1))
            await until(lambda: len(core.dead_letters()) == 1)
            await spin()
            assert core.stats().in_flight == 1 and core.stats().dead_lettered == 0
            svcs[0].open_gate()
            await core.publish(make_event(Kind.HEALTH_CHECK, event_id="ok"))
            await core.settle(5)
            stats = core.stats()
            assert (stats.published, stats.delivered, stats.dead_lettered) == (2, 1, 1)
            assert stats.failed == 0 and stats.in_flight == 0 and stats.retried == 1
            (letter,) = core.dead_letters()
            assert letter.target == "database" and letter.event.id == "m"
            assert [len(s.seen) for s in svcs] == [1, 1, 0, 2]

            svcs[2].fail_always = False
            assert await core.replay_dead_letters() == 1
            await core.settle(5)
            stats = core.stats()
            assert (stats.delivered, stats.dead_lettered) == (2, 0)
            assert svcs[0].seen == ["m"]  # only the dead delivery was replayed

    asyncio.run(main())


def test_invariant_holds_inside_every_handler_call() -> None:
    async def main() -> None:
        checks: list[bool] = []
        svcs = [Svc(f"{r}-0", fail_first=3) for r in ("file", "sync", "database", "event")]
        async with running(*svcs, max_queue=3) as core:
            for s in svcs:
                s.on_call = lambda _e: checks.append(core.stats().balanced)
            for kind in (Kind.FILE_CREATED, Kind.TOOL_CALL, Kind.RECORD_CREATED) * 5:
                await core.publish(make_event(kind))
                assert core.stats().balanced
            await core.settle(5)
            assert checks and all(checks) and core.stats().in_flight == 0

    asyncio.run(main())


def test_settle_times_out() -> None:
    async def main() -> None:
        svc = Svc("file-0", gated=True)
        async with running(svc) as core:
            await core.publish(make_event(targets=("file-0",)))
            with pytest.raises(SettleTimeout):
                await core.settle(0.02)
            svc.open_gate()
            await core.settle(5)

    asyncio.run(main())


# ---------------------------------------------------------------------------- 12 stop


def test_stop_dead_letters_everything_undelivered_and_ends_its_tasks() -> None:
    async def main() -> None:
        busy = Svc("file-0", gated=True)
        flaky = Svc("sync-0", fail_always=True)
        core = CrucibleCore(
            max_queue=2, service_concurrency=1, retry_backoff_s=30.0, retry_backoff_max_s=30.0
        )
        await core.start()
        await core.register(busy)
        await core.register(flaky)
        for i in range(3):  # one in the handler, two queued
            await core.publish(make_event(event_id=f"q{i}", targets=("file-0",)))
        await core.publish(make_event(event_id="retry", targets=("sync-0",)))
        await until(lambda: busy.active == 1 and core.metrics().awaiting_retry == 1)
        blocked = asyncio.create_task(
            core.publish(make_event(event_id="waiting", targets=("file-0",)))
        )
        await until(lambda: core.metrics().waiting_publishers == 1)
        await core.stop()
        assert await blocked is None
        stats = core.stats()
        assert stats.in_flight == 0 and stats.balanced and stats.dead_lettered == 5
        letters = core.dead_letters()
        assert {d.event.id for d in letters} == {"q0", "q1", "q2", "retry", "waiting"}
        assert {d.reason for d in letters} == {DeadReason.STOPPED}
        assert busy.cancelled == 1
        assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("core-")]
        problem = await core.publish(make_event(targets=("file-0",)))
        assert problem is not None and problem.reason is RejectReason.NOT_RUNNING
        with pytest.raises(CoordinatorError):
            await core.replay_dead_letters()

        # A stopped core starts again, and its dead letters can be replayed.
        busy.gate = None
        flaky.fail_always = False
        await core.start()
        assert await core.replay_dead_letters() == 5
        await core.settle(5)
        await core.stop()
        assert core.stats().delivered == 5 and core.stats().balanced

    asyncio.run(main())


def test_a_handler_can_stop_the_core() -> None:
    class Stopper:
        name, role = "file-0", "file"

        def __init__(self, core: CrucibleCore) -> None:
            self.core = core

        async def handle(self, event: Event) -> None:
            await self.core.stop()

        def healthy(self) -> bool:
            return True

    async def main() -> None:
        core = CrucibleCore()
        await core.start()
        await core.register(Stopper(core))
        await core.publish(make_event(targets=("file-0",)))
        await until(lambda: not core.metrics().running and core.stats().in_flight == 0)
        stats = core.stats()
        assert stats.balanced and stats.delivered == 1

    asyncio.run(main())


def test_config_object_and_overrides_reach_the_core() -> None:
    async def main() -> None:
        cfg = CoreConfig(max_queue=1, backpressure="reject")
        svc = Svc("file-0", gated=True)
        async with running(svc, config=cfg, service_concurrency=1) as core:
            await core.publish(make_event(targets=("file-0",)))
            await until(lambda: svc.active == 1)
            await core.publish(make_event(targets=("file-0",)))
            problem = await core.publish(make_event(targets=("file-0",)))
            assert problem is not None and problem.reason is RejectReason.BACKPRESSURE
            svc.open_gate()
            await core.settle(5)

    asyncio.run(main())


@pytest.mark.parametrize(("wake_burst", "entered"), [(1, 2), (8, 8)])
def test_wake_burst_sets_how_fast_the_worker_pool_fills(wake_burst: int, entered: int) -> None:
    """Eight gated services with an event each: after the same few loop iterations, one
    worker per kick has entered two handlers; a burst of eight has entered all eight."""

    async def main() -> None:
        svcs = [Svc(f"file-{i}", gated=True) for i in range(8)]
        async with running(*svcs, wake_burst=wake_burst) as core:
            for s in svcs:
                await core.publish(make_event(targets=(s.name,)))
            for _ in range(3):
                await asyncio.sleep(0)
            assert sum(s.active for s in svcs) == entered
            for s in svcs:
                s.open_gate()
            await core.settle(5)
            assert sum(len(s.seen) for s in svcs) == 8

    asyncio.run(main())


def test_wake_burst_must_be_a_positive_integer() -> None:
    with pytest.raises(ValueError, match="wake_burst"):
        CoreConfig(wake_burst=0)


def test_dead_letter_queue_keeps_the_newest_and_counts_the_dropped() -> None:
    async def main() -> None:
        svc = Svc("file-0", fail_always=True)
        async with running(svc, max_retries=0, max_dead_letters=2) as core:
            for name in ("a", "b", "c"):
                await core.publish(make_event(event_id=name, targets=("file-0",)))
            await core.settle(5)
            assert [d.event.id for d in core.dead_letters()] == ["b", "c"]
            stats = core.stats()
            assert stats.dead_lettered == 3 and stats.balanced
            assert stats.extra["dead_letters_dropped"] == 1
            assert stats.extra["dead_letter_queue"] == 2

            svc.fail_always = False
            assert await core.replay_dead_letters() == 2  # "a" is gone for good
            await core.settle(5)
            stats = core.stats()
            assert (stats.dead_lettered, stats.delivered) == (1, 2) and stats.balanced
            assert sorted(svc.seen) == ["b", "c"]
            # Replay kept the bound.
            svc.fail_always = True
            for name in ("d", "e", "f"):
                await core.publish(make_event(event_id=name, targets=("file-0",)))
            await core.settle(5)
            assert [d.event.id for d in core.dead_letters()] == ["e", "f"]

    asyncio.run(main())


def test_max_dead_letters_must_be_a_positive_integer() -> None:
    with pytest.raises(ValueError, match="max_dead_letters"):
        CoreConfig(max_dead_letters=0)
