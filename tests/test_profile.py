"""perf.profile: the command line as a user runs it, and the manifest a profile run lists.

Where a profiler is missing or cannot attach here, the tests assert the "could not
capture" note instead of skipping.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from perf.paths import REPO_ROOT
from perf.profile import CaptureOptions, profile_run
from perf.profiling.capture import find_pyspy
from perf.profiling.profiles import load_memray_stats, load_speedscope, speedscope_problems
from perf.rundir import Artifact
from tests.capture_fixtures import fake_tool, listed_files_exist


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


def test_manifest_states_each_profiles_setup_share_as_its_run_measured(tmp_path: Path) -> None:
    """A stand-in py-spy runs the real target, keeps a copy of its status file and writes a
    valid profile; the manifest must carry the figures of that very run."""
    seen = tmp_path / "seen"
    seen.mkdir()
    pyspy = fake_tool(
        tmp_path,
        "py-spy",
        f"""
        import json, shutil, subprocess, sys
        args = sys.argv[1:]
        out = args[args.index("-o") + 1]
        subprocess.run(args[args.index("--") + 1 :], check=True)
        status = args[args.index("--status-file") + 1]
        fmt = "speedscope" if "-f" in args else "svg"
        shutil.copy(status, {str(seen)!r} + "/" + fmt + ".json")
        with open(out, "w") as f:
            if fmt == "svg":
                f.write("<svg></svg>")
            else:
                json.dump({{
                    "$schema": "https://www.speedscope.app/file-format-schema.json",
                    "shared": {{"frames": [{{"name": "run"}}]}},
                    "profiles": [{{
                        "type": "sampled", "name": "t", "unit": "seconds", "startValue": 0,
                        "endValue": 1, "samples": [[0]], "weights": [1],
                    }}],
                }}, f)
        """,
    )
    options = CaptureOptions(
        settle=False, flamegraphs=False, native=False, pyspy_path=pyspy, cpu_seconds=0.3
    )
    result = profile_run(
        tmp_path / "run", ["core"], ["light"], options=options, stream=io.StringIO()
    )
    manifest = json.loads((tmp_path / "run/profiles/profile.json").read_text())
    (capture,) = manifest["captures"]
    runs = capture["profiled_runs"]
    for fmt in ("speedscope", "svg"):
        status = json.loads((seen / f"{fmt}.json").read_text())
        assert status["inputs_built"] == 1 and status["runs"] > 1
        assert runs[fmt]["setup_share"] == status["setup_share"] < 0.2
        assert runs[fmt]["workload_s"] == status["workload_s"] > 0
        assert runs[fmt]["inputs_built"] == 1 and runs[fmt]["runs"] == status["runs"]
    assert result.captures[0].profiled_runs["svg"].setup_share == runs["svg"]["setup_share"]
    if "memray" in "\n".join(manifest["notes"]):
        assert "memray" not in runs
    else:
        assert runs["memray"]["runs"] == runs["memray"]["inputs_built"] == 1
        assert runs["memray"]["setup_share"] == 0 and runs["memray"]["prepared_s"] > 0


def test_cli_profiles_into_a_new_run_folder(tmp_path: Path) -> None:
    """``python -m perf profile`` as a user runs it, small: one coordinator, light."""
    output = tmp_path / "results"
    proc = subprocess.run(
        [
            sys.executable, "-m", "perf", "profile", "--output", str(output),
            "--coordinators", "data", "--scenarios", "light", "--cpu-seconds", "0.3",
            "--settle-batches", "5", "--settle-events", "100",
        ],
        cwd=REPO_ROOT,
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
