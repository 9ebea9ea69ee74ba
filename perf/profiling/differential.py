"""Differential profiles: one coordinator on one scenario, profiled with the base tree and
with the head tree, and the tables of which functions' shares moved.

Both sides are captured the same way (:func:`perf.profiling.capture.capture_one`: py-spy
at ``diff_rate_hz`` for ``diff_seconds``, memray over one run, no settle cycles) into
``profiles/diff/<coordinator>-<scenario>/{base,head}/``; the tables are
:mod:`perf.profiling.diffprof`'s, written beside them as ``diff.json`` and ``diff.md``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TextIO

from perf.files import write_json
from perf.paths import REPO_ROOT
from perf.profiling.capture import (
    PROFILES_DIR,
    Capture,
    CaptureOptions,
    capture_one,
    estimate_s,
    planned_steps,
    profilers,
    resolve_tree,
    slug,
)
from perf.profiling.diffprof import DEFAULT_TOP_ROWS, DiffTable, alloc_diff, cpu_diff
from perf.profiling.manifest import to_jsonable
from perf.profiling.profiles import CpuProfile, load_json, load_memray_stats, parse_speedscope
from perf.progress import Planned, Progress
from perf.rundir import Artifact

__all__ = ["RUN_FRAME", "DiffResult", "differential", "format_diff"]

# The frame around each scenario run in the profile target (which calls asyncio.run for
# nothing else): a differential's CPU table counts only the samples under it, the
# coordinator's tasks included, and leaves out interpreter start-up, imports and workload
# generation, which are the same on both sides and only add noise.
RUN_FRAME = "BaseEventLoop.run_until_complete"


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
    folder = run_dir / PROFILES_DIR / "diff" / f"{slug(coordinator)}-{scenario}"
    sides = (
        ("base", resolve_tree(base_tree), coordinator),
        ("head", resolve_tree(head_tree), head_coordinator or coordinator),
    )
    base, head = _capture_sides(run_dir, folder, scenario, sides, options, stream)
    roots = [str(tree) for _, tree, _ in sides] + [str(REPO_ROOT)]  # REPO_ROOT: the target
    subject = f"diff {coordinator}/{scenario}"
    notes = [*base.notes, *head.notes]
    cpu = _cpu_table(run_dir, base, head, roots, top)
    if cpu is None:
        notes.append(f"{subject}: no CPU table (a side has no py-spy profile)")
    alloc = _alloc_table(run_dir, base, head, roots, top)
    if alloc is None:
        notes.append(f"{subject}: no allocation table (a side has no memray stats)")
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
    return _write(result, folder, subject)


def _capture_sides(
    run_dir: Path,
    folder: Path,
    scenario: str,
    sides: Sequence[tuple[str, Path, str]],
    options: CaptureOptions,
    stream: TextIO | None,
) -> tuple[Capture, Capture]:
    """Base's and head's captures, each ``(side, tree, coordinator)`` into its folder."""
    found = profilers(options)
    steps = planned_steps(options, diff=True)
    progress = Progress(
        [
            Planned(
                f"diff {side} {c}/{scenario} {s}", estimate_s(scenario, s, options.diff_seconds)
            )
            for side, _, c in sides
            for s in steps
        ],
        stream=stream,
    )
    captured = {
        side: capture_one(
            run_dir,
            folder / side,
            tree,
            coord,
            scenario,
            f"diff {side} {coord}/{scenario}",
            options,
            progress,
            found,
            diff=True,
        )
        for side, tree, coord in sides
    }
    return captured["base"], captured["head"]


def _cpu(run_dir: Path, rel: str, roots: Sequence[str]) -> CpuProfile:
    return parse_speedscope(load_json(run_dir / rel), roots, rel, within=RUN_FRAME)


def _cpu_table(
    run_dir: Path, base: Capture, head: Capture, roots: Sequence[str], top: int
) -> DiffTable | None:
    """Self shares of py-spy's samples; None unless both sides have a speedscope file."""
    if not (base.speedscope and head.speedscope):
        return None
    return cpu_diff(
        _cpu(run_dir, base.speedscope, roots),
        _cpu(run_dir, head.speedscope, roots),
        base_flamegraph=base.svg or base.speedscope,
        head_flamegraph=head.svg or head.speedscope,
        top=top,
    )


def _alloc_table(
    run_dir: Path, base: Capture, head: Capture, roots: Sequence[str], top: int
) -> DiffTable | None:
    """Shares of memray's allocated bytes; None unless both sides have memray stats."""
    if not (base.memray_stats and head.memray_stats):
        return None
    return alloc_diff(
        load_memray_stats(run_dir / base.memray_stats, roots),
        load_memray_stats(run_dir / head.memray_stats, roots),
        base_flamegraph=base.memray_flamegraph or base.memray_stats,
        head_flamegraph=head.memray_flamegraph or head.memray_stats,
        top=top,
    )


def _write(result: DiffResult, folder: Path, subject: str) -> DiffResult:
    """Write ``diff.json`` and ``diff.md`` into ``folder``; ``result`` with both listed."""
    out = folder / "diff.json"
    markdown = folder / "diff.md"
    write_json(out, to_jsonable(result))
    markdown.write_text(format_diff(result), encoding="utf-8")
    return replace(
        result,
        artifacts=(
            *result.artifacts,
            Artifact(
                label=f"{subject}: tables (JSON)",
                path=out.relative_to(result.run_dir).as_posix(),
                kind="json",
            ),
            Artifact(
                label=f"{subject}: tables (markdown)",
                path=markdown.relative_to(result.run_dir).as_posix(),
                kind="report",
            ),
        ),
    )


# The one percent formatter of perf/profiling (perf/report has its own for the reports).
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
