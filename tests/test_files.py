"""The gate's one JSON writer: whole files or none, flushed to disk, no stray temp files."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from perf.files import dumps, write_json


def test_written_json_reads_back_with_sorted_keys_and_a_final_newline(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "doc.json"
    write_json(path, {"b": 1, "a": [1.5, None], "p": Path("x/y")})
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n")
    assert text.index('"a"') < text.index('"b"')
    assert json.loads(text) == {"a": [1.5, None], "b": 1, "p": "x/y"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_data_that_is_not_json_leaves_the_old_file_and_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "doc.json"
    write_json(path, {"old": True})
    with pytest.raises(ValueError):
        write_json(path, {"new": float("nan")})
    assert json.loads(path.read_text(encoding="utf-8")) == {"old": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["doc.json"]


def test_a_failure_after_the_temp_file_exists_removes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "doc.json"
    write_json(path, {"old": True})

    def broken_replace(src: str, dst: str) -> None:
        raise RuntimeError("not an OSError")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(RuntimeError):
        write_json(path, {"new": True})
    assert json.loads(path.read_text(encoding="utf-8")) == {"old": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["doc.json"]


def test_the_text_is_flushed_to_disk_before_it_replaces_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        calls.append("fsync")
        real_fsync(fd)

    def replace(src: str, dst: str) -> None:
        calls.append("replace")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    write_json(tmp_path / "doc.json", [1])
    assert calls == ["fsync", "replace"]


def test_dumps_refuses_nan() -> None:
    with pytest.raises(ValueError):
        dumps({"x": float("inf")})
