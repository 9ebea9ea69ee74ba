"""``python -m perf profile``: memray and py-spy profiles of each coordinator, the memory and
leak gate, and differential profiles of base against head.

The command is a short chain of steps: capture head's profiles (and, with ``--base-tree``,
base's memory profiles) into ``<run dir>/profiles/`` (:mod:`perf.profiling.capture` lists
the files of each capture), write ``profiles/profile.json`` (what was captured, what could
not be and why, memory figures), run the memory and leak gate (:mod:`perf.decide.leakgate`)
into ``profiles/memory_gate.json``, and with ``--differential`` profile base against head
(:mod:`perf.profiling.differential`). Deciding is a stage above ``perf/profiling/``, so the
steps that decide live here, the gate run's ``--profile`` step (:func:`memory_and_leaks`)
among them.

Exit status of the command: 0 when the memory gate passed (or did not run) and at least
one profile was captured; 1 when the memory or leak gate failed; 2 when nothing at all
could be captured or the options were wrong.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

from perf.decide.leakgate import (
    DEFAULT_LEAK_ALLOWANCE_BYTES_PER_EVENT,
    DEFAULT_MEMORY_THRESHOLD_PCT,
    LeakCheck,
    MemoryCheck,
    MemoryGate,
    memory_figures,
    memory_gate,
)
from perf.decide.verdict import Verdict
from perf.errors import ExitCode
from perf.files import write_json
from perf.options import csv_list, positive_int
from perf.paths import REPO_ROOT
from perf.profiling.capture import (
    DEFAULT_COORDINATORS,
    DEFAULT_SCENARIOS,
    PROFILES_DIR,
    Capture,
    CaptureOptions,
    ProfileResult,
    capture_profiles,
    load_memory,
    memory_inputs,
)
from perf.profiling.differential import DiffResult, differential, format_diff
from perf.profiling.gate_profiles import SCENARIOS as GATE_SCENARIOS
from perf.profiling.gate_profiles import ProfileSection, profiled_coordinators
from perf.profiling.manifest import PROFILE_SCHEMA_VERSION, add_manifest, to_jsonable
from perf.profiling.profiles import ProfileFormatError
from perf.progress import format_duration
from perf.rundir import latest_blocked, new_run_dir, run_dir_name, update_latest

# Capture, DiffResult, PROFILE_SCHEMA_VERSION and differential live in perf.profiling and
# are re-exported here for the callers of this module's former API.
__all__ = [
    "DEFAULT_SCENARIOS",
    "PROFILE_SCHEMA_VERSION",
    "Capture",
    "CaptureOptions",
    "DiffResult",
    "ProfileResult",
    "build_parser",
    "differential",
    "format_gate",
    "gate_memory",
    "main",
    "memory_and_leaks",
    "profile_run",
]


# ---------------------------------------------------------------------------------------
# profiles and the memory and leak gate
# ---------------------------------------------------------------------------------------


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
    """:func:`perf.profiling.capture.capture_profiles`, then (``write_manifest``) the
    ``profile.json`` beside the captures, with each capture's memory figures, listed last
    among the artifacts."""
    options = options or CaptureOptions()
    result = capture_profiles(
        run_dir, coordinators, scenarios, tree, options=options, side=side, stream=stream
    )
    if not write_manifest:
        return result
    return add_manifest(result, options, _memory_figures(result), side)


def _memory_figures(result: ProfileResult) -> list[Any]:
    """Each capture's memory figures as the manifest holds them, or why they could not be
    read."""
    roots = [str(result.tree)]
    figures: list[Any] = []
    for capture in result.captures:
        try:
            data = load_memory(result.run_dir, capture, roots)
            figures.append(to_jsonable(memory_figures(*data)))
        except (ProfileFormatError, ValueError) as exc:
            figures.append({"error": str(exc)})
    return figures


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
    return memory_gate(
        memory_inputs(head, base),
        threshold_pct=threshold_pct,
        allowance_bytes_per_event=allowance_bytes_per_event,
    )


def memory_and_leaks(
    run_dir: Path,
    coordinators: Sequence[str],
    head_tree: Path,
    base_tree: Path | None,
) -> ProfileSection:
    """The gate run's ``--profile`` step: capture every profile of head (and base, when
    there is one) and run the memory and leak gate on them: base against head, or head
    alone (held-after-stop checks)."""
    chosen = profiled_coordinators(coordinators)
    if not chosen:
        return ProfileSection((), ("no profiled coordinator (data, core) in this run",), ())
    head = profile_run(run_dir, chosen, GATE_SCENARIOS, head_tree, side="head", stream=sys.stderr)
    base = None
    if base_tree is not None:
        base = profile_run(
            run_dir, chosen, GATE_SCENARIOS, base_tree, side="base", stream=sys.stderr
        )
    gate = gate_memory(head, base)
    notes = list(head.notes) + (list(base.notes) if base else [])
    notes.append(
        f"memory and leak gate: {gate.verdict.value} "
        f"({len(gate.checks)} memory checks, {len(gate.leaks)} leak checks)"
    )
    artifacts = head.artifacts + (base.artifacts if base else ())
    failures = tuple(_failure(check) for check in gate.failures)
    return ProfileSection(tuple(artifacts), tuple(notes), failures)


def _failure(check: MemoryCheck | LeakCheck) -> str:
    """A failed check with its top five sites or stacks, for the gate's report."""
    lines = [f"memory gate: {check.subject}: {check.reason}"]
    if isinstance(check, LeakCheck):
        lines += [f"  {g.site} (+{g.size_diff_bytes} B)" for g in check.stacks[:5]]
    else:
        lines += [f"  {c.site} (+{c.change_bytes} B)" for c in check.sites[:5]]
    return "\n".join(lines)


def _gate_json(gate: MemoryGate) -> dict[str, Any]:
    """``memory_gate.json``: every check, and the verdict over them."""
    return {**to_jsonable(gate), "verdict": gate.verdict.value}


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
    _add_output_options(parser)
    _add_subject_options(parser)
    _add_tree_options(parser)
    _add_sampling_options(parser)
    _add_settle_options(parser)
    _add_gate_options(parser)
    return parser


def _add_output_options(parser: argparse.ArgumentParser) -> None:
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


def _add_subject_options(parser: argparse.ArgumentParser) -> None:
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


def _add_tree_options(parser: argparse.ArgumentParser) -> None:
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


def _add_sampling_options(parser: argparse.ArgumentParser) -> None:
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


def _add_settle_options(parser: argparse.ArgumentParser) -> None:
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


def _add_gate_options(parser: argparse.ArgumentParser) -> None:
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


# ---------------------------------------------------------------------------------------
# the command's steps
# ---------------------------------------------------------------------------------------


def _usage_problem(args: argparse.Namespace) -> str | None:
    """Why the options cannot work together, or None."""
    from perf.workload.library import SCENARIOS

    unknown = [s for s in args.scenarios if s not in SCENARIOS]
    if unknown:
        return f"unknown scenario(s) {', '.join(unknown)}; accepted: {', '.join(SCENARIOS)}"
    if args.head_coordinator and len(args.coordinators) != 1:
        return "--head-coordinator needs exactly one --coordinators"
    if args.differential and args.base_tree is None:
        return "--differential needs --base-tree"
    return None


def _settle_problem(args: argparse.Namespace) -> str | None:
    if not 0 <= args.settle_warmup <= args.settle_batches - 3:
        return "--settle-warmup must leave at least 3 of --settle-batches for the growth slope"
    return None


def _refuse(problem: str) -> int:
    print(f"perf profile: {problem}", file=sys.stderr)
    return int(ExitCode.UNDECIDED)


def _open_run_dir(args: argparse.Namespace) -> tuple[Path, bool]:
    """The run folder, and whether it is new (then ``latest`` points at it once done)."""
    if args.run_dir is not None:
        args.run_dir.mkdir(parents=True, exist_ok=True)
        return args.run_dir, False
    from perf.measure.meta import git_state

    name = run_dir_name(dt.datetime.now(dt.UTC), git_state(REPO_ROOT).short) + "-profile"
    return new_run_dir(args.output, name), True


def _capture_options(args: argparse.Namespace) -> CaptureOptions:
    return CaptureOptions(
        native=not args.no_native,
        pyspy_rate_hz=args.rate,
        cpu_seconds=args.cpu_seconds,
        settle_batches=args.settle_batches,
        settle_batch_events=args.settle_events,
        settle_warmup=args.settle_warmup,
    )


def _profile_sides(
    run_dir: Path, args: argparse.Namespace, options: CaptureOptions
) -> tuple[ProfileResult, ProfileResult | None]:
    """Head's profiles, and base's memory profiles when there is a base tree."""
    head_coordinators = [args.head_coordinator] if args.head_coordinator else args.coordinators
    head = profile_run(run_dir, head_coordinators, args.scenarios, args.tree, options=options)
    if args.base_tree is None:
        return head, None
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
    return head, base


def _differentials(
    run_dir: Path, args: argparse.Namespace, options: CaptureOptions
) -> list[DiffResult]:
    if not args.differential or args.base_tree is None:
        return []
    return [
        differential(
            run_dir,
            scenario,
            coordinator,
            args.base_tree,
            args.tree or REPO_ROOT,
            options=options,
            head_coordinator=args.head_coordinator,
        )
        for coordinator in args.coordinators
        for scenario in args.scenarios
    ]


def _summary(
    run_dir: Path, head: ProfileResult, gate: MemoryGate, diffs: Sequence[DiffResult], t0: float
) -> int:
    """Print the gate, the differential tables and what was captured; the exit status."""
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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    problem = _usage_problem(args)
    if problem is not None:
        return _refuse(problem)
    t0 = time.monotonic()
    try:
        run_dir, new = _open_run_dir(args)
    except OSError as exc:
        return _refuse(f"cannot create the run folder: {exc}")
    problem = _settle_problem(args)  # checked once the folder exists, as it always was
    if problem is not None:
        return _refuse(problem)
    options = _capture_options(args)
    print(f"perf profile: writing into {run_dir}", file=sys.stderr)
    head, base = _profile_sides(run_dir, args, options)
    gate = gate_memory(
        head, base, threshold_pct=args.threshold_pct, allowance_bytes_per_event=args.leak_allowance
    )
    write_json(run_dir / PROFILES_DIR / "memory_gate.json", _gate_json(gate))
    diffs = _differentials(run_dir, args, options)
    if new and update_latest(args.output, run_dir) == "blocked":
        print(f"profile: warning: {latest_blocked(args.output)}", file=sys.stderr)
    return _summary(run_dir, head, gate, diffs, t0)
