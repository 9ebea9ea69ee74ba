"""A per-service circuit breaker: closed -> open -> half-open -> closed or open again."""

from __future__ import annotations

import enum
from collections.abc import Callable

__all__ = ["BreakerState", "CircuitBreaker"]


class BreakerState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


_CLOSED = BreakerState.CLOSED
_OPEN = BreakerState.OPEN
_HALF_OPEN = BreakerState.HALF_OPEN


class CircuitBreaker:
    """Opens after ``threshold`` consecutive failures and refuses deliveries for
    ``timeout_s``; then half-open, it admits one probe whose outcome closes or re-opens it.

    While half-open, the next recorded outcome decides, whichever call it came from. A
    failure reported while open (a call that started before the breaker opened) is counted
    but does not extend the open period.
    """

    __slots__ = (
        "clock",
        "closed",
        "failures",
        "opened_at",
        "opens",
        "probing",
        "state",
        "threshold",
        "timeout_s",
    )

    def __init__(self, threshold: int, timeout_s: float, clock: Callable[[], float]) -> None:
        self.threshold = threshold
        self.timeout_s = timeout_s
        self.clock = clock
        self.state = _CLOSED
        # Mirrors ``state is CLOSED``: one attribute read on the hot path.
        self.closed = True
        self.failures = 0
        self.opened_at = 0.0
        self.probing = False
        self.opens = 0

    def available(self) -> bool:
        """Would a delivery be admitted now? Does not change the state."""
        if self.closed:
            return True
        if self.state is _OPEN:
            return self.clock() - self.opened_at >= self.timeout_s
        return not self.probing

    def admit(self) -> bool:
        """Take a delivery through: always when closed; when the open period is over, the
        breaker turns half-open and this delivery becomes its one probe."""
        if self.closed:
            return True
        if self.state is _OPEN:
            if self.clock() - self.opened_at < self.timeout_s:
                return False
            self.state = _HALF_OPEN
            self.probing = False
        if self.probing:
            return False
        self.probing = True
        return True

    def abandon_probe(self) -> None:
        """The probe never reached a verdict (coordinator stopped): let another one through."""
        self.probing = False

    def record_success(self) -> None:
        self.failures = 0
        if not self.closed:
            self.state = _CLOSED
            self.closed = True
            self.probing = False

    def record_failure(self) -> None:
        self.failures += 1
        if self.state is _HALF_OPEN or (self.closed and self.failures >= self.threshold):
            self.state = _OPEN
            self.closed = False
            self.probing = False
            self.opened_at = self.clock()
            self.opens += 1
