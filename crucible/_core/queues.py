"""A priority queue for the four event priorities: CRITICAL first, FIFO within a priority."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Generic, TypeVar

from crucible._events import Priority

__all__ = ["PriorityQueue"]

_T = TypeVar("_T")
_LEVELS = len(Priority)


class PriorityQueue(Generic[_T]):
    """One deque per priority level, indexed by ``Priority`` value (0 = CRITICAL).

    With four fixed levels this beats a heap with a sequence counter: push and pop are
    O(1), there is no tuple per entry, and FIFO order within a level holds by construction.
    The bound is enforced by the caller (``size`` is public), because the coordinator
    applies it to publishers but not to retries it has already accepted. ``levels`` is
    public too: the coordinator's hot path pushes and pops inline, keeping ``size`` in step.
    """

    __slots__ = ("levels", "size")

    def __init__(self) -> None:
        self.levels: tuple[deque[_T], ...] = tuple(deque() for _ in range(_LEVELS))
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def __bool__(self) -> bool:
        return self.size > 0

    def push(self, item: _T, priority: int) -> None:
        self.levels[priority].append(item)
        self.size += 1

    def pop(self) -> _T | None:
        """The most urgent, oldest item, or None when empty."""
        if not self.size:
            return None
        for level in self.levels:
            if level:
                self.size -= 1
                return level.popleft()
        raise AssertionError("PriorityQueue.size out of step with its levels")

    def drain(self) -> list[_T]:
        """Remove and return every item in pop order."""
        out: list[_T] = []
        for level in self.levels:
            out.extend(level)
            level.clear()
        self.size = 0
        return out

    def __iter__(self) -> Iterator[_T]:
        for level in self.levels:
            yield from level
