"""Run folders: the ``latest`` pointer never replaces what the gate did not make."""

from __future__ import annotations

from pathlib import Path

from perf.rundir import latest_blocked, new_run_dir, update_latest


def test_a_real_folder_at_latest_is_left_alone_and_reported(tmp_path: Path) -> None:
    run = new_run_dir(tmp_path, "20260101T000000Z-abc")
    latest = tmp_path / "latest"
    latest.mkdir()
    (latest / "mine.txt").write_text("keep me\n")
    assert update_latest(tmp_path, run) == "blocked"
    assert latest.is_dir() and not latest.is_symlink()
    assert (latest / "mine.txt").read_text() == "keep me\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [run.name, "latest"]
    message = latest_blocked(tmp_path)
    assert str(latest) in message and "move it away" in message


def test_a_file_left_at_latest_by_the_gate_is_replaced_by_the_link(tmp_path: Path) -> None:
    old = new_run_dir(tmp_path, "20260101T000000Z-abc")
    new = new_run_dir(tmp_path, "20260102T000000Z-abc")
    (tmp_path / "latest").write_text(old.name + "\n")
    assert update_latest(tmp_path, new) == "symlink"
    assert (tmp_path / "latest").resolve() == new.resolve()


def test_two_runs_in_the_same_second_get_their_own_folders(tmp_path: Path) -> None:
    first = new_run_dir(tmp_path, "20260101T000000Z-abc")
    second = new_run_dir(tmp_path, "20260101T000000Z-abc")
    assert first != second and first.is_dir() and second.is_dir()
    assert second.name == "20260101T000000Z-abc-2"
