"""A small git repository of two commits, for tests of what the gate does with git."""

from __future__ import annotations

import subprocess
from pathlib import Path


def git(repo: Path, *args: str) -> str:
    """Run git in ``repo``; its output, stripped. Fails the test on a git error."""
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def two_commit_repo(path: Path) -> Path:
    """A repository at ``path`` whose file.txt reads "base" at HEAD~1 and "head" at HEAD."""
    path.mkdir()
    git(path, "init", "-q")
    git(path, "config", "user.email", "gate@example.invalid")
    git(path, "config", "user.name", "gate")
    for text in ("base\n", "head\n"):
        (path / "file.txt").write_text(text)
        git(path, "add", "file.txt")
        git(path, "commit", "-qm", text.strip())
    return path
