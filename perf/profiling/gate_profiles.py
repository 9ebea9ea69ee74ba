"""Profiles in a gate run: a differential profile for each regressed benchmark (PR mode),
and the coordinators and scenarios that ``--profile`` captures for the memory and leak gate
(which ``perf.profile.memory_and_leaks`` runs: deciding is a stage above this one).

Profilers run in processes of their own after the timed rounds, never inside them. Inputs
are plain data: the names of the regressed benchmarks and their case metadata, the run
folder, the trees.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from perf.profiling.differential import DiffResult, differential
from perf.rundir import Artifact

__all__ = [
    "MAX_DIFFERENTIALS",
    "PROFILED",
    "SCENARIOS",
    "ProfileSection",
    "differentials",
    "profiled_coordinators",
    "regressed_pairs",
]

# Coordinators and scenarios profiled by --profile (issue: data and core, medium and heavy).
PROFILED = ("data", "core")
SCENARIOS = ("medium", "heavy")
# Each differential costs about 45 s; more regressions than this share their profiles.
MAX_DIFFERENTIALS = 3
# One differential (py-spy and memray, base and head, medium scenario) took 41-47 s here.
DIFFERENTIAL_ESTIMATE_S = 50.0


@dataclass(frozen=True, slots=True)
class ProfileSection:
    artifacts: tuple[Artifact, ...]
    notes: tuple[str, ...]
    failures: tuple[str, ...]  # memory / leak gate failures, each with its top stacks


def profiled_coordinators(coordinators: Sequence[str]) -> list[str]:
    """The run's coordinators that ``--profile`` captures (data and core, in that order)."""
    return [c for c in PROFILED if c in coordinators]


def _scenario_of(meta: Mapping[str, object]) -> str:
    """The named scenario to profile a regressed case on: its own, except that light (100
    events) becomes medium, whose runs spend their samples in the same code paths rather
    than in setting coordinators up; cases without a named scenario use medium too."""
    from perf.workload.library import SCENARIOS as NAMED

    name = str(meta.get("crucible_scenario", "medium"))
    return name if name in NAMED and name != "light" else "medium"


def regressed_pairs(
    regressed: Sequence[str], case_meta: Mapping[str, Mapping[str, object]]
) -> list[tuple[str, str]]:
    """The distinct (coordinator spec, scenario) pairs of the regressed benchmarks, in
    their order."""
    pairs: list[tuple[str, str]] = []
    for benchmark in regressed:
        meta = case_meta.get(benchmark, {})
        pair = (str(meta.get("crucible_coordinator_spec", "core")), _scenario_of(meta))
        if pair not in pairs:
            pairs.append(pair)
    return pairs


def differentials(
    run_dir: Path,
    regressed: Sequence[str],
    case_meta: Mapping[str, Mapping[str, object]],
    base_tree: Path,
    head_tree: Path,
    deadline: float | None = None,
) -> ProfileSection:
    """For each regressed benchmark (by name; up to MAX_DIFFERENTIALS distinct coordinator
    and scenario pairs), profile base and head and write the functions whose share of CPU
    samples and of allocated bytes grew most (then fell most) to ``differential.md``. A
    pair whose profile would end after ``deadline`` (``time.monotonic()``; estimated from
    the last one) is left out, and the notes say so."""
    pairs = regressed_pairs(regressed, case_meta)
    if not pairs:
        return ProfileSection((), (), ())
    lines = ["# Differential profiles", ""]
    artifacts: list[Artifact] = []
    notes: list[str] = []
    estimate = DIFFERENTIAL_ESTIMATE_S
    skipped: list[str] = []
    for coordinator, scenario in pairs[:MAX_DIFFERENTIALS]:
        if deadline is not None and time.monotonic() + estimate > deadline:
            skipped.append(f"{coordinator} on {scenario}")
            continue
        started = time.monotonic()
        result = differential(
            run_dir, scenario, coordinator, base_tree, head_tree, stream=sys.stderr
        )
        estimate = time.monotonic() - started
        artifacts += result.artifacts
        section, moved = _section(result, coordinator, scenario)
        lines += section
        notes += [*result.notes, *moved]
    if skipped:
        notes.append(
            f"not profiled, for the run's time limit: {', '.join(skipped)} "
            "(nox -s perf_profile profiles any coordinator and scenario)"
        )
        lines += [f"Not profiled, for the run's time limit: {', '.join(skipped)}.", ""]
    if len(pairs) > MAX_DIFFERENTIALS:
        notes.append(f"{len(pairs) - MAX_DIFFERENTIALS} more regressed pairs not profiled")
    (run_dir / "differential.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    artifacts.append(Artifact(label="differential profiles", path="differential.md", kind="report"))
    return ProfileSection(tuple(artifacts), tuple(notes), ())


def _section(result: DiffResult, coordinator: str, scenario: str) -> tuple[list[str], list[str]]:
    """One pair's part of ``differential.md``, and a note naming the function that moved
    most in each table."""
    lines = [f"## {coordinator} on {scenario}", ""]
    notes: list[str] = []
    for table in (result.cpu, result.alloc):
        if table is None:
            continue
        what = "CPU samples" if table.kind == "cpu" else "allocated bytes"
        lines += [
            f"Share of {what} (flame graphs: [base]({table.base_flamegraph}), "
            f"[head]({table.head_flamegraph}))",
            "",
            "| function | base share | head share | change | base | head |",
            "|---|---:|---:|---:|---|---|",
        ]
        for row in table.rows:
            lines.append(
                f"| `{row.function}` | {row.base_share * 100:.2f} % | "
                f"{row.head_share * 100:.2f} % | {row.change_pp:+.2f} pp | "
                f"[base]({row.base_link}) | [head]({row.head_link}) |"
            )
        lines.append("")
        if table.rows:
            top = table.rows[0]
            notes.append(
                f"differential ({coordinator}, {scenario}, {what}): `{top.function}` "
                f"moved most, {top.base_share * 100:.1f} % -> {top.head_share * 100:.1f} %"
            )
    return lines, notes
