"""Coordinators for the profiling tests: a deliberately leaking CrucibleCore."""

from __future__ import annotations

from crucible._core import CrucibleCore
from crucible._events import Event, Rejected

__all__ = ["LEAK_BYTES_PER_EVENT", "LeakyCore", "leaked"]

LEAK_BYTES_PER_EVENT = 100
# Module level, so nothing the coordinator does at stop() frees it.
_LEAKED: list[bytes] = []


class LeakyCore(CrucibleCore):
    """CrucibleCore whose publish keeps ``LEAK_BYTES_PER_EVENT`` bytes per event forever."""

    name = "leaky-core"

    async def publish(self, event: Event, *, checked: bool = False) -> Rejected | None:
        _LEAKED.append(bytes(LEAK_BYTES_PER_EVENT))
        return await super().publish(event, checked=checked)


def leaked() -> int:
    """How many payloads have leaked so far in this process."""
    return len(_LEAKED)
