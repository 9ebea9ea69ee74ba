"""Run folders: ``benchmark_results/<UTC time>-<commit>/``, the ``latest`` pointer and pruning.

The one module that names, creates, points at and removes run folders; every command
(``gate``, ``run``, ``profile``) goes through it.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DEFAULT_KEEP",
    "RUN_DIR_RE",
    "Artifact",
    "latest_blocked",
    "new_run_dir",
    "prune_runs",
    "run_dir_name",
    "update_latest",
    "utc_stamp",
]

DEFAULT_KEEP = 10
RUN_DIR_RE = re.compile(r"^\d{8}T\d{6}Z-[0-9a-z]+(?:-\d+)?$")


@dataclass(frozen=True, slots=True, kw_only=True)
class Artifact:
    """A file of the run the reports link to (result files, flame graphs, profiles)."""

    label: str
    path: str  # relative to the run folder
    kind: str  # "pyperf", "json", "flamegraph", "speedscope", "svg", "report", ...


def utc_stamp(moment: dt.datetime | None = None) -> str:
    """``2026-11-26T20:30:00Z``: the UTC time stamp of every file the gate writes."""
    return (moment or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_dir_name(moment: dt.datetime, short_commit: str) -> str:
    """``<UTC time>-<short commit>``, e.g. ``20261126T203000Z-a0d44b7c1e``."""
    commit = re.sub(r"[^0-9a-z]+", "", short_commit.lower()) or "unknown"
    return f"{moment.astimezone(dt.UTC).strftime('%Y%m%dT%H%M%SZ')}-{commit}"


def new_run_dir(output: Path, name: str) -> Path:
    """Create and return ``output/name``, or ``name-2``, ``name-3``... when it exists: two
    runs started in the same second never share a folder."""
    candidate = output / name
    n = 1
    while True:
        try:
            candidate.mkdir(parents=True)
            return candidate
        except FileExistsError:
            n += 1
            candidate = output / f"{name}-{n}"


def update_latest(output: Path, run_dir: Path) -> str:
    """Point ``output/latest`` at ``run_dir``: a relative symlink, replaced atomically, or a
    text file with the folder's name where symlinks are not possible. Returns which:
    ``"symlink"`` or ``"file"``; or ``"blocked"`` when ``latest`` is a real folder, which the
    gate never makes and so never replaces (the run itself is complete either way; say
    :func:`latest_blocked` to the user)."""
    latest = output / "latest"
    if latest.is_dir() and not latest.is_symlink():
        return "blocked"
    tmp = output / f".latest.{os.getpid()}"
    try:
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        tmp.symlink_to(run_dir.name, target_is_directory=True)
        os.replace(tmp, latest)
        return "symlink"
    except OSError:
        if tmp.is_symlink():
            tmp.unlink()
        if latest.is_symlink():
            latest.unlink()
        latest.write_text(run_dir.name + "\n", encoding="utf-8")
        return "file"


def latest_blocked(output: Path) -> str:
    """What to tell the user when :func:`update_latest` returned ``"blocked"``."""
    return (
        f"{output / 'latest'} is a folder, not the link the gate keeps there, so it still "
        "names an older state; move it away (the gate does not delete what it did not make)"
    )


def prune_runs(output: Path, keep: int, current: Path) -> list[str]:
    """Remove run folders beyond the newest ``keep`` (by name: the UTC time sorts them).
    Only folders named like a run and holding a manifest.json are touched; the current
    one never is. Returns the names removed."""
    runs = sorted(
        p.name
        for p in output.iterdir()
        if p.is_dir()
        and not p.is_symlink()
        and RUN_DIR_RE.match(p.name)
        and (p / "manifest.json").is_file()
    )
    removed: list[str] = []
    for name in runs[: max(len(runs) - keep, 0)]:
        if name == current.name:
            continue
        shutil.rmtree(output / name)
        removed.append(name)
    return removed
