"""The daemon's whole path in one process, for changes too small to see through this
machine's noise.

A ``DaemonServer`` (its core at the daemon's defaults), a ``Producer`` and a
``ServiceClient`` hosting the medium scenario's services run in one event loop, their
connections carried through memory instead of a socket (``connect_in_memory``): every frame
is encoded, decoded, routed, delivered, handled and acked as through ``core-daemon``, but
one process does all of it, so its CPU per event is the sum of both processes' work,
without the kernel's part.

Two measures:
- CPU time per event (``time.process_time``), median of the rounds; it drifts with the
  machine like any time.
- ``--instructions``: CPU instructions per event, counted by valgrind's callgrind at two run
  sizes, less the same two runs generating their events and doing nothing else. The count
  is the same from run to run whatever else the machine does, so a change of a percent is
  visible. It is no time: cache misses and the kernel's work are not in it, and a change
  that moves work between the two processes moves nothing here; the throughput of
  ``perf.tools.daemon_speed`` is the judge, this is the guide.

``--work none`` gives the services no work (their handlers return at once): the count
less this one is what the medium services' own work costs, which the in-process core pays
too; the rest is the daemon's path.

Usage: ``python -m perf.tools.daemon_pipeline [--events N] [--rounds N] [--instructions]
[--work none|hash|parse]``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Final, cast

from crucible.daemon import Backoff, DaemonServer, Producer, ServiceClient
from perf.workload.library import (
    Coordinator,
    Event,
    Rejected,
    build_services,
    generate_events,
    get_scenario,
    publish_unpaced,
)

__all__ = ["instructions_per_event", "parse_collected", "run_pipeline"]

# Run sizes of --instructions: the per-event figure is the difference over the difference.
SMALL_RUN: Final = 1_000
LARGE_RUN: Final = 5_000


class _Publisher:
    """What ``core-daemon`` does with each event: queue it for the daemon, or wait."""

    name = "core-daemon"

    def __init__(self, producer: Producer) -> None:
        self._producer = producer

    async def publish(self, event: Event) -> Rejected | None:
        if self._producer.try_submit(event):
            return None
        return await self._producer.submit(event)


async def run_pipeline(
    events: int, rounds: int, *, generate_only: bool = False, work: str | None = None
) -> list[float]:
    """CPU microseconds per event of each round: ``events`` medium events published,
    delivered and acked through an in-process daemon. The events of a round are generated
    before its clock starts. Raises RuntimeError if a round does not deliver every event
    or the daemon's accounting does not balance. ``generate_only``: generate the events
    and return nothing (the baseline of ``--instructions``). ``work``: the services' work
    kind instead of the scenario's (``WorkSpec``; "none": handlers that return at once)."""
    scenario = dataclasses.replace(get_scenario("medium"), events=events)
    if work is not None:
        scenario = dataclasses.replace(scenario, work=dataclasses.replace(scenario.work, kind=work))
    if generate_only:
        for r in range(rounds):
            generate_events(scenario, seed=r + 1)
        return []
    server = DaemonServer("in-memory")
    await server.start_in_memory()
    backoff = Backoff(attempts=1)
    producer = Producer("memory", backoff=backoff)
    services = ServiceClient("memory", backoff=backoff)
    try:
        await producer.connect_in_memory(server)
        await services.connect_in_memory(server)
        for service in build_services(scenario, seed=0):
            await services.add(service)
        publisher = _Publisher(producer)
        figures = []
        for r in range(rounds):
            batch = generate_events(scenario, seed=r + 1)
            before = server.core.stats().delivered
            cpu0 = time.process_time()
            # publish_unpaced calls nothing of a Coordinator but publish.
            await publish_unpaced(cast(Coordinator, publisher), batch)
            await producer.flush(60)
            await server.core.settle(60)
            cpu = time.process_time() - cpu0
            stats = server.stats()
            if stats.delivered - before != events or not stats.balanced:
                raise RuntimeError(f"round {r}: {events} events published, stats {stats}")
            figures.append(cpu / events * 1e6)
        return figures
    finally:
        await producer.close()
        await services.close()
        await server.core.stop()


_COLLECTED = re.compile(r"Collected\s*:\s*([0-9,]+)")


def parse_collected(valgrind_stderr: str) -> int:
    """The instruction total callgrind prints at exit ("Collected : N")."""
    match = _COLLECTED.search(valgrind_stderr)
    if match is None:
        raise RuntimeError(f"no instruction count in callgrind's output: {valgrind_stderr[-500:]}")
    return int(match.group(1).replace(",", ""))


def instructions_per_event(totals: dict[tuple[str, int], int], small: int, large: int) -> float:
    """Instructions per event from four callgrind totals, keyed (mode, events) with mode
    "pipeline" or "generate": the pipeline's growth from ``small`` to ``large`` events less
    the growth of generating them."""
    grown = totals[("pipeline", large)] - totals[("pipeline", small)]
    generating = totals[("generate", large)] - totals[("generate", small)]
    return (grown - generating) / (large - small)


def _count(mode: str, events: int, work: str | None) -> int:
    argv = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        "-m",
        "perf.tools.daemon_pipeline",
        "--events",
        str(events),
        "--rounds",
        "1",
        "--quiet",
    ]
    if mode == "generate":
        argv.append("--generate-only")
    if work is not None:
        argv += ["--work", work]
    env = dict(os.environ, PYTHONHASHSEED="0")
    try:
        done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    except FileNotFoundError:
        raise SystemExit(
            "perf.tools.daemon_pipeline --instructions needs valgrind"
            " (Debian: apt install valgrind)"
        ) from None
    if done.returncode != 0:
        raise SystemExit(f"callgrind run ({mode}, {events} events) failed: {done.stderr[-800:]}")
    return parse_collected(done.stderr)


def _work_label(work: str | None) -> str:
    return "" if work is None else f", services' work {work}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000, help="events a round (10,000)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (default 5)")
    parser.add_argument(
        "--instructions",
        action="store_true",
        help=f"count instructions per event with callgrind ({SMALL_RUN:,} and {LARGE_RUN:,} "
        "events; takes about two minutes)",
    )
    parser.add_argument(
        "--work",
        choices=("none", "hash", "parse"),
        help="the services' work instead of the scenario's (none: handlers return at once)",
    )
    parser.add_argument("--generate-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--quiet", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.events < 1 or args.rounds < 1:
        parser.error("--events and --rounds must be at least 1")
    if args.instructions:
        totals = {}
        for mode in ("generate", "pipeline"):
            for events in (SMALL_RUN, LARGE_RUN):
                print(f"callgrind: {mode}, {events:,} events ...", file=sys.stderr, flush=True)
                totals[(mode, events)] = _count(mode, events, args.work)
        per_event = instructions_per_event(totals, SMALL_RUN, LARGE_RUN)
        print(
            f"daemon pipeline (medium{_work_label(args.work)}): "
            f"{per_event:,.0f} instructions per event"
        )
        return 0
    figures = asyncio.run(
        run_pipeline(args.events, args.rounds, generate_only=args.generate_only, work=args.work)
    )
    if not args.quiet:
        print(
            f"daemon pipeline (medium{_work_label(args.work)}, {args.events:,} events a round): "
            f"median "
            f"{statistics.median(figures):.1f} us of CPU per event "
            f"({min(figures):.1f}-{max(figures):.1f}, {args.rounds} rounds)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
