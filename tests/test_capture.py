"""perf.profiling.capture: real captures, and the notes for profilers that cannot run.

Where a profiler is missing or cannot attach here, the tests assert the "could not
capture" note instead of skipping.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from perf.profiling.capture import CaptureOptions, capture_profiles
from tests.capture_fixtures import fake_tool


def test_pyspy_without_ptrace_gives_the_grant_note(tmp_path: Path) -> None:
    pyspy = fake_tool(
        tmp_path,
        "py-spy",
        """
        import sys
        print("Error: Failed to open process: Permission Denied (os error 13)", file=sys.stderr)
        sys.exit(1)
        """,
    )
    options = CaptureOptions(memray=False, settle=False, pyspy_path=pyspy)
    result = capture_profiles(
        tmp_path / "run", ["data"], ["light"], options=options, stream=io.StringIO()
    )
    (capture,) = result.captures
    assert capture.speedscope is None and capture.svg is None
    assert not [a for a in result.artifacts if a.kind in ("speedscope", "svg")]
    assert len(result.notes) == 2  # speedscope and svg, each said once
    for note in result.notes:
        assert "data/light: could not capture" in note
        assert "--cap-add SYS_PTRACE" in note
    folder = tmp_path / "run" / capture.folder
    assert not list(folder.glob("pyspy*"))  # nothing left that looks captured


def test_memray_missing_gives_the_install_note(tmp_path: Path) -> None:
    python = fake_tool(
        tmp_path,
        "python",
        """
        import sys
        print("ModuleNotFoundError: No module named 'memray'", file=sys.stderr)
        sys.exit(1)
        """,
    )
    options = CaptureOptions(pyspy=False, settle=False, python=python)
    result = capture_profiles(
        tmp_path / "run", ["core"], ["light"], options=options, stream=io.StringIO()
    )
    (note,) = result.notes
    assert "core/light: could not capture memray profiles" in note
    assert "pip install -e '.[profile]'" in note
    assert result.captures[0].memray_stats is None


def test_options_are_checked() -> None:
    with pytest.raises(ValueError):
        CaptureOptions(settle_batches=4, settle_warmup=2)
    with pytest.raises(ValueError):
        CaptureOptions(pyspy_rate_hz=0)
