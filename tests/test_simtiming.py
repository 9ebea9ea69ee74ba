"""The simulator's timing of the quick set (perf.decide.simtiming): the stored fixture, and
its derivation from a run folder's samples and report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from perf.decide.simtiming import (
    FULL_ROUND_S,
    TIMING_FILE,
    derive_timing,
    load_timing,
)
from perf.workload.plan import gated_keys


def test_the_stored_timing_is_the_quick_sets_27_comparisons_and_a_full_rounds_cost() -> None:
    timing = load_timing()
    assert len(gated_keys(timing.plan)) == 27
    assert [c.bench for c in timing.cases if not c.gated] == [
        "daemon_performance.medium.core-daemon"
    ]
    full = timing.round_s + sum(c.seconds for c in timing.cases)
    assert full == pytest.approx(FULL_ROUND_S, abs=0.01)
    assert timing.date == "2026-12-08" and "HEAD~1" in timing.source
    # Memory figures vary by about 0.2 %, tracemalloc's by far less.
    assert 0.001 < timing.memory_sd(("daemon_performance.light.core", "rss_peak")) < 0.004
    assert timing.memory_sd(("memory_profiling.payload16k_events1000.core", "allocated")) < 1e-3


def _run(durations: bool) -> tuple[dict[str, object], dict[str, float | str]]:
    plan = [
        {"bench": "s.a.core", "paced": False, "traced": False, "repeats": 5, "warmup": True},
        {"bench": "s.b.core", "paced": True, "traced": False, "repeats": 1, "warmup": False},
    ]
    values = {
        side: {
            "s.a.core": {"time": [0.01, 0.011, 0.012, 0.01], "rss_peak": [1e7, 1e7, 1e7, 1e7]},
            "s.b.core": {"time": [0.2, 0.2], "latency_p99": [1e-3, 2e-3]},
        }
        for side in ("base", "head")
    }
    samples: dict[str, object] = {"plan": plan, "values": values}
    if durations:
        samples["durations_s"] = {
            side: {"s.a.core": [0.4, 0.5, 0.6, 0.5], "s.b.core": [0.3, 0.3]}
            for side in ("base", "head")
        }
    report: dict[str, float | str] = {
        "rounds": 4,
        "duration_s": 10.0,
        "started_utc": "2026-12-08T00:45:36Z",
    }
    return samples, report


def test_costs_are_fitted_to_the_runs_total_and_a_full_round() -> None:
    samples, report = _run(durations=False)
    report["duration_s"] = 10.8
    document = derive_timing(samples, report, source="test", full_round_s=3.0)
    costs = {c["bench"]: c["seconds"] for c in document["cases"]}
    assert document["round_s"] + sum(costs.values()) == pytest.approx(3.0, abs=1e-3)
    # Two full rounds, then two of s.a.core alone: 10.8 s in all.
    assert 4 * document["round_s"] + 4 * costs["s.a.core"] + 2 * costs["s.b.core"] == (
        pytest.approx(10.8, abs=1e-3)
    )
    # 0.1 s an ask: s.a.core's ten asks and 0.126 s of workloads, s.b.core's two and 0.4 s.
    assert costs == {"s.a.core": pytest.approx(1.126), "s.b.core": pytest.approx(0.6)}
    assert document["date"] == "2026-12-08"


def test_recorded_durations_are_used_where_there_are_any() -> None:
    samples, report = _run(durations=True)
    document = derive_timing(samples, report, source="test")
    costs = {c["bench"]: c["seconds"] for c in document["cases"]}
    assert costs == {"s.a.core": 1.0, "s.b.core": 0.6}
    assert document["round_s"] == pytest.approx((10.0 - 2 * (2.0 + 0.6)) / 4)


def test_a_file_of_another_kind_or_a_newer_schema_is_refused(tmp_path: Path) -> None:
    document = json.loads(TIMING_FILE.read_text(encoding="utf-8"))
    path = tmp_path / "t.json"
    path.write_text(json.dumps({**document, "schema_version": 99}))
    with pytest.raises(ValueError, match="schema"):
        load_timing(path)
    path.write_text(json.dumps({**document, "kind": "other"}))
    with pytest.raises(ValueError, match="schema"):
        load_timing(path)
