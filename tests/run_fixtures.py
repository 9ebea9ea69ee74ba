"""Run folders in the shape ``python -m perf run`` writes them, for the tests of loading
and analysing results: one pyperf file per suite (built with pyperf's API), the JSON
summary beside it and a manifest."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyperf

from perf.report.analysis import Analysis
from perf.report.kpis import KpiComparison

# Metrics the suites store as run metadata, not as pyperf benchmarks (perf/workload/metrics.py).
_METADATA_METRICS = frozenset(
    {
        "error_rate_pct",
        "retried",
        "dead_lettered",
        "dropped",
        "throughput_eps",
        "schedule_lag_p99",
        "leak_slope",
        "leak_slope_ci_low",
        "leak_slope_ci_high",
        "rss_slope",
        "limit_reached",
    }
)
_UNITS = {"time": "second", "rss_peak": "byte", "allocated": "byte", "freed": "byte"}
# Ten values spread by about +-1 %, deterministic.
SPREAD = (1.0, 1.004, 0.996, 1.008, 0.992, 1.002, 0.998, 1.006, 0.994, 1.01)


@dataclass
class FakeCase:
    """One case of one coordinator: per metric, one value per sample."""

    case: str
    coordinator: str
    values: Mapping[str, Sequence[float | None]]
    kind: str = "workload"
    events: int = 1000
    loops: int = 1
    params: Mapping[str, Any] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    points: Sequence[Mapping[str, Any]] = ()
    rss_series: Sequence[tuple[float, float]] = ()

    @property
    def n(self) -> int:
        return max(len(v) for v in self.values.values())


def spread(center: float, n: int = 10) -> list[float]:
    return [center * SPREAD[i % len(SPREAD)] for i in range(n)]


def _params(suite: str, c: FakeCase) -> dict[str, Any]:
    return {
        "crucible_suite": suite,
        "crucible_case": c.case,
        "crucible_kind": c.kind,
        "crucible_coordinator": c.coordinator,
        "crucible_events": c.events,
        "crucible_failure_rate": 0.0,
        "crucible_crashed_services": 0,
        "crucible_slow_services": 0,
        **c.params,
    }


def write_suite(root: Path, suite: str, cases: Sequence[FakeCase], *, summary: bool = True) -> None:
    benches = []
    for c in cases:
        for metric, values in c.values.items():
            good = [float(v) for v in values if v is not None and v > 0]
            if metric in _METADATA_METRICS or not good:
                continue
            meta = {
                "name": f"{suite}.{c.case}.{c.coordinator}.{metric}",
                "unit": _UNITS.get(metric, "integer" if metric != "time" else "second"),
                "loops": c.loops,
                **_params(suite, c),
            }
            if metric.startswith("latency"):
                meta["unit"] = "second"
            benches.append(
                pyperf.Benchmark([pyperf.Run(good, metadata=meta, collect_metadata=False)])
            )
    if benches:
        pyperf.BenchmarkSuite(benches).dump(str(root / f"{suite}.json"), replace=True)
    if not summary:
        return
    doc: dict[str, Any] = {
        "schema_version": 1,
        "kind": "crucible-perf-summary",
        "suite": suite,
        "invocations": [{}],
        "pyperf_file": f"{suite}.json",
        "benchmarks": {},
    }
    for c in cases:
        samples = []
        for i in range(c.n):
            sample: dict[str, Any] = {
                "loops": c.loops,
                "values": {m: (v[i] if i < len(v) else None) for m, v in c.values.items()},
                "labels": dict(c.labels),
                "invocation": 0,
            }
            if c.points:
                sample["points"] = list(c.points)
            if c.rss_series:
                sample["rss_series"] = [list(p) for p in c.rss_series]
            samples.append(sample)
        doc["benchmarks"][f"{suite}.{c.case}.{c.coordinator}"] = {
            "suite": suite,
            "case": c.case,
            "coordinator": c.coordinator,
            "coordinator_spec": c.coordinator,
            "description": f"{c.case} test case",
            "params": _params(suite, c),
            "metrics": {},
            "samples": samples,
        }
    (root / f"{suite}.crucible.json").write_text(json.dumps(doc), encoding="utf-8")


def write_run(root: Path, suites: Mapping[str, Sequence[FakeCase]]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for suite, cases in suites.items():
        write_suite(root, suite, cases)
    manifest = {
        "schema_version": 1,
        "kind": "crucible-perf-run",
        "set": "quick",
        "commit": "0" * 40,
        "suites": list(suites),
        "files": {
            s: {"pyperf": f"{s}.json", "summary": f"{s}.crucible.json", "log": f"{s}.log"}
            for s in suites
        },
    }
    (root / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return root


def workload(
    case: str, coordinator: str, time_s: float, **metrics: Sequence[float | None]
) -> FakeCase:
    values: dict[str, Sequence[float | None]] = {"time": spread(time_s)}
    values.update(metrics)
    return FakeCase(case=case, coordinator=coordinator, values=values)


def sweep(coordinator: str, max_eps: float, binding: str, evidence: str) -> FakeCase:
    points = [
        {
            "value": 4000.0,
            "offered_eps": 4000.0,
            "achieved_eps": 3990.0,
            "latency_p99_s": 0.001,
            "error_rate_pct": 0.0,
            "cpu_pct": 40.0,
            "passed": True,
            "reason": "",
        },
        {
            "value": 8000.0,
            "offered_eps": 8000.0,
            "achieved_eps": 6000.0,
            "latency_p99_s": 0.05,
            "error_rate_pct": 0.0,
            "cpu_pct": 99.0,
            "passed": False,
            "reason": "p99 latency 50 ms > 10 ms",
        },
    ]
    return FakeCase(
        case="rate_sweep",
        coordinator=coordinator,
        kind="sweep",
        values={
            "time": spread(0.5),
            "throughput_max_eps": spread(max_eps),
            "knee_eps": spread(max_eps * 0.8),
            "limit_reached": [1.0] * 10,
        },
        params={"crucible_sweep_axis": "rate", "crucible_sweep_p99_bound_s": 0.01},
        labels={"binding": binding, "binding_evidence": evidence},
        points=points,
    )


def full_run(tmp_path: Path) -> Path:
    """core 20 % faster than data on medium (throughput), 20 % lower p99 latency, equal
    RSS; reference faster still. A rate sweep where data sustains 1,000, core 1,500 and
    reference 2,000 events/s; a traced memory case; a fault-injection load case."""
    medium = {
        "data": 0.010,
        "core": 0.010 / 1.2,
        "reference": 0.010 / 1.5,
    }
    p99 = {"data": 0.005, "core": 0.004, "reference": 0.003}
    daemon = [
        workload(
            "medium",
            c,
            t,
            latency_p50=spread(p99[c] / 4),
            latency_p95=spread(p99[c] / 2),
            latency_p99=spread(p99[c]),
            rss_peak=spread(40 * 2**20),
            cpu_pct=spread(60.0),
            success_rate_pct=[100.0] * 10,
            error_rate_pct=[0.0] * 10,
        )
        for c, t in medium.items()
    ]
    load = [
        FakeCase(
            case="spike_faults",
            coordinator=c,
            values={
                "time": spread(0.25),
                "latency_p99": spread(0.02),
                "success_rate_pct": spread(rate_ok),
                "error_rate_pct": [100.0 - rate_ok] * 10,
            },
            loops=2,
            params={"crucible_failure_rate": 0.05},
        )
        for c, rate_ok in (("data", 90.0), ("core", 95.0), ("reference", 90.0))
    ]
    memory = [
        FakeCase(
            case="payload16k_events1000",
            coordinator=c,
            values={
                "time": spread(0.02),
                "allocated": [1000.0] * 10,
                "freed": [freed] * 10,
                "mem_efficiency_pct": [freed / 10.0] * 10,
            },
        )
        for c, freed in (("data", 900.0), ("core", 950.0), ("reference", 990.0))
    ] + [
        FakeCase(
            case="leak",
            coordinator=c,
            kind="leak",
            values={
                "time": spread(0.5),
                "rss_peak": spread(50 * 2**20),
                "leak_slope": [slope] * 3,
                "leak_slope_ci_low": [slope - 100.0] * 3,
                "leak_slope_ci_high": [slope + 100.0] * 3,
                "rss_slope": [0.0] * 3,
            },
            rss_series=((0.0, 40e6), (0.1, 41e6), (0.2, 42e6)),
        )
        for c, slope in (("data", 0.0), ("core", 500.0), ("reference", 0.0))
    ]
    scal = [
        sweep("data", 1000.0, "cpu", "p99 latency 50 ms > 10 ms; process CPU 99 % at 8,000"),
        sweep("core", 1500.0, "queue", "p99 latency 12 ms with CPU at 50 %: events waited"),
        sweep("reference", 2000.0, "cpu", "process CPU 97 % of one core at 16,000"),
    ]
    return write_run(
        tmp_path / "run",
        {
            "daemon_performance": daemon,
            "load_testing": load,
            "memory_profiling": memory,
            "scalability_testing": scal,
        },
    )


def kpi(analysis: Analysis, suite: str, case: str, name: str) -> KpiComparison:
    """The comparison of KPI ``name`` on ``suite.case``; a test fails without it."""
    for c in analysis.kpis:
        if (c.suite, c.case, c.kpi) == (suite, case, name):
            return c
    raise AssertionError(f"no KPI {name} for {suite}.{case}")
