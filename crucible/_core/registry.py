"""The state CrucibleCore keeps per registered service, per replica group and per delivery."""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TypeAlias

from crucible._core.batch import BatchCall, remote_batch_handler
from crucible._core.breaker import BreakerState, CircuitBreaker
from crucible._core.queues import PriorityQueue
from crucible._events import Event
from crucible._protocol import Service

__all__ = [
    "CoreMetrics",
    "Delivery",
    "ReplicaGroup",
    "ServiceHealth",
    "ServiceMetrics",
    "ServiceSlot",
    "Ticket",
    "Worker",
]


# Shared by the deliveries of one event with several targets: ``[deliveries outstanding]``.
# The event settles when the count reaches 0, as dead-lettered if the core recorded a
# failed delivery for it. A one-item list rather than a class: one is built per
# multi-target event, and a list is several times cheaper to create.
Ticket: TypeAlias = list[int]


# One event on its way to one target: (event, target group, ticket). The ticket is None
# for a single-target event, which settles alone. A plain tuple, not a class: one is built
# per target of every event, and retry state lives elsewhere (``event.retry_count``, and the
# core's parked-retry records).
Delivery: TypeAlias = "tuple[Event, ReplicaGroup, list[int] | None]"


class ReplicaGroup:
    """The services a target resolves to: every service of a role, or the one service of a
    name. Groups persist while empty so deliveries can keep a reference across
    register/unregister. ``rotation`` cycles through the replicas for round robin (an
    ``itertools.cycle``: the next replica in one C call); it is rebuilt when they change."""

    __slots__ = ("name", "replicas", "rotation")

    def __init__(self, name: str) -> None:
        self.name = name
        self.replicas: list[ServiceSlot] = []
        self.rotation: Iterator[ServiceSlot] = itertools.cycle(())

    def add(self, slot: ServiceSlot) -> None:
        self.replicas.append(slot)
        self.rotation = itertools.cycle(self.replicas.copy())

    def remove(self, slot: ServiceSlot) -> None:
        self.replicas.remove(slot)
        self.rotation = itertools.cycle(self.replicas.copy())


class Worker:
    """One delivery loop of the shared pool. ``current`` is the delivery whose handler call
    is in progress (None between calls); the watchdog remembers the one it ``seen`` and
    since when, so it can tell a long call from a series of short ones without a clock
    read per call. ``timed_out`` marks a cancellation the watchdog caused."""

    __slots__ = ("current", "seen", "seen_at", "task", "timed_out")

    def __init__(self) -> None:
        self.task: asyncio.Task[None] | None = None
        self.current: Delivery | None = None
        self.seen: Delivery | None = None
        self.seen_at = 0.0
        self.timed_out = False


class ServiceSlot:
    """A registered service: its queue, breaker, waiters and counters.

    ``ready`` says the slot is in the core's ring of services with work for the pool;
    ``in_flight`` counts its handler calls in progress (at most ``service_concurrency``).
    """

    __slots__ = (
        "breaker",
        "closed",
        "delivered",
        "failed",
        "handle",
        "handle_batch",
        "healthy",
        "in_flight",
        "name",
        "queue",
        "ready",
        "refused",
        "retried",
        "role",
        "room_waiters",
        "service",
        "timeouts",
        "weight",
    )

    def __init__(self, service: Service, weight: float, breaker: CircuitBreaker) -> None:
        self.service = service
        self.handle = service.handle  # bound once, not per call
        # Services reached over a connection take several deliveries at once (core.batch).
        self.handle_batch: Callable[[BatchCall, list[Event]], None] | None = remote_batch_handler(
            service
        )
        self.name = service.name
        self.role = service.role
        self.weight = weight
        self.breaker = breaker
        self.queue: PriorityQueue[Delivery] = PriorityQueue()
        self.in_flight = 0
        self.ready = False
        self.healthy = True
        self.closed = False
        # Publishers waiting for room (True: try again; False: stopped, the core has
        # dead-lettered what they held).
        self.room_waiters: deque[asyncio.Future[bool]] = deque()
        self.delivered = 0
        self.failed = 0
        self.retried = 0
        self.timeouts = 0
        self.refused = 0

    @property
    def load(self) -> int:
        """Deliveries queued or in progress: what least-connections minimises."""
        return self.in_flight + self.queue.size


@dataclass(frozen=True, slots=True)
class ServiceHealth:
    name: str
    role: str
    healthy: bool
    breaker: BreakerState
    queue_depth: int
    in_flight: int


@dataclass(frozen=True, slots=True)
class ServiceMetrics:
    """Live figures of one service. ``delivered``/``failed`` count handler calls;
    ``retried`` re-deliveries scheduled after its failures; ``refused`` deliveries its open
    breaker turned away (re-routed, not failed)."""

    name: str
    role: str
    weight: float
    healthy: bool
    breaker: BreakerState
    breaker_opens: int
    consecutive_failures: int
    queue_depth: int
    in_flight: int
    delivered: int
    failed: int
    timeouts: int
    retried: int
    refused: int


@dataclass(frozen=True, slots=True)
class CoreMetrics:
    """Live figures of the whole core. ``calls_in_flight`` counts handler calls in progress
    (deliveries), unlike ``Stats.in_flight`` which counts unsettled events."""

    running: bool
    queue_depth: int
    calls_in_flight: int
    awaiting_retry: int
    waiting_publishers: int
    workers: int
    dead_letters: int
    replayed: int
    dedup_ids: int
    route_cache_entries: int
    health_checks: int
    timeouts: int
    breaker_opens: int
    services: Mapping[str, ServiceMetrics]
