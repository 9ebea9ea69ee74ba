"""Support for the CrucibleCore tests (no tests here): a scriptable service, a clock, polling."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from crucible import Event
from crucible._core import CoreConfig, CrucibleCore
from crucible._protocol import Service


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Svc:
    """A test service. It records every call and what it handled; it can block on a gate,
    hang, fail its first ``fail_first`` calls or fail always, and report itself unhealthy."""

    def __init__(
        self,
        name: str,
        role: str | None = None,
        *,
        fail_first: int = 0,
        fail_always: bool = False,
        hang: bool = False,
        gated: bool = False,
        healthy: bool = True,
    ) -> None:
        self.name = name
        self.role = role if role is not None else name.split("-")[0]
        self.fail_first = fail_first
        self.fail_always = fail_always
        self.hang = hang
        self.gate: asyncio.Event | None = asyncio.Event() if gated else None
        self.is_healthy = healthy
        self.calls = 0
        self.seen: list[str] = []
        self.events: list[Event] = []
        self.active = 0
        self.max_active = 0
        self.cancelled = 0
        self.health_checks = 0
        self.on_call: Callable[[Event], None] | None = None

    async def handle(self, event: Event) -> None:
        self.calls += 1
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            if self.on_call is not None:
                self.on_call(event)
            if self.gate is not None:
                await self.gate.wait()
            if self.hang:
                await asyncio.sleep(3600)
            if self.fail_always or self.calls <= self.fail_first:
                raise RuntimeError(f"{self.name} refused {event.id}")
            self.seen.append(event.id)
            self.events.append(event)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.active -= 1

    def healthy(self) -> bool:
        self.health_checks += 1
        return self.is_healthy

    def open_gate(self) -> None:
        assert self.gate is not None
        self.gate.set()


async def until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Yield to the loop until ``condition()`` holds; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.001)


async def spin(times: int = 20) -> None:
    """Let the loop run a few rounds (for asserting that something does NOT happen)."""
    for _ in range(times):
        await asyncio.sleep(0)


@asynccontextmanager
async def running(
    *services: Service, config: CoreConfig | None = None, **overrides: Any
) -> AsyncIterator[CrucibleCore]:
    """A started core with ``services`` registered; stopped (and checked balanced) after."""
    overrides.setdefault("retry_backoff_s", 0.001)
    overrides.setdefault("retry_backoff_max_s", 0.01)
    core = CrucibleCore(config, **overrides)
    await core.start()
    for service in services:
        await core.register(service)
    try:
        yield core
    finally:
        await core.stop()
        stats = core.stats()
        assert stats.balanced and stats.in_flight == 0, stats
