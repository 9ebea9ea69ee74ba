"""A virtual clock for counting: time that moves only when the event loop has nothing to do.

Under valgrind a workload runs some fifty times slower than natively, so everything that
depends on the wall clock changes with the machine and the tool: how often the
coordinators' periodic loops (DataCoordinator's health, metrics and watchdog polls,
CrucibleCore's watchdog and health checks) wake during a workload, whether a slow replica's
sleep ends before or after the next publish, whether a paced publisher is ahead of its
schedule or behind it. Counts taken on the wall clock differ from run to run.

With the clock installed, ``time.monotonic``, ``time.perf_counter`` and ``time.time`` (and
their ``_ns`` forms) read a number that computation never advances. Only the event loop
moves it: when no callback is ready and no I/O is pending, the loop's selector jumps the
clock to the next timer instead of blocking. A workload then takes no time where it
computes and exactly its sleeps where it waits, on any machine and under any tool, and every
timer fires at the same point among the callbacks in every run.

What this changes about a workload: a periodic poll fires only where the workload waits long
enough for it (an unpaced workload never does, so its polls are not counted), and a paced
publisher is never late (its schedule is kept exactly, as on an infinitely fast machine).

``install`` must run before ``crucible`` (or anything binding ``time.monotonic`` at import,
such as ``CoreConfig.clock``'s default) is imported. Threads that wait with a timeout are
not affected: ``threading`` binds the real clock when it is imported.
"""

from __future__ import annotations

import asyncio
import selectors
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

__all__ = ["EPOCH_S", "START_S", "VirtualClock", "VirtualSelector"]

# Where the clock starts: fixed values, so every run computes with the same floats.
START_S: Final = 1000.0
# What time.time() reads at START_S (2026-01-01T00:00:00Z).
EPOCH_S: Final = 1_767_225_600.0

_SelectResult = list[tuple[selectors.SelectorKey, int]]


class VirtualClock:
    """Seconds that advance only through ``advance`` (its selector calls it)."""

    def __init__(self, start_s: float = START_S) -> None:
        self.now_s = start_s
        self._start_s = start_s
        self._saved: dict[str, Callable[[], Any]] = {}

    def advance(self, seconds: float) -> None:
        if seconds > 0:
            self.now_s += seconds

    def monotonic(self) -> float:
        return self.now_s

    def wall(self) -> float:
        return EPOCH_S + (self.now_s - self._start_s)

    def monotonic_ns(self) -> int:
        return int(self.now_s * 1e9)

    def wall_ns(self) -> int:
        return int(self.wall() * 1e9)

    @property
    def installed(self) -> bool:
        return bool(self._saved)

    def install(self) -> None:
        """Replace the ``time`` module's clocks with this one (until ``uninstall``)."""
        replacements: Mapping[str, Callable[[], Any]] = {
            "monotonic": self.monotonic,
            "perf_counter": self.monotonic,
            "time": self.wall,
            "monotonic_ns": self.monotonic_ns,
            "perf_counter_ns": self.monotonic_ns,
            "time_ns": self.wall_ns,
        }
        for name, function in replacements.items():
            self._saved.setdefault(name, getattr(time, name))
            setattr(time, name, function)

    def uninstall(self) -> None:
        for name, function in self._saved.items():
            setattr(time, name, function)
        self._saved.clear()

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        """An event loop on this clock (installed or not): its waits for timers advance the
        clock instead of blocking."""
        return _VirtualLoop(self)


class _VirtualLoop(asyncio.SelectorEventLoop):
    def __init__(self, clock: VirtualClock) -> None:
        super().__init__(VirtualSelector(clock))
        self._virtual_clock = clock

    def time(self) -> float:
        return self._virtual_clock.now_s


class VirtualSelector(selectors.BaseSelector):
    """The platform's selector, except that a wait with a timeout polls instead of
    blocking: when nothing is ready, the clock jumps by the timeout (to the loop's next
    timer). A wait without a timeout (no timer at all) blocks as usual, for I/O."""

    def __init__(self, clock: VirtualClock) -> None:
        self._clock = clock
        self._inner = selectors.DefaultSelector()

    def select(self, timeout: float | None = None) -> _SelectResult:
        if timeout is None or timeout <= 0:
            return self._inner.select(timeout)
        ready = self._inner.select(0)
        if not ready:
            self._clock.advance(timeout)
        return ready

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._inner.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._inner.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._inner.modify(fileobj, events, data)

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return self._inner.get_map()

    def close(self) -> None:
        self._inner.close()
