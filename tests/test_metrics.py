from __future__ import annotations

from typing import Any

import pytest

from crucible._measure import RunResult
from perf.workload.metrics import (
    LEAK_METRICS,
    METRICS,
    PACED_METRICS,
    SWEEP_METRICS,
    TRACED_METRICS,
    WORKLOAD_METRICS,
    AccountingError,
    Direction,
    Storage,
    check_accounting,
    downsample,
    metric,
    traced_sample,
    workload_sample,
)


def result(**overrides: Any) -> RunResult:
    fields: dict[str, Any] = {
        "coordinator": "data",
        "scenario": "x",
        "pattern": None,
        "seed": 0,
        "events": 10,
        "services": 2,
        "published": 10,
        "delivered": 10,
        "failed": 0,
        "dead_lettered": 0,
        "rejected": 0,
        "in_flight": 0,
        "retried": 0,
        "wall_s": 1.0,
        "throughput_eps": 10.0,
        "offered_rate_eps": None,
        "latency_mean_s": None,
        "latency_p50_s": None,
        "latency_p95_s": None,
        "latency_p99_s": None,
        "latency_max_s": None,
        "latency_samples": 0,
        "schedule_lag_p99_s": None,
        "peak_rss_bytes": 1000,
        "rss_start_bytes": 900,
        "uss_bytes": 800,
        "cpu_percent": 50.0,
        "success_rate_pct": 100.0,
        "error_rate_pct": 0.0,
        "invariant_holds": True,
        "coordinator_stats": {},
        "latencies_s": (),
    }
    fields.update(overrides)
    return RunResult(**fields)


def test_workload_sample_pools_latencies_and_weights_cpu_by_wall_time() -> None:
    a = result(latencies_s=tuple(float(i) for i in range(1, 51)), wall_s=1.0, cpu_percent=100.0)
    b = result(
        latencies_s=tuple(float(i) for i in range(51, 102)),
        wall_s=3.0,
        cpu_percent=20.0,
        peak_rss_bytes=5000,
        uss_bytes=100,
    )
    s = workload_sample([a, b])
    # 101 pooled values 1..101: inclusive percentiles are 1 + q * 100.
    assert s["latency_p50"] == pytest.approx(51.0)
    assert s["latency_p95"] == pytest.approx(96.0)
    assert s["latency_p99"] == pytest.approx(100.0)
    assert s["rss_peak"] == 5000 and s["memory_uss"] == 800
    # (1.0 s + 0.6 s) CPU over 4.0 s wall.
    assert s["cpu_pct"] == pytest.approx(40.0)
    assert s["throughput_eps"] == pytest.approx(20 / 4.0)


def test_workload_sample_rates_are_totals_and_counts_are_means() -> None:
    a = result(published=100, delivered=90, failed=6, dead_lettered=4, retried=10, rejected=0)
    b = result(published=100, delivered=100, failed=0, dead_lettered=0, retried=2, rejected=3)
    s = workload_sample([a, b])
    assert s["success_rate_pct"] == pytest.approx(95.0)
    assert s["error_rate_pct"] == pytest.approx(5.0)
    assert s["retried"] == 6.0
    assert s["dead_lettered"] == 2.0
    assert s["dropped"] == pytest.approx((6 + 3) / 2)
    assert s["latency_p99"] is None  # no latency measured: no value, not zero
    assert s["schedule_lag_p99"] is None


def test_workload_sample_schedule_lag_is_the_worst_workload() -> None:
    s = workload_sample([result(schedule_lag_p99_s=0.002), result(schedule_lag_p99_s=0.005)])
    assert s["schedule_lag_p99"] == 0.005
    with pytest.raises(ValueError):
        workload_sample([])


def test_traced_sample_known_answer() -> None:
    s = traced_sample(start_bytes=1000, peak_bytes=11000, end_bytes=2000)
    assert s == {
        "allocated": 10000.0,
        "freed": 9000.0,
        "retained_memory": 1000.0,
        "mem_efficiency_pct": 90.0,
    }
    assert traced_sample(0, 0, 0)["mem_efficiency_pct"] is None
    with pytest.raises(ValueError, match="inconsistent"):
        traced_sample(10, 5, 0)
    with pytest.raises(ValueError, match="inconsistent"):
        traced_sample(0, 5, 6)


def test_check_accounting() -> None:
    check_accounting(result())
    with pytest.raises(AccountingError, match="invariant"):
        check_accounting(result(invariant_holds=False))
    with pytest.raises(AccountingError, match="in flight"):
        check_accounting(result(in_flight=1))


def test_downsample_keeps_ends_and_peak() -> None:
    series = [(float(i), float(i % 7)) for i in range(1000)]
    series[333] = (333.0, 99.0)
    out = downsample(series, 50)
    assert len(out) <= 50
    assert out[0] == series[0] and out[-1] == series[-1]
    assert (333.0, 99.0) in out
    assert [t for t, _ in out] == sorted(t for t, _ in out)
    assert downsample(series[:10], 50) == series[:10]
    assert len(downsample(series, 3)) == 3
    with pytest.raises(ValueError):
        downsample(series, 2)


def test_catalogue_storage_rules() -> None:
    # What can be 0 or negative is never a pyperf benchmark (pyperf needs values > 0).
    for name in ("error_rate_pct", "retried", "dead_lettered", "dropped", "leak_slope"):
        assert METRICS[name].storage is Storage.METADATA
    for group in (WORKLOAD_METRICS, PACED_METRICS, TRACED_METRICS, LEAK_METRICS):
        assert group[0] == "time"
        assert all(n in METRICS for n in group)
    for group in SWEEP_METRICS.values():
        assert METRICS[group[1]].storage is Storage.BENCHMARK
        assert METRICS[group[1]].direction is Direction.HIGHER
    assert {m.unit for m in METRICS.values()} <= {"second", "byte", "integer", "label"}
    assert metric("binding").storage is Storage.LABEL
    with pytest.raises(ValueError, match="unknown metric"):
        metric("bogus")
