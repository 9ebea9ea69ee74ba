"""What one gate run decided and saw: the data every report is rendered from."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from perf.decide.verdict import Comparison, Verdict
from perf.measure.machine import MachineLoad
from perf.rundir import Artifact

__all__ = ["GateOutcome"]


@dataclass(frozen=True, slots=True, kw_only=True)
class GateOutcome:
    """One gate run. ``mode`` is "pr" (head vs base measured interleaved in this run) or
    "baseline" (head vs a stored baseline file)."""

    mode: str
    verdict: Verdict
    exit_status: int
    strict: bool
    comparisons: tuple[Comparison, ...]
    head_commit: str
    head_dirty: bool
    base_label: str  # the base commit in PR mode, the baseline file in baseline mode
    rounds: int  # every round run, including those of only the inconclusive cases
    max_rounds: int
    started_utc: str
    duration_s: float
    machine: MachineLoad | None
    run_dir: Path
    artifacts: tuple[Artifact, ...] = ()
    warnings: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)
    rounds_all_cases: int | None = None  # rounds that measured every case (None: all)
