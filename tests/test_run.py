"""The orchestrator: run folders, latest, pruning, and the CLI end to end (smoke set)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from perf.run import build_parser
from perf.rundir import RUN_DIR_RE, prune_runs, run_dir_name, update_latest

ROOT = Path(__file__).resolve().parent.parent


def perf_run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "perf", "run", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )


def test_run_dir_name() -> None:
    moment = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    name = run_dir_name(moment, "a0d44b7c1e")
    assert name == "20260102T030405Z-a0d44b7c1e"
    assert RUN_DIR_RE.match(name)
    assert run_dir_name(moment, "unknown").endswith("-unknown")


def make_run(output: Path, name: str) -> Path:
    path = output / name
    path.mkdir(parents=True)
    (path / "manifest.json").write_text("{}", encoding="utf-8")
    return path


def test_prune_keeps_the_newest_and_touches_nothing_else(tmp_path: Path) -> None:
    names = [f"2026010{i}T000000Z-abc" for i in range(1, 6)]
    for name in names:
        make_run(tmp_path, name)
    (tmp_path / "notes").mkdir()
    (tmp_path / "20250101T000000Z-nomanifest").mkdir()
    removed = prune_runs(tmp_path, 2, tmp_path / names[-1])
    assert removed == names[:3]
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == ["20250101T000000Z-nomanifest", *names[3:], "notes"]


def test_latest_points_at_the_newest_run(tmp_path: Path) -> None:
    first = make_run(tmp_path, "20260101T000000Z-abc")
    second = make_run(tmp_path, "20260102T000000Z-abc")
    assert update_latest(tmp_path, first) == "symlink"
    assert update_latest(tmp_path, second) == "symlink"
    latest = tmp_path / "latest"
    assert latest.is_symlink() and os.readlink(latest) == second.name
    assert (latest / "manifest.json").is_file()


def test_latest_falls_back_to_a_text_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = make_run(tmp_path, "20260101T000000Z-abc")

    def no_symlinks(*args: object, **kwargs: object) -> None:
        raise OSError("symlinks not supported")

    monkeypatch.setattr(Path, "symlink_to", no_symlinks)
    assert update_latest(tmp_path, run) == "file"
    assert (tmp_path / "latest").read_text(encoding="utf-8").strip() == run.name


def test_help_lists_the_options() -> None:
    text = build_parser().format_help()
    for option in (
        "--quick",
        "--full",
        "--suites",
        "--coordinators",
        "--output",
        "--keep",
        "--fast",
        "--rigorous",
    ):
        assert option in text
    proc = perf_run("--help")
    assert proc.returncode == 0 and "--coordinators" in proc.stdout


def test_bad_arguments_exit_2(tmp_path: Path) -> None:
    proc = perf_run("--suites", "nope", "--output", str(tmp_path))
    assert proc.returncode == 2 and "accepted" in proc.stderr
    proc = perf_run("--keep", "0")
    assert proc.returncode == 2


def test_smoke_run_writes_results_manifest_and_latest(tmp_path: Path) -> None:
    out = tmp_path / "results"
    proc = perf_run(
        "--set",
        "smoke",
        "--suites",
        "daemon_performance",
        "--coordinators",
        "reference,data",
        "--output",
        str(out),
        "--keep",
        "1",
    )
    assert proc.returncode == 0, proc.stderr
    assert "[1/2] daemon_performance.tiny.reference" in proc.stderr
    assert "elapsed" in proc.stderr and "left" in proc.stderr
    run_dir = (out / "latest").resolve()
    assert RUN_DIR_RE.match(run_dir.name)
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["schema_version"] == 1 and manifest["exit_status"] == 0
    assert manifest["scripts"][0]["status"] == "ok"
    assert manifest["scripts"][0]["exit_status"] == 0
    assert {c["benchmark"] for c in manifest["cases"]} == {
        "daemon_performance.tiny.reference",
        "daemon_performance.tiny.data",
    }
    assert len(manifest["machine"]["fingerprint"]) == 16
    assert manifest["commit"] and isinstance(manifest["dirty"], bool)
    files = manifest["files"]["daemon_performance"]
    for kind in ("pyperf", "summary", "log"):
        assert (run_dir / files[kind]).is_file()
    # A second run prunes the first (--keep 1) and moves latest.
    again = perf_run(
        "--set",
        "smoke",
        "--suites",
        "daemon_performance",
        "--coordinators",
        "reference",
        "--output",
        str(out),
        "--keep",
        "1",
    )
    assert again.returncode == 0, again.stderr
    runs = [p for p in out.iterdir() if RUN_DIR_RE.match(p.name)]
    assert len(runs) == 1 and runs[0] != run_dir and (out / "latest").resolve() == runs[0]


CRASHING = """
from crucible._reference import ReferenceCoordinator


class Crashing(ReferenceCoordinator):
    name = "crashing"

    async def publish(self, event):
        raise RuntimeError("this coordinator crashes on publish")
"""


def test_a_crashed_script_is_recorded_and_exits_2(tmp_path: Path) -> None:
    (tmp_path / "crashing_coordinator.py").write_text(CRASHING, encoding="utf-8")
    out = tmp_path / "results"
    proc = perf_run(
        "--set",
        "smoke",
        "--suites",
        "daemon_performance,load_testing",
        "--coordinators",
        "crashing_coordinator:Crashing",
        "--output",
        str(out),
        env={"PYTHONPATH": str(tmp_path)},
    )
    assert proc.returncode == 2
    assert "crashed" in proc.stderr and "crashes on publish" in proc.stderr
    manifest = json.loads((out / "latest" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["exit_status"] == 2
    # Both scripts ran; each is recorded as crashed, none skipped.
    assert [s["status"] for s in manifest["scripts"]] == ["crashed", "crashed"]
    assert manifest["scripts"][0]["missing_benchmarks"] == [
        "daemon_performance.tiny.crashing_coordinator_Crashing.time"
    ]
