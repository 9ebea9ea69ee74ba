"""Coordinators that misbehave on purpose, named as module:factory by the gate tests."""

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
