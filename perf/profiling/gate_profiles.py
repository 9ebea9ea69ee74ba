"""Profiles in a gate run: memray / py-spy captures, the memory and leak gate, and a
differential profile for each regressed benchmark (PR mode).

Profilers run in processes of their own after the timed rounds, never inside them.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from perf.decide.verdict import Comparison, Verdict
from perf.rundir import Artifact

__all__ = ["MAX_DIFFERENTIALS", "ProfileSection", "differentials", "memory_and_leaks"]

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


def memory_and_leaks(
    run_dir: Path,
    coordinators: Sequence[str],
    head_tree: Path,
    base_tree: Path | None,
) -> ProfileSection:
    """Capture every profile of head (and base, when there is one) and run the memory and
    leak gate on them: base against head, or head alone (held-after-stop checks)."""
    from perf.decide.leakgate import LeakCheck
    from perf.profile import gate_memory, profile_run

    chosen = [c for c in PROFILED if c in coordinators]
    if not chosen:
        return ProfileSection((), ("no profiled coordinator (data, core) in this run",), ())
    head = profile_run(run_dir, chosen, SCENARIOS, head_tree, side="head", stream=sys.stderr)
    base = None
    if base_tree is not None:
        base = profile_run(run_dir, chosen, SCENARIOS, base_tree, side="base", stream=sys.stderr)
    gate = gate_memory(head, base)
    failures = []
    for check in gate.failures:
        lines = [f"memory gate: {check.subject}: {check.reason}"]
        if isinstance(check, LeakCheck):
            lines += [f"  {g.site} (+{g.size_diff_bytes} B)" for g in check.stacks[:5]]
        else:
            lines += [f"  {c.site} (+{c.change_bytes} B)" for c in check.sites[:5]]
        failures.append("\n".join(lines))
    notes = list(head.notes) + (list(base.notes) if base else [])
    notes.append(
        f"memory and leak gate: {gate.verdict.value} "
        f"({len(gate.checks)} memory checks, {len(gate.leaks)} leak checks)"
    )
    artifacts = head.artifacts + (base.artifacts if base else ())
    return ProfileSection(tuple(artifacts), tuple(notes), tuple(failures))


def _scenario_of(meta: Mapping[str, object]) -> str:
    """The named scenario to profile a regressed case on: its own, except that light (100
    events) becomes medium, whose runs spend their samples in the same code paths rather
    than in setting coordinators up; cases without a named scenario use medium too."""
    from crucible._workload import SCENARIOS as NAMED

    name = str(meta.get("crucible_scenario", "medium"))
    return name if name in NAMED and name != "light" else "medium"


def differentials(
    run_dir: Path,
    comparisons: Sequence[Comparison],
    case_meta: Mapping[str, Mapping[str, object]],
    base_tree: Path,
    head_tree: Path,
    deadline: float | None = None,
) -> ProfileSection:
    """For each failed comparison (up to MAX_DIFFERENTIALS distinct coordinator and
    scenario pairs), profile base and head and write the functions whose share of CPU
    samples and of allocated bytes grew most (then fell most) to ``differential.md``. A
    pair whose profile would end after ``deadline`` (``time.monotonic()``; estimated from
    the last one) is left out, and the notes say so."""
    from perf.profile import differential

    pairs: list[tuple[str, str]] = []
    for c in comparisons:
        if c.verdict is not Verdict.FAIL:
            continue
        meta = case_meta.get(c.benchmark, {})
        pair = (str(meta.get("crucible_coordinator_spec", "core")), _scenario_of(meta))
        if pair not in pairs:
            pairs.append(pair)
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
        notes += result.notes
        lines += [f"## {coordinator} on {scenario}", ""]
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
