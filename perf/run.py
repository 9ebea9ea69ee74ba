"""``python -m perf run``: measure the benchmark suites of one source tree into a run folder.

Each suite script runs as a subprocess of its own (pyperf spawns its workers from there);
results go to ``<output>/<UTC time>-<short commit>/``: one pyperf JSON per suite, the JSON
summary beside each, the scripts' logs and a ``manifest.json``. ``<output>/latest`` points
at the newest run folder (a symlink, or a text file holding its name where symlinks
fail), and older run folders are pruned to the newest ``--keep``.

Exit status: 0 when every script succeeded and wrote every benchmark it was asked for; 2
when one crashed or left benchmarks out (recorded in the manifest, never skipped).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from perf.errors import EXIT_INTERRUPTED, ExitCode
from perf.files import write_json
from perf.measure.meta import GitState, git_state, load_average, machine_info
from perf.measure.sidecar import PROGRESS_PREFIX, summary_path
from perf.options import csv_list, positive_int
from perf.paths import REPO_ROOT, SUITE_SCRIPTS
from perf.progress import Planned, Progress, format_duration
from perf.rundir import (
    DEFAULT_KEEP,
    latest_blocked,
    new_run_dir,
    prune_runs,
    run_dir_name,
    update_latest,
    utc_stamp,
)
from perf.workload.cases import (
    DEFAULT_COORDINATORS,
    SUITE_COORDINATORS,
    SUITES,
    Case,
    estimated_cost_s,
    select_cases,
    settings_for,
)

__all__ = [
    "MANIFEST_SCHEMA_VERSION",
    "ScriptResult",
    "build_parser",
    "main",
]

MANIFEST_SCHEMA_VERSION = 1
DEFAULT_OUTPUT = "benchmark_results"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m perf run",
        description="Measure the Crucible benchmark suites (pyperf) into a run folder.",
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--quick",
        dest="set",
        action="store_const",
        const="quick",
        help="the quick set (default): light and medium daemon_performance, two load "
        "patterns, one memory point and one scalability sweep",
    )
    which.add_argument(
        "--full", dest="set", action="store_const", const="full", help="every case, stress too"
    )
    which.add_argument(
        "--set", dest="set", choices=("quick", "full", "smoke"), help=argparse.SUPPRESS
    )
    parser.set_defaults(set="quick")
    parser.add_argument(
        "--suites",
        type=csv_list,
        default=list(SUITES),
        metavar="NAME[,NAME]",
        help=f"suites to run (default: {','.join(SUITES)})",
    )
    parser.add_argument(
        "--coordinators",
        type=csv_list,
        default=None,
        metavar="SPEC[,SPEC]",
        help="coordinators to measure: data, core, reference or module:factory "
        f"(default: {','.join(DEFAULT_COORDINATORS)}; with --full also core-daemon, on "
        "the cases that measure the daemon's transport)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=Path(DEFAULT_OUTPUT),
        metavar="DIR",
        help=f"results folder (default: {DEFAULT_OUTPUT})",
    )
    parser.add_argument(
        "--keep",
        type=positive_int,
        default=DEFAULT_KEEP,
        metavar="N",
        help=f"keep the newest N run folders, prune older ones (default: {DEFAULT_KEEP})",
    )
    speed = parser.add_mutually_exclusive_group()
    speed.add_argument(
        "--fast", action="store_true", help="pyperf --fast: fewer values (still >= 3 processes)"
    )
    speed.add_argument(
        "--rigorous", action="store_true", help="pyperf --rigorous: twice the processes"
    )
    parser.add_argument(
        "--affinity",
        metavar="CPU_LIST",
        help="pin benchmark workers to these CPUs (pyperf --affinity; default: the last "
        "CPU where affinity can be set)",
    )
    return parser


@dataclass(slots=True)
class ScriptResult:
    suite: str
    command: list[str]
    started_utc: str
    duration_s: float = 0.0
    exit_status: int | None = None
    status: str = "running"  # ok, crashed, incomplete, interrupted
    missing: list[str] = field(default_factory=list)
    problem: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "suite": self.suite,
            "command": self.command,
            "started_utc": self.started_utc,
            "duration_s": self.duration_s,
            "exit_status": self.exit_status,
            "status": self.status,
            "missing_benchmarks": self.missing,
            "problem": self.problem,
        }


def _expected_benchmarks(cases: Sequence[Case]) -> list[str]:
    return [c.benchmark("time") for c in cases]


def _check_output(path: Path, cases: Sequence[Case]) -> tuple[list[str], str]:
    """Benchmarks missing from a result file, and a problem reading it (or "")."""
    expected = _expected_benchmarks(cases)
    if not path.is_file():
        return expected, f"{path.name} was not written"
    try:
        import pyperf

        names = set(pyperf.BenchmarkSuite.load(str(path)).get_benchmark_names())
    except Exception as exc:  # a corrupt file is a failed script, whatever the error
        return expected, f"{path.name} does not load with pyperf: {exc}"
    return [n for n in expected if n not in names], ""


def _run_script(
    result: ScriptResult, log_path: Path, progress: Progress, on_start: list[subprocess.Popen[str]]
) -> None:
    t0 = time.monotonic()
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.Popen(
            result.command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        on_start.append(proc)
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith(PROGRESS_PREFIX):
                try:
                    event = json.loads(line[len(PROGRESS_PREFIX) :])
                except json.JSONDecodeError:
                    log.write(line)
                    continue
                if event.get("event") == "start":
                    progress.start(str(event.get("name")))
                elif event.get("event") == "done":
                    progress.done(str(event.get("name")))
                continue
            log.write(line)
            log.flush()
        result.exit_status = proc.wait()
    result.duration_s = time.monotonic() - t0


_ERROR_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit)\b")


def _errors(path: Path, lines: int = 10) -> str:
    """The exception lines of a script's log (the workers' first: they hold the cause),
    or its last lines when there is none."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "  (no log)"
    errors = [line for line in text if _ERROR_LINE.match(line)]
    shown = errors[:lines] if errors else text[-lines:]
    return "\n".join(f"  {line}" for line in shown)


class _Refused(Exception):
    """An input ``perf run`` cannot start with; ``main`` prints it and exits 2."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RunPlan:
    """What one ``perf run`` measures: each suite asked for, with its cases in order (none
    for a suite with nothing to measure here), their estimated costs, and how pyperf runs
    them."""

    set_name: str
    suites: tuple[str, ...]  # as asked for
    coordinators: tuple[str, ...]
    cases: dict[str, list[Case]]
    planned: tuple[Planned, ...]
    pyperf_options: tuple[str, ...]


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        plan = _plan(args)
        git = git_state(REPO_ROOT)
        started = dt.datetime.now(dt.UTC)
        run_dir = _new_run_dir(args.output, started, git)
    except _Refused as exc:
        print(f"perf run: {exc}", file=sys.stderr)
        return int(ExitCode.UNDECIDED)
    manifest = _manifest(plan, git, started)
    manifest_path = run_dir / "manifest.json"
    write_json(manifest_path, manifest)
    progress = Progress(plan.planned)
    progress.note(
        f"perf run: {plan.set_name} set, {len(plan.planned)} benchmarks, "
        f"{len(plan.cases)} suites -> {run_dir}"
    )
    results, status = _run_scripts(plan, run_dir, progress, manifest, manifest_path)
    _close_manifest(manifest, manifest_path, results, status, started)
    _point_latest(args.output, args.keep, run_dir, status, manifest["wall_s"], progress)
    return int(status)


# ----------------------------------------------------------------------------------------
# Before measuring: the plan and the run folder
# ----------------------------------------------------------------------------------------


def _plan(args: argparse.Namespace) -> RunPlan:
    """The cases of each suite asked for; _Refused for an unknown suite or coordinator,
    or when there is nothing to measure."""
    coordinators = args.coordinators
    if coordinators is None:
        coordinators = SUITE_COORDINATORS if args.set == "full" else DEFAULT_COORDINATORS
    unknown = [s for s in args.suites if s not in SUITES]
    if unknown:
        raise _Refused(f"unknown suite(s) {', '.join(unknown)}; accepted: {', '.join(SUITES)}")
    settings = settings_for(args.set)
    try:
        cases = {suite: select_cases(suite, args.set, coordinators) for suite in args.suites}
    except ValueError as exc:
        raise _Refused(str(exc)) from None
    planned = tuple(
        Planned(c.name, estimated_cost_s(c, settings)) for chosen in cases.values() for c in chosen
    )
    if not planned:
        raise _Refused("nothing to measure for these suites and coordinators")
    return RunPlan(
        set_name=args.set,
        suites=tuple(args.suites),
        coordinators=tuple(coordinators),
        cases=cases,
        planned=planned,
        pyperf_options=tuple(_pyperf_options(args)),
    )


def _pyperf_options(args: argparse.Namespace) -> list[str]:
    options: list[str] = []
    if args.fast:
        options.append("--fast")
    if args.rigorous:
        options.append("--rigorous")
    if args.affinity:
        options.append(f"--affinity={args.affinity}")
    return options


def _new_run_dir(output: Path, started: dt.datetime, git: GitState) -> Path:
    try:
        return new_run_dir(output, run_dir_name(started, git.short))
    except OSError as exc:
        raise _Refused(f"cannot create a run folder in {output}: {exc}") from None


def _manifest(plan: RunPlan, git: GitState, started: dt.datetime) -> dict[str, Any]:
    """The run's manifest as it starts: what is measured, where and on what; the scripts'
    results and the end are filled in as they come."""
    return {
        "schema_version": MANIFEST_SCHEMA_VERSION,
        "kind": "crucible-perf-run",
        "set": plan.set_name,
        "suites": list(plan.suites),
        "coordinators": list(plan.coordinators),
        "pyperf_options": list(plan.pyperf_options),
        "source_root": str(REPO_ROOT),
        "commit": git.commit,
        "dirty": git.dirty,
        "machine": machine_info().as_dict(),
        "started_utc": utc_stamp(started),
        "finished_utc": None,
        "load_avg_before": list(load_average()),
        "load_avg_after": None,
        "cases": [
            {
                "suite": c.definition.suite,
                "case": c.definition.name,
                "coordinator": c.label,
                "coordinator_spec": c.coordinator,
                "benchmark": c.name,
                "metrics": {m: c.benchmark(m) for m in c.definition.metrics},
            }
            for cases in plan.cases.values()
            for c in cases
        ],
        "files": {
            suite: {
                "pyperf": f"{suite}.json",
                "summary": summary_path(f"{suite}.json").name,
                "log": f"{suite}.log",
            }
            for suite in plan.cases
        },
        "scripts": [],
        "exit_status": None,
    }


# ----------------------------------------------------------------------------------------
# Measuring: one script per suite
# ----------------------------------------------------------------------------------------


def _run_scripts(
    plan: RunPlan,
    run_dir: Path,
    progress: Progress,
    manifest: dict[str, Any],
    manifest_path: Path,
) -> tuple[list[ScriptResult], int]:
    """Each suite's script in turn, the manifest rewritten after each; returns the
    scripts' results and the exit status (2 when one failed, 130 when interrupted)."""
    results: list[ScriptResult] = []
    procs: list[subprocess.Popen[str]] = []
    status: int = ExitCode.PASS
    try:
        for suite, cases in plan.cases.items():
            if not cases:
                continue
            out = run_dir / f"{suite}.json"
            command = _suite_command(plan, suite, out)
            result = ScriptResult(suite=suite, command=command, started_utc=utc_stamp())
            results.append(result)
            log_path = run_dir / f"{suite}.log"
            _run_script(result, log_path, progress, procs)
            _judge(result, out, cases)
            if result.status != "ok":
                status = ExitCode.UNDECIDED
                progress.note(_failure_note(result, log_path))
            manifest["scripts"] = [r.as_dict() for r in results]
            write_json(manifest_path, manifest)
    except KeyboardInterrupt:
        _interrupt(procs)
        if results and results[-1].status == "running":
            results[-1].status = "interrupted"
        status = EXIT_INTERRUPTED
    return results, status


def _suite_command(plan: RunPlan, suite: str, out: Path) -> list[str]:
    return [
        sys.executable,
        str(SUITE_SCRIPTS / f"bench_{suite}.py"),
        "--set",
        plan.set_name,
        "--coordinator",
        ",".join(plan.coordinators),
        "--progress",
        "-o",
        str(out),
        *plan.pyperf_options,
    ]


def _judge(result: ScriptResult, out: Path, cases: Sequence[Case]) -> None:
    """A finished script's status: crashed (non-zero exit), incomplete (benchmarks missing
    or an unreadable result file) or ok."""
    result.missing, result.problem = _check_output(out, cases)
    if result.exit_status != 0:
        result.status = "crashed"
        result.problem = f"exit status {result.exit_status}" + (
            f"; {result.problem}" if result.problem else ""
        )
    elif result.missing or result.problem:
        result.status = "incomplete"
    else:
        result.status = "ok"


def _failure_note(result: ScriptResult, log_path: Path) -> str:
    missing = ", ".join(result.missing[:5]) + (" ..." if len(result.missing) > 5 else "")
    return (
        f"perf run: {result.suite} {result.status}: {result.problem or 'incomplete'}; "
        f"missing: {missing or 'nothing'}\n"
        f"errors in {log_path}:\n{_errors(log_path)}"
    )


def _interrupt(procs: Sequence[subprocess.Popen[str]]) -> None:
    """Pass Ctrl-C on to a script still running (pyperf stops its workers), then wait."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# ----------------------------------------------------------------------------------------
# After measuring: the manifest closed, latest, pruning
# ----------------------------------------------------------------------------------------


def _close_manifest(
    manifest: dict[str, Any],
    manifest_path: Path,
    results: Sequence[ScriptResult],
    status: int,
    started: dt.datetime,
) -> None:
    finished = dt.datetime.now(dt.UTC)
    manifest["scripts"] = [r.as_dict() for r in results]
    manifest["finished_utc"] = utc_stamp(finished)
    manifest["wall_s"] = (finished - started).total_seconds()
    manifest["load_avg_after"] = list(load_average())
    manifest["exit_status"] = status
    write_json(manifest_path, manifest)


def _point_latest(
    output: Path, keep: int, run_dir: Path, status: int, wall_s: float, progress: Progress
) -> None:
    """``latest`` at this run, older runs pruned, and the closing line."""
    how = update_latest(output, run_dir)
    removed = prune_runs(output, keep, run_dir)
    verdict = "ok" if status == ExitCode.PASS else "FAILED"
    if how == "blocked":
        progress.note(f"perf run: warning: {latest_blocked(output)}")
    progress.note(
        f"perf run: {verdict} in {format_duration(wall_s)}; results in {run_dir}"
        + (f" ({output / 'latest'} is a {how})" if how != "blocked" else "")
        + (f"; pruned {len(removed)} older run folder(s)" if removed else "")
    )
