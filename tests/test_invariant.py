"""The accounting invariant, for every coordinator, over random workloads and faults."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crucible import FaultSpec, Stats, WorkSpec
from crucible._loader import load_coordinator
from crucible._workload import build_services, custom_scenario, generate_events

COORDINATOR_OPTIONS: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "reference": st.just({}),
    "data": st.fixed_dictionaries({"event_timeout_s": st.sampled_from([0.05, 45.0])}),
    "core": st.fixed_dictionaries(
        {
            "max_queue": st.integers(1, 50),
            "backpressure": st.sampled_from(["wait", "reject"]),
            "max_retries": st.integers(0, 3),
            "retry_backoff_s": st.just(0.0005),
            "breaker_threshold": st.integers(1, 10),
            "breaker_timeout_s": st.sampled_from([0.001, 60.0]),
            "service_concurrency": st.integers(1, 4),
            "event_timeout_s": st.sampled_from([0.05, 45.0]),
            "balancing": st.sampled_from(
                [
                    "round_robin",
                    "least_connections",
                    "weighted_random",
                    "health_based",
                    "priority_based",
                ]
            ),
        }
    ),
}


async def _run(
    coordinator: str,
    options: dict[str, Any],
    events: int,
    services: int,
    error_rate: float,
    crashed: int,
    seed: int,
) -> list[Stats]:
    scenario = custom_scenario(
        name="prop",
        events=events,
        services=services,
        payload_bytes=(16, 256),
        work=WorkSpec(kind="hash"),
        seed=seed,
    )
    faults = {
        i: FaultSpec(error_rate=error_rate, crash_after=(0 if i < crashed else None))
        for i in range(services)
    }
    coord = load_coordinator(coordinator, **options)
    await coord.start()
    for service in build_services(scenario, faults=faults, seed=seed):
        await coord.register(service)
    seen: list[Stats] = []
    for i, event in enumerate(generate_events(scenario, seed=seed)):
        await coord.publish(event)
        if i % 7 == 0:
            seen.append(coord.stats())
        if i % 25 == 0:
            await asyncio.sleep(0)
    await coord.settle(30)
    seen.append(coord.stats())
    await coord.stop()
    seen.append(coord.stats())
    return seen


def _check(seen: list[Stats]) -> None:
    for stats in seen:
        assert stats.balanced, stats
        assert min(stats.delivered, stats.failed, stats.dead_lettered, stats.rejected) >= 0
        assert stats.in_flight >= 0, stats
    settled = seen[-2]
    assert settled.in_flight == 0, settled
    assert seen[-1].in_flight == 0


def _property(coordinator: str) -> Any:
    @settings(
        max_examples=15,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(
        options=COORDINATOR_OPTIONS[coordinator],
        events=st.integers(1, 150),
        services=st.integers(1, 9),
        error_rate=st.sampled_from([0.0, 0.05, 0.3, 1.0]),
        crashed=st.integers(0, 2),
        seed=st.integers(0, 2**16),
    )
    def check(
        options: dict[str, Any],
        events: int,
        services: int,
        error_rate: float,
        crashed: int,
        seed: int,
    ) -> None:
        _check(
            asyncio.run(
                _run(
                    coordinator, options, events, services, error_rate, min(crashed, services), seed
                )
            )
        )

    return check


test_invariant_reference = _property("reference")
test_invariant_data = _property("data")
test_invariant_core = _property("core")
