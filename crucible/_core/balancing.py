"""Choosing one replica of a target: the five load-balancing strategies.

Every strategy skips replicas whose breaker refuses deliveries (a half-open breaker with no
probe outstanding counts as available, so the probe can be sent). ``pick`` returns None when
no replica is available; the coordinator then retries later.
"""

from __future__ import annotations

import random
from typing import Protocol

from crucible._core.config import (
    HEALTH_BASED,
    LEAST_CONNECTIONS,
    PRIORITY_BASED,
    ROUND_ROBIN,
    WEIGHTED_RANDOM,
    Strategy,
)
from crucible._core.registry import ReplicaGroup, ServiceSlot
from crucible._events import Priority

__all__ = [
    "Balancer",
    "HealthBased",
    "LeastConnections",
    "PriorityBased",
    "RoundRobin",
    "WeightedRandom",
    "make_balancer",
    "roomiest",
]


class Balancer(Protocol):
    def pick(self, group: ReplicaGroup, priority: int) -> ServiceSlot | None: ...


def _available(replicas: list[ServiceSlot]) -> list[ServiceSlot]:
    return [s for s in replicas if s.breaker.closed or s.breaker.available()]


def _least_loaded(candidates: list[ServiceSlot]) -> ServiceSlot | None:
    best: ServiceSlot | None = None
    best_load = 0
    for s in candidates:
        load = s.in_flight + s.queue.size
        if best is None or load < best_load:
            best, best_load = s, load
    return best


def roomiest(group: ReplicaGroup, max_queue: int, healthy_only: bool) -> ServiceSlot | None:
    """The least-loaded available replica whose queue has room: the fallback when the
    strategy's choice is full."""
    return _least_loaded(
        [
            s
            for s in _available(group.replicas)
            if s.queue.size < max_queue and (s.healthy or not healthy_only)
        ]
    )


class RoundRobin:
    """Each replica in turn, skipping unavailable ones."""

    __slots__ = ()

    def pick(self, group: ReplicaGroup, priority: int) -> ServiceSlot | None:
        rotation = group.rotation
        for _ in range(len(group.replicas)):
            slot = next(rotation)
            if slot.breaker.closed or slot.breaker.available():
                return slot
        return None


class LeastConnections:
    """The replica with the fewest deliveries queued or in progress; ties go to the first
    registered."""

    __slots__ = ()

    def pick(self, group: ReplicaGroup, priority: int) -> ServiceSlot | None:
        replicas = group.replicas
        if len(replicas) == 1:
            slot = replicas[0]
            return slot if slot.breaker.closed or slot.breaker.available() else None
        return _least_loaded(_available(replicas))


class WeightedRandom:
    """A replica drawn with probability proportional to its weight (seeded RNG)."""

    __slots__ = ("_rng",)

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)

    def pick(self, group: ReplicaGroup, priority: int) -> ServiceSlot | None:
        candidates = _available(group.replicas)
        if len(candidates) <= 1:
            return candidates[0] if candidates else None
        return self._rng.choices(candidates, weights=[s.weight for s in candidates])[0]


class HealthBased:
    """Only replicas whose last health check passed, least loaded first. Unhealthy ones are
    skipped even when nothing else is left: the delivery waits for a retry instead."""

    __slots__ = ()

    def pick(self, group: ReplicaGroup, priority: int) -> ServiceSlot | None:
        return _least_loaded([s for s in _available(group.replicas) if s.healthy])


class PriorityBased:
    """CRITICAL and HIGH events go to the least-loaded replica, so urgent work lands where
    it will start soonest; NORMAL and LOW ones go round robin, which spreads bulk work
    evenly without scanning every replica."""

    __slots__ = ("_rest", "_urgent")

    def __init__(self) -> None:
        self._urgent = LeastConnections()
        self._rest = RoundRobin()

    def pick(self, group: ReplicaGroup, priority: int) -> ServiceSlot | None:
        if priority <= Priority.HIGH:
            return self._urgent.pick(group, priority)
        return self._rest.pick(group, priority)


def make_balancer(strategy: Strategy, seed: int) -> Balancer:
    if strategy == ROUND_ROBIN:
        return RoundRobin()
    if strategy == LEAST_CONNECTIONS:
        return LeastConnections()
    if strategy == WEIGHTED_RANDOM:
        return WeightedRandom(seed)
    if strategy == HEALTH_BASED:
        return HealthBased()
    if strategy == PRIORITY_BASED:
        return PriorityBased()
    raise ValueError(f"unknown balancing strategy {strategy!r}")
