"""Git plumbing for PR mode: resolve the base ref and check it out beside the head."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from perf.errors import RefError

__all__ = ["DEFAULT_BRANCHES", "base_worktree", "default_base", "resolve_ref"]

DEFAULT_BRANCHES = ("origin/HEAD", "origin/main", "origin/master", "main", "master")
WORKTREE_DIR = ".perf-worktrees"


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


@contextmanager
def base_worktree(repo: Path, commit: str) -> Iterator[Path]:
    """Check ``commit`` out in a detached worktree under .perf-worktrees/ and remove it
    afterwards. The head's own checkout is never touched."""
    root = repo / WORKTREE_DIR
    path = root / commit[:12]
    if path.exists():
        _git(repo, "worktree", "remove", "--force", str(path))
        shutil.rmtree(path, ignore_errors=True)
    _git(repo, "worktree", "prune")
    root.mkdir(exist_ok=True)
    proc = _git(repo, "worktree", "add", "--detach", "--force", str(path), commit)
    if proc.returncode != 0:
        raise RefError(f"could not check out {commit} into {path}: {proc.stderr.strip()}")
    try:
        yield path
    finally:
        _git(repo, "worktree", "remove", "--force", str(path))
        shutil.rmtree(path, ignore_errors=True)
        _git(repo, "worktree", "prune")
