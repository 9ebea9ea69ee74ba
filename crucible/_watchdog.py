"""A cheap event-timeout watchdog for drain loops.

Wrapping every handler call in ``asyncio.wait_for`` creates a task per call, which would
dominate a fast dispatcher. Instead the loop stamps the start of each call and this
watchdog, waking a few times per timeout, cancels the loop task when a call is overdue; the
loop catches that cancellation, counts the call as timed out and goes on.
"""

from __future__ import annotations

import asyncio

__all__ = ["CallWatch"]


class CallWatch:
    """Tracks the handler call in progress of one drain-loop task."""

    __slots__ = ("fired", "started", "task", "timeout_s")

    def __init__(self, timeout_s: float) -> None:
        if timeout_s <= 0:
            raise ValueError(f"event timeout must be > 0 s, not {timeout_s}")
        self.timeout_s = timeout_s
        self.started = 0.0  # loop.time() at the start of the current call, 0 when idle
        self.fired = False
        self.task: asyncio.Task[None] | None = None

    def consume_timeout(self) -> bool:
        """Called by the loop on CancelledError: True if the watchdog caused it."""
        if not self.fired:
            return False
        self.fired = False
        task = self.task
        if task is not None:
            task.uncancel()
        return True

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        interval = min(self.timeout_s / 4, 1.0)
        while True:
            await asyncio.sleep(interval)
            started = self.started
            task = self.task
            if (
                started
                and task is not None
                and not self.fired
                and loop.time() - started > self.timeout_s
            ):
                self.fired = True
                task.cancel()
