"""perf.profiling.gate_profiles: which regressed cases a gate run profiles, and its time limit."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import perf.profiling.gate_profiles
from perf.profiling.capture import Capture
from perf.profiling.differential import DiffResult
from perf.profiling.gate_profiles import _scenario_of, differentials, regressed_pairs


def test_differential_scenario_of_a_case() -> None:
    assert _scenario_of({"crucible_scenario": "heavy"}) == "heavy"
    assert _scenario_of({"crucible_scenario": "light"}) == "medium"
    assert _scenario_of({"crucible_scenario": "payload16k_events1000"}) == "medium"
    assert _scenario_of({}) == "medium"


def test_regressed_cases_share_their_pair() -> None:
    meta = {
        "s.light.core": {"crucible_coordinator_spec": "core", "crucible_scenario": "light"},
        "s.medium.core": {"crucible_coordinator_spec": "core", "crucible_scenario": "medium"},
        "s.heavy.data": {"crucible_coordinator_spec": "data", "crucible_scenario": "heavy"},
    }
    regressed = ["s.heavy.data", "s.light.core", "s.medium.core", "unknown"]
    assert regressed_pairs(regressed, meta) == [("data", "heavy"), ("core", "medium")]


def test_differential_profiles_stop_at_the_deadline(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    profiled: list[tuple[str, str]] = []

    def fake(
        run_dir: Path, scenario: str, coordinator: str, *args: object, **kwargs: object
    ) -> DiffResult:
        profiled.append((coordinator, scenario))
        return DiffResult(
            run_dir=run_dir,
            scenario=scenario,
            coordinator=coordinator,
            cpu=None,
            alloc=None,
            base=Capture(
                coordinator=coordinator, scenario=scenario, label="b", folder="b", tree="b"
            ),
            head=Capture(
                coordinator=coordinator, scenario=scenario, label="h", folder="h", tree="h"
            ),
            artifacts=(),
            notes=(),
            duration_s=0.0,
        )

    monkeypatch.setattr(perf.profiling.gate_profiles, "differential", fake)

    regressed = ["s.medium.core", "s.heavy.data"]
    meta = {
        "s.medium.core": {"crucible_coordinator_spec": "core", "crucible_scenario": "medium"},
        "s.heavy.data": {"crucible_coordinator_spec": "data", "crucible_scenario": "heavy"},
    }
    section = differentials(tmp_path, regressed, meta, tmp_path, tmp_path, None)
    assert profiled == [("core", "medium"), ("data", "heavy")]
    profiled.clear()
    late = differentials(tmp_path, regressed, meta, tmp_path, tmp_path, time.monotonic())
    assert profiled == []
    assert any("core on medium, data on heavy" in note for note in late.notes)
    assert "time limit" in (tmp_path / "differential.md").read_text()
    assert not any("time limit" in note for note in section.notes)
