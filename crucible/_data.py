"""DataCoordinator: the current architecture.

It owns its services directly and wires event categories to service roles in a fixed map
(filesystem -> file and sync, database -> database, service -> event, the rest to every
role). All events go through one unbounded channel drained by one loop that calls the
handlers one after another. Health and metrics are gathered by periodic polling loops.
There are no priorities, no backpressure and no retries: a handler error is counted and
the event is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from crucible._events import DEFAULT_MAX_EVENT_BYTES, Event, Rejected, RejectReason, validate
from crucible._protocol import (
    DEFAULT_WIRING,
    CoordinatorError,
    Service,
    SettleTimeout,
    Stats,
)
from crucible._watchdog import CallWatch

__all__ = ["DataConfig", "DataCoordinator"]

DEFAULT_EVENT_TIMEOUT_S = 45.0
DEFAULT_HEALTH_INTERVAL_S = 1.0
DEFAULT_METRICS_INTERVAL_S = 1.0
DEFAULT_METRICS_HISTORY = 600


@dataclass(frozen=True, slots=True, kw_only=True)
class DataConfig:
    event_timeout_s: float = DEFAULT_EVENT_TIMEOUT_S
    health_interval_s: float = DEFAULT_HEALTH_INTERVAL_S
    metrics_interval_s: float = DEFAULT_METRICS_INTERVAL_S
    metrics_history: int = DEFAULT_METRICS_HISTORY
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES

    def __post_init__(self) -> None:
        for name in ("event_timeout_s", "health_interval_s", "metrics_interval_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, not {getattr(self, name)}")
        if self.metrics_history < 1 or self.max_event_bytes < 1:
            raise ValueError("metrics_history and max_event_bytes must be >= 1")


@dataclass(frozen=True, slots=True)
class MetricsSample:
    """One poll of the metrics loop."""

    at_s: float
    queue_depth: int
    delivered: int
    failed: int
    unhealthy: int


class DataCoordinator:
    """The current coordinator; see the module docstring."""

    name = "data"

    def __init__(self, config: DataConfig | None = None, /, **overrides: Any) -> None:
        if config is None:
            config = DataConfig(**overrides)
        elif overrides:
            raise TypeError("pass either a DataConfig or keyword overrides, not both")
        self.config = config
        self._services: dict[str, Service] = {}
        self._by_role: dict[str, list[Service]] = {}
        self._targets: dict[object, tuple[tuple[Service, ...], ...]] = {}
        self._channel: asyncio.Queue[Event] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._watch = CallWatch(config.event_timeout_s)
        self._running = False
        self._seq = 0
        self.published = 0
        self.delivered = 0
        self.failed = 0
        self.rejected = 0
        self.timeouts = 0
        self.unhealthy: frozenset[str] = frozenset()
        self.metrics_history: list[MetricsSample] = []

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        if self._running:
            return
        self._channel = asyncio.Queue()
        drain = asyncio.create_task(self._drain(), name="data-drain")
        self._watch.task = drain
        self._tasks = [
            drain,
            asyncio.create_task(self._watch.run(), name="data-watchdog"),
            asyncio.create_task(self._poll_health(), name="data-health"),
            asyncio.create_task(self._poll_metrics(), name="data-metrics"),
        ]
        self._running = True

    async def stop(self) -> None:
        """Stop the loops. Events still queued are counted as failed, never forgotten."""
        self._running = False
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        channel = self._channel
        if channel is not None:
            while not channel.empty():
                channel.get_nowait()
                channel.task_done()
                self.failed += 1

    async def register(self, service: Service) -> None:
        if service.name in self._services:
            raise CoordinatorError(f"a service named {service.name!r} is already registered")
        self._services[service.name] = service
        self._by_role.setdefault(service.role, []).append(service)
        self._targets.clear()

    # -- publishing ------------------------------------------------------------------------

    async def publish(self, event: Event) -> Rejected | None:
        self.published += 1
        if not self._running or self._channel is None:
            self.rejected += 1
            return Rejected(RejectReason.NOT_RUNNING, "DataCoordinator is not started")
        problem = validate(event, self.config.max_event_bytes)
        if problem is None and not self._groups(event):
            problem = Rejected(
                RejectReason.NO_ROUTE,
                f"no registered service for {event.kind.value} (roles "
                f"{', '.join(DEFAULT_WIRING[event.category])})",
            )
        if problem is not None:
            self.rejected += 1
            return problem
        self._channel.put_nowait(event)
        return None

    def _groups(self, event: Event) -> tuple[tuple[Service, ...], ...]:
        """The replicas of each role the fixed wiring sends this event's category to."""
        groups = self._targets.get(event.category)
        if groups is None:
            groups = tuple(
                tuple(self._by_role[role])
                for role in DEFAULT_WIRING[event.category]
                if role in self._by_role
            )
            self._targets[event.category] = groups
        return groups

    def _route(self, event: Event) -> tuple[Service, ...]:
        """Fixed wiring: one replica per wired role, rotating by arrival order."""
        groups = self._groups(event)
        self._seq += 1
        seq = self._seq
        return tuple(group[seq % len(group)] for group in groups)

    async def _drain(self) -> None:
        channel = self._channel
        assert channel is not None
        watch = self._watch
        loop = asyncio.get_running_loop()
        while True:
            event = await channel.get()
            # Targets are chosen at dequeue time like the original: the wiring is read live.
            ok = True
            try:
                for service in self._route(event):
                    watch.started = loop.time()
                    await service.handle(event)
            except asyncio.CancelledError:
                watch.started = 0.0
                if not watch.consume_timeout():
                    raise
                self.timeouts += 1
                ok = False
            except Exception:
                ok = False
            watch.started = 0.0
            if ok:
                self.delivered += 1
            else:
                self.failed += 1
            channel.task_done()

    # -- polling loops ---------------------------------------------------------------------

    async def _poll_health(self) -> None:
        while True:
            self.unhealthy = frozenset(
                name for name, service in self._services.items() if not service.healthy()
            )
            await asyncio.sleep(self.config.health_interval_s)

    async def _poll_metrics(self) -> None:
        while True:
            await asyncio.sleep(self.config.metrics_interval_s)
            channel = self._channel
            self.metrics_history.append(
                MetricsSample(
                    at_s=time.monotonic(),
                    queue_depth=channel.qsize() if channel is not None else 0,
                    delivered=self.delivered,
                    failed=self.failed,
                    unhealthy=len(self.unhealthy),
                )
            )
            del self.metrics_history[: -self.config.metrics_history]

    # -- accounting ------------------------------------------------------------------------

    async def settle(self, timeout_s: float | None = None) -> None:
        channel = self._channel
        if channel is None:
            return
        try:
            await asyncio.wait_for(channel.join(), timeout_s)
        except TimeoutError:
            raise SettleTimeout(
                f"DataCoordinator: {self.stats().in_flight} events still in flight "
                f"after {timeout_s} s"
            ) from None

    def stats(self) -> Stats:
        settled = self.delivered + self.failed + self.rejected
        extra: Mapping[str, float] = {
            "timeouts": self.timeouts,
            "unhealthy_services": len(self.unhealthy),
            "queue_depth": self._channel.qsize() if self._channel is not None else 0,
        }
        return Stats(
            published=self.published,
            delivered=self.delivered,
            failed=self.failed,
            dead_lettered=0,
            rejected=self.rejected,
            in_flight=self.published - settled,
            extra=extra,
        )
