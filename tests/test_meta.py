from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import pytest

from perf.measure.meta import (
    MachineInfo,
    cpu_model,
    default_affinity,
    git_state,
    load_average,
    machine_info,
)


def test_fingerprint_is_stable_and_depends_on_every_field() -> None:
    info = MachineInfo(
        cpu_model="AMD EPYC",
        cpu_count=2,
        memory_total_bytes=8 * 2**30,
        os="Linux 6.1",
        python_implementation="CPython",
        python_version="3.11.7",
    )
    assert info.fingerprint == dataclasses.replace(info).fingerprint
    assert len(info.fingerprint) == 16 and int(info.fingerprint, 16) >= 0
    changed = [
        dataclasses.replace(info, cpu_model="Intel"),
        dataclasses.replace(info, cpu_count=4),
        dataclasses.replace(info, memory_total_bytes=1),
        dataclasses.replace(info, os="Linux 6.2"),
        dataclasses.replace(info, python_implementation="PyPy"),
        dataclasses.replace(info, python_version="3.12.0"),
    ]
    assert len({c.fingerprint for c in changed} | {info.fingerprint}) == 7
    assert info.as_dict()["fingerprint"] == info.fingerprint


def test_this_machine() -> None:
    info = machine_info()
    assert info.cpu_count >= 1 and info.memory_total_bytes > 0
    assert info.fingerprint == machine_info().fingerprint
    assert cpu_model()
    one, five, fifteen = load_average()
    assert min(one, five, fifteen) >= 0
    affinity = default_affinity()
    assert affinity is None or affinity.isdigit()


def git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


def test_git_state_commit_and_dirty_flag(tmp_path: Path) -> None:
    assert git_state(tmp_path).commit == "unknown"
    git(tmp_path, "init", "-q")
    (tmp_path / "a.py").write_text("x = 1\n", encoding="utf-8")
    git(tmp_path, "add", "a.py")
    git(tmp_path, "commit", "-q", "-m", "one")
    clean = git_state(tmp_path)
    assert len(clean.commit) == 40 and not clean.dirty
    assert clean.short == clean.commit[:10]
    (tmp_path / "a.py").write_text("x = 2\n", encoding="utf-8")
    assert git_state(tmp_path).dirty
    git(tmp_path, "checkout", "-q", "a.py")
    (tmp_path / "new.py").write_text("", encoding="utf-8")
    assert git_state(tmp_path).dirty  # an untracked file changes what is measured too


@pytest.mark.parametrize("seconds,text", [(0, "0:00"), (61.4, "1:01"), (3725, "1:02:05")])
def test_format_duration(seconds: float, text: str) -> None:
    from perf.progress import format_duration

    assert format_duration(seconds) == text
