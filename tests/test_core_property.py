"""Property: for random workloads, faults and configurations, CrucibleCore's accounting
balances at every step, and after settle nothing is in flight and nothing is lost."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import event as hypothesis_event
from hypothesis import strategies as st

from crucible import ROLES, Event, FaultSpec, Kind, Priority, SimulatedService, Source, SourceType
from crucible._core import STRATEGIES, CrucibleCore


@dataclass(frozen=True)
class ServicePlan:
    role: str
    error_rate: float
    crash_after: int | None
    slow_s: float
    hang_rate: float


@dataclass(frozen=True)
class EventPlan:
    id_number: int
    kind: Kind
    priority: Priority
    target: str | None  # None: route by rules; else a role or a service index as "#i"
    max_retries: int


services_st = st.lists(
    st.builds(
        ServicePlan,
        role=st.sampled_from(ROLES),
        error_rate=st.sampled_from([0.0, 0.0, 0.2, 0.5, 1.0]),
        crash_after=st.one_of(st.none(), st.integers(0, 6)),
        slow_s=st.sampled_from([0.0, 0.0, 0.0005]),
        hang_rate=st.sampled_from([0.0, 0.0, 0.1, 0.3]),
    ),
    min_size=1,
    max_size=6,
)
events_st = st.lists(
    st.builds(
        EventPlan,
        id_number=st.integers(0, 40),  # a small id space, so some ids repeat
        kind=st.sampled_from(list(Kind)),
        priority=st.sampled_from(list(Priority)),
        target=st.one_of(
            st.none(), st.none(), st.sampled_from([*ROLES, "#0", "#1", "#5", "nobody"])
        ),
        max_retries=st.integers(0, 3),
    ),
    max_size=60,
)


@settings(
    max_examples=35,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    service_plans=services_st,
    event_plans=events_st,
    balancing=st.sampled_from(STRATEGIES),
    backpressure=st.sampled_from(["wait", "reject"]),
    max_queue=st.integers(1, 6),
    service_concurrency=st.integers(1, 3),
    max_concurrent=st.integers(1, 6),
    max_retries=st.integers(0, 3),
    breaker_threshold=st.integers(1, 4),
    dedup_window_s=st.sampled_from([0.0, 120.0]),
    seed=st.integers(0, 3),
    replay=st.booleans(),
)
def test_accounting_balances_for_any_workload(
    service_plans: list[ServicePlan],
    event_plans: list[EventPlan],
    balancing: str,
    backpressure: str,
    max_queue: int,
    service_concurrency: int,
    max_concurrent: int,
    max_retries: int,
    breaker_threshold: int,
    dedup_window_s: float,
    seed: int,
    replay: bool,
) -> None:
    async def main() -> None:
        core = CrucibleCore(
            balancing=balancing,
            backpressure=backpressure,
            max_queue=max_queue,
            service_concurrency=service_concurrency,
            max_concurrent=max_concurrent,
            max_retries=max_retries,
            breaker_threshold=breaker_threshold,
            dedup_window_s=dedup_window_s,
            retry_backoff_s=0.0002,
            retry_backoff_max_s=0.001,
            event_timeout_s=0.005,  # hung handlers (hang_rate) are cancelled quickly
            seed=seed,
        )
        await core.start()
        services = [
            SimulatedService(
                f"{plan.role}-{i}",
                plan.role,
                faults=FaultSpec(
                    error_rate=plan.error_rate,
                    crash_after=plan.crash_after,
                    slow_s=plan.slow_s,
                    hang_rate=plan.hang_rate,
                ),
                seed=seed + i,
            )
            for i, plan in enumerate(service_plans)
        ]
        for service in services:
            await core.register(service)
        source = Source("prop", SourceType.SERVICE)
        for plan in event_plans:
            targets: tuple[str, ...] = ()
            if plan.target is not None:
                index = plan.target[1:] if plan.target.startswith("#") else None
                if index is None:
                    targets = (plan.target,)
                elif int(index) < len(services):
                    targets = (services[int(index)].name,)
                else:
                    targets = ("missing-service",)
            event = Event(
                id=f"e{plan.id_number}",
                kind=plan.kind,
                source=source,
                payload=b"p",
                priority=plan.priority,
                targets=targets,
                max_retries=plan.max_retries,
            )
            problem = await core.publish(event)
            if problem is not None:
                hypothesis_event(f"rejected: {problem.reason.value}")
            assert core.stats().balanced
        await core.settle(20)
        stats = core.stats()
        assert stats.balanced and stats.in_flight == 0
        assert stats.published == len(event_plans)
        assert len(core.dead_letters()) >= stats.dead_lettered
        metrics = core.metrics()
        # Shown by --hypothesis-show-statistics: which paths the examples exercised.
        hypothesis_event(f"timeouts: {bool(metrics.timeouts)}")
        hypothesis_event(f"breaker opened: {bool(metrics.breaker_opens)}")
        hypothesis_event(f"dead-lettered: {bool(stats.dead_lettered)}")
        hypothesis_event(f"retried: {bool(stats.retried)}")
        assert metrics.queue_depth == 0 and metrics.awaiting_retry == 0
        assert metrics.calls_in_flight == 0 and metrics.waiting_publishers == 0
        if replay and stats.dead_lettered:
            for service in services:
                service.faults = FaultSpec()
                service._faulty = False
                service.restart()
            await core.replay_dead_letters()
            assert core.stats().balanced
            await core.settle(20)
            assert core.stats().balanced and core.stats().in_flight == 0
        await core.stop()
        final = core.stats()
        assert final.balanced and final.in_flight == 0
        assert final.delivered + final.dead_lettered + final.rejected == len(event_plans)

    asyncio.run(main())
