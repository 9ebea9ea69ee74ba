"""perf.profiling.runner: one step of a capture in a process of its own."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from perf.profiling.runner import run_step


def test_a_hanging_step_is_killed(tmp_path: Path) -> None:
    with open(tmp_path / "log", "w") as log:
        step = run_step(
            [sys.executable, "-c", "import time; time.sleep(30)"], tmp_path, os.environ, 0.5, log
        )
    assert not step.ok and step.returncode is None
    assert "timed out" in step.output
