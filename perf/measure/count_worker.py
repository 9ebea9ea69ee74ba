"""Workloads run to be counted: ``python -m perf.measure.count_worker``.

``perf.measure.instructions`` runs this process under valgrind, once per source tree and
set of cases. It installs the virtual clock (``perf.measure.virtual_clock``; ``--clock
real`` leaves the wall clock), puts the tree's root first on ``sys.path`` as
``perf.measure.sample`` does, imports the library and then, for each case line on its
standard input (a JSON ``[suite, case, coordinator]``), forks a case process:

- the case process prepares ``2k`` workloads (events, services and schedule, as
  ``crucible.measure.measure`` does before its clock starts) and runs the first ``k``;
- then it forks twice: the first child exits at once, the second runs the other ``k``
  workloads and exits. valgrind reports an instruction total for each process, and a
  forked child's total includes everything its parent executed before the fork. The two
  totals are therefore those of a process that ran the workload ``k`` times and one that
  ran it ``2k`` times, with the same start-up, imports and preparation, and their
  difference is ``k`` workloads alone: the coordinator's start, the registration of the
  services, every publish, delivery and handler call, settle and stop.

Each case process is forked from the same state of this process and reads its own case
line, so its count does not depend on the other cases (the heap this process forks from
drifts a little from one fork to the next: up to 0.01 % of a count). The cases come on
standard input rather than in a file because a file's name would be in every case
process's heap, and a temporary name's random letters move allocation counts by one in
tens of thousands. Processes end with ``os._exit``: the interpreter's teardown is never
counted.

The same design counts allocations: under valgrind's memcheck, with ``PYTHONMALLOC=malloc``
so that every allocation request of the interpreter reaches malloc, each process's heap
summary gives its allocations and bytes, and the difference is again ``k`` workloads'.

The RSS sampler thread and the figures of ``measure`` are not run: they are the harness's
work, and the sampler wakes on the wall clock. The event loops are created and closed here,
not by ``asyncio.run``, whose handling of Ctrl-C depends on how the parent left SIGINT.

Each case replies one JSON line on stdout: ``{"bench", "pid_k", "pid_2k", "seconds"}``
(the two processes whose totals to subtract, and the case's wall seconds), or ``{"bench",
"error"}``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from perf.measure.virtual_clock import VirtualClock

if TYPE_CHECKING:
    from perf.workload.cases import Case
    from perf.workload.library import Coordinator, Event

__all__ = ["CLOCKS", "main"]

CLOCKS = ("virtual", "real")
# A case process's exit status past the last case line.
NO_MORE_CASES = 3
# Taken before the virtual clock replaces it: the seconds each case took, for the reply.
_real_seconds = time.perf_counter

LoopFactory = Callable[[], asyncio.AbstractEventLoop]


@dataclass(slots=True)
class _Prepared:
    """One workload, ready to run."""

    events: list[Event]
    services: list[Any]
    schedule: list[float] | None


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m perf.measure.count_worker", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--tree", type=Path, required=True, help="source tree to measure")
    parser.add_argument("--set", dest="set_name", required=True, help="the cases' set")
    parser.add_argument("--workloads", type=int, required=True, help="k")
    parser.add_argument("--clock", choices=CLOCKS, default="virtual")
    args = parser.parse_args(argv)
    if args.workloads < 1:
        parser.error("--workloads must be at least 1")
    return args


def _case(set_name: str, suite: str, name: str, coordinator: str) -> Case:
    from perf.workload.cases import Case, case_definitions

    for definition in case_definitions(suite, set_name):
        if definition.name == name and definition.applies_to(coordinator):
            return Case(definition, coordinator)
    raise ValueError(f"no case {suite}.{name} for {coordinator} in the {set_name} set")


def _prepare(case: Case) -> _Prepared:
    from perf.workload.library import build_services, generate_events, named_pattern

    spec = case.run_spec()
    latencies: list[float] = []
    services = build_services(
        spec.scenario, on_done=latencies.append, faults=spec.faults(), seed=spec.seed
    )
    schedule = None
    if spec.pattern is not None:
        pattern = named_pattern(spec.pattern, spec.scenario.events, spec.rate_eps)
        schedule = list(pattern.schedule())
    events = generate_events(spec.scenario, seed=spec.seed)
    return _Prepared(events, list(services), schedule)


async def _publish_scheduled(
    coord: Coordinator, events: Sequence[Event], offsets: Sequence[float]
) -> None:
    """Open loop, as ``crucible.measure`` publishes a paced workload: each event at its
    offset from the start, whether or not the coordinator has kept up."""
    perf_counter = time.perf_counter  # the virtual clock's, when installed
    t0 = perf_counter()
    for event, offset in zip(events, offsets, strict=False):
        delay = t0 + offset - perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        event.published_at = perf_counter()
        await coord.publish(event)


async def _workload(case: Case, prepared: _Prepared) -> None:
    from perf.workload.library import load_coordinator, publish_unpaced

    spec = case.run_spec()
    coord = load_coordinator(spec.coordinator, **spec.coordinator_options)
    await coord.start()
    try:
        for service in prepared.services:
            await coord.register(service)
        if prepared.schedule is None:
            await publish_unpaced(coord, prepared.events)
        else:
            await _publish_scheduled(coord, prepared.events, prepared.schedule)
        await coord.settle(spec.settle_timeout_s)
        stats = coord.stats()
    finally:
        await coord.stop()
    if not stats.balanced or stats.in_flight:
        raise RuntimeError(f"{case.name}: the accounting does not balance: {stats.as_dict()}")


def _run(case: Case, prepared: list[_Prepared], new_loop: LoopFactory) -> None:
    """Run the prepared workloads one after another, each in a fresh event loop, dropping
    each one's events and services once it has run."""
    while prepared:
        workload = prepared.pop(0)
        loop = new_loop()
        try:
            loop.run_until_complete(_workload(case, workload))
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
        del workload


def _reply(line: dict[str, Any]) -> None:
    os.write(1, (json.dumps(line, allow_nan=False) + "\n").encode())


def _fork(child: Callable[[], None]) -> int:
    """Fork; the child runs ``child`` and ends (status 1 with the traceback on stderr if it
    raised); the parent gets the child's pid."""
    pid = os.fork()
    if pid:
        return pid
    status = 0
    try:
        child()
    except BaseException:
        traceback.print_exc()
        status = 1
    sys.stderr.flush()
    os._exit(status)


def _wait(pid: int) -> int:
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def _count_case(case: Case, k: int, new_loop: LoopFactory) -> dict[str, Any]:
    """The case process's work (see the module docstring); its reply line."""
    started = _real_seconds()
    prepared = [_prepare(case) for _ in range(2 * k)]
    gc.collect()
    gc.freeze()  # the prepared workloads out of the collector's way
    _run(case, prepared[:k], new_loop)
    rest = prepared[k:]
    del prepared
    pid_k = _fork(lambda: None)
    pid_2k = _fork(lambda: _run(case, rest, new_loop))
    if _wait(pid_k) or _wait(pid_2k):
        raise RuntimeError(f"{case.name}: a workload crashed (traceback above)")
    seconds = _real_seconds() - started
    return {"bench": case.name, "pid_k": pid_k, "pid_2k": pid_2k, "seconds": seconds}


def _case_line() -> list[str] | None:
    """The next case line of standard input, or None at its end. Read a byte at a time
    from the descriptor, so that the next case process, forked from a parent that has
    read nothing, finds the line after it."""
    line = bytearray()
    while (byte := os.read(0, 1)) and byte != b"\n":
        line += byte
    if not line:
        return None
    return [str(part) for part in json.loads(line)]


def _case_process(index: int, args: argparse.Namespace, new_loop: LoopFactory) -> NoReturn:
    """Count the next case of standard input (case ``index``), reply, and end; end with
    NO_MORE_CASES past the last case."""
    bench = f"case {index}"
    try:
        found = _case_line()
        if found is None:
            os._exit(NO_MORE_CASES)
        suite, name, coordinator = found
        bench = f"{suite}.{name}.{coordinator}"
        case = _case(args.set_name, suite, name, coordinator)
        bench = case.name
        reply = _count_case(case, args.workloads, new_loop)
    except BaseException as exc:
        traceback.print_exc()
        error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        reply = {"bench": bench, "error": error}
    _reply(reply)
    sys.stderr.flush()
    os._exit(0)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    tree = args.tree.resolve()
    if not (tree / "crucible" / "__init__.py").is_file():
        print(f"perf.measure.count_worker: {tree} has no crucible package", file=sys.stderr)
        return 2
    clock = VirtualClock() if args.clock == "virtual" else None
    if clock is not None:
        clock.install()  # before anything imports crucible
    # The tree's crucible, not the installed one: first on the path, before any import.
    sys.path.insert(0, str(tree))
    for name in [m for m in sys.modules if m == "crucible" or m.startswith("crucible.")]:
        del sys.modules[name]
    import perf.workload.cases  # noqa: F401  (the library and the cases, once for all)

    new_loop: LoopFactory = clock.new_event_loop if clock is not None else asyncio.new_event_loop
    gc.collect()
    gc.freeze()
    sys.stdout.flush()
    sys.stderr.flush()
    # The cases are read by the case processes, not here: this process's state when it
    # forks a case is then the same whatever the other cases are.
    index = 0
    while True:
        pid = os.fork()
        if pid == 0:
            _case_process(index, args, new_loop)
        if _wait(pid) == NO_MORE_CASES:
            break
        index += 1
    os._exit(0)


if __name__ == "__main__":
    raise SystemExit(main())
