from __future__ import annotations

import pytest

from perf.workload.cases import (
    DEFAULT_COORDINATORS,
    LOAD_FAULTS,
    SETS,
    SUITES,
    Case,
    CaseDef,
    Kind,
    LeakSpec,
    SweepSpec,
    case_definitions,
    coordinator_label,
    estimated_cost_s,
    select_cases,
    settings_for,
)
from perf.workload.metrics import METRICS


@pytest.mark.parametrize("suite", SUITES)
def test_quick_is_a_subset_of_full_with_identical_parameters(suite: str) -> None:
    full = {c.name: c for c in case_definitions(suite, "full")}
    quick = case_definitions(suite, "quick")
    assert quick
    for case in quick:
        assert full[case.name] == case


def test_quick_set_is_the_issue_subset() -> None:
    names = {s: [c.name for c in case_definitions(s, "quick")] for s in SUITES}
    assert names["daemon_performance"] == ["light", "medium"]
    assert len(names["load_testing"]) == 2
    assert len(names["memory_profiling"]) == 1
    assert len(names["scalability_testing"]) == 1


def test_full_set_has_every_scenario_pattern_and_payload() -> None:
    daemon = [c.name for c in case_definitions("daemon_performance", "full")]
    assert daemon == ["light", "medium", "heavy", "stress"]
    stress = case_definitions("daemon_performance", "full")[-1].scenario
    assert (stress.events, stress.services) == (100_000, 100)
    load = {c.name for c in case_definitions("load_testing", "full")}
    for pattern in ("steady", "burst", "ramp", "spike", "mixed"):
        assert {pattern, f"{pattern}_faults"} <= load
    memory = case_definitions("memory_profiling", "full")
    sizes = {c.scenario.payload_mean_bytes for c in memory if c.name.startswith("payload")}
    assert sizes == {1024.0, 4096.0, 16384.0, 65536.0}
    kinds = {c.kind for c in memory}
    assert kinds == {Kind.WORKLOAD, Kind.LEAK}
    axes = {c.sweep.axis for c in case_definitions("scalability_testing", "full") if c.sweep}
    assert axes == {"rate", "services", "payload"}


def test_load_fault_variant_is_errors_crash_and_slow_replica_without_hangs() -> None:
    faulty = [c for c in case_definitions("load_testing", "full") if c.faults.any]
    assert len(faulty) == 5
    for case in faulty:
        assert case.faults == LOAD_FAULTS
        spec = case.run_spec("reference")
        assert (spec.failure_rate, spec.crashed_services, spec.slow_services) == (0.05, 1, 1)
        faults = spec.faults()
        assert all(f.hang_rate == 0 for f in faults.values())
        assert faults[0].crash_after == 0 and faults[1].slow_s > 0
        assert all(f.error_rate == 0.05 for f in faults.values())


def test_names_and_order_case_major() -> None:
    cases = select_cases("daemon_performance", "quick", ["data", "core"])
    assert [c.name for c in cases] == [
        "daemon_performance.light.data",
        "daemon_performance.light.core",
        "daemon_performance.medium.data",
        "daemon_performance.medium.core",
    ]
    assert cases[0].benchmark("time") == "daemon_performance.light.data.time"
    assert cases[0].benchmark("latency_p99") == "daemon_performance.light.data.latency_p99"
    with pytest.raises(ValueError, match="unknown metric"):
        cases[0].benchmark("nope")


def test_default_coordinators() -> None:
    assert DEFAULT_COORDINATORS == ("data", "core", "reference")
    cases = select_cases("daemon_performance", "quick")
    assert {c.label for c in cases} == {"data", "core", "reference"}


def test_module_factory_coordinator_label() -> None:
    assert coordinator_label("core") == "core"
    assert coordinator_label("my.pkg.mod:make_coord") == "my_pkg_mod_make_coord"
    case = select_cases("daemon_performance", "quick", ["my.pkg:Factory"], ["light"])[0]
    assert case.name == "daemon_performance.light.my_pkg_Factory"
    assert case.run_spec().coordinator == "my.pkg:Factory"
    assert case.metadata()["crucible_coordinator_spec"] == "my.pkg:Factory"
    with pytest.raises(ValueError, match="repeat"):
        select_cases("daemon_performance", "quick", ["a.b:c", "a_b:c"])


def test_unknown_case_names_list_the_accepted_ones() -> None:
    with pytest.raises(ValueError, match=r"accepted: light, medium"):
        select_cases("daemon_performance", "quick", names=["heavy"])
    heavy = select_cases("daemon_performance", "full", ["core"], ["heavy"])
    assert [c.definition.name for c in heavy] == ["heavy"]


def test_bounded_queue_cases_only_for_core_with_options() -> None:
    cases = select_cases("memory_profiling", "full", ["data", "core", "reference"])
    bounded = [c for c in cases if c.definition.name.startswith("pressure_bounded")]
    assert {c.label for c in bounded} == {"core"}
    spec = bounded[0].run_spec()
    assert spec.coordinator_options == {"max_queue": 16, "backpressure": "wait"}
    unbounded = [c for c in cases if c.definition.name == "pressure_slow"]
    assert all(c.run_spec().coordinator_options == {} for c in unbounded)
    assert select_cases("memory_profiling", "full", ["data"], ["pressure_bounded_wait"]) == []


@pytest.mark.parametrize("set_name", SETS)
@pytest.mark.parametrize("suite", SUITES)
def test_every_case_is_consistent(suite: str, set_name: str) -> None:
    settings = settings_for(set_name)
    for case in select_cases(suite, set_name):
        d = case.definition
        assert d.metrics[0] == "time"
        assert all(m in METRICS for m in d.metrics)
        assert d.kind is not Kind.SWEEP or d.fixed_loops == 1
        meta = case.metadata()
        for key, value in meta.items():
            assert key.startswith("crucible_")
            assert isinstance(value, str | int | float)
            assert not isinstance(value, str) or value.strip()
        assert meta["crucible_seed"] == d.seed
        assert estimated_cost_s(case, settings) > 0
        spec = case.run_spec()
        assert spec.scenario == d.scenario and spec.pattern == d.pattern


def test_settings_keep_three_processes_outside_smoke() -> None:
    assert settings_for("quick").processes >= 3
    assert settings_for("full").processes >= 3
    with pytest.raises(ValueError, match="accepted"):
        settings_for("huge")


def test_smoke_set_covers_every_kind() -> None:
    kinds = {c.kind for s in SUITES for c in case_definitions(s, "smoke")}
    assert kinds == set(Kind)
    traced = [c for c in case_definitions("memory_profiling", "smoke") if c.traced]
    assert traced


def test_definition_validation() -> None:
    base = case_definitions("daemon_performance", "quick")[0]
    with pytest.raises(ValueError, match="must match"):
        CaseDef(suite="daemon_performance", name="Bad.Name", description="", scenario=base.scenario)
    with pytest.raises(ValueError, match="unknown suite"):
        CaseDef(suite="nope", name="x", description="", scenario=base.scenario)
    with pytest.raises(ValueError, match="leak case"):
        CaseDef(
            suite="memory_profiling",
            name="x",
            description="",
            scenario=base.scenario,
            kind=Kind.LEAK,
        )
    with pytest.raises(ValueError, match="time"):
        CaseDef(
            suite="daemon_performance",
            name="x",
            description="",
            scenario=base.scenario,
            metrics=("latency_p99",),
        )
    with pytest.raises(ValueError, match="at least 3"):
        LeakSpec(batches=4, batch_events=10, warmup_batches=2)
    with pytest.raises(ValueError, match="axis"):
        SweepSpec(axis="cpu", start=1.0)
    assert isinstance(Case(base, "data").run_spec().scenario.events, int)
