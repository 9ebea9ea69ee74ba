"""Batch calls: deliveries to a service in another process, sent together and answered one
by one.

A service may offer ``handle_batch(call, events)`` beside ``handle``. CrucibleCore then
sends a claimed service's queued deliveries to it together (as many as its free
``service_concurrency`` allows) and does not wait: the service answers each delivery later
with ``call.settle(i, outcome)`` (or several handled ones with ``call.settle_handled``), and
the core accounts that delivery at once, exactly as it accounts a ``handle`` call that
returned or raised. So a remote delivery costs no task
switch and no future, and one slow delivery holds up nobody else's accounting.

The core keeps the calls that still have deliveries unanswered: its watchdog times them
out after ``event_timeout_s`` (the unanswered deliveries fail with a timeout and are
retried or dead-lettered), and ``stop`` dead-letters them (``stopped``). Either way the
call is marked ``cancelled``, so the service can tell the other side to stop, and a late
answer is ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from crucible._core.registry import Delivery, ServiceSlot

__all__ = ["BatchCall"]


class BatchCall:
    """Deliveries sent together to one service, each awaiting its answer.

    ``pending[i]`` is the i-th delivery until it is answered, timed out or stopped, then
    None; ``left`` counts those still pending. ``cancelled`` turns True when the core gives
    up on the ones left (timeout, stop).
    """

    __slots__ = ("cancelled", "left", "on_handled", "on_outcome", "pending", "seen", "slot")

    def __init__(
        self,
        slot: ServiceSlot,
        deliveries: list[Delivery],
        on_outcome: Callable[[BatchCall, int, BaseException | None], None],
        on_handled: Callable[[BatchCall, list[int]], None] | None = None,
    ) -> None:
        self.slot = slot
        self.pending: list[Delivery | None] = list(deliveries)
        self.left = len(deliveries)
        self.cancelled = False
        # When the core's watchdog first saw this call unanswered (None: not yet).
        self.seen: float | None = None
        # The core's accounting: settle(i, outcome) is on_outcome(self, i, outcome).
        self.on_outcome = on_outcome
        # settle_handled(indices) is on_handled(self, indices): the core accounts a run of
        # handled deliveries with the call's and the service's bookkeeping done once.
        self.on_handled = on_handled

    def settle(self, i: int, outcome: BaseException | None) -> None:
        """The service's answer for the i-th delivery: None (handled) or the exception it
        failed with. A second answer, or one after a timeout or stop, is ignored."""
        self.on_outcome(self, i, outcome)

    def settle_handled(self, indices: list[int]) -> None:
        """``settle(i, None)`` for each of ``indices``, in one call."""
        if self.on_handled is not None:
            self.on_handled(self, indices)
            return
        for i in indices:
            self.on_outcome(self, i, None)

    def __repr__(self) -> str:
        return f"<BatchCall to {self.slot.name!r}: {self.left} of {len(self.pending)} left>"


def remote_batch_handler(service: Any) -> Callable[[BatchCall, list[Any]], None] | None:
    """The service's ``handle_batch``, if it has one."""
    handler = getattr(service, "handle_batch", None)
    return handler if callable(handler) else None
