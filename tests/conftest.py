"""Shared helpers for building events and services in tests."""

from __future__ import annotations

import itertools

from crucible import Event, Kind, Priority, Source, SourceType

_ids = itertools.count()


def make_event(
    kind: Kind = Kind.FILE_MODIFIED,
    *,
    payload: bytes = b"x" * 64,
    priority: Priority = Priority.NORMAL,
    targets: tuple[str, ...] = (),
    event_id: str | None = None,
    max_retries: int = 3,
) -> Event:
    return Event(
        id=event_id or f"t-{next(_ids)}",
        kind=kind,
        source=Source("test-source", SourceType.SERVICE),
        payload=payload,
        priority=priority,
        targets=targets,
        max_retries=max_retries,
    )
