"""Every suite script, run as a user runs it, with the tiny smoke set.

The four scripts run in parallel subprocesses with minimal pyperf settings; the files they
write must load with pyperf, hold every requested coordinator and metric, and carry the
metadata the gate relies on. No timing is asserted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyperf
import pytest

from perf.measure.sidecar import summary_path
from perf.workload.cases import SUITES, select_cases
from perf.workload.metrics import METRICS, Storage

ROOT = Path(__file__).resolve().parent.parent
COORDINATORS = ("data", "core", "reference")

# Per suite: pyperf options. The daemon suite calibrates its loops and has 2 workers of 2
# values after 1 warm-up each, to check that calibration and warm-up calls are not recorded.
PYPERF_OPTIONS: dict[str, tuple[str, ...]] = {
    "daemon_performance": ("-p", "2", "-n", "2", "-w", "1", "--min-time", "0.001"),
    "load_testing": ("-p", "1", "-n", "1", "-w", "1", "-l", "1"),
    "memory_profiling": ("-p", "1", "-n", "1", "-w", "0", "-l", "1"),
    "scalability_testing": ("--debug-single-value",),
}

TIME_RUN_KEYS = (
    "crucible_commit",
    "crucible_dirty",
    "crucible_machine",
    "crucible_cpu_model",
    "crucible_load_avg_before",
    "crucible_python",
    "crucible_scenario",
    "crucible_events",
    "crucible_seed",
    "crucible_coordinator",
    "python_version",
    "cpu_model_name",
)
METRIC_RUN_KEYS = (*TIME_RUN_KEYS[:-2], "crucible_load_avg_after", "loops", "crucible_worker")


def command(suite: str, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        str(ROOT / "perf" / "measure" / f"bench_{suite}.py"),
        "--set",
        "smoke",
        "--coordinator",
        ",".join(COORDINATORS),
        "-o",
        str(out),
        "--quiet",
        *PYPERF_OPTIONS[suite],
        *extra,
    ]


def run_all(outdir: Path) -> dict[str, Path]:
    procs: dict[str, tuple[subprocess.Popen[str], Path]] = {}
    for suite in SUITES:
        out = outdir / f"{suite}.json"
        procs[suite] = (
            subprocess.Popen(
                command(suite, out),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                cwd=outdir,
            ),
            out,
        )
    failures = []
    for suite, (proc, _) in procs.items():
        text, _ = proc.communicate(timeout=120)
        if proc.returncode != 0:
            failures.append(f"{suite} exited {proc.returncode}:\n{text}")
    assert not failures, "\n\n".join(failures)
    return {suite: out for suite, (_, out) in procs.items()}


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return run_all(tmp_path_factory.mktemp("smoke"))


def load(path: Path) -> pyperf.BenchmarkSuite:
    return pyperf.BenchmarkSuite.load(str(path))


@pytest.mark.parametrize("suite", SUITES)
def test_every_coordinator_and_metric_is_a_benchmark(results: dict[str, Path], suite: str) -> None:
    names = set(load(results[suite]).get_benchmark_names())
    cases = select_cases(suite, "smoke", COORDINATORS)
    assert {c.label for c in cases} == set(COORDINATORS)
    expected = {
        c.benchmark(m)
        for c in cases
        for m in c.definition.metrics
        if METRICS[m].storage is Storage.BENCHMARK
    }
    missing = expected - names
    # A sweep that failed at its first step has no maximum (nothing > 0 to store); the
    # smoke sweep starts far below any coordinator's limit, so everything must be there.
    assert not missing, f"missing benchmarks: {sorted(missing)}"
    assert names == expected


@pytest.mark.parametrize("suite", SUITES)
def test_metadata_on_every_run(results: dict[str, Path], suite: str) -> None:
    for bench in load(results[suite]):
        is_time = bench.get_name().endswith(".time")
        keys = TIME_RUN_KEYS if is_time else METRIC_RUN_KEYS
        for run in bench.get_runs():
            meta = run.get_metadata()
            if is_time and not run.values:
                continue  # a calibration run
            missing = [k for k in keys if k not in meta]
            assert not missing, f"{bench.get_name()} run lacks {missing}"
            assert meta["crucible_dirty"] in (0, 1)
            assert len(str(meta["crucible_machine"])) == 16
            if not is_time:
                metric = bench.get_name().rsplit(".", 1)[1]
                assert meta["unit"] == METRICS[metric].unit


def test_zero_capable_metrics_are_in_run_metadata(results: dict[str, Path]) -> None:
    suite = load(results["load_testing"])
    bench = suite.get_benchmark("load_testing.tiny_burst_faults.core.success_rate_pct")
    meta = bench.get_runs()[0].get_metadata()
    for name in ("error_rate_pct", "retried", "dead_lettered", "dropped", "throughput_eps"):
        assert isinstance(meta[f"crucible_{name}"], int | float)
    sweep = load(results["scalability_testing"])
    meta = sweep.get_benchmark("scalability_testing.tiny_rate_sweep.data.knee_eps")
    run_meta = meta.get_runs()[0].get_metadata()
    assert run_meta["crucible_binding"] in ("none", "cpu", "queue", "memory", "io_wait")
    assert "crucible_limit_reached" in run_meta


def test_calibration_and_warmups_are_not_recorded(results: dict[str, Path]) -> None:
    suite = load(results["daemon_performance"])
    for label in COORDINATORS:
        time_bench = suite.get_benchmark(f"daemon_performance.tiny.{label}.time")
        value_runs = [r for r in time_bench.get_runs() if r.values]
        assert len(value_runs) == 2 and all(len(r.values) == 2 for r in value_runs)
        assert any(not r.values for r in time_bench.get_runs())  # the calibration run
        p99 = suite.get_benchmark(f"daemon_performance.tiny.{label}.latency_p99")
        assert [len(r.values) for r in p99.get_runs()] == [2, 2]
        assert {r.get_metadata()["loops"] for r in p99.get_runs()} == {
            r.get_metadata()["loops"] for r in value_runs
        }


@pytest.mark.parametrize("suite", SUITES)
def test_pyperf_cli_reads_the_files(results: dict[str, Path], suite: str) -> None:
    path = str(results[suite])
    for args in (["stats", path], ["compare_to", path, path]):
        proc = subprocess.run(
            [sys.executable, "-m", "pyperf", *args], capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_summary_beside_each_file(results: dict[str, Path]) -> None:
    for suite, path in results.items():
        doc: dict[str, Any] = json.loads(summary_path(path).read_text(encoding="utf-8"))
        assert doc["schema_version"] == 1 and doc["suite"] == suite
        assert doc["pyperf_file"] == path.name
        invocation = doc["invocations"][0]
        assert invocation["commit"] and "fingerprint" in invocation["machine"]
        assert len(invocation["load_avg_before"]) == 3 and len(invocation["load_avg_after"]) == 3
        for entry in doc["benchmarks"].values():
            assert entry["samples"], entry["case"]
    memory = json.loads(summary_path(results["memory_profiling"]).read_text(encoding="utf-8"))
    leak = memory["benchmarks"]["memory_profiling.tiny_leak.core"]["samples"][0]
    assert leak["rss_series"] and leak["leak_runs"][0]["retained_bytes"]
    assert "leak_slope" in leak["values"] and "leak_slope_ci_high" in leak["values"]
    sweep = json.loads(summary_path(results["scalability_testing"]).read_text(encoding="utf-8"))
    points = sweep["benchmarks"]["scalability_testing.tiny_rate_sweep.reference"]["samples"][0][
        "points"
    ]
    assert [p["value"] for p in points] == [2000.0, 4000.0]


def test_append_adds_runs_and_samples(tmp_path: Path) -> None:
    out = tmp_path / "a.json"
    for _ in range(2):
        proc = subprocess.run(
            [
                sys.executable,
                str(ROOT / "perf" / "measure" / "bench_daemon_performance.py"),
                "--set=smoke",
                "--coordinator=reference",
                "--debug-single-value",
                "--quiet",
                "--append",
                str(out),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": ""},
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
    suite = load(out)
    assert suite.get_benchmark("daemon_performance.tiny.reference.time").get_nrun() == 2
    assert suite.get_benchmark("daemon_performance.tiny.reference.rss_peak").get_nrun() == 2
    doc = json.loads(summary_path(out).read_text(encoding="utf-8"))
    assert len(doc["invocations"]) == 2
    assert len(doc["benchmarks"]["daemon_performance.tiny.reference"]["samples"]) == 2


def test_bad_coordinator_exits_2_before_measuring(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "perf" / "measure" / "bench_daemon_performance.py"),
            "--set=smoke",
            "--coordinator=no_such_module:Factory",
            "-o",
            str(tmp_path / "x.json"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "no_such_module" in proc.stderr
    assert not (tmp_path / "x.json").exists()
