"""The coordinator protocol every measured event system implements, and its statistics."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from crucible._events import Category, Event, Rejected

__all__ = [
    "DEFAULT_WIRING",
    "ROLES",
    "Coordinator",
    "CoordinatorError",
    "Service",
    "SettleTimeout",
    "Stats",
]

# Service roles and the fixed category -> roles wiring of the original DataCoordinator.
# CrucibleCore's default routing rules and the reference dispatcher use the same mapping, so
# all coordinators do the same handler work and a comparison measures the machinery alone.
# Ordered so that a scenario with few services still covers every category: the first
# three roles receive every category, "sync" only adds a second filesystem consumer.
ROLES: tuple[str, ...] = ("file", "database", "event", "sync")
DEFAULT_WIRING: Mapping[Category, tuple[str, ...]] = {
    Category.FILESYSTEM: ("file", "sync"),
    Category.DATABASE: ("database",),
    Category.SERVICE: ("event",),
    Category.EXTERNAL: ROLES,
    Category.MCP: ROLES,
    Category.SYSTEM: ROLES,
}


class CoordinatorError(Exception):
    """Root of the errors a coordinator raises (misuse, not event failures)."""


class SettleTimeout(CoordinatorError):
    """``settle`` gave up before every published event was accounted for."""


@runtime_checkable
class Service(Protocol):
    """A consumer of events. ``handle`` raising means the delivery failed."""

    name: str
    role: str

    async def handle(self, event: Event) -> None: ...

    def healthy(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class Stats:
    """Event accounting. Invariant: published = delivered + failed + dead_lettered + rejected
    + in_flight. ``retried`` counts re-deliveries and is not part of the sum."""

    published: int
    delivered: int
    failed: int
    dead_lettered: int
    rejected: int
    in_flight: int
    retried: int = 0
    extra: Mapping[str, float] = field(default_factory=dict)

    @property
    def balanced(self) -> bool:
        settled = self.delivered + self.failed + self.dead_lettered + self.rejected
        return self.published == settled + self.in_flight

    def as_dict(self) -> dict[str, float]:
        out: dict[str, float] = {
            "published": self.published,
            "delivered": self.delivered,
            "failed": self.failed,
            "dead_lettered": self.dead_lettered,
            "rejected": self.rejected,
            "in_flight": self.in_flight,
            "retried": self.retried,
        }
        out.update(self.extra)
        return out


@runtime_checkable
class Coordinator(Protocol):
    """What the gate measures. ``publish`` returns None when accepted, else why not."""

    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def register(self, service: Service) -> None: ...

    async def publish(self, event: Event) -> Rejected | None: ...

    async def settle(self, timeout_s: float | None = None) -> None: ...

    def stats(self) -> Stats: ...
