"""Run a coroutine's first step in the caller, and a task only for what suspends.

Most handler calls and publishes complete without suspending. Creating a task for each
would cost more than the work (a task, a loop iteration, a callback). So the caller steps
the coroutine once with ``coro.send(None)``: if that raises StopIteration the call is done;
otherwise ``resume(coro, yielded)`` hands the suspended coroutine to a task, which carries
on exactly where it stopped (the future it yielded, cancellation, exceptions).

The price: until its first suspension the coroutine runs outside any task, so
``asyncio.current_task()`` is whatever task called it (or None from a protocol callback)
and ``asyncio.timeout`` cannot be entered before the first ``await`` that suspends.
"""

from __future__ import annotations

import types
from collections.abc import Coroutine, Generator
from typing import Any, TypeVar

__all__ = ["resume"]

T = TypeVar("T")


@types.coroutine
def _carry_on(coro: Coroutine[Any, Any, T], yielded: Any) -> Generator[Any, Any, T]:
    # The task driving us sees each value the coroutine yields (a future with
    # _asyncio_future_blocking set, or None for a bare yield) and sends back what it would
    # have sent to the coroutine itself; exceptions (cancellation) are thrown through.
    while True:
        try:
            sent = yield yielded
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:
            try:
                yielded = coro.throw(exc)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
        else:
            try:
                yielded = coro.send(sent)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]


async def resume(coro: Coroutine[Any, Any, T], yielded: Any) -> T:
    """Finish ``coro``, whose first ``send(None)`` returned ``yielded``. Wrap in a task."""
    return await _carry_on(coro, yielded)
