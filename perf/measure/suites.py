"""The pyperf suites a gate run measures beside its rounds (``--suites-set``): every metric,
sweeps and leak runs included, for the reports, not for the verdict. They are measured by
``python -m perf run`` in a process of its own, into the run folder's ``suites/``."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from perf.errors import ResultError
from perf.workload.cases import DEFAULT_COORDINATORS

__all__ = ["run_suites", "suites_dir"]


def run_suites(
    *,
    root: Path,
    run_dir: Path,
    set_name: str,
    coordinators: Sequence[str],
    suites: str | None,
    speed: str | None,
) -> None:
    """The pyperf suites of ``set_name`` for the head (``root``), into run_dir/suites/;
    ``speed`` is "--fast", "--rigorous" or None. ResultError when they fail."""
    cmd = [
        sys.executable,
        "-m",
        "perf",
        "run",
        f"--{set_name}",
        "--output",
        str(run_dir / "suites"),
        "--keep",
        "1",
    ]
    # With the default coordinators the suites choose their own (the full set adds the
    # daemon transport, core-daemon); an explicit list is passed on as given.
    if tuple(coordinators) != DEFAULT_COORDINATORS:
        cmd += ["--coordinators", ",".join(coordinators)]
    if suites:
        cmd += ["--suites", suites]
    if speed:
        cmd.append(speed)
    proc = subprocess.run(cmd, cwd=root, check=False)
    if proc.returncode != 0:
        raise ResultError(
            f"the {set_name} pyperf suites failed (exit {proc.returncode})",
            str(run_dir / "suites"),
            "see the benchmark output above; rerun with python -m perf run",
        )


def suites_dir(run_dir: Path) -> Path | None:
    """The run folder of the suites measured in ``run_dir``, or None when there are none."""
    latest = run_dir / "suites" / "latest"
    if latest.is_symlink() or latest.is_dir():
        return latest.resolve()
    if latest.is_file():
        return run_dir / "suites" / latest.read_text(encoding="utf-8").strip()
    return None
