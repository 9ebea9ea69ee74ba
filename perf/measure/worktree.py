"""Git plumbing for PR mode: resolve the base ref and check it out beside the head."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from perf.errors import RefError

__all__ = [
    "DEFAULT_BRANCHES",
    "WORKTREE_DIR",
    "base_worktree",
    "default_base",
    "remove_stale_worktrees",
    "resolve_ref",
]

DEFAULT_BRANCHES = ("origin/HEAD", "origin/main", "origin/master", "main", "master")
WORKTREE_DIR = ".perf-worktrees"
_LEGACY_WORKTREE_RE = re.compile(r"^[0-9a-f]{12}$")
_RUN_WORKTREE_RE = re.compile(r"^[0-9a-f]{1,40}-(?P<pid>\d+)-[0-9a-f]+$")


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=False
    )


def resolve_ref(repo: Path, ref: str) -> str:
    """The full commit id that ``ref`` names, or RefError saying how to fix it."""
    proc = _git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if proc.returncode != 0 or not proc.stdout.strip():
        raise RefError(
            f"base ref {ref!r} does not name a commit in {repo}; fetch it "
            f"(git fetch origin {ref}) or pass an existing one with --base REF, "
            "or compare with the stored baselines with --baseline"
        )
    return proc.stdout.strip()


def default_base(repo: Path) -> str:
    """The merge base of HEAD with the default branch (the first of DEFAULT_BRANCHES that
    exists). RefError when there is none or HEAD is that branch's tip."""
    for branch in DEFAULT_BRANCHES:
        if _git(repo, "rev-parse", "--verify", "--quiet", branch).returncode != 0:
            continue
        proc = _git(repo, "merge-base", "HEAD", branch)
        if proc.returncode == 0 and proc.stdout.strip():
            base = proc.stdout.strip()
            if base == resolve_ref(repo, "HEAD"):
                raise RefError(
                    f"HEAD is the tip of {branch}: there is no base to compare with; pass "
                    "--base REF (for example --base HEAD~1) or use --baseline"
                )
            return base
    raise RefError(
        f"no default branch found (tried {', '.join(DEFAULT_BRANCHES)}); pass --base REF "
        "or use --baseline"
    )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True


def _remove(repo: Path, path: Path) -> None:
    _git(repo, "worktree", "remove", "--force", str(path))
    shutil.rmtree(path, ignore_errors=True)


def remove_stale_worktrees(repo: Path) -> list[Path]:
    """Remove worktrees under .perf-worktrees/ left by gate runs that no longer exist (a
    run killed with SIGKILL cannot clean up after itself). A run's worktree is named
    ``<commit>-<pid>-<token>``; one whose process is alive is never touched, so two gate
    runs on one checkout keep each other's worktrees. Returns what was removed."""
    root = repo / WORKTREE_DIR
    removed: list[Path] = []
    if root.is_dir():
        for path in sorted(root.iterdir()):
            match = _RUN_WORKTREE_RE.match(path.name)
            legacy = _LEGACY_WORKTREE_RE.match(path.name)  # named by commit alone, before pids
            if legacy or (match and not _pid_alive(int(match["pid"]))):
                _remove(repo, path)
                removed.append(path)
    _git(repo, "worktree", "prune")
    return removed


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """While the block runs, SIGTERM (what CI sends a cancelled job) unwinds the stack like
    Ctrl-C, so ``finally`` clauses run and the worktree is removed; the default action
    would end the process on the spot."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def base_worktree(repo: Path, commit: str) -> Iterator[Path]:
    """Check ``commit`` out in a detached worktree under .perf-worktrees/ and remove it
    afterwards, also when the run is interrupted (Ctrl-C or SIGTERM). Each run has a
    worktree of its own; the head's own checkout is never touched."""
    remove_stale_worktrees(repo)
    root = repo / WORKTREE_DIR
    root.mkdir(exist_ok=True)
    path = root / f"{commit[:12]}-{os.getpid()}-{secrets.token_hex(3)}"
    with _sigterm_as_interrupt():
        proc = _git(repo, "worktree", "add", "--detach", "--force", str(path), commit)
        try:
            if proc.returncode != 0:
                raise RefError(f"could not check out {commit} into {path}: {proc.stderr.strip()}")
            yield path
        finally:
            _remove(repo, path)
            _git(repo, "worktree", "prune")
