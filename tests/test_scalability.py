from __future__ import annotations

from typing import Any

import pytest

from perf.measure.scalability import (
    StepMeasurement,
    SweepPoint,
    binding_resource,
    judge,
    knee,
    max_sustainable,
    run_sweep,
    step_spec,
    sweep_sample,
    sweep_values,
)
from perf.workload.cases import SweepSpec, case_definitions

MiB = 2**20


def step(value: float, **overrides: Any) -> StepMeasurement:
    fields: dict[str, Any] = {
        "value": value,
        "offered_eps": value,
        "achieved_eps": value * 0.99,
        "events": 100,
        "latency_p99_s": 0.001,
        "schedule_lag_p99_s": 0.0001,
        "error_rate_pct": 0.0,
        "cpu_pct": 30.0,
        "iowait_pct": 0.0,
        "rss_start_bytes": 100 * MiB,
        "rss_peak_bytes": 101 * MiB,
        "wall_s": 0.1,
    }
    fields.update(overrides)
    return StepMeasurement(**fields)


def point(value: float, passed: bool = True, **overrides: Any) -> SweepPoint:
    return SweepPoint(step=step(value, **overrides), passed=passed, reason="")


SPEC = SweepSpec(axis="rate", start=1000.0, max_steps=8, refine_steps=2, p99_bound_s=0.010)


def test_judge_latency_lateness_and_errors() -> None:
    assert judge(step(1.0), SPEC) == (True, "")
    ok, why = judge(step(1.0, latency_p99_s=0.02), SPEC)
    assert not ok and "p99 latency 20.00 ms > 10 ms" in why
    ok, why = judge(step(1.0, schedule_lag_p99_s=0.05), SPEC)
    assert not ok and "lateness" in why
    ok, why = judge(step(1.0, error_rate_pct=1.5), SPEC)
    assert not ok and "error rate" in why
    assert judge(step(1.0, error_rate_pct=1.0), SPEC)[0]
    assert not judge(step(1.0, latency_p99_s=None), SPEC)[0]


def test_binding_resource_from_measurements() -> None:
    assert binding_resource(step(8000, cpu_pct=99.0))[0] == "cpu"
    assert binding_resource(step(8000, iowait_pct=25.0))[0] == "io_wait"
    grown = step(8000, rss_start_bytes=100 * MiB, rss_peak_bytes=300 * MiB)
    assert binding_resource(grown)[0] == "memory"
    # 64 MiB growth on a 1 GiB process is not memory binding: only 6 %.
    big = step(8000, rss_start_bytes=1024 * MiB, rss_peak_bytes=1100 * MiB)
    assert binding_resource(big)[0] == "queue"
    label, evidence = binding_resource(step(8000, cpu_pct=40.0, latency_p99_s=0.05))
    assert label == "queue" and "50.00 ms" in evidence and "40 %" in evidence


def test_knee_is_the_last_value_before_p99_climbs() -> None:
    points = [
        point(4000, latency_p99_s=0.0010),
        point(1000, latency_p99_s=0.0010),
        point(2000, latency_p99_s=0.0015),
        point(8000, latency_p99_s=0.0030),
        point(16000, passed=False, latency_p99_s=0.0500),
    ]
    assert knee(points, 2.0) == 4000
    assert knee(points, 5.0) == 8000
    assert knee(points, 2.0, floor_s=0.002) == 8000  # a sub-floor p99 counts as the floor
    assert knee([point(1000, passed=False)], 2.0) is None
    assert knee([], 2.0) is None


def test_max_sustainable_is_measured_throughput_on_rate_axis() -> None:
    points = [point(1000), point(2000, achieved_eps=1900.0), point(4000, passed=False)]
    assert max_sustainable(points, "rate") == 1900.0
    assert max_sustainable(points, "services") == 2000
    assert max_sustainable([point(1, passed=False)], "rate") is None


def test_sweep_values_double_and_cap() -> None:
    assert sweep_values(SweepSpec(axis="services", start=4, max_steps=6, max_value=100)) == [
        4,
        8,
        16,
        32,
        64,
        100,
    ]
    assert sweep_values(SweepSpec(axis="rate", start=1000, max_steps=3)) == [1000, 2000, 4000]


def test_run_sweep_doubles_then_bisects_to_a_synthetic_capacity() -> None:
    capacity = 11_000.0
    seen: list[float] = []

    def fake(value: float) -> StepMeasurement:
        seen.append(value)
        over = value > capacity
        return step(
            value,
            latency_p99_s=0.5 if over else 0.001 + value / 1e7,
            cpu_pct=99.0 if over else value / capacity * 80,
            achieved_eps=min(value, capacity) * 0.99,
        )

    result = run_sweep(SPEC, fake)
    # Each failing step is measured twice before it counts as failed.
    assert seen == [1000, 2000, 4000, 8000, 16000, 16000, 12000, 12000, 10000]
    assert result.limit_reached and result.binding == "cpu"
    assert "p99 latency" in result.evidence
    assert result.max_sustainable == pytest.approx(10000 * 0.99)
    assert result.knee == 10000  # p99 rises 2 % at most below capacity
    assert result.wall_s == pytest.approx(0.9)
    assert [p.first_try is not None for p in result.points] == [False] * 4 + [True, True, False]
    values, labels = sweep_sample([result])
    assert values["throughput_max_eps"] == pytest.approx(9900.0)
    assert values["limit_reached"] == 1.0
    assert labels["binding"] == "cpu"


def test_a_transient_failure_is_not_the_limit() -> None:
    calls: dict[float, int] = {}

    def flaky(value: float) -> StepMeasurement:
        calls[value] = calls.get(value, 0) + 1
        stalled = value == 2000 and calls[value] == 1
        return step(value, latency_p99_s=0.05 if stalled or value >= 8000 else 0.001)

    result = run_sweep(SweepSpec(axis="rate", start=1000, max_steps=5, refine_steps=0), flaky)
    assert [p.step.value for p in result.points] == [1000, 2000, 4000, 8000]
    assert result.points[1].passed and result.points[1].first_try is not None
    assert result.max_sustainable == pytest.approx(4000 * 0.99)
    strict = SweepSpec(axis="rate", start=1000, max_steps=5, refine_steps=0, confirm_failures=False)
    calls.clear()
    assert run_sweep(strict, flaky).max_sustainable == pytest.approx(990.0)


def test_run_sweep_without_a_limit() -> None:
    result = run_sweep(SweepSpec(axis="rate", start=1000, max_steps=3), lambda v: step(v))
    assert not result.limit_reached and result.binding == "none"
    assert "4,000" in result.evidence
    values, _ = sweep_sample([result])
    assert values["limit_reached"] == 0.0


def test_run_sweep_failing_at_once_has_no_maximum() -> None:
    result = run_sweep(SPEC, lambda v: step(v, latency_p99_s=1.0))
    assert len(result.points) == 1
    assert result.max_sustainable is None and result.knee is None
    values, _ = sweep_sample([result])
    assert values["throughput_max_eps"] is None


def test_step_spec_applies_the_axis() -> None:
    by_name = {c.name: c for c in case_definitions("scalability_testing", "full")}
    rate = step_spec(by_name["rate_sweep"], "data", 8000.0)
    assert rate.pattern == "steady" and rate.rate_eps == 8000.0
    assert rate.scenario.events == 800
    services = step_spec(by_name["services_sweep"], "core", 32.0)
    assert services.scenario.services == 32 and services.rate_eps == 4000.0
    payload = step_spec(by_name["payload_sweep"], "core", 65536.0)
    assert payload.scenario.payload_mean_bytes == 65536.0
    assert payload.scenario.events == 200
