"""One step of a capture: a profiler's command run in a process of its own, and checks of
what it wrote.

Every step runs with stdin closed and a time limit, its output kept for the capture's log
and for the note that says why a profile is missing. A file a profiler wrote counts only
once it passes its check here (an HTML page, an SVG, a speedscope file speedscope's schema
accepts, a target's status file saying ``ok``); :mod:`perf.profiling.capture` removes the
rest, so nothing half-written is ever listed. A target's status file also says how much of
what the profiler recorded was spent building the runs' inputs (:func:`read_status`).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from perf.files import write_json
from perf.paths import REPO_ROOT
from perf.profiling.profiles import (
    ProfileFormatError,
    clean_speedscope,
    load_json,
    speedscope_problems,
)

__all__ = [
    "PTRACE_RE",
    "TARGET",
    "ProfiledRuns",
    "Step",
    "check_speedscope",
    "html_ok",
    "memray_problem",
    "read_status",
    "run_step",
    "runner_code",
    "svg_ok",
    "tree_env",
]

TARGET = REPO_ROOT / "perf" / "profiling" / "target.py"

# How a sandbox without ptrace permission is told so (py-spy's messages vary by version).
PTRACE_RE = re.compile(
    r"permission denied|operation not permitted|ptrace|EPERM|os error 1\b|os error 13\b",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Step:
    """How one command ended: ``returncode`` None when it could not start or was killed."""

    ok: bool
    returncode: int | None
    output: str
    duration_s: float

    def tail(self, lines: int = 6) -> str:
        text = [line for line in self.output.strip().splitlines() if line.strip()]
        return " | ".join(text[-lines:]) or "(no output)"


def runner_code() -> str:
    """``python -c`` code that runs the profile target by path (see its docstring why)."""
    return f"import runpy; runpy.run_path({str(TARGET)!r}, run_name='__main__')"


def tree_env(tree: Path) -> dict[str, str]:
    """The environment with ``tree`` first on ``PYTHONPATH``: its ``crucible`` is profiled."""
    env = dict(os.environ)
    old = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(tree) + (os.pathsep + old if old else "")
    env.pop("PYTHONSTARTUP", None)
    return env


def run_step(
    command: Sequence[str], cwd: Path, env: Mapping[str, str], timeout_s: float, log: TextIO
) -> Step:
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
        return Step(False, None, str(exc), time.monotonic() - t0)
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
    return Step(returncode == 0, returncode, output, duration)


def memray_problem(python: str) -> str | None:
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


def html_ok(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            head = f.read(4096).lower()
    except OSError:
        return False
    return "<html" in head or "<!doctype html" in head


def svg_ok(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            head = f.read(4096)
    except OSError:
        return False
    return "<svg" in head


@dataclass(frozen=True, slots=True, kw_only=True)
class ProfiledRuns:
    """What the profile target's ``--status-file`` says of its runs: how many, how many
    times their services and events were built, the seconds spent building them inside
    what the profiler records (``setup_s``; py-spy records the whole process) and outside
    it (``prepared_s``; memray's, before tracking), the seconds of the runs themselves
    (``workload_s``), and ``setup_share`` = setup_s / (setup_s + workload_s): the share of
    the profile that is setup rather than the measured workload."""

    runs: int
    inputs_built: int
    setup_s: float
    prepared_s: float
    workload_s: float
    setup_share: float


def _count(data: Mapping[str, Any], key: str) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{key}: {value!r} is not a count")
    return value


def _amount(data: Mapping[str, Any], key: str, most: float = math.inf) -> float:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{key}: {value!r} is not a number")
    if not (math.isfinite(value) and 0 <= value <= most):
        raise ValueError(f"{key}: {value!r} is outside 0..{most}")
    return float(value)


def read_status(path: Path) -> ProfiledRuns | None:
    """The figures of the profile target's ``--status-file``; None unless it says its runs
    balanced (``ok``) and holds every figure, well-formed."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(data, dict) or data.get("ok") is not True:
        return None
    try:
        return ProfiledRuns(
            runs=_count(data, "runs"),
            inputs_built=_count(data, "inputs_built"),
            setup_s=_amount(data, "setup_s"),
            prepared_s=_amount(data, "prepared_s"),
            workload_s=_amount(data, "workload_s"),
            setup_share=_amount(data, "setup_share", most=1.0),
        )
    except ValueError:
        return None


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
