"""perf.profiling.runner: one step of a capture in a process of its own."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from perf.profiling.runner import ProfiledRuns, read_status, run_step


def test_a_hanging_step_is_killed(tmp_path: Path) -> None:
    with open(tmp_path / "log", "w") as log:
        step = run_step(
            [sys.executable, "-c", "import time; time.sleep(30)"], tmp_path, os.environ, 0.5, log
        )
    assert not step.ok and step.returncode is None
    assert "timed out" in step.output


def status(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "ok": True,
        "runs": 40,
        "wall_s": [0.01] * 40,
        "inputs_built": 1,
        "setup_s": 0.01,
        "prepared_s": 0.0,
        "workload_s": 0.49,
        "setup_share": 0.02,
    }
    data.update(changes)
    return data


def test_status_figures_known_answer(tmp_path: Path) -> None:
    path = tmp_path / "status.json"
    path.write_text(json.dumps(status()))
    assert read_status(path) == ProfiledRuns(
        runs=40, inputs_built=1, setup_s=0.01, prepared_s=0.0, workload_s=0.49, setup_share=0.02
    )


@pytest.mark.parametrize(
    "changes",
    [
        {"ok": False},
        {"ok": "true"},
        {"inputs_built": None},
        {"inputs_built": True},
        {"runs": -1},
        {"setup_s": "0.01"},
        {"workload_s": float("inf")},
        {"setup_share": 1.5},
    ],
)
def test_a_status_not_ok_or_without_its_figures_is_none(
    tmp_path: Path, changes: dict[str, Any]
) -> None:
    path = tmp_path / "status.json"
    path.write_text(json.dumps(status(**changes)))
    assert read_status(path) is None


def test_a_missing_or_unreadable_status_is_none(tmp_path: Path) -> None:
    assert read_status(tmp_path / "missing.json") is None
    (tmp_path / "half.json").write_text('{"ok": tr')
    assert read_status(tmp_path / "half.json") is None
