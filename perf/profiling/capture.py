"""``python -m perf profile``: memray and py-spy profiles of each coordinator, the memory and
leak gate, and differential profiles of base against head.

Every profile is taken in a process of its own, never inside a timed benchmark: the target
is ``perf/profiling/target.py`` (run by path, with the profiled source tree as working
directory and first on ``PYTHONPATH``, so that tree's ``crucible`` is the one profiled).
Per coordinator and scenario, into ``<run dir>/profiles/<coordinator>-<scenario>/``:

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

and ``profiles/profile.json`` (what was captured, what could not be and why, memory
figures), plus ``profiles/memory_gate.json`` when the memory gate ran.

A profiler that cannot run (memray not installed or unsupported, py-spy without ptrace
permission, a target that crashed) gives a note saying so and what to grant; the run goes
on, and no file that was not captured, or that fails its check, is ever listed.

Exit status of the command: 0 when the memory gate passed (or did not run) and at least
one profile was captured; 1 when the memory or leak gate failed; 2 when nothing at all
could be captured or the options were wrong.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.util
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, is_dataclass, replace
from enum import Enum
from pathlib import Path
from types import MappingProxyType
from typing import Any, TextIO

from perf.decide.leakgate import (
    DEFAULT_LEAK_ALLOWANCE_BYTES_PER_EVENT,
    DEFAULT_MEMORY_THRESHOLD_PCT,
    MemoryGate,
    memory_figures,
    memory_gate,
)
from perf.decide.verdict import Verdict
from perf.errors import ExitCode
from perf.files import write_json
from perf.options import csv_list, positive_int
from perf.paths import REPO_ROOT
from perf.profiling.diffprof import DEFAULT_TOP_ROWS, DiffTable, alloc_diff, cpu_diff
from perf.profiling.profiles import (
    CpuProfile,
    MemoryStats,
    ProfileFormatError,
    SettleSeries,
    clean_speedscope,
    load_json,
    load_memray_stats,
    load_settle,
    parse_speedscope,
    speedscope_problems,
)
from perf.progress import Planned, Progress, format_duration
from perf.rundir import Artifact, new_run_dir, run_dir_name, update_latest

__all__ = [
    "DEFAULT_SCENARIOS",
    "PROFILE_SCHEMA_VERSION",
    "Capture",
    "CaptureOptions",
    "DiffResult",
    "ProfileResult",
    "build_parser",
    "differential",
    "gate_memory",
    "main",
    "profile_run",
    "to_jsonable",
]

PROFILE_SCHEMA_VERSION = 1
DEFAULT_SCENARIOS: tuple[str, ...] = ("medium", "heavy")
DEFAULT_COORDINATORS: tuple[str, ...] = ("data", "core")
PROFILES_DIR = "profiles"
TARGET = REPO_ROOT / "perf" / "profiling" / "target.py"
ROOT = REPO_ROOT

# How a sandbox without ptrace permission is told so (py-spy's messages vary by version).
_PTRACE_RE = re.compile(
    r"permission denied|operation not permitted|ptrace|EPERM|os error 1\b|os error 13\b",
    re.IGNORECASE,
)
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
    time on a fresh coordinator) for at least ``cpu_seconds`` so that a flame graph has
    enough samples (a medium run takes milliseconds here); memray's target runs it once.
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
    folder and present only when captured and checked."""

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

    @property
    def subject(self) -> str:
        return f"{self.coordinator}/{self.scenario}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ProfileResult:
    """What ``profile_run`` produced: artifacts for the reports, and a note for
    everything that could not be captured."""

    run_dir: Path
    tree: Path
    captures: tuple[Capture, ...]
    artifacts: tuple[Artifact, ...]
    notes: tuple[str, ...]
    duration_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class DiffResult:
    """Differential profile of one scenario: the CPU and allocation tables (None when a
    side could not be captured), both sides' captures, artifacts and notes."""

    run_dir: Path
    scenario: str
    coordinator: str
    cpu: DiffTable | None
    alloc: DiffTable | None
    base: Capture
    head: Capture
    artifacts: tuple[Artifact, ...]
    notes: tuple[str, ...]
    duration_s: float


# ---------------------------------------------------------------------------------------
# running one step
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Step:
    ok: bool
    returncode: int | None
    output: str
    duration_s: float

    def tail(self, lines: int = 6) -> str:
        text = [line for line in self.output.strip().splitlines() if line.strip()]
        return " | ".join(text[-lines:]) or "(no output)"


def _runner_code() -> str:
    return f"import runpy; runpy.run_path({str(TARGET)!r}, run_name='__main__')"


def _tree_env(tree: Path) -> dict[str, str]:
    env = dict(os.environ)
    old = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(tree) + (os.pathsep + old if old else "")
    env.pop("PYTHONSTARTUP", None)
    return env


def _run(
    command: Sequence[str], cwd: Path, env: Mapping[str, str], timeout_s: float, log: TextIO
) -> _Step:
    """Run ``command`` with stdin closed (nothing interactive can wait for a terminal),
    its output to ``log`` and kept; killed with its process group after ``timeout_s``."""
    log.write(f"$ {' '.join(command)}\n")
    log.flush()
    t0 = time.monotonic()
    try:
        proc = subprocess.Popen(
            list(command),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,
        )
    except OSError as exc:
        log.write(f"cannot start: {exc}\n")
        return _Step(False, None, str(exc), time.monotonic() - t0)
    try:
        output, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        output += f"\ntimed out after {timeout_s:g} s and was killed"
        returncode: int | None = None
    else:
        returncode = proc.returncode
    duration = time.monotonic() - t0
    log.write(output if output.endswith("\n") or not output else output + "\n")
    log.write(f"# exit {returncode} after {duration:.2f} s\n\n")
    log.flush()
    return _Step(returncode == 0, returncode, output, duration)


# ---------------------------------------------------------------------------------------
# profilers: availability, and checks of what they wrote
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


def _memray_importable(python: str) -> str | None:
    """None when ``python -c 'import memray'`` works, else why not."""
    if python == sys.executable:
        return None if importlib.util.find_spec("memray") else "memray is not installed"
    try:
        proc = subprocess.run(
            [python, "-c", "import memray"],
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return str(exc)
    return None if proc.returncode == 0 else (proc.stderr.strip().splitlines() or ["?"])[-1]


def _html_ok(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            head = f.read(4096).lower()
    except OSError:
        return False
    return "<html" in head or "<!doctype html" in head


def _svg_ok(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            head = f.read(4096)
    except OSError:
        return False
    return "<svg" in head


def check_speedscope(path: Path) -> list[str]:
    """Rewrite py-spy's speedscope file without the nulls speedscope's schema rejects
    (:func:`perf.profiling.profiles.clean_speedscope`) and return the schema problems left ([] when
    the file is valid and holds samples)."""
    try:
        data = clean_speedscope(load_json(path))
    except ProfileFormatError as exc:
        return [str(exc)]
    problems = speedscope_problems(data)
    if problems:
        return problems
    if not any(p.get("samples") for p in data["profiles"] if isinstance(p, dict)):
        return ["the capture holds no samples (the target ended before py-spy sampled it)"]
    write_json(path, data)
    return []


# ---------------------------------------------------------------------------------------
# one capture
# ---------------------------------------------------------------------------------------


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "x"


def _status_ok(path: Path) -> bool:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False
    return isinstance(data, dict) and data.get("ok") is True


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
        self.env = _tree_env(tree)
        self.artifacts: list[Artifact] = []
        self.notes: list[str] = []
        self.durations: dict[str, float] = {}
        self.paths: dict[str, str] = {}
        folder.mkdir(parents=True, exist_ok=True)
        self.log = open(folder / "capture.log", "a", encoding="utf-8")  # noqa: SIM115

    def close(self) -> None:
        self.log.close()

    def rel(self, path: Path) -> str:
        return path.relative_to(self.run_dir).as_posix()

    def note(self, text: str) -> None:
        self.notes.append(f"{self.label}: could not capture {text}")

    def step(self, name: str, command: Sequence[str], variant: str = "") -> _Step:
        if self.progress is not None:
            self.progress.start(f"{self.label} {name}")
        result = _run(command, self.tree, self.env, self.options.timeout_s, self.log)
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
            _runner_code(),
            command,
            "--coordinator",
            self.coordinator,
            "--scenario",
            self.scenario,
            *extra,
        ]

    # -- memray ---------------------------------------------------------------------

    def memray(self, memray_problem: str | None) -> None:
        if memray_problem is not None:
            self.note(f"memray profiles: {memray_problem}; {MEMRAY_HINT}")
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
        if not run.ok or not capture.is_file() or not _status_ok(status):
            capture.unlink(missing_ok=True)
            self.note(
                f"memray profiles: memray run failed (exit {run.returncode}): {run.tail()}; "
                f"{MEMRAY_HINT}"
            )
            return
        status.unlink(missing_ok=True)
        self.add("memray_capture", capture, "memray capture (memray.bin)", "memray")
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
            if done.ok and _html_ok(out):
                self.add(key, out, what, "flamegraph")
            else:
                out.unlink(missing_ok=True)
                self.note(
                    f"{what}: memray flamegraph failed (exit {done.returncode}): {done.tail()}"
                )

    # -- py-spy ---------------------------------------------------------------------

    def _pyspy_failure(self, what: str, step: _Step) -> None:
        if _PTRACE_RE.search(step.output):
            self.note(
                f"{what}: py-spy could not read the target process ({step.tail(2)}); {PTRACE_HINT}"
            )
        else:
            self.note(f"{what}: py-spy record failed (exit {step.returncode}): {step.tail()}")

    def _record(
        self, pyspy: str, name: str, out: Path, fmt_args: Sequence[str], rate: int, seconds: float
    ) -> tuple[_Step, bool]:
        """One py-spy record of the target; with ``--native`` first where asked, then
        without it if that failed for another reason than ptrace. Returns the step and
        whether the target itself finished cleanly."""
        status = self.folder / f".{out.name}.status.json"
        native = [True, False] if self.options.native else [False]
        step: _Step | None = None
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
            if _PTRACE_RE.search(step.output):
                break
            if use_native and len(native) > 1:
                self.notes.append(
                    f"{self.label}: py-spy --native failed ({step.tail(2)}); "
                    "recorded Python frames only"
                )
        assert step is not None
        target_ok = _status_ok(status)
        status.unlink(missing_ok=True)
        return step, target_ok

    def pyspy(self, pyspy: str | None, *, rate: int, seconds: float, svg: bool = True) -> None:
        if pyspy is None:
            self.note(f"py-spy profiles: py-spy is not installed; {PYSPY_MISSING_HINT}")
            return
        out = self.folder / "pyspy.speedscope.json"
        step, target_ok = self._record(
            pyspy, "py-spy speedscope", out, ["-f", "speedscope", "--full-filenames"], rate, seconds
        )
        if not step.ok or not out.is_file():
            out.unlink(missing_ok=True)
            self._pyspy_failure("py-spy speedscope profile", step)
        elif not target_ok:
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
        if not svg:
            return
        out = self.folder / "pyspy.svg"
        step, target_ok = self._record(pyspy, "py-spy svg", out, [], rate, seconds)
        if step.ok and target_ok and _svg_ok(out):
            self.add("svg", out, "py-spy CPU flame graph (SVG)", "svg")
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
        )


def _steps_per_capture(options: CaptureOptions, diff: bool = False) -> list[str]:
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


# ---------------------------------------------------------------------------------------
# the API the gate calls
# ---------------------------------------------------------------------------------------


def _resolve_tree(tree: Path | None) -> Path:
    return (tree or ROOT).resolve()


def _capture(
    run_dir: Path,
    folder: Path,
    tree: Path,
    coordinator: str,
    scenario: str,
    label: str,
    options: CaptureOptions,
    progress: Progress | None,
    memray_problem: str | None,
    pyspy: str | None,
    *,
    diff: bool = False,
) -> Capture:
    run = _CaptureRun(run_dir, folder, tree, coordinator, scenario, label, options, progress)
    try:
        if options.memray:
            run.memray(memray_problem)
        if options.pyspy:
            if diff:
                rate, seconds = options.diff_rate_hz, options.diff_seconds
            else:
                rate, seconds = options.pyspy_rate_hz, options.cpu_seconds
            run.pyspy(pyspy, rate=rate, seconds=seconds)
        if options.settle and not diff:
            run.settle()
        return run.result()
    finally:
        run.close()


def _profilers(options: CaptureOptions) -> tuple[str | None, str | None]:
    memray_problem = _memray_importable(options.python) if options.memray else None
    pyspy = find_pyspy(options) if options.pyspy else None
    return memray_problem, pyspy


def profile_run(
    run_dir: Path,
    coordinators: Sequence[str],
    scenarios: Sequence[str] = DEFAULT_SCENARIOS,
    tree: Path | None = None,
    *,
    options: CaptureOptions | None = None,
    side: str = "",
    stream: TextIO | None = None,
    write_manifest: bool = True,
) -> ProfileResult:
    """Profile each coordinator on each scenario with the source ``tree`` (default: this
    checkout) into ``run_dir/profiles/[<side>/]<coordinator>-<scenario>/``. Progress goes
    to ``stream`` (default stderr). Never raises for a profiler that cannot run: that is
    a note in the result."""
    options = options or CaptureOptions()
    tree_path = _resolve_tree(tree)
    base = run_dir / PROFILES_DIR / side if side else run_dir / PROFILES_DIR
    t0 = time.monotonic()
    memray_problem, pyspy = _profilers(options)
    steps = _steps_per_capture(options)
    pairs = [(c, s) for c in coordinators for s in scenarios]
    prefix = f"{side} " if side else ""
    planned = [
        Planned(f"{prefix}{c}/{s} {step}", _estimate(s, step, options.cpu_seconds))
        for c, s in pairs
        for step in steps
    ]
    progress = Progress(planned, stream=stream)
    captures = []
    for coordinator, scenario in pairs:
        captures.append(
            _capture(
                run_dir,
                base / f"{_slug(coordinator)}-{scenario}",
                tree_path,
                coordinator,
                scenario,
                f"{prefix}{coordinator}/{scenario}",
                options,
                progress,
                memray_problem,
                pyspy,
            )
        )
    notes = tuple(n for c in captures for n in c.notes)
    artifacts = tuple(a for c in captures for a in c.artifacts)
    result = ProfileResult(
        run_dir=run_dir,
        tree=tree_path,
        captures=tuple(captures),
        artifacts=artifacts,
        notes=notes,
        duration_s=time.monotonic() - t0,
    )
    if write_manifest:
        manifest = base / "profile.json"
        write_json(manifest, _manifest(result, options))
        result = replace(
            result,
            artifacts=(
                *artifacts,
                Artifact(label="profiles: manifest", path=_rel(manifest, run_dir), kind="json"),
            ),
        )
    for note in notes:
        progress.note(f"note: {note}")
    return result


def _estimate(scenario: str, step: str, cpu_seconds: float) -> float:
    """A rough a-priori cost of a step in seconds (progress estimates only)."""
    if step.startswith("py-spy"):
        return cpu_seconds + 1.0
    scale = {"light": 0.5, "medium": 1.0, "heavy": 2.0, "stress": 15.0}.get(scenario, 1.0)
    base = {"memray run": 2.0, "memray stats": 1.0, "settle cycles": 10.0}.get(step, 1.0)
    return base * scale


def differential(
    run_dir: Path,
    scenario: str,
    coordinator: str,
    base_tree: Path,
    head_tree: Path,
    *,
    options: CaptureOptions | None = None,
    top: int = DEFAULT_TOP_ROWS,
    stream: TextIO | None = None,
    head_coordinator: str | None = None,
) -> DiffResult:
    """Profile ``coordinator`` on ``scenario`` with the base and the head tree (py-spy at
    ``diff_rate_hz`` for ``diff_seconds`` each, memray over one run) into
    ``run_dir/profiles/diff/<coordinator>-<scenario>/{base,head}/`` and compute the CPU and
    allocation tables. ``head_coordinator`` (default: the same) profiles another
    coordinator spec on the head side. A side that could not be captured leaves its table
    None and says why in ``notes``."""
    options = replace(options or CaptureOptions(), settle=False)
    t0 = time.monotonic()
    folder = run_dir / PROFILES_DIR / "diff" / f"{_slug(coordinator)}-{scenario}"
    memray_problem, pyspy = _profilers(options)
    steps = _steps_per_capture(options, diff=True)
    sides = (
        ("base", _resolve_tree(base_tree), coordinator),
        ("head", _resolve_tree(head_tree), head_coordinator or coordinator),
    )
    progress = Progress(
        [
            Planned(f"diff {side} {c}/{scenario} {s}", _estimate(scenario, s, options.diff_seconds))
            for side, _, c in sides
            for s in steps
        ],
        stream=stream,
    )
    captured = {
        side: _capture(
            run_dir,
            folder / side,
            tree,
            coord,
            scenario,
            f"diff {side} {coord}/{scenario}",
            options,
            progress,
            memray_problem,
            pyspy,
            diff=True,
        )
        for side, tree, coord in sides
    }
    base, head = captured["base"], captured["head"]
    roots = [str(tree) for _, tree, _ in sides] + [str(ROOT)]  # ROOT: profile_target.py
    notes = [*base.notes, *head.notes]
    cpu: DiffTable | None = None
    alloc: DiffTable | None = None
    if base.speedscope and head.speedscope:
        cpu = cpu_diff(
            _cpu(run_dir, base.speedscope, roots),
            _cpu(run_dir, head.speedscope, roots),
            base_flamegraph=base.svg or base.speedscope,
            head_flamegraph=head.svg or head.speedscope,
            top=top,
        )
    else:
        notes.append(f"diff {coordinator}/{scenario}: no CPU table (a side has no py-spy profile)")
    if base.memray_stats and head.memray_stats:
        alloc = alloc_diff(
            load_memray_stats(run_dir / base.memray_stats, roots),
            load_memray_stats(run_dir / head.memray_stats, roots),
            base_flamegraph=base.memray_flamegraph or base.memray_stats,
            head_flamegraph=head.memray_flamegraph or head.memray_stats,
            top=top,
        )
    else:
        notes.append(
            f"diff {coordinator}/{scenario}: no allocation table (a side has no memray stats)"
        )
    result = DiffResult(
        run_dir=run_dir,
        scenario=scenario,
        coordinator=coordinator,
        cpu=cpu,
        alloc=alloc,
        base=base,
        head=head,
        artifacts=(*base.artifacts, *head.artifacts),
        notes=tuple(notes),
        duration_s=time.monotonic() - t0,
    )
    out = folder / "diff.json"
    write_json(out, to_jsonable(result))
    (folder / "diff.md").write_text(format_diff(result), encoding="utf-8")
    return replace(
        result,
        artifacts=(
            *result.artifacts,
            Artifact(
                label=f"diff {coordinator}/{scenario}: tables (JSON)",
                path=_rel(out, run_dir),
                kind="json",
            ),
            Artifact(
                label=f"diff {coordinator}/{scenario}: tables (markdown)",
                path=_rel(folder / "diff.md", run_dir),
                kind="report",
            ),
        ),
    )


# The frame around each scenario run in the profile target (which calls asyncio.run for
# nothing else): a differential's CPU table counts only the samples under it, the
# coordinator's tasks included, and leaves out interpreter start-up, imports and workload
# generation, which are the same on both sides and only add noise.
RUN_FRAME = "BaseEventLoop.run_until_complete"


def _cpu(run_dir: Path, rel: str, roots: Sequence[str]) -> CpuProfile:
    return parse_speedscope(load_json(run_dir / rel), roots, rel, within=RUN_FRAME)


def _loaded(
    run_dir: Path, capture: Capture | None, roots: Sequence[str]
) -> tuple[MemoryStats | None, SettleSeries | None]:
    if capture is None:
        return None, None
    stats = (
        load_memray_stats(run_dir / capture.memray_stats, roots) if capture.memray_stats else None
    )
    settle = load_settle(run_dir / capture.settle, roots) if capture.settle else None
    return stats, settle


def gate_memory(
    head: ProfileResult,
    base: ProfileResult | None = None,
    *,
    threshold_pct: float = DEFAULT_MEMORY_THRESHOLD_PCT,
    allowance_bytes_per_event: float = DEFAULT_LEAK_ALLOWANCE_BYTES_PER_EVENT,
) -> MemoryGate:
    """The memory and leak gate over two ``profile_run`` results of the same
    coordinators and scenarios (``base`` None: the leak checks' held-after-stop figures
    only). Subjects are matched by coordinator and scenario."""
    roots = [str(head.tree)] + ([str(base.tree)] if base else [])
    by_subject = {c.subject: c for c in base.captures} if base else {}
    subjects: dict[
        str,
        tuple[
            tuple[MemoryStats | None, SettleSeries | None] | None,
            tuple[MemoryStats | None, SettleSeries | None],
        ],
    ] = {}
    for capture in head.captures:
        head_data = _loaded(head.run_dir, capture, roots)
        base_capture = by_subject.get(capture.subject)
        base_data = _loaded(base.run_dir, base_capture, roots) if base and base_capture else None
        subjects[capture.subject] = (base_data, head_data)
    return memory_gate(
        subjects, threshold_pct=threshold_pct, allowance_bytes_per_event=allowance_bytes_per_event
    )


# ---------------------------------------------------------------------------------------
# JSON and text output
# ---------------------------------------------------------------------------------------


def to_jsonable(value: Any) -> Any:
    """Records (dataclasses), mappings, sequences, enums and paths as plain JSON data;
    non-finite floats as None."""
    if is_dataclass(value) and not isinstance(value, type):
        out = {f.name: to_jsonable(getattr(value, f.name)) for f in fields(value)}
        if isinstance(value, MemoryGate):
            out["verdict"] = value.verdict.value
        return out
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _rel(path: Path, run_dir: Path) -> str:
    return path.relative_to(run_dir).as_posix()


def _manifest(result: ProfileResult, options: CaptureOptions) -> dict[str, Any]:
    captures = []
    roots = [str(result.tree)]
    for capture in result.captures:
        try:
            figures = to_jsonable(memory_figures(*_loaded(result.run_dir, capture, roots)))
        except (ProfileFormatError, ValueError) as exc:
            figures = {"error": str(exc)}
        captures.append({**to_jsonable(capture), "memory": figures})
    return {
        "schema_version": PROFILE_SCHEMA_VERSION,
        "kind": "crucible-perf-profile",
        "tree": str(result.tree),
        "duration_s": round(result.duration_s, 3),
        "options": to_jsonable(options),
        "captures": captures,
        "notes": list(result.notes),
    }


def _pct(share: float) -> str:
    return f"{share * 100:.1f} %"


def format_diff(result: DiffResult) -> str:
    """The differential tables as markdown (for the CLI and ``diff.md``)."""
    lines = [f"## Differential profile: {result.coordinator} / {result.scenario}", ""]
    for table, title in ((result.cpu, "CPU (self time)"), (result.alloc, "Allocated bytes")):
        if table is None:
            lines += [f"### {title}", "", "not captured (see notes)", ""]
            continue
        lines += [
            f"### {title}: {table.unit}",
            "",
            f"base total {table.base_total:,.0f}, head total {table.head_total:,.0f}",
            "",
            "| function | base share | head share | change | flame graphs |",
            "|---|---:|---:|---:|---|",
        ]
        for row in table.rows:
            noise = f" (±{row.noise_pp:.1f})" if row.noise_pp is not None else ""
            lines.append(
                f"| `{row.function}` | {_pct(row.base_share)} | {_pct(row.head_share)} | "
                f"{row.change_pp:+.1f} pp{noise} | [base]({row.base_link}) "
                f"[head]({row.head_link}) |"
            )
        lines.append("")
    if result.notes:
        lines += ["Notes:", ""] + [f"- {n}" for n in result.notes] + [""]
    return "\n".join(lines)


def format_gate(gate: MemoryGate) -> str:
    """The memory gate's checks as plain text lines."""
    lines = [f"memory gate: {gate.verdict.value}"]
    for check in gate.checks:
        lines.append(f"  {check.verdict.value:<4}  {check.subject}  {check.reason}")
        for site in check.sites:
            lines.append(f"          {site.change_bytes:+,} B  {site.site}")
    for leak in gate.leaks:
        lines.append(f"  {leak.verdict.value:<4}  {leak.subject}  {leak.reason}")
        for stack in leak.stacks:
            lines.append(f"          {stack.size_diff_bytes:+,} B  {stack.site.label}")
            lines.extend(f"            at {frame.label}" for frame in stack.stack[1:6])
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------


def _non_negative(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not math.isfinite(number) or number < 0:
        raise argparse.ArgumentTypeError(f"{value} must be a number >= 0")
    return number


def _tree(value: str) -> Path:
    path = Path(value)
    if not (path / "crucible" / "__init__.py").is_file():
        raise argparse.ArgumentTypeError(f"{value} is not a source tree with crucible/ in it")
    return path.resolve()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m perf profile",
        description="Capture memray and py-spy profiles of each coordinator (in processes "
        "of their own, never inside a timed benchmark), run the memory and leak gate, and "
        "optionally differential profiles against a base tree.",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--run-dir",
        type=Path,
        metavar="DIR",
        help="write into this run folder (created if missing)",
    )
    where.add_argument(
        "--output",
        type=Path,
        default=Path("benchmark_results"),
        metavar="DIR",
        help="create <DIR>/<UTC time>-<commit>-profile/ and point <DIR>/latest at it "
        "(default: benchmark_results)",
    )
    parser.add_argument(
        "--coordinators",
        type=csv_list,
        default=list(DEFAULT_COORDINATORS),
        metavar="SPEC[,SPEC]",
        help="data, core, reference or module:factory (default: data,core)",
    )
    parser.add_argument(
        "--scenarios",
        type=csv_list,
        default=list(DEFAULT_SCENARIOS),
        metavar="NAME[,NAME]",
        help="light, medium, heavy, stress (default: medium,heavy)",
    )
    parser.add_argument(
        "--tree", type=_tree, metavar="PATH", help="source tree to profile (default: this one)"
    )
    parser.add_argument(
        "--base-tree",
        type=_tree,
        metavar="PATH",
        help="also profile this base tree's memory and compare (memory and leak gate)",
    )
    parser.add_argument(
        "--differential",
        action="store_true",
        help="with --base-tree: differential CPU and allocation profiles per coordinator "
        "and scenario",
    )
    parser.add_argument(
        "--head-coordinator",
        metavar="SPEC",
        help="profile this coordinator spec on the head side instead (for trials)",
    )
    parser.add_argument(
        "--rate", type=positive_int, default=100, metavar="HZ", help="py-spy rate (default 100)"
    )
    parser.add_argument(
        "--cpu-seconds",
        type=_non_negative,
        default=CaptureOptions().cpu_seconds,
        metavar="S",
        help="run the scenario again and again for at least S seconds under py-spy "
        "(default %(default)g)",
    )
    parser.add_argument("--no-native", action="store_true", help="py-spy without --native")
    defaults = CaptureOptions()
    parser.add_argument(
        "--settle-batches",
        type=positive_int,
        default=defaults.settle_batches,
        metavar="N",
        help="settle cycles of the leak gate (default %(default)s)",
    )
    parser.add_argument(
        "--settle-events",
        type=positive_int,
        default=defaults.settle_batch_events,
        metavar="N",
        help="events per settle cycle (default %(default)s)",
    )
    parser.add_argument(
        "--settle-warmup",
        type=int,
        default=defaults.settle_warmup,
        metavar="N",
        help="first cycles left out of the growth slope (default %(default)s)",
    )
    parser.add_argument(
        "--threshold-pct",
        type=_non_negative,
        default=DEFAULT_MEMORY_THRESHOLD_PCT,
        metavar="PCT",
        help=f"memory regression threshold (default {DEFAULT_MEMORY_THRESHOLD_PCT:g} %%)",
    )
    parser.add_argument(
        "--leak-allowance",
        type=_non_negative,
        default=DEFAULT_LEAK_ALLOWANCE_BYTES_PER_EVENT,
        metavar="BYTES",
        help="leak allowance in bytes per event "
        f"(default {DEFAULT_LEAK_ALLOWANCE_BYTES_PER_EVENT:g})",
    )
    return parser


def _new_run_dir(output: Path) -> Path:
    from perf.measure.meta import git_state

    return new_run_dir(
        output, run_dir_name(dt.datetime.now(dt.UTC), git_state(ROOT).short) + "-profile"
    )


def _print_notes(notes: Iterable[str]) -> None:
    for note in notes:
        print(f"perf profile: {note}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from crucible._workload import SCENARIOS

    unknown = [s for s in args.scenarios if s not in SCENARIOS]
    if unknown:
        print(
            f"perf profile: unknown scenario(s) {', '.join(unknown)}; accepted: "
            f"{', '.join(SCENARIOS)}",
            file=sys.stderr,
        )
        return int(ExitCode.UNDECIDED)
    if args.head_coordinator and len(args.coordinators) != 1:
        print("perf profile: --head-coordinator needs exactly one --coordinators", file=sys.stderr)
        return int(ExitCode.UNDECIDED)
    if args.differential and args.base_tree is None:
        print("perf profile: --differential needs --base-tree", file=sys.stderr)
        return int(ExitCode.UNDECIDED)
    t0 = time.monotonic()
    try:
        if args.run_dir is not None:
            run_dir = args.run_dir
            run_dir.mkdir(parents=True, exist_ok=True)
            new = False
        else:
            run_dir = _new_run_dir(args.output)
            new = True
    except OSError as exc:
        print(f"perf profile: cannot create the run folder: {exc}", file=sys.stderr)
        return int(ExitCode.UNDECIDED)
    if not 0 <= args.settle_warmup <= args.settle_batches - 3:
        print(
            "perf profile: --settle-warmup must leave at least 3 of --settle-batches for the "
            "growth slope",
            file=sys.stderr,
        )
        return int(ExitCode.UNDECIDED)
    options = CaptureOptions(
        native=not args.no_native,
        pyspy_rate_hz=args.rate,
        cpu_seconds=args.cpu_seconds,
        settle_batches=args.settle_batches,
        settle_batch_events=args.settle_events,
        settle_warmup=args.settle_warmup,
    )
    print(f"perf profile: writing into {run_dir}", file=sys.stderr)
    head_coordinators = [args.head_coordinator] if args.head_coordinator else args.coordinators
    head = profile_run(run_dir, head_coordinators, args.scenarios, args.tree, options=options)
    base: ProfileResult | None = None
    if args.base_tree is not None:
        base = profile_run(
            run_dir,
            args.coordinators,
            args.scenarios,
            args.base_tree,
            options=replace(options, pyspy=False, flamegraphs=False),
            side="base",
        )
        if args.head_coordinator:  # compare the trial coordinator with the base's
            head = replace(
                head,
                captures=tuple(replace(c, coordinator=args.coordinators[0]) for c in head.captures),
            )
    gate = gate_memory(
        head,
        base,
        threshold_pct=args.threshold_pct,
        allowance_bytes_per_event=args.leak_allowance,
    )
    write_json(run_dir / PROFILES_DIR / "memory_gate.json", to_jsonable(gate))
    diffs: list[DiffResult] = []
    if args.differential and args.base_tree is not None:
        for coordinator in args.coordinators:
            for scenario in args.scenarios:
                diffs.append(
                    differential(
                        run_dir,
                        scenario,
                        coordinator,
                        args.base_tree,
                        args.tree or ROOT,
                        options=options,
                        head_coordinator=args.head_coordinator,
                    )
                )
    if new:
        update_latest(args.output, run_dir)
    print(format_gate(gate), file=sys.stderr)
    for diff in diffs:
        print(format_diff(diff), file=sys.stderr)
    captured = len(head.artifacts) - 1  # the manifest is always written
    print(
        f"perf profile: {captured} files captured into {run_dir / PROFILES_DIR} in "
        f"{format_duration(time.monotonic() - t0)} ({len(head.notes)} could not be)",
        file=sys.stderr,
    )
    if captured <= 0:
        return int(ExitCode.UNDECIDED)
    return int(ExitCode.REGRESSION if gate.verdict is Verdict.FAIL else ExitCode.PASS)
