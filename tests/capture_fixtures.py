"""Helpers for the capture tests: stand-in profiler executables, and a check that every
file a result lists was written."""

from __future__ import annotations

import stat
import sys
import textwrap
from pathlib import Path

from perf.rundir import Artifact

__all__ = ["fake_tool", "listed_files_exist"]


def fake_tool(tmp_path: Path, name: str, body: str) -> str:
    """An executable ``tmp_path/name`` that runs ``body`` with this interpreter."""
    path = tmp_path / name
    path.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def listed_files_exist(run_dir: Path, artifacts: tuple[Artifact, ...]) -> None:
    for artifact in artifacts:
        assert (run_dir / artifact.path).is_file(), artifact
        assert (run_dir / artifact.path).stat().st_size > 0, artifact
