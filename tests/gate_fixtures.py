"""Coordinators that misbehave on purpose, named as module:factory by the gate tests and the
profile target's tests."""

from __future__ import annotations

from crucible import Event, Rejected, Service, Stats


class CrashingCoordinator:
    """Accepts services, then raises on the first publish: a crashed benchmark."""

    name = "crashing"

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def register(self, service: Service) -> None:
        return None

    async def publish(self, event: Event) -> Rejected | None:
        raise RuntimeError("boom: injected crash in publish")

    async def settle(self, timeout_s: float | None = None) -> None:
        return None

    def stats(self) -> Stats:
        return Stats(0, 0, 0, 0, 0, 0)


class RetryingCoordinator:
    """Delivers every event on a second try, as a coordinator retrying a failed delivery
    does: the event's ``retry_count`` is incremented in place and ``retried`` counts it."""

    name = "retrying"

    def __init__(self) -> None:
        self.services: list[Service] = []
        self.published = 0

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def register(self, service: Service) -> None:
        self.services.append(service)

    async def publish(self, event: Event) -> Rejected | None:
        event.retry_count += 1
        for service in self.services:
            await service.handle(event)
        self.published += 1
        return None

    async def settle(self, timeout_s: float | None = None) -> None:
        return None

    def stats(self) -> Stats:
        n = self.published
        return Stats(n, n, 0, 0, 0, 0, retried=n)
