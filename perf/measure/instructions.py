"""Instructions and allocations per workload: counts that are the same on every run.

A case's time moves with the machine; the CPU instructions its workload executes do not.
``count_cases`` counts them under valgrind (cachegrind without its cache simulation by
default, or callgrind) in fresh processes (``perf.measure.count_worker``): per case, the
instruction totals of a process that ran the workload ``k`` times and of one that ran it
``2k`` times, identical up to that point (the second is forked from the first's state), so
that start-up, imports and the preparation of the workloads cancel and
``(total_2k - total_k) / k`` is the workload alone. Beside it, the same processes run under
valgrind's memcheck, with Python's small-object allocator off (``PYTHONMALLOC=malloc``) so
that every allocation request reaches malloc: the difference of their heap summaries is the
allocations and bytes the workload requests. (memray is not used for this: on Python 3.11
its profile hook makes the interpreter allocate a frame object for every Python call it
tracks, which would be counted as the workload's.)

What is fixed so that the counts repeat: the whole environment of the worker (a fixed hash
seed and locale, no other ``PYTHON*`` variable); every seed (the cases' own); the clock
(the workers run on ``perf.measure.virtual_clock``: no periodic poll fires during an
unpaced workload, and a paced one keeps its schedule exactly); the process's history (each
case is forked from the same state, whatever ran before it, and the tree is byte-compiled
first); and the interpreter's teardown, never counted. Instructions then repeat exactly,
allocations to one allocation in k workloads. The measured tree's ``crucible`` is imported
only in the worker, as in ``perf.measure.sample``.

The counts compare across runs and machines with the same Python build and C library, the
same valgrind, tool, clock and k, and the same machine architecture: the record carries
all of them but the C library (what a baseline would store). Counts are no time: cache
misses and the kernel's work are not in them. docs/measurements.md#instruction-counts has
their repeatability, cost and sensitivity.
"""

from __future__ import annotations

import compileall
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Final, TypeVar

from perf.errors import ResultError
from perf.measure.count_worker import CLOCKS
from perf.paths import REPO_ROOT

__all__ = [
    "COUNT_SCHEMA_VERSION",
    "DEFAULT_CLOCK",
    "DEFAULT_TOOL",
    "DEFAULT_WORKLOADS",
    "HEAP_TOOL",
    "TOOLS",
    "CaseCount",
    "CaseRef",
    "CountRun",
    "CountSettings",
    "ValgrindLogs",
    "count_case",
    "count_cases",
    "countable_cases",
    "parse_valgrind_logs",
    "per_workload",
    "spread_pct",
]

# The record's layout; a baseline storing CaseCount.as_dict() would carry it.
COUNT_SCHEMA_VERSION: Final = 1
# valgrind tools that count instructions, with the options that make them count only that.
TOOLS: Final[Mapping[str, tuple[str, ...]]] = {
    "cachegrind": ("--cache-sim=no", "--branch-sim=no", "--cachegrind-out-file=/dev/null"),
    "callgrind": ("--callgrind-out-file=/dev/null",),
}
# The tool counting allocations: memcheck's heap summary, without its slowest checks.
HEAP_TOOL: Final = "memcheck"
HEAP_OPTIONS: Final = ("--undef-value-errors=no", "--leak-check=no")
# cachegrind without its cache simulation counts the same instructions as callgrind in
# about half the time (docs/measurements.md#instruction-counts).
DEFAULT_TOOL: Final = "cachegrind"
# k. Counts compare at equal k only: a light workload's count still falls as k grows (its
# first-use work spreads over more workloads), a medium one's by 0.1 % from k = 1 to 2.
# At 2 the quick set takes about a minute under cachegrind.
DEFAULT_WORKLOADS: Final = 2
DEFAULT_CLOCK: Final = "virtual"
# A whole quick set takes about a minute on the CI machine; this only stops a hang.
DEFAULT_TIMEOUT_S: Final = 1800.0
WORKER: Final = "perf.measure.count_worker"
VALGRIND_FIX: Final = (
    "install valgrind (Debian or Ubuntu: apt-get install valgrind; the CI entry point "
    ".ci/run installs it when missing)"
)

_T = TypeVar("_T")
_TOTAL = re.compile(r"^==(\d+)==\s+I\s+refs:\s+([\d,]+)\s*$", re.MULTILINE)
_HEAP = re.compile(
    r"^==(\d+)==\s+total heap usage:\s+([\d,]+) allocs,\s+[\d,]+ frees,\s+([\d,]+) bytes allocated",
    re.MULTILINE,
)
_VERSION = re.compile(r"Using Valgrind-(\S+) and LibVEX")


@dataclass(frozen=True, slots=True)
class CaseRef:
    """A case to count, as the gate's plan names it (``perf.workload.plan``)."""

    suite: str
    case: str
    coordinator: str
    bench: str

    @classmethod
    def from_plan(cls, item: Mapping[str, Any]) -> CaseRef:
        return cls(str(item["suite"]), str(item["case"]), str(item["coordinator"]), item["bench"])


def countable_cases(plan: Iterable[Mapping[str, Any]]) -> list[CaseRef]:
    """The plan's gated cases. The ungated ``core-daemon`` case is left out: its daemon is
    another process, whose instructions a count of this one would miss."""
    return [CaseRef.from_plan(item) for item in plan if item.get("gated", True)]


@dataclass(frozen=True, slots=True, kw_only=True)
class CountSettings:
    """How to count: the tree measured, the cases' set, ``workloads`` (k), the valgrind
    tool, the clock (``virtual``, or ``real`` to see what the wall clock does to the
    counts), whether to count allocations too, and how long a worker may take."""

    tree: Path = REPO_ROOT
    set_name: str = "quick"
    workloads: int = DEFAULT_WORKLOADS
    tool: str = DEFAULT_TOOL
    clock: str = DEFAULT_CLOCK
    allocations: bool = True
    timeout_s: float = DEFAULT_TIMEOUT_S

    def __post_init__(self) -> None:
        if self.workloads < 1:
            raise ValueError(f"workloads (k) must be at least 1, not {self.workloads}")
        if self.tool not in TOOLS:
            raise ValueError(f"unknown valgrind tool {self.tool!r}; accepted: {', '.join(TOOLS)}")
        if self.clock not in CLOCKS:
            raise ValueError(f"unknown clock {self.clock!r}; accepted: {', '.join(CLOCKS)}")
        if self.timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, not {self.timeout_s}")


@dataclass(frozen=True, slots=True, kw_only=True)
class CaseCount:
    """One case counted: ``instructions`` per workload from the totals of the processes
    that ran it ``workloads`` (k) and 2k times; ``allocations`` and ``allocated_bytes``
    (requested) per workload, from memcheck's heap summaries of the same two processes
    (None when not counted); and what the counts compare across: the tool and valgrind's
    version, the clock, the Python and the machine architecture. ``seconds``: what counting
    the case took (within a run of several cases, its own processes' time: the start-up,
    paid once a run, is in ``CountRun.seconds`` only)."""

    bench: str
    instructions: float
    total_k: int
    total_2k: int
    workloads: int
    allocations: float | None
    allocated_bytes: float | None
    tool: str
    tool_version: str
    clock: str
    python_implementation: str
    python_version: str
    machine: str
    seconds: float
    schema_version: int = field(default=COUNT_SCHEMA_VERSION)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class CountRun:
    """Every case of one run, in order, and the run's wall seconds (start-ups included)."""

    counts: tuple[CaseCount, ...]
    seconds: float


def per_workload(total_k: int, total_2k: int, k: int) -> float:
    """``(total_2k - total_k) / k``: one workload's count, from the totals of a process that
    ran it k times and one that ran it 2k times. ValueError unless k >= 1 and the second
    total is the larger."""
    if k < 1:
        raise ValueError(f"k must be at least 1, not {k}")
    if total_2k <= total_k:
        raise ValueError(
            f"the process that ran {2 * k} workloads counted {total_2k:,}, "
            f"no more than the one that ran {k} ({total_k:,})"
        )
    return (total_2k - total_k) / k


def spread_pct(values: Sequence[float]) -> float:
    """(max - min) / median x 100 of repeated counts: 0 for counts that repeat exactly."""
    if not values:
        raise ValueError("no values")
    median = statistics.median(values)
    if median <= 0:
        raise ValueError(f"the median of {list(values)} is not positive")
    return 100.0 * (max(values) - min(values)) / median


@dataclass(frozen=True, slots=True)
class ValgrindLogs:
    """What valgrind's logs say, by process id: instruction totals (the ``I refs`` line
    cachegrind and callgrind print at exit), memcheck's heap summary (allocations, bytes
    allocated), and valgrind's version (the ``Using Valgrind-X.Y.Z`` header)."""

    instructions: Mapping[int, int]
    heap: Mapping[int, tuple[int, int]]
    version: str | None


def parse_valgrind_logs(texts: Iterable[str]) -> ValgrindLogs:
    """Parse valgrind's logs (any number of processes, in any number of texts)."""
    instructions: dict[int, int] = {}
    heap: dict[int, tuple[int, int]] = {}
    version = None
    for text in texts:
        for pid, total in _TOTAL.findall(text):
            instructions[int(pid)] = _int(total)
        for pid, allocs, allocated in _HEAP.findall(text):
            heap[int(pid)] = (_int(allocs), _int(allocated))
        if version is None and (match := _VERSION.search(text)):
            version = match.group(1)
    return ValgrindLogs(instructions, heap, version)


def _int(text: str) -> int:
    return int(text.replace(",", ""))


def count_case(case: CaseRef, settings: CountSettings | None = None) -> CaseCount:
    """Count one case (see ``count_cases``); its ``seconds`` are the whole count's."""
    run = count_cases([case], settings)
    (count,) = run.counts
    return replace(count, seconds=run.seconds)


def count_cases(cases: Sequence[CaseRef], settings: CountSettings | None = None) -> CountRun:
    """Count each case's instructions (and allocations) per workload in fresh processes:
    one worker under the instruction tool for all the cases (each case forked from the
    worker's state after start-up), then one under memcheck. Raises ResultError when
    valgrind is missing, or a worker fails or its logs lack a case's totals."""
    settings = settings or CountSettings()
    if not cases:
        raise ValueError("no cases to count")
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise ResultError(
            "valgrind is not on PATH; instruction and allocation counts are taken under it",
            subject="valgrind",
            fix=VALGRIND_FIX,
        )
    started = time.perf_counter()
    _compile(settings.tree)
    replies, logs = _run_worker(valgrind, settings.tool, cases, settings)
    heap_replies: dict[str, Mapping[str, Any]] = {}
    heap_logs = ValgrindLogs({}, {}, None)
    if settings.allocations:
        found, heap_logs = _run_worker(valgrind, HEAP_TOOL, cases, settings)
        heap_replies = _by_bench(cases, found)
    by_bench = _by_bench(cases, replies)
    counts = [
        _case_count(
            case, by_bench[case.bench], logs, heap_replies.get(case.bench), heap_logs, settings
        )
        for case in cases
    ]
    return CountRun(tuple(counts), time.perf_counter() - started)


def _case_count(
    case: CaseRef,
    reply: Mapping[str, Any],
    logs: ValgrindLogs,
    heap_reply: Mapping[str, Any] | None,
    heap_logs: ValgrindLogs,
    settings: CountSettings,
) -> CaseCount:
    """One case's record from the workers' replies and valgrind's logs."""
    k = settings.workloads
    total_k, total_2k = (_pid_value(logs.instructions, reply, key) for key in _PIDS)
    allocations = allocated = None
    seconds = float(reply["seconds"])
    if heap_reply is not None:
        (allocs_k, bytes_k), (allocs_2k, bytes_2k) = (
            _pid_value(heap_logs.heap, heap_reply, key) for key in _PIDS
        )
        allocations = _per_workload(allocs_k, allocs_2k, k, case)
        allocated = _per_workload(bytes_k, bytes_2k, k, case)
        seconds += float(heap_reply["seconds"])
    return CaseCount(
        bench=case.bench,
        instructions=_per_workload(total_k, total_2k, k, case),
        total_k=total_k,
        total_2k=total_2k,
        workloads=k,
        allocations=allocations,
        allocated_bytes=allocated,
        tool=settings.tool,
        tool_version=logs.version or "unknown",
        clock=settings.clock,
        python_implementation=platform.python_implementation(),
        python_version=platform.python_version(),
        machine=platform.machine(),
        seconds=seconds,
    )


_PIDS: Final = ("pid_k", "pid_2k")


def _compile(tree: Path) -> None:
    """Byte-compile the measured tree's library and the harness first: a worker that
    compiled a module while importing it would fork its cases from another heap than one
    that read the compiled file, and count a little differently (0.03 % on light)."""
    for folder in {tree.resolve() / "crucible", REPO_ROOT / "perf"}:
        compileall.compile_dir(folder, quiet=1)


def _per_workload(total_k: int, total_2k: int, k: int, case: CaseRef) -> float:
    try:
        return per_workload(total_k, total_2k, k)
    except ValueError as exc:
        raise ResultError(str(exc), subject=case.bench) from None


def _worker_env(tool: str) -> dict[str, str]:
    """A worker's whole environment, the same on every machine (the worker's heap at the
    moment it forks a case holds it, so a longer or shorter environment would move the
    counts a little): a fixed hash seed and locale, the harness on the path, no user
    site-packages, and no other variable (asyncio's debug mode, dev mode, tracemalloc or
    another allocator would change the counts). For memcheck, no small-object allocator:
    every allocation request then reaches malloc, where memcheck counts it."""
    env = {
        "PYTHONHASHSEED": "0",
        "PYTHONPATH": str(REPO_ROOT),
        "PYTHONNOUSERSITE": "1",
        "LC_ALL": "C.UTF-8",
    }
    if "VALGRIND_LIB" in os.environ:  # valgrind installed outside its default prefix
        env["VALGRIND_LIB"] = os.environ["VALGRIND_LIB"]
    if tool == HEAP_TOOL:
        env["PYTHONMALLOC"] = "malloc"
    return env


def _worker_argv(settings: CountSettings) -> list[str]:
    argv = [sys.executable, "-m", WORKER, "--tree", str(settings.tree.resolve())]
    argv += ["--set", settings.set_name, "--workloads", str(settings.workloads)]
    return [*argv, "--clock", settings.clock]


def _case_lines(cases: Sequence[CaseRef]) -> str:
    """The worker's standard input: one JSON ``[suite, case, coordinator]`` a line."""
    return "".join(json.dumps([c.suite, c.case, c.coordinator]) + "\n" for c in cases)


def _run_worker(
    valgrind: str, tool: str, cases: Sequence[CaseRef], settings: CountSettings
) -> tuple[list[dict[str, Any]], ValgrindLogs]:
    """Run the worker under ``tool``: its reply lines and valgrind's logs (one file per
    process). ResultError if it fails, times out or replies an error for a case."""
    options = HEAP_OPTIONS if tool == HEAP_TOOL else TOOLS[tool]
    subject = ", ".join(c.bench for c in cases)
    with tempfile.TemporaryDirectory(prefix="crucible-count-") as folder:
        log = f"--log-file={Path(folder) / 'valgrind.%p'}"
        argv = [valgrind, f"--tool={tool}", *options, log, *_worker_argv(settings)]
        try:
            done = subprocess.run(
                argv,
                cwd=REPO_ROOT,
                env=_worker_env(tool),
                input=_case_lines(cases),
                capture_output=True,
                text=True,
                timeout=settings.timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise ResultError(
                f"the {tool} worker did not finish within {settings.timeout_s:.0f} s",
                subject=subject,
            ) from None
        texts = [p.read_text(errors="replace") for p in sorted(Path(folder).glob("valgrind.*"))]
    if done.returncode != 0:
        tail = done.stderr.strip() or "\n".join(texts)
        raise ResultError(
            f"the {tool} worker failed (exit {done.returncode}): {tail[-2000:]}", subject=subject
        )
    replies = []
    for line in done.stdout.splitlines():
        reply = json.loads(line)
        if "error" in reply:
            raise ResultError(
                f"the {tool} worker could not count it: {reply['error']}; its output: "
                f"{done.stderr.strip()[-1500:]}",
                subject=str(reply.get("bench", "?")),
            )
        replies.append(reply)
    return replies, parse_valgrind_logs(texts)


def _by_bench(
    cases: Sequence[CaseRef], replies: Sequence[Mapping[str, Any]]
) -> dict[str, Mapping[str, Any]]:
    by_bench = {str(r["bench"]): r for r in replies}
    missing = [c.bench for c in cases if c.bench not in by_bench]
    if missing:
        raise ResultError("the worker replied no count", subject=", ".join(missing))
    return by_bench


def _pid_value(values: Mapping[int, _T], reply: Mapping[str, Any], key: str) -> _T:
    pid = int(reply[key])
    if pid not in values:
        raise ResultError(
            f"valgrind's logs have no total for process {pid} ({key})",
            subject=str(reply["bench"]),
        )
    return values[pid]
