from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pyperf
import pytest

from perf.measure.sidecar import (
    SUMMARY_SCHEMA_VERSION,
    Recorder,
    build_summary,
    main,
    merge_samples,
    metric_runs,
    read_samples,
    summary_path,
)
from perf.workload.cases import select_cases

CASE = select_cases("daemon_performance", "quick", ["data"], ["light"])[0]
COMMON: dict[str, str | int | float] = {"crucible_commit": "abc", "crucible_dirty": 0}


def args(**overrides: Any) -> argparse.Namespace:
    base: dict[str, Any] = {
        "calibrate_loops": False,
        "recalibrate_loops": False,
        "calibrate_warmups": False,
        "recalibrate_warmups": False,
        "warmups": 1,
    }
    base.update(overrides)
    return argparse.Namespace(**base)


def record(worker: str, **values: float | None) -> dict[str, Any]:
    full: dict[str, float | None] = {
        "latency_p50": 0.001,
        "latency_p95": 0.002,
        "latency_p99": 0.003,
        "rss_peak": 3e7,
        "memory_uss": 2e7,
        "cpu_pct": 99.0,
        "success_rate_pct": 100.0,
        "error_rate_pct": 0.0,
        "retried": 0.0,
        "dead_lettered": 0.0,
        "dropped": 0.0,
        "throughput_eps": 1e5,
        "time": 0.001,
    }
    full.update(values)
    return {"bench": CASE.name, "worker": worker, "loops": 8, "values": full, "labels": {}}


def test_recorder_skips_calibration_and_warmups(tmp_path: Path) -> None:
    rec = Recorder(args(warmups=2), tmp_path)
    assert [rec.begin("a") for _ in range(4)] == [False, False, True, True]
    assert rec.begin("b") is False  # counted per benchmark
    for flag in ("calibrate_loops", "recalibrate_loops", "calibrate_warmups"):
        calibrating = Recorder(args(warmups=0, **{flag: True}), tmp_path)
        assert not any(calibrating.begin("a") for _ in range(5))
    rec0 = Recorder(args(warmups=0), tmp_path)
    assert rec0.begin("a")
    rec0.write({"bench": "a", "values": {"x": 1.0}})
    rec0.write({"bench": "a", "values": {"x": 2.0}})
    got = read_samples(tmp_path / "samples.jsonl")
    assert [r["values"]["x"] for r in got] == [1.0, 2.0]
    assert {r["worker"] for r in got} == {rec0.worker}


def test_read_samples_refuses_a_corrupt_line(tmp_path: Path) -> None:
    path = tmp_path / "samples.jsonl"
    path.write_text('{"bench": "a"}\n{"bench": "a", "val', encoding="utf-8")
    with pytest.raises(ValueError, match=":2: corrupt"):
        read_samples(path)
    assert read_samples(tmp_path / "missing.jsonl") == []


def test_metric_runs_one_run_per_worker_with_zero_capable_metrics_in_metadata() -> None:
    records = [
        record("w1", latency_p99=0.004, error_rate_pct=0.0, retried=2.0),
        record("w1", latency_p99=0.006, error_rate_pct=1.0, retried=4.0),
        record("w2", latency_p99=0.005, success_rate_pct=0.0),
        {**record("w3"), "bench": "another.bench.data"},
    ]
    runs = metric_runs(CASE, records, COMMON)
    assert set(runs) == {
        "latency_p50",
        "latency_p95",
        "latency_p99",
        "rss_peak",
        "memory_uss",
        "cpu_pct",
        "success_rate_pct",
    }
    p99 = runs["latency_p99"]
    assert [r.values for r in p99] == [(0.004, 0.006), (0.005,)]
    meta = p99[0].get_metadata()
    assert meta["name"] == "daemon_performance.light.data.latency_p99"
    assert meta["unit"] == "second" and meta["loops"] == 8
    assert meta["crucible_error_rate_pct"] == 0.5
    assert meta["crucible_retried"] == 3.0
    assert meta["crucible_commit"] == "abc" and meta["crucible_case"] == "light"
    assert meta["crucible_worker"] == "w1" and meta["duration"] == 0.0
    # A success rate of 0 % is measured but cannot be a pyperf value.
    success = runs["success_rate_pct"]
    assert [r.values for r in success] == [(100.0, 100.0)]
    assert runs["rss_peak"][0].get_metadata()["unit"] == "byte"


def test_merge_into_a_suite_and_dump_loads_again(tmp_path: Path) -> None:
    time_run = pyperf.Run(
        [0.001, 0.0011],
        metadata={"name": CASE.benchmark("time"), "loops": 8, "unit": "second"},
        collect_metadata=False,
    )
    suite = pyperf.BenchmarkSuite([pyperf.Benchmark([time_run])])
    added = merge_samples(suite, [CASE], [record("w1"), record("w2")], COMMON)
    assert CASE.benchmark("latency_p99") in added
    assert suite.get_benchmark(CASE.benchmark("rss_peak")).get_nrun() == 2
    # Appending a second batch adds runs to the same benchmarks.
    merge_samples(suite, [CASE], [record("w3")], COMMON)
    assert suite.get_benchmark(CASE.benchmark("rss_peak")).get_nrun() == 3
    path = tmp_path / "out.json"
    suite.dump(str(path))
    loaded = pyperf.BenchmarkSuite.load(str(path))
    assert CASE.benchmark("cpu_pct") in loaded.get_benchmark_names()


def test_summary_path() -> None:
    assert summary_path("/x/daemon_performance.json") == Path("/x/daemon_performance.crucible.json")
    assert summary_path("out") == Path("out.crucible.json")


def test_build_summary_appends_and_refuses_other_versions() -> None:
    doc = build_summary("daemon_performance", [CASE], [record("w1")], {"commit": "a"}, None)
    assert doc["schema_version"] == SUMMARY_SCHEMA_VERSION
    entry = doc["benchmarks"][CASE.name]
    assert entry["metrics"]["error_rate_pct"]["storage"] == "metadata"
    assert entry["metrics"]["latency_p99"]["benchmark"] == CASE.benchmark("latency_p99")
    assert len(entry["samples"]) == 1 and entry["samples"][0]["invocation"] == 0
    again = build_summary(
        "daemon_performance", [CASE], [record("w2")], {"commit": "b"}, json.loads(json.dumps(doc))
    )
    assert len(again["invocations"]) == 2
    assert [s["invocation"] for s in again["benchmarks"][CASE.name]["samples"]] == [0, 1]
    with pytest.raises(ValueError, match="schema_version"):
        build_summary("x", [CASE], [], {}, {**doc, "schema_version": 99})


@pytest.fixture
def fresh_runner(monkeypatch: pytest.MonkeyPatch) -> None:
    """main makes a pyperf Runner, of which pyperf allows one per process."""
    monkeypatch.setattr(pyperf.Runner, "_created", set())


@pytest.mark.usefixtures("fresh_runner")
def test_main_lists_the_selected_cases(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--set", "quick", "--coordinator", "data", "--case", "light", "--list"]
    assert main("daemon_performance", argv) == 0
    assert capsys.readouterr().out == f"{CASE.name}: {', '.join(CASE.definition.metrics)}\n"


@pytest.mark.usefixtures("fresh_runner")
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--case", "no_such_case"], "no_such_case"),
        (["--worker", "-l", "1", "--case", "light"], "a worker needs --sidecar"),
    ],
)
def test_main_refuses_with_status_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main("daemon_performance", ["--set", "quick", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("daemon_performance: ") and message in err
