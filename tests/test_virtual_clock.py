"""perf.measure.virtual_clock: time that moves only when the event loop waits."""

from __future__ import annotations

import asyncio
import time

import pytest

from perf.measure.virtual_clock import EPOCH_S, START_S, VirtualClock


def test_on_the_virtual_clock_waits_take_no_time_and_computing_none() -> None:
    clock = VirtualClock()
    clock.install()
    try:
        start = time.monotonic()
        assert time.perf_counter() == start == clock.now_s
        assert time.time() == EPOCH_S

        async def sleeps() -> list[float]:
            seen = []
            for delay in (0.25, 10.0, 3600.0):
                await asyncio.sleep(delay)
                seen.append(time.monotonic() - start)
            return seen

        loop = clock.new_event_loop()
        real_started = clock._saved["perf_counter"]()
        try:
            seen = loop.run_until_complete(sleeps())
        finally:
            loop.close()
        real_s = clock._saved["perf_counter"]() - real_started
    finally:
        clock.uninstall()
    assert seen == pytest.approx([0.25, 10.25, 3610.25])
    assert real_s < 5.0  # an hour of sleeps, at once
    assert not clock.installed
    assert time.monotonic() != clock.now_s  # the real clock is back


def test_computing_does_not_move_the_clock_and_ready_callbacks_run_before_timers() -> None:
    clock = VirtualClock()
    order: list[str] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.call_later(0.001, order.append, "timer")
        for i in range(3):
            sum(range(100_000))  # computing: no time passes
            order.append(f"step {i}")
            await asyncio.sleep(0)
        assert loop.time() == START_S
        await asyncio.sleep(0.002)

    loop = clock.new_event_loop()
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
    assert order == ["step 0", "step 1", "step 2", "timer"]
    assert clock.now_s == pytest.approx(START_S + 0.002)
