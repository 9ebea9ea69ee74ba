"""PR mode's base worktree: one per run, removed afterwards, also on SIGTERM, and never
another live run's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from perf.errors import RefError
from perf.measure.worktree import WORKTREE_DIR, base_worktree, remove_stale_worktrees
from tests.git_fixtures import git, two_commit_repo

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return two_commit_repo(tmp_path / "repo")


def _listed(repo: Path) -> list[str]:
    return [
        line.split(" ", 1)[1]
        for line in git(repo, "worktree", "list", "--porcelain").splitlines()
        if line.startswith("worktree ")
    ]


def test_the_base_is_checked_out_beside_the_head_and_removed_after(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD~1")
    with base_worktree(repo, base) as tree:
        assert (tree / "file.txt").read_text() == "base\n"
        assert str(tree) in _listed(repo)
    assert not tree.exists()
    assert str(tree) not in _listed(repo)
    assert (repo / "file.txt").read_text() == "head\n"


def test_two_runs_with_the_same_base_keep_each_others_worktree(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD~1")
    with base_worktree(repo, base) as first:
        with base_worktree(repo, base) as second:
            assert first != second
        assert not second.exists()
        assert (first / "file.txt").read_text() == "base\n"
    assert not first.exists()


def test_a_commit_that_cannot_be_checked_out_is_a_ref_error_and_leaves_nothing(
    repo: Path,
) -> None:
    with pytest.raises(RefError, match="could not check out"), base_worktree(repo, "f" * 40):
        pass
    assert list((repo / WORKTREE_DIR).iterdir()) == []


def test_sigterm_removes_the_worktree(repo: Path, tmp_path: Path) -> None:
    base = git(repo, "rev-parse", "HEAD~1")
    ready = tmp_path / "ready"
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from perf.measure.worktree import base_worktree\n"
        f"with base_worktree(Path({str(repo)!r}), {base!r}) as tree:\n"
        f"    Path({str(ready)!r}).write_text(str(tree))\n"
        "    time.sleep(60)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], cwd=ROOT, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 60
    while not ready.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert ready.exists(), proc.stderr.read() if proc.stderr else ""
    tree = Path(ready.read_text())
    assert tree.is_dir()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert "KeyboardInterrupt" in err
    assert not tree.exists()
    assert str(tree) not in _listed(repo)


def test_worktrees_of_dead_runs_are_removed_and_live_ones_kept(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD~1")
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_pid = int(dead.stdout)
    root = repo / WORKTREE_DIR
    root.mkdir()
    stale = root / f"{base[:12]}-{dead_pid}-abc123"
    live = root / f"{base[:12]}-{os.getpid()}-def456"
    git(repo, "worktree", "add", "--detach", str(stale), base)
    git(repo, "worktree", "add", "--detach", str(live), base)
    removed = remove_stale_worktrees(repo)
    assert removed == [stale]
    assert not stale.exists()
    assert live.is_dir() and str(live) in _listed(repo)
