"""Simulated services: real CPU work on each payload, optional latency and injected faults."""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from crucible._events import Event

__all__ = [
    "FaultSpec",
    "InjectedFault",
    "ServiceCrashed",
    "SimulatedService",
    "WorkSpec",
]


class InjectedFault(Exception):
    """A handler error injected on purpose (the error-rate fault)."""


class ServiceCrashed(Exception):
    """The service has crashed and refuses events until ``restart()``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkSpec:
    """CPU work per event. ``kind``: "none", "hash" (blake2b over the payload ``rounds`` times)
    or "parse" (decode a JSON payload, or hash raw bytes)."""

    kind: str = "hash"
    rounds: int = 1
    latency_s: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in ("none", "hash", "parse"):
            raise ValueError(f"work kind must be none, hash or parse, not {self.kind!r}")
        if self.rounds < 0 or self.latency_s < 0:
            raise ValueError("work rounds and latency_s must be >= 0")


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultSpec:
    """Injected faults. ``crash_after``: the service crashes after handling that many events
    and stays down until restarted. ``hang_rate``: share of events on which the handler sleeps
    ``hang_s`` (set it beyond the coordinator's event timeout). ``slow_s``: extra latency on
    every event (a slow replica)."""

    error_rate: float = 0.0
    crash_after: int | None = None
    hang_rate: float = 0.0
    hang_s: float = 3600.0
    slow_s: float = 0.0

    def __post_init__(self) -> None:
        for name in ("error_rate", "hang_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], not {value}")
        if self.crash_after is not None and self.crash_after < 0:
            raise ValueError("crash_after must be >= 0")
        if self.slow_s < 0 or self.hang_s < 0:
            raise ValueError("slow_s and hang_s must be >= 0")

    @property
    def any(self) -> bool:
        return bool(
            self.error_rate or self.crash_after is not None or self.hang_rate or self.slow_s
        )


NO_FAULTS = FaultSpec()

LatencySink = Callable[[float], None]


class SimulatedService:
    """A consumer that does real work on each payload. Seeded, so faults are reproducible.

    ``on_done`` receives the latency in seconds from ``event.published_at`` to the end of a
    successful handle; the benchmark runner collects these.
    """

    def __init__(
        self,
        name: str,
        role: str,
        *,
        work: WorkSpec | None = None,
        faults: FaultSpec = NO_FAULTS,
        seed: int = 0,
        on_done: LatencySink | None = None,
    ) -> None:
        self.name = name
        self.role = role
        self.work = work or WorkSpec()
        self.faults = faults
        self.on_done = on_done
        self.handled = 0
        self.errors = 0
        self.crashed = False
        self.digest = 0
        self._rng = random.Random(seed)
        self._faulty = faults.any
        self._sleep = self.work.latency_s + faults.slow_s

    def healthy(self) -> bool:
        return not self.crashed

    def restart(self) -> None:
        self.crashed = False
        self.handled = 0

    async def handle(self, event: Event) -> None:
        if self._faulty:
            await self._inject(event)
        self._work(event)
        if self._sleep:
            await asyncio.sleep(self._sleep)
        self.handled += 1
        if self.on_done is not None:
            self.on_done(time.perf_counter() - event.published_at)

    async def _inject(self, event: Event) -> None:
        faults = self.faults
        if self.crashed:
            raise ServiceCrashed(f"{self.name} is down")
        if faults.crash_after is not None and self.handled >= faults.crash_after:
            self.crashed = True
            raise ServiceCrashed(f"{self.name} crashed after {self.handled} events")
        if faults.hang_rate and self._rng.random() < faults.hang_rate:
            await asyncio.sleep(faults.hang_s)
        if faults.error_rate and self._rng.random() < faults.error_rate:
            self.errors += 1
            raise InjectedFault(f"{self.name}: injected error on {event.id}")

    def _work(self, event: Event) -> None:
        work = self.work
        if work.kind == "none" or work.rounds == 0:
            return
        payload = event.payload
        if work.kind == "parse" and not isinstance(payload, bytes | bytearray | memoryview):
            data = json.dumps(payload, separators=(",", ":"), default=str).encode()
            for _ in range(work.rounds):
                self.digest ^= len(json.loads(data))
            return
        raw = payload if isinstance(payload, bytes | bytearray | memoryview) else b""
        digest = b""
        for _ in range(work.rounds):
            # Each round hashes the whole payload, keyed by the previous digest.
            digest = hashlib.blake2b(raw, digest_size=16, key=digest).digest()
        self.digest ^= digest[0]
