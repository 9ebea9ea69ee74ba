"""perf.measure.count_worker: the process perf.measure.instructions counts under valgrind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from perf.paths import REPO_ROOT

WORKER = (sys.executable, "-m", "perf.measure.count_worker")


def test_the_worker_replies_each_case_in_order_without_valgrind() -> None:
    lines = [
        ["daemon_performance", "light", "reference"],
        ["load_testing", "burst", "reference"],
        ["daemon_performance", "nope", "reference"],
    ]
    done = subprocess.run(
        [*WORKER, "--tree", str(REPO_ROOT), "--set", "quick", "--workloads", "1"],
        input="".join(json.dumps(line) + "\n" for line in lines),
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    replies = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["bench"] for r in replies] == [
        "daemon_performance.light.reference",
        "load_testing.burst.reference",
        "daemon_performance.nope.reference",
    ]
    for reply in replies[:2]:
        assert reply["pid_k"] != reply["pid_2k"] and reply["seconds"] > 0
    assert "no case daemon_performance.nope" in replies[2]["error"]


def test_a_tree_without_crucible_is_refused(tmp_path: Path) -> None:
    done = subprocess.run(
        [*WORKER, "--tree", str(tmp_path), "--set", "quick", "--workloads", "1"],
        input="",
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 2
    assert "has no crucible package" in done.stderr
