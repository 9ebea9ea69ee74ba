"""The pyperf suites measured beside the gate's rounds: finding their run folder."""

from __future__ import annotations

from pathlib import Path

from perf.measure.suites import suites_dir


def test_the_suites_run_folder_is_found_through_latest(tmp_path: Path) -> None:
    assert suites_dir(tmp_path) is None
    run = tmp_path / "suites" / "20261126T000000Z-abc"
    run.mkdir(parents=True)
    latest = tmp_path / "suites" / "latest"
    latest.symlink_to(run.name, target_is_directory=True)
    assert suites_dir(tmp_path) == run.resolve()
    # Where symlinks fail, latest is a text file naming the folder.
    latest.unlink()
    latest.write_text(run.name + "\n")
    assert suites_dir(tmp_path) == run
