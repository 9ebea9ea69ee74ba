"""Capturing profiles: each coordinator on each scenario, under memray and py-spy, and the
settle cycles of the leak gate, each in a process of its own.

Every profile is taken in a process of its own, never inside a timed benchmark: the target
is ``perf/profiling/target.py`` (run by path, with the profiled source tree as working
directory and first on ``PYTHONPATH``, so that tree's ``crucible`` is the one profiled;
:mod:`perf.profiling.runner` runs each step). Per coordinator and scenario, into
``<run dir>/profiles/[<side>/]<coordinator>-<scenario>/``:

==========================  ==============================================================
``memray.bin``              memray capture of one scenario run (default mode; the run
                            only, without the interpreter's start-up and imports)
``memray-flamegraph.html``  memray flame graph at peak memory
``memray-leaks.html``       memray ``--leaks`` flame graph (allocations never freed)
``memray-temporal.html``    memray ``--temporal`` flame graph (pick a time range)
``memray-stats.json``       ``memray stats --json``: allocation counts, bytes, top sites
``pyspy.speedscope.json``   py-spy samples (``--native`` where it works), speedscope format,
                            checked against speedscope's schema
``pyspy.svg``               py-spy flame graph (a second py-spy run of the same target)
``settle.json``             settle cycles under tracemalloc, for the leak gate
``capture.log``             every command run and its output
==========================  ==============================================================

A profiler that cannot run (memray not installed or unsupported, py-spy without ptrace
permission, a target that crashed) gives a note saying so and what to grant; the capture
goes on, and no file that was not captured, or that fails its check, is ever listed.
Nothing here decides anything: :func:`load_memory` hands the parsed files to the memory and
leak gate (``perf.decide.leakgate``), which the command runs.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TextIO

from perf.paths import REPO_ROOT
from perf.profiling.profiles import (
    MemoryStats,
    ProfileFormatError,
    SettleSeries,
    load_memray_stats,
    load_settle,
)
from perf.profiling.runner import (
    PTRACE_RE,
    ProfiledRuns,
    Step,
    check_speedscope,
    html_ok,
    memray_problem,
    read_status,
    run_step,
    runner_code,
    svg_ok,
    tree_env,
)
from perf.progress import Planned, Progress
from perf.rundir import Artifact

__all__ = [
    "DEFAULT_COORDINATORS",
    "DEFAULT_SCENARIOS",
    "MEMRAY_HINT",
    "PROFILES_DIR",
    "PTRACE_HINT",
    "PYSPY_MISSING_HINT",
    "Capture",
    "CaptureOptions",
    "MemoryData",
    "ProfileResult",
    "Profilers",
    "capture_one",
    "capture_profiles",
    "estimate_s",
    "find_pyspy",
    "load_memory",
    "memory_inputs",
    "planned_steps",
    "profilers",
    "profiles_folder",
    "resolve_tree",
    "slug",
]

DEFAULT_SCENARIOS: tuple[str, ...] = ("medium", "heavy")
DEFAULT_COORDINATORS: tuple[str, ...] = ("data", "core")
PROFILES_DIR = "profiles"

PTRACE_HINT = (
    "grant ptrace permission: run as root, or start the container with "
    "--cap-add SYS_PTRACE (docker run / services: cap_add), or set "
    "kernel.yama.ptrace_scope=0"
)
MEMRAY_HINT = (
    "install the profile extra (pip install -e '.[profile]'); memray runs on Linux and "
    "macOS with CPython 3.8 or newer"
)
PYSPY_MISSING_HINT = "install the profile extra (pip install -e '.[profile]'), which has py-spy"


@dataclass(frozen=True, slots=True, kw_only=True)
class CaptureOptions:
    """What to capture and how. py-spy's target runs the scenario again and again (each
    time on a fresh coordinator, reusing the services and events it built while the runs
    leave them as built) for at least ``cpu_seconds`` so that a flame graph has enough
    samples (a medium run takes milliseconds here); memray's target runs it once.
    Differential profiles sample at ``diff_rate_hz`` for ``diff_seconds`` per side."""

    memray: bool = True
    flamegraphs: bool = True
    pyspy: bool = True
    settle: bool = True
    native: bool = True
    pyspy_rate_hz: int = 100
    cpu_seconds: float = 5.0
    memray_sites: int = 200
    settle_batches: int = 8
    settle_batch_events: int = 500
    settle_warmup: int = 2
    diff_rate_hz: int = 250
    diff_seconds: float = 8.0
    timeout_s: float = 600.0
    python: str = sys.executable
    pyspy_path: str | None = None

    def __post_init__(self) -> None:
        if min(self.pyspy_rate_hz, self.diff_rate_hz, self.memray_sites) < 1:
            raise ValueError("sampling rates and memray_sites must be >= 1")
        if min(self.cpu_seconds, self.diff_seconds) < 0 or self.timeout_s <= 0:
            raise ValueError("durations must be >= 0 and the timeout > 0")
        if self.settle_batch_events < 1 or not 0 <= self.settle_warmup <= self.settle_batches - 3:
            raise ValueError(
                "settle cycles need batch_events >= 1 and at least 3 batches after the warm-up"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class Capture:
    """The profiles of one coordinator on one scenario. Paths are relative to the run
    folder and present only when captured and checked. ``profiled_runs``: for each profile
    captured ("speedscope", "svg", "memray"), what that profile's own target run measured,
    its setup share among it (the share of the profile spent building services and
    events rather than running them)."""

    coordinator: str
    scenario: str
    label: str
    folder: str
    tree: str
    memray_capture: str | None = None
    memray_stats: str | None = None
    memray_flamegraph: str | None = None
    speedscope: str | None = None
    svg: str | None = None
    settle: str | None = None
    artifacts: tuple[Artifact, ...] = ()
    notes: tuple[str, ...] = ()
    durations_s: Mapping[str, float] = field(default_factory=dict)
    profiled_runs: Mapping[str, ProfiledRuns] = field(default_factory=dict)

    @property
    def subject(self) -> str:
        return f"{self.coordinator}/{self.scenario}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ProfileResult:
    """What :func:`capture_profiles` produced: artifacts for the reports, and a note for
    everything that could not be captured."""

    run_dir: Path
    tree: Path
    captures: tuple[Capture, ...]
    artifacts: tuple[Artifact, ...]
    notes: tuple[str, ...]
    duration_s: float


class _CaptureRun:
    """Collects one capture's artifacts and notes while its steps run."""

    def __init__(
        self,
        run_dir: Path,
        folder: Path,
        tree: Path,
        coordinator: str,
        scenario: str,
        label: str,
        options: CaptureOptions,
        progress: Progress | None,
    ) -> None:
        self.run_dir = run_dir
        self.folder = folder
        self.tree = tree
        self.coordinator = coordinator
        self.scenario = scenario
        self.label = label
        self.options = options
        self.progress = progress
        self.env = tree_env(tree)
        self.artifacts: list[Artifact] = []
        self.notes: list[str] = []
        self.durations: dict[str, float] = {}
        self.paths: dict[str, str] = {}
        self.profiled_runs: dict[str, ProfiledRuns] = {}
        folder.mkdir(parents=True, exist_ok=True)
        self.log = open(folder / "capture.log", "a", encoding="utf-8")  # noqa: SIM115

    def close(self) -> None:
        self.log.close()

    def rel(self, path: Path) -> str:
        return path.relative_to(self.run_dir).as_posix()

    def note(self, text: str) -> None:
        self.notes.append(f"{self.label}: could not capture {text}")

    def step(self, name: str, command: Sequence[str], variant: str = "") -> Step:
        if self.progress is not None:
            self.progress.start(f"{self.label} {name}")
        result = run_step(command, self.tree, self.env, self.options.timeout_s, self.log)
        self.durations[f"{name} {variant}".strip()] = round(result.duration_s, 3)
        if self.progress is not None:
            self.progress.done(f"{self.label} {name}")
        return result

    def add(self, key: str, path: Path, what: str, kind: str) -> None:
        self.paths[key] = self.rel(path)
        self.artifacts.append(
            Artifact(label=f"{self.label}: {what}", path=self.rel(path), kind=kind)
        )

    def target(self, command: str, *extra: str) -> list[str]:
        return [
            "-c",
            runner_code(),
            command,
            "--coordinator",
            self.coordinator,
            "--scenario",
            self.scenario,
            *extra,
        ]

    # -- memray ---------------------------------------------------------------------

    def memray(self, problem: str | None) -> None:
        if problem is not None:
            self.note(f"memray profiles: {problem}; {MEMRAY_HINT}")
            return
        py = self.options.python
        capture = self.folder / "memray.bin"
        status = self.folder / ".memray-status.json"
        status.unlink(missing_ok=True)
        run = self.step(
            "memray run",
            [
                py,
                *self.target("run", "--memray-output", str(capture), "--status-file", str(status)),
            ],
        )
        figures = read_status(status)
        if not run.ok or not capture.is_file() or figures is None:
            capture.unlink(missing_ok=True)
            self.note(
                f"memray profiles: memray run failed (exit {run.returncode}): {run.tail()}; "
                f"{MEMRAY_HINT}"
            )
            return
        status.unlink(missing_ok=True)
        self.add("memray_capture", capture, "memray capture (memray.bin)", "memray")
        self.profiled_runs["memray"] = figures
        stats = self.folder / "memray-stats.json"
        done = self.step(
            "memray stats",
            [
                py, "-m", "memray", "stats", "--json", "-f",
                "-n", str(self.options.memray_sites), "-o", str(stats), str(capture),
            ],
        )  # fmt: skip
        try:
            if not done.ok:
                raise ProfileFormatError(f"exit {done.returncode}: {done.tail()}", str(stats))
            load_memray_stats(stats)
        except ProfileFormatError as exc:
            stats.unlink(missing_ok=True)
            self.note(f"memray stats: {exc}")
        else:
            self.add("memray_stats", stats, "memray stats (JSON)", "json")
        if not self.options.flamegraphs:
            return
        for key, flag, name, what in (
            ("memray_flamegraph", None, "memray-flamegraph.html", "memray flame graph (peak)"),
            ("memray_leaks", "--leaks", "memray-leaks.html", "memray leaks flame graph"),
            ("memray_temporal", "--temporal", "memray-temporal.html", "memray temporal view"),
        ):
            out = self.folder / name
            cmd = [py, "-m", "memray", "flamegraph", "-f", "-o", str(out)]
            cmd += [flag] if flag else []
            done = self.step(f"memray flamegraph{' ' + flag if flag else ''}", [*cmd, str(capture)])
            if done.ok and html_ok(out):
                self.add(key, out, what, "flamegraph")
            else:
                out.unlink(missing_ok=True)
                self.note(
                    f"{what}: memray flamegraph failed (exit {done.returncode}): {done.tail()}"
                )

    # -- py-spy ---------------------------------------------------------------------

    def _pyspy_failure(self, what: str, step: Step) -> None:
        if PTRACE_RE.search(step.output):
            self.note(
                f"{what}: py-spy could not read the target process ({step.tail(2)}); {PTRACE_HINT}"
            )
        else:
            self.note(f"{what}: py-spy record failed (exit {step.returncode}): {step.tail()}")

    def _record(
        self, pyspy: str, name: str, out: Path, fmt_args: Sequence[str], rate: int, seconds: float
    ) -> tuple[Step, ProfiledRuns | None]:
        """One py-spy record of the target; with ``--native`` first where asked, then
        without it if that failed for another reason than ptrace. Returns the step and
        what the target's status file says of its runs (None unless they finished
        cleanly)."""
        status = self.folder / f".{out.name}.status.json"
        native = [True, False] if self.options.native else [False]
        step: Step | None = None
        for use_native in native:
            status.unlink(missing_ok=True)
            out.unlink(missing_ok=True)
            cmd = [pyspy, "record", "-r", str(rate), "-o", str(out), *fmt_args]
            cmd += ["--native"] if use_native else []
            cmd += ["--", self.options.python]
            cmd += self.target("run", "--min-seconds", str(seconds), "--status-file", str(status))
            step = self.step(name, cmd, "--native" if use_native else "")
            if step.ok and out.is_file():
                break
            if PTRACE_RE.search(step.output):
                break
            if use_native and len(native) > 1:
                self.notes.append(
                    f"{self.label}: py-spy --native failed ({step.tail(2)}); "
                    "recorded Python frames only"
                )
        assert step is not None
        figures = read_status(status)
        status.unlink(missing_ok=True)
        return step, figures

    def pyspy(self, pyspy: str | None, *, rate: int, seconds: float, svg: bool = True) -> None:
        if pyspy is None:
            self.note(f"py-spy profiles: py-spy is not installed; {PYSPY_MISSING_HINT}")
            return
        out = self.folder / "pyspy.speedscope.json"
        step, figures = self._record(
            pyspy, "py-spy speedscope", out, ["-f", "speedscope", "--full-filenames"], rate, seconds
        )
        if not step.ok or not out.is_file():
            out.unlink(missing_ok=True)
            self._pyspy_failure("py-spy speedscope profile", step)
        elif figures is None:
            out.unlink(missing_ok=True)
            self.note(f"py-spy speedscope profile: the profiled run failed: {step.tail()}")
        else:
            problems = check_speedscope(out)
            if problems:
                out.unlink(missing_ok=True)
                self.note(
                    "py-spy speedscope profile: speedscope's schema rejects it: "
                    + "; ".join(problems[:3])
                )
            else:
                self.add("speedscope", out, "py-spy CPU profile (speedscope JSON)", "speedscope")
                self.profiled_runs["speedscope"] = figures
        if not svg:
            return
        out = self.folder / "pyspy.svg"
        step, figures = self._record(pyspy, "py-spy svg", out, [], rate, seconds)
        if step.ok and figures is not None and svg_ok(out):
            self.add("svg", out, "py-spy CPU flame graph (SVG)", "svg")
            self.profiled_runs["svg"] = figures
        else:
            out.unlink(missing_ok=True)
            if not step.ok:
                self._pyspy_failure("py-spy flame graph", step)
            else:
                self.note(f"py-spy flame graph: no valid SVG written: {step.tail()}")

    # -- settle cycles --------------------------------------------------------------

    def settle(self) -> None:
        out = self.folder / "settle.json"
        out.unlink(missing_ok=True)
        o = self.options
        step = self.step(
            "settle cycles",
            [
                o.python,
                *self.target(
                    "settle",
                    "--batches", str(o.settle_batches),
                    "--batch-events", str(o.settle_batch_events),
                    "--warmup", str(o.settle_warmup),
                    "--output", str(out),
                ),
            ],
        )  # fmt: skip
        try:
            if not step.ok:
                raise ProfileFormatError(f"exit {step.returncode}: {step.tail()}", str(out))
            load_settle(out)
        except ProfileFormatError as exc:
            out.unlink(missing_ok=True)
            self.note(f"settle cycles (leak gate): {exc}")
        else:
            self.add("settle", out, "settle cycles, tracemalloc (JSON)", "json")

    def result(self) -> Capture:
        return Capture(
            coordinator=self.coordinator,
            scenario=self.scenario,
            label=self.label,
            folder=self.rel(self.folder),
            tree=str(self.tree),
            memray_capture=self.paths.get("memray_capture"),
            memray_stats=self.paths.get("memray_stats"),
            memray_flamegraph=self.paths.get("memray_flamegraph"),
            speedscope=self.paths.get("speedscope"),
            svg=self.paths.get("svg"),
            settle=self.paths.get("settle"),
            artifacts=tuple(self.artifacts),
            notes=tuple(self.notes),
            durations_s=MappingProxyType(dict(self.durations)),
            profiled_runs=MappingProxyType(dict(self.profiled_runs)),
        )


def slug(text: str) -> str:
    """``text`` as a folder name (a ``module:factory`` spec has a colon)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "x"


def planned_steps(options: CaptureOptions, diff: bool = False) -> list[str]:
    """The steps one capture runs, by name (for progress lines and their estimates)."""
    steps = []
    if options.memray:
        steps += ["memray run", "memray stats"]
        if options.flamegraphs:
            steps += [
                "memray flamegraph",
                "memray flamegraph --leaks",
                "memray flamegraph --temporal",
            ]
    if options.pyspy:
        steps += ["py-spy speedscope", "py-spy svg"]
    if options.settle and not diff:
        steps += ["settle cycles"]
    return steps


def estimate_s(scenario: str, step: str, cpu_seconds: float) -> float:
    """A rough a-priori cost of a step in seconds (progress estimates only)."""
    if step.startswith("py-spy"):
        return cpu_seconds + 1.0
    scale = {"light": 0.5, "medium": 1.0, "heavy": 2.0, "stress": 15.0}.get(scenario, 1.0)
    base = {"memray run": 2.0, "memray stats": 1.0, "settle cycles": 10.0}.get(step, 1.0)
    return base * scale


# ---------------------------------------------------------------------------------------
# the profilers, and captures
# ---------------------------------------------------------------------------------------


def find_pyspy(options: CaptureOptions) -> str | None:
    """The py-spy executable: the configured one, the one beside the interpreter (a venv's),
    or the one on PATH."""
    if options.pyspy_path:
        return options.pyspy_path
    beside = Path(options.python).parent / "py-spy"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("py-spy")


@dataclass(frozen=True, slots=True)
class Profilers:
    """The profilers as found once per run: why memray cannot run (None when it can, or is
    not asked for) and the py-spy executable (None when missing or not asked for)."""

    memray_problem: str | None
    pyspy: str | None


def profilers(options: CaptureOptions) -> Profilers:
    return Profilers(
        memray_problem=memray_problem(options.python) if options.memray else None,
        pyspy=find_pyspy(options) if options.pyspy else None,
    )


def resolve_tree(tree: Path | None) -> Path:
    """The source tree to profile, absolute; None is this checkout."""
    return (tree or REPO_ROOT).resolve()


def profiles_folder(run_dir: Path, side: str = "") -> Path:
    """``run_dir/profiles/``, or ``run_dir/profiles/<side>/`` for one side of a comparison."""
    return run_dir / PROFILES_DIR / side if side else run_dir / PROFILES_DIR


def capture_one(
    run_dir: Path,
    folder: Path,
    tree: Path,
    coordinator: str,
    scenario: str,
    label: str,
    options: CaptureOptions,
    progress: Progress | None,
    found: Profilers,
    *,
    diff: bool = False,
) -> Capture:
    """Every profile ``options`` asks for of one coordinator on one scenario, into
    ``folder``. ``diff``: py-spy at the differential's rate and duration, no settle cycles."""
    run = _CaptureRun(run_dir, folder, tree, coordinator, scenario, label, options, progress)
    try:
        if options.memray:
            run.memray(found.memray_problem)
        if options.pyspy:
            if diff:
                rate, seconds = options.diff_rate_hz, options.diff_seconds
            else:
                rate, seconds = options.pyspy_rate_hz, options.cpu_seconds
            run.pyspy(found.pyspy, rate=rate, seconds=seconds)
        if options.settle and not diff:
            run.settle()
        return run.result()
    finally:
        run.close()


def capture_profiles(
    run_dir: Path,
    coordinators: Sequence[str],
    scenarios: Sequence[str] = DEFAULT_SCENARIOS,
    tree: Path | None = None,
    *,
    options: CaptureOptions | None = None,
    side: str = "",
    stream: TextIO | None = None,
) -> ProfileResult:
    """Profile each coordinator on each scenario with the source ``tree`` (default: this
    checkout) into ``run_dir/profiles/[<side>/]<coordinator>-<scenario>/``. Progress goes
    to ``stream`` (default stderr). Never raises for a profiler that cannot run: that is
    a note in the result."""
    options = options or CaptureOptions()
    tree_path = resolve_tree(tree)
    folder = profiles_folder(run_dir, side)
    t0 = time.monotonic()
    found = profilers(options)
    steps = planned_steps(options)
    pairs = [(c, s) for c in coordinators for s in scenarios]
    prefix = f"{side} " if side else ""
    planned = [
        Planned(f"{prefix}{c}/{s} {step}", estimate_s(s, step, options.cpu_seconds))
        for c, s in pairs
        for step in steps
    ]
    progress = Progress(planned, stream=stream)
    captures = tuple(
        capture_one(
            run_dir,
            folder / f"{slug(coordinator)}-{scenario}",
            tree_path,
            coordinator,
            scenario,
            f"{prefix}{coordinator}/{scenario}",
            options,
            progress,
            found,
        )
        for coordinator, scenario in pairs
    )
    notes = tuple(n for c in captures for n in c.notes)
    for note in notes:
        progress.note(f"note: {note}")
    return ProfileResult(
        run_dir=run_dir,
        tree=tree_path,
        captures=captures,
        artifacts=tuple(a for c in captures for a in c.artifacts),
        notes=notes,
        duration_s=time.monotonic() - t0,
    )


# ---------------------------------------------------------------------------------------
# reading captures back, for the memory and leak gate
# ---------------------------------------------------------------------------------------

MemoryData = tuple[MemoryStats | None, SettleSeries | None]


def load_memory(run_dir: Path, capture: Capture | None, roots: Sequence[str]) -> MemoryData:
    """A capture's parsed memray stats and settle cycles (None for what it lacks).
    :class:`perf.profiling.profiles.ProfileFormatError` for a file that is not what it
    claims."""
    if capture is None:
        return None, None
    stats = (
        load_memray_stats(run_dir / capture.memray_stats, roots) if capture.memray_stats else None
    )
    settle = load_settle(run_dir / capture.settle, roots) if capture.settle else None
    return stats, settle


def memory_inputs(
    head: ProfileResult, base: ProfileResult | None = None
) -> dict[str, tuple[MemoryData | None, MemoryData]]:
    """``subject -> (base, head)`` memory data of two :func:`capture_profiles` results of
    the same coordinators and scenarios, matched by coordinator and scenario: the memory and
    leak gate's input. A subject's base is None without a base run or without that subject
    in it."""
    roots = [str(head.tree)] + ([str(base.tree)] if base else [])
    by_subject = {c.subject: c for c in base.captures} if base else {}
    subjects: dict[str, tuple[MemoryData | None, MemoryData]] = {}
    for capture in head.captures:
        head_data = load_memory(head.run_dir, capture, roots)
        base_capture = by_subject.get(capture.subject)
        base_data = (
            load_memory(base.run_dir, base_capture, roots) if base and base_capture else None
        )
        subjects[capture.subject] = (base_data, head_data)
    return subjects
