"""De-duplication of event ids inside a sliding time window, with bounded memory."""

from __future__ import annotations

__all__ = ["Deduplicator"]


class Deduplicator:
    """Remembers accepted event ids for ``window_s`` seconds.

    One dict maps id -> time accepted. Clock readings are non-decreasing and a re-accepted
    id is moved to the end, so the dict's insertion order is time order and the expired
    ids are always at its front. They are swept out every ``window_s / 8`` of clock time,
    so memory holds the ids of the last window plus at most an eighth more. Check and
    record are one call because that is the publish hot path; ``forget`` undoes a record.
    A window of 0 disables the check.
    """

    __slots__ = ("_next_sweep", "_seen", "_sweep_every_s", "window_s")

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._seen: dict[str, float] = {}
        self._sweep_every_s = window_s / 8
        self._next_sweep = float("-inf")

    def __len__(self) -> int:
        return len(self._seen)

    def admit(self, event_id: str, now: float) -> bool:
        """False if ``event_id`` was admitted less than ``window_s`` before ``now``; else
        remember it and return True."""
        seen = self._seen
        accepted_at = seen.get(event_id)
        if accepted_at is not None:
            if now - accepted_at < self.window_s:
                return False
            del seen[event_id]  # re-insert at the end, keeping the dict in time order
        if self.window_s > 0:
            seen[event_id] = now
            if now >= self._next_sweep:
                self._sweep(now)
        return True

    def forget(self, event_id: str) -> None:
        """Undo ``admit`` for an event that was rejected after all."""
        self._seen.pop(event_id, None)

    def _sweep(self, now: float) -> None:
        seen = self._seen
        expired = []
        horizon = now - self.window_s
        for event_id, accepted_at in seen.items():
            if accepted_at > horizon:
                break
            expired.append(event_id)
        for event_id in expired:
            del seen[event_id]
        self._next_sweep = now + self._sweep_every_s
