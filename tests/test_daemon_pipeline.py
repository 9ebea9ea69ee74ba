"""perf.tools.daemon_pipeline: the daemon's whole path in one process, and its instruction count."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from perf.tools.daemon_pipeline import instructions_per_event, main, parse_collected, run_pipeline


def test_the_pipeline_delivers_every_event_through_an_in_process_daemon() -> None:
    figures = asyncio.run(run_pipeline(300, 2))
    # run_pipeline raises unless each round delivered all 300 events with the daemon's
    # accounting balanced; each figure is CPU per event, so it is positive.
    assert len(figures) == 2 and all(f > 0 for f in figures)


def test_generate_only_runs_no_pipeline() -> None:
    assert asyncio.run(run_pipeline(50, 1, generate_only=True)) == []


def test_callgrinds_total_is_read_from_its_output() -> None:
    text = "==41== Events    : Ir\n==41== Collected : 1,352,307,367\n==41==\n==41== I   refs: 1"
    assert parse_collected(text) == 1_352_307_367
    with pytest.raises(RuntimeError, match="no instruction count"):
        parse_collected("valgrind: command not found")


def test_instructions_per_event_subtract_the_generation_of_the_events() -> None:
    totals = {
        ("generate", 1_000): 500_000_000,
        ("generate", 5_000): 700_000_000,
        ("pipeline", 1_000): 800_000_000,
        ("pipeline", 5_000): 1_600_000_000,
    }
    # (800 M more for the pipeline - 200 M more for generating) / 4,000 events
    assert instructions_per_event(totals, 1_000, 5_000) == 150_000


def test_a_run_needs_at_least_one_event_and_one_round() -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--events", "0"])
    assert exc.value.code == 2


def test_work_none_gives_the_services_no_work(monkeypatch: pytest.MonkeyPatch) -> None:
    import perf.tools.daemon_pipeline as pipeline
    from crucible._services import SimulatedService
    from crucible._workload import Scenario

    seen: list[str] = []
    built: list[SimulatedService] = []
    from crucible._workload import build_services as real

    def build(scenario: Scenario, **kwargs: Any) -> list[SimulatedService]:
        seen.append(scenario.work.kind)
        services = real(scenario, **kwargs)
        built.extend(services)
        return services

    monkeypatch.setattr(pipeline, "build_services", build)
    asyncio.run(run_pipeline(200, 1, work="none"))
    asyncio.run(run_pipeline(200, 1))
    assert seen == ["none", "hash"]
    idle, busy = built[: len(built) // 2], built[len(built) // 2 :]
    # Each set handled the events; only the services with work hashed anything.
    assert sum(s.handled for s in idle) > 0 and sum(s.handled for s in busy) > 0
    assert all(s.digest == 0 for s in idle) and any(s.digest != 0 for s in busy)
    with pytest.raises(SystemExit) as exc:
        main(["--work", "sleep"])
    assert exc.value.code == 2
