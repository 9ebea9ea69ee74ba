"""CrucibleCore with a service that takes batch calls (``handle_batch``, core.batch): each
delivery keeps its own outcome, timeout, retry and accounting, and is accounted as soon as
it is answered."""

from __future__ import annotations

import asyncio
from collections.abc import Collection

from crucible import Event
from crucible._core import BreakerState, DeadReason
from crucible._core.batch import BatchCall

from .conftest import make_event
from .test_core_support import running, spin, until


class BatchSvc:
    """A service answering batch calls on the next loop turn, as a remote one would: ids in
    ``fail`` are nacked, ids in ``hang`` never answered. Records each batch's ids, how many
    calls it held at most at once, and the calls still unanswered."""

    def __init__(
        self,
        name: str,
        *,
        fail: Collection[str] = (),
        hang: Collection[str] = (),
        runs: bool = False,
    ):
        self.name = name
        # Answer each call's handled deliveries together (settle_handled), as the daemon
        # does for a run of acks, instead of one settle each.
        self.runs = runs
        self.role = name.split("-")[0]
        self.fail = set(fail)
        self.hang = set(hang)
        self.batches: list[list[str]] = []
        self.open: list[tuple[BatchCall, int]] = []
        self.outstanding = 0
        self.max_outstanding = 0

    async def handle(self, event: Event) -> None:
        raise AssertionError("the core must use handle_batch")

    def healthy(self) -> bool:
        return True

    def handle_batch(self, call: BatchCall, events: list[Event]) -> None:
        loop = asyncio.get_running_loop()
        self.batches.append([e.id for e in events])
        self.outstanding += len(events)
        self.max_outstanding = max(self.max_outstanding, self.outstanding)
        handled: list[int] = []
        for i, event in enumerate(events):
            if event.id in self.hang:
                self.open.append((call, i))
                continue
            error = None
            if event.id in self.fail:
                error = RuntimeError(f"{self.name} refused {event.id}")
            if self.runs and error is None:
                handled.append(i)
            else:
                loop.call_soon(self._answer, call, i, error)
        if handled:
            loop.call_soon(self._answer_run, call, handled)

    def _answer(self, call: BatchCall, i: int, error: BaseException | None) -> None:
        self.outstanding -= 1
        call.settle(i, error)

    def _answer_run(self, call: BatchCall, indices: list[int]) -> None:
        self.outstanding -= len(indices)
        call.settle_handled(indices)


def test_batch_call_passes_the_answers_to_the_core() -> None:
    seen: list[tuple[int, BaseException | None]] = []

    def on_outcome(call: BatchCall, i: int, outcome: BaseException | None) -> None:
        seen.append((i, outcome))

    call = BatchCall(object(), [object(), object()], on_outcome)  # type: ignore[arg-type,list-item]
    error = RuntimeError("no")
    call.settle(1, error)
    call.settle(0, None)
    assert seen == [(1, error), (0, None)]


def test_a_run_of_answers_falls_back_to_one_outcome_each() -> None:
    seen: list[tuple[int, BaseException | None]] = []

    def on_outcome(call: BatchCall, i: int, outcome: BaseException | None) -> None:
        seen.append((i, outcome))

    call = BatchCall(object(), [object()] * 3, on_outcome)  # type: ignore[arg-type,list-item]
    call.settle_handled([2, 0])
    assert seen == [(2, None), (0, None)]
    runs: list[list[int]] = []
    call = BatchCall(
        object(),  # type: ignore[arg-type]
        [object()] * 3,  # type: ignore[list-item]
        on_outcome,
        lambda _call, indices: runs.append(indices),
    )
    call.settle_handled([0, 1])
    assert runs == [[0, 1]] and len(seen) == 2


def _run_workload(runs: bool) -> tuple[object, ...]:
    """200 events, a third to both of two services, some refused once: the figures that
    answering in runs must leave as one answer at a time leaves them."""

    async def main() -> tuple[object, ...]:
        svcs = [BatchSvc(f"file-{i}", fail={"e7", "e50"}, runs=runs) for i in range(2)]
        async with running(*svcs, service_concurrency=8, max_retries=2) as core:
            for i in range(200):
                targets = ("file-0", "file-1") if i % 3 == 0 else (f"file-{i % 2}",)
                event = make_event(event_id=f"e{i}", targets=targets)
                assert await core.publish(event) is None
            await core.settle(5)
            stats = core.stats()
            metrics = core.metrics()
            services = tuple(
                (m.delivered, m.failed) for m in (metrics.services[s.name] for s in svcs)
            )
            breakers = tuple(core.breaker_state(s.name) for s in svcs)
            letters = sorted(d.event.id for d in core.dead_letters())
            return (
                stats.published,
                stats.delivered,
                stats.dead_lettered,
                stats.in_flight,
                stats.retried,
                metrics.calls_in_flight,
                services,
                breakers,
                letters,
            )

    return asyncio.run(main())


def test_answering_in_runs_accounts_exactly_as_one_answer_at_a_time() -> None:
    one_by_one = _run_workload(runs=False)
    # e7 and e50 are refused every time: dead-lettered after their retries.
    assert one_by_one[1:6] == (198, 2, 0, 4, 0), one_by_one
    assert _run_workload(runs=True) == one_by_one


def test_a_run_counts_each_delivery_once_and_not_after_a_timeout() -> None:
    async def main() -> None:
        svc = BatchSvc("file-0", hang={"a", "b"})
        async with running(svc, event_timeout_s=0.05, max_retries=0) as core:
            for eid in ("a", "b"):
                assert await core.publish(make_event(event_id=eid, targets=("file-0",))) is None
            await until(lambda: len(svc.open) == 2)
            call, i = svc.open[0]
            call.settle_handled([i, i])  # the same delivery twice: counted once
            await until(lambda: core.stats().delivered == 1)
            await core.settle(5)
            stats = core.stats()
            assert (stats.delivered, stats.dead_lettered, stats.in_flight) == (1, 1, 0)
            # The other timed out; a late run answering both changes nothing.
            assert call.cancelled
            call.settle_handled([0, 1])
            assert (core.stats().delivered, core.stats().dead_lettered) == (1, 1)

    asyncio.run(main())


def test_deliveries_go_in_batches_within_the_service_concurrency() -> None:
    async def main() -> None:
        svc = BatchSvc("file-0")
        async with running(svc, service_concurrency=8) as core:
            for i in range(200):
                assert await core.publish(make_event(event_id=f"e{i}", targets=("file-0",))) is None
            await core.settle(5)
            stats = core.stats()
            assert stats.delivered == 200 and stats.in_flight == 0
        handled = [i for batch in svc.batches for i in batch]
        assert sorted(handled) == sorted(f"e{i}" for i in range(200))  # each exactly once
        assert len(svc.batches) < 200 and max(len(b) for b in svc.batches) > 1
        assert svc.max_outstanding <= 8
        assert core.metrics().services["file-0"].delivered == 200

    asyncio.run(main())


def test_a_nacked_delivery_is_retried_alone_then_dead_lettered() -> None:
    async def main() -> None:
        svc = BatchSvc("file-0", fail={"bad"})
        async with running(svc, max_retries=2) as core:
            for eid in ("a", "bad", "b"):
                assert await core.publish(make_event(event_id=eid, targets=("file-0",))) is None
            await core.settle(5)
            stats = core.stats()
            assert (stats.delivered, stats.dead_lettered, stats.retried) == (2, 1, 2)
            (letter,) = core.dead_letters()
            assert letter.event.id == "bad" and letter.reason is DeadReason.ERROR
            assert letter.attempts == 3 and "refused bad" in (letter.error or "")
        handled = [i for batch in svc.batches for i in batch]
        assert handled.count("a") == 1 and handled.count("b") == 1 and handled.count("bad") == 3
        metrics = core.metrics().services["file-0"]
        assert (metrics.delivered, metrics.failed) == (2, 3)

    asyncio.run(main())


def test_an_unanswered_delivery_times_out_alone_and_the_answered_ones_count() -> None:
    async def main() -> None:
        svc = BatchSvc("file-0", hang={"slow"})
        async with running(svc, event_timeout_s=0.05, max_retries=1) as core:
            for eid in ("a", "slow", "b"):
                assert await core.publish(make_event(event_id=eid, targets=("file-0",))) is None
            await core.settle(5)
            stats = core.stats()
            assert (stats.delivered, stats.dead_lettered) == (2, 1), stats
            (letter,) = core.dead_letters()
            assert letter.event.id == "slow" and letter.reason is DeadReason.TIMEOUT
            assert core.metrics().services["file-0"].timeouts == 2  # the call and its retry
        # The core gave up on the unanswered calls: they are marked so, and a late answer
        # changes nothing.
        assert len(svc.open) == 2 and all(call.cancelled for call, _ in svc.open)
        call, i = svc.open[0]
        call.settle(i, None)
        assert (core.stats().delivered, core.stats().dead_lettered) == (2, 1)

    asyncio.run(main())


def test_stop_dead_letters_the_unanswered_deliveries_of_a_batch_as_stopped() -> None:
    async def main() -> None:
        svc = BatchSvc("file-0", hang={"x", "y"})
        async with running(svc) as core:
            for eid in ("x", "a", "y"):
                assert await core.publish(make_event(event_id=eid, targets=("file-0",))) is None
            await until(lambda: core.stats().delivered == 1)
            assert core.metrics().calls_in_flight == 2
            await core.stop()
            stats = core.stats()
            assert (stats.delivered, stats.dead_lettered, stats.in_flight) == (1, 2, 0)
            letters = {d.event.id: d for d in core.dead_letters()}
            assert set(letters) == {"x", "y"}
            assert all(d.reason is DeadReason.STOPPED and d.attempts == 1 for d in letters.values())

    asyncio.run(main())


def test_failures_in_batches_open_the_breaker_and_later_deliveries_are_refused() -> None:
    async def main() -> None:
        svc = BatchSvc("file-0", fail={f"e{i}" for i in range(3)})
        async with running(svc, breaker_threshold=3, max_retries=0) as core:
            for i in range(3):
                assert await core.publish(make_event(event_id=f"e{i}", targets=("file-0",))) is None
            await core.settle(5)
            assert core.breaker_state("file-0") is BreakerState.OPEN
            calls = sum(len(b) for b in svc.batches)
            assert await core.publish(make_event(event_id="later", targets=("file-0",))) is None
            await core.settle(5)
            await spin()
            assert sum(len(b) for b in svc.batches) == calls  # never sent to the service
            reasons = {d.event.id: d.reason for d in core.dead_letters()}
            assert reasons["later"] is DeadReason.NO_REPLICA
            assert all(reasons[f"e{i}"] is DeadReason.ERROR for i in range(3))

    asyncio.run(main())


def test_max_concurrent_bounds_the_batch_calls_of_all_services_together() -> None:
    async def main() -> None:
        svcs = [BatchSvc(f"file-{i}") for i in range(3)]
        async with running(*svcs, max_concurrent=5, service_concurrency=8) as core:
            for i in range(90):
                event = make_event(event_id=f"e{i}", targets=(f"file-{i % 3}",))
                assert await core.publish(event) is None
            peak = 0
            while core.stats().delivered < 90:
                peak = max(peak, sum(s.outstanding for s in svcs))
                assert core.metrics().calls_in_flight <= 5
                await asyncio.sleep(0)
            await core.settle(5)
        assert peak == 5  # the bound was reached, never passed
        assert all(s.max_outstanding <= 5 for s in svcs)
        assert sorted(i for s in svcs for b in s.batches for i in b) == sorted(
            f"e{i}" for i in range(90)
        )

    asyncio.run(main())
