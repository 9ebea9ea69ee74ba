"""The gate's run folder as the reports see it: which results the architecture comparison
reads, ``manifest.json`` (the index of the run), and for a run that could not decide, the
files CI shows saying so."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from perf.decide.outcome import GateOutcome
from perf.errors import GateError, exit_code
from perf.files import write_json, write_text
from perf.measure.suites import suites_dir
from perf.report.format import markdown_text

if TYPE_CHECKING:
    from perf.report.analysis import Analysis

__all__ = ["MANIFEST_SCHEMA_VERSION", "analysis_of_run", "write_error_files", "write_manifest"]

MANIFEST_SCHEMA_VERSION = 1


def analysis_of_run(run_dir: Path, analysis_from: Path | None, *, seed: int) -> Analysis | None:
    """The architecture comparison of a gate run. It reads the pyperf suites measured in
    this run when there are any (sweeps and leak runs included), else those of an earlier
    ``python -m perf run`` (``analysis_from``), else the head side of the gate's rounds:
    data vs core vs reference measured in the same minutes either way. None when there
    is nothing to read."""
    from perf.report.analysis import analyze_run_dir

    suites = suites_dir(run_dir) or analysis_from
    if suites is not None:
        return analyze_run_dir(suites, seed=seed)
    if (run_dir / "head.json").exists():
        return analyze_run_dir(run_dir, pyperf_files=["head.json"], seed=seed)
    return None


def _files(run_dir: Path) -> list[str]:
    return sorted(p.name for p in run_dir.iterdir() if p.is_file())


def write_manifest(outcome: GateOutcome) -> None:
    """The run's manifest: what was decided, on which commits, and every file written
    (so it is written last)."""
    write_json(
        outcome.run_dir / "manifest.json",
        {
            "schema_version": MANIFEST_SCHEMA_VERSION,
            "kind": "gate",
            "mode": outcome.mode,
            "verdict": outcome.verdict.value,
            "exit_status": outcome.exit_status,
            "head_commit": outcome.head_commit,
            "head_dirty": outcome.head_dirty,
            "base": outcome.base_label,
            "rounds": outcome.rounds,
            "started_utc": outcome.started_utc,
            "duration_s": outcome.duration_s,
            "files": _files(outcome.run_dir),
        },
    )


def write_error_files(run_dir: Path, mode: str, exc: GateError) -> None:
    """The run folder of a run that could not decide says so, in the files CI shows:
    ``report.json``, ``pr_comment.md`` and the manifest."""
    text = str(exc)
    write_json(
        run_dir / "report.json",
        {"verdict": "error", "exit_status": int(exit_code(exc)), "error": text, "comparisons": []},
    )
    write_text(
        run_dir / "pr_comment.md",
        "## Crucible perf gate: could not decide (exit 2)\n\n"
        f"{markdown_text(text)}\n\nNo verdict was reached, so this build is not passed.\n",
    )
    write_json(
        run_dir / "manifest.json",
        {
            "schema_version": MANIFEST_SCHEMA_VERSION,
            "kind": "gate",
            "mode": mode,
            "verdict": "error",
            "error": text,
            "files": _files(run_dir),
        },
    )
