"""ReferenceCoordinator: the leanest honest dispatcher, the floor every report compares with.

One queue, one loop, handlers awaited directly. It keeps the protocol's contract (validation,
no-route rejection, exact accounting) and the same category -> role wiring as the other
coordinators, so it does the same handler work and nothing else: no priorities, retries,
timeouts or polling. A handler that never returns therefore blocks it; fault scenarios with
hangs are for the coordinators that claim to survive them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

from crucible._events import DEFAULT_MAX_EVENT_BYTES, Event, Rejected, RejectReason, validate
from crucible._protocol import DEFAULT_WIRING, CoordinatorError, Service, SettleTimeout, Stats

__all__ = ["ReferenceCoordinator"]


class ReferenceCoordinator:
    """See the module docstring."""

    name = "reference"

    def __init__(self, *, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> None:
        self.max_event_bytes = max_event_bytes
        self._by_role: dict[str, list[Service]] = {}
        self._names: set[str] = set()
        self._groups: dict[object, tuple[tuple[Service, ...], ...]] = {}
        self._queue: deque[tuple[Event, tuple[Service, ...]]] = deque()
        self._wakeup: asyncio.Future[None] | None = None
        self._idle: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._seq = 0
        self.published = 0
        self.delivered = 0
        self.failed = 0
        self.rejected = 0

    async def start(self) -> None:
        if self._task is None:
            self._idle = asyncio.Event()
            self._idle.set()
            self._task = asyncio.create_task(self._drain(), name="reference-drain")

    async def stop(self) -> None:
        """Stop the loop; events still queued are counted as failed."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.failed += len(self._queue)
        self._queue.clear()
        if self._idle is not None:
            self._idle.set()

    async def register(self, service: Service) -> None:
        if service.name in self._names:
            raise CoordinatorError(f"a service named {service.name!r} is already registered")
        self._names.add(service.name)
        self._by_role.setdefault(service.role, []).append(service)
        self._groups.clear()

    async def publish(self, event: Event) -> Rejected | None:
        self.published += 1
        if self._task is None:
            self.rejected += 1
            return Rejected(RejectReason.NOT_RUNNING, "ReferenceCoordinator is not started")
        problem = validate(event, self.max_event_bytes)
        if problem is not None:
            self.rejected += 1
            return problem
        groups = self._groups.get(event.category)
        if groups is None:
            groups = tuple(
                tuple(self._by_role[role])
                for role in DEFAULT_WIRING[event.category]
                if role in self._by_role
            )
            self._groups[event.category] = groups
        if not groups:
            self.rejected += 1
            return Rejected(RejectReason.NO_ROUTE, f"no service for {event.kind.value}")
        self._seq += 1
        seq = self._seq
        self._queue.append((event, tuple(g[seq % len(g)] for g in groups)))
        self._idle.clear()  # type: ignore[union-attr]
        wakeup = self._wakeup
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)
        return None

    async def _drain(self) -> None:
        queue = self._queue
        idle = self._idle
        assert idle is not None
        loop = asyncio.get_running_loop()
        while True:
            if not queue:
                idle.set()
                self._wakeup = loop.create_future()
                await self._wakeup
                continue
            event, targets = queue.popleft()
            try:
                for service in targets:
                    await service.handle(event)
            except Exception:
                self.failed += 1
            else:
                self.delivered += 1

    async def settle(self, timeout_s: float | None = None) -> None:
        idle = self._idle
        if idle is None:
            return
        try:
            async with asyncio.timeout(timeout_s):
                while self.published != self.delivered + self.failed + self.rejected:
                    await idle.wait()
        except TimeoutError:
            raise SettleTimeout(
                f"ReferenceCoordinator: {self.stats().in_flight} events in flight "
                f"after {timeout_s} s"
            ) from None

    def stats(self) -> Stats:
        settled = self.delivered + self.failed + self.rejected
        return Stats(
            published=self.published,
            delivered=self.delivered,
            failed=self.failed,
            dead_lettered=0,
            rejected=self.rejected,
            in_flight=self.published - settled,
        )
