"""perf/profiling/target.py: the ``run`` command as the captures start it, in a process of
its own, and what its status file says of where the profiled time went."""

from __future__ import annotations

import importlib.util
import json
import runpy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from crucible import Stats
from perf.paths import REPO_ROOT
from perf.profiling.runner import TARGET, read_status, runner_code, tree_env

MEMRAY = importlib.util.find_spec("memray") is not None


def run_target(tmp_path: Path, coordinator: str, *options: str) -> dict[str, Any]:
    """``run`` on the light scenario, started as perf.profiling.capture starts it: by path
    through ``runner_code``, in the tree with the tree first on ``PYTHONPATH``."""
    status = tmp_path / "status.json"
    proc = subprocess.run(
        [
            sys.executable, "-c", runner_code(), "run", "--coordinator", coordinator,
            "--scenario", "light", *options, "--status-file", str(status),
        ],
        cwd=REPO_ROOT,
        env=tree_env(REPO_ROOT),
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    data: dict[str, Any] = json.loads(status.read_text(encoding="utf-8"))
    assert data["ok"] is True
    assert read_status(status) is not None  # what the captures read of it
    return data


def test_repeated_runs_reuse_the_inputs_built_once(tmp_path: Path) -> None:
    status = run_target(tmp_path, "core", "--min-seconds", "0.5")
    assert status["runs"] > 1
    assert status["inputs_built"] == 1
    assert len(status["wall_s"]) == status["runs"]
    assert status["setup_s"] > 0 and status["workload_s"] > 0 and status["prepared_s"] == 0
    # Generous: about 0.01 on a quiet machine (building inputs once, then 0.5 s of runs).
    assert status["setup_share"] < 0.2
    assert status["setup_share"] == pytest.approx(
        status["setup_s"] / (status["setup_s"] + status["workload_s"])
    )


def test_runs_that_retried_get_fresh_inputs_each(tmp_path: Path) -> None:
    # Each run increments its events' retry_count in place: reusing them would publish
    # events already retried.
    status = run_target(tmp_path, "tests.gate_fixtures:RetryingCoordinator", "--min-seconds", "0.3")
    assert status["runs"] > 1
    assert status["inputs_built"] == status["runs"]


def test_memray_runs_each_get_inputs_built_before_tracking(tmp_path: Path) -> None:
    # The tests session installs the profile extra: memray must be there, never skipped.
    assert MEMRAY, "memray is not installed: nox -s tests installs .[profile]"
    capture = tmp_path / "memray.bin"
    status = run_target(tmp_path, "core", "--repeat", "2", "--memray-output", str(capture))
    assert capture.is_file()
    assert status["runs"] == 2 and status["inputs_built"] == 2
    # Built before tracking started: none of the profile is setup.
    assert status["setup_s"] == 0 and status["setup_share"] == 0
    assert status["prepared_s"] > 0 and status["workload_s"] > 0


class Service:
    def __init__(self, healthy: bool) -> None:
        self.ok = healthy

    def healthy(self) -> bool:
        return self.ok


@pytest.mark.parametrize(
    ("stats", "healthy", "clean"),
    [
        (Stats(5, 5, 0, 0, 0, 0), True, True),
        (Stats(5, 5, 0, 0, 0, 0, retried=1), True, False),
        (Stats(5, 4, 1, 0, 0, 0), True, False),
        (Stats(5, 4, 0, 1, 0, 0), True, False),
        (Stats(5, 4, 0, 0, 1, 0), True, False),
        (Stats(5, 5, 0, 0, 0, 0), False, False),
    ],
)
def test_a_run_is_clean_only_without_retries_failures_or_crashed_services(
    stats: Stats, healthy: bool, clean: bool
) -> None:
    target = runpy.run_path(str(TARGET), run_name="profile_target")
    assert target["_clean"](stats, [Service(True), Service(healthy)]) is clean
