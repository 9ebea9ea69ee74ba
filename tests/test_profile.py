"""perf.profile: real captures, the notes for profilers that cannot run, the command line.

Where a profiler is missing or cannot attach here, the tests assert the "could not
capture" note instead of skipping.
"""

from __future__ import annotations

import io
import json
import os
import re
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from perf.profile import (
    ROOT,
    CaptureOptions,
    _run,
    differential,
    find_pyspy,
    profile_run,
)
from perf.profiling.profiles import load_memray_stats, load_speedscope, speedscope_problems
from perf.rundir import Artifact

NO_PROFILERS = CaptureOptions(memray=False, pyspy=False, settle=False)


def fake_tool(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def listed_files_exist(run_dir: Path, artifacts: tuple[Artifact, ...]) -> None:
    for artifact in artifacts:
        assert (run_dir / artifact.path).is_file(), artifact
        assert (run_dir / artifact.path).stat().st_size > 0, artifact


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
    result = profile_run(
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


def test_invalid_speedscope_is_not_listed(tmp_path: Path) -> None:
    pyspy = fake_tool(
        tmp_path,
        "py-spy",
        """
        import json, subprocess, sys
        args = sys.argv[1:]
        out = args[args.index("-o") + 1]
        subprocess.run(args[args.index("--") + 1 :], check=True)
        with open(out, "w") as f:
            json.dump({"profiles": "nope"}, f)
        """,
    )
    options = CaptureOptions(memray=False, settle=False, pyspy_path=pyspy, cpu_seconds=0.0)
    result = profile_run(
        tmp_path / "run", ["data"], ["light"], options=options, stream=io.StringIO()
    )
    assert result.captures[0].speedscope is None
    assert any("speedscope's schema rejects it" in n for n in result.notes)
    assert any("no valid SVG" in n for n in result.notes)
    assert [a.kind for a in result.artifacts] == ["json"]  # the manifest only


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
    result = profile_run(
        tmp_path / "run", ["core"], ["light"], options=options, stream=io.StringIO()
    )
    (note,) = result.notes
    assert "core/light: could not capture memray profiles" in note
    assert "pip install -e '.[profile]'" in note
    assert result.captures[0].memray_stats is None


def test_a_hanging_step_is_killed(tmp_path: Path) -> None:
    with open(tmp_path / "log", "w") as log:
        step = _run(
            [sys.executable, "-c", "import time; time.sleep(30)"], tmp_path, os.environ, 0.5, log
        )
    assert not step.ok and step.returncode is None
    assert "timed out" in step.output


def test_options_are_checked() -> None:
    with pytest.raises(ValueError):
        CaptureOptions(settle_batches=4, settle_warmup=2)
    with pytest.raises(ValueError):
        CaptureOptions(pyspy_rate_hz=0)


def test_differential_same_tree_links_both_sides(tmp_path: Path) -> None:
    options = CaptureOptions(native=False, diff_seconds=0.3, flamegraphs=False)
    result = differential(
        tmp_path, "light", "core", ROOT, ROOT, options=options, stream=io.StringIO(), top=5
    )
    listed_files_exist(tmp_path, result.artifacts)
    assert (tmp_path / "profiles/diff/core-light/diff.json").is_file()
    if result.cpu is None:
        assert any("py-spy" in n for n in result.notes)
    else:
        assert 0 < len(result.cpu.rows) <= 5
        row = result.cpu.rows[0]
        assert row.base_link.startswith("profiles/diff/core-light/base/pyspy.svg?s=")
        assert row.head_link.startswith("profiles/diff/core-light/head/pyspy.svg?s=")
    if result.alloc is None:
        assert any("memray" in n for n in result.notes)
    else:
        # without flame graphs (to keep this test short) rows link the stats files
        assert result.alloc.base_flamegraph.endswith("base/memray-stats.json")
        assert result.alloc.rows


def test_cli_profiles_into_a_new_run_folder(tmp_path: Path) -> None:
    """``python -m perf profile`` as a user runs it, small: one coordinator, light."""
    output = tmp_path / "results"
    proc = subprocess.run(
        [
            sys.executable, "-m", "perf", "profile", "--output", str(output),
            "--coordinators", "data", "--scenarios", "light", "--cpu-seconds", "0.3",
            "--settle-batches", "5", "--settle-events", "100",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (run_dir,) = [p for p in output.iterdir() if p.is_dir() and not p.is_symlink()]
    assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-z]+-profile", run_dir.name)
    assert (output / "latest").resolve() == run_dir.resolve()
    assert re.search(r"\[\s*\d+/\d+\] data/light memray run\s+elapsed", proc.stderr) or (
        "could not capture memray" in proc.stderr
    )
    manifest = json.loads((run_dir / "profiles/profile.json").read_text())
    (capture,) = manifest["captures"]
    artifacts = tuple(Artifact(**a) for a in capture["artifacts"])
    listed_files_exist(run_dir, artifacts)
    kinds = sorted(a.kind for a in artifacts)
    notes = "\n".join(manifest["notes"])
    if "memray" in notes:
        assert "pip install -e '.[profile]'" in notes
    else:
        assert kinds.count("flamegraph") == 3
        stats = load_memray_stats(run_dir / capture["memray_stats"])
        assert stats.allocations > 0 and capture["memory"]["allocations"] == stats.allocations
    if find_pyspy(CaptureOptions()) is None or "py-spy" in notes:
        assert "py-spy" in notes
    else:
        speedscope = run_dir / capture["speedscope"]
        assert speedscope_problems(json.loads(speedscope.read_text())) == []
        assert load_speedscope(speedscope).samples > 0
        assert "svg" in kinds
    assert capture["settle"] == "profiles/data-light/settle.json"
    gate = json.loads((run_dir / "profiles/memory_gate.json").read_text())
    assert gate["verdict"] == "pass"
    assert gate["leaks"][0]["subject"] == "data/light"


def test_cli_rejects_bad_options(tmp_path: Path) -> None:
    from perf.profile import main

    assert main(["--run-dir", str(tmp_path), "--scenarios", "galactic"]) == 2
    assert main(["--run-dir", str(tmp_path), "--differential"]) == 2
    with pytest.raises(SystemExit):
        main(["--tree", str(tmp_path)])  # not a source tree
