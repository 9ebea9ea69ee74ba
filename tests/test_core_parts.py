"""Unit tests of CrucibleCore's parts: config, breaker, de-duplication, queue, rules."""

from __future__ import annotations

import dataclasses
import pathlib
import re
from typing import Any

import pytest

from crucible import DEFAULT_WIRING, Category, Kind, Priority, Source, SourceType
from crucible._core import (
    STRATEGIES,
    BreakerState,
    CircuitBreaker,
    CoreConfig,
    CrucibleCore,
    Rule,
    default_rules,
)
from crucible._core.core import backoff_delay_s
from crucible._core.dedup import Deduplicator
from crucible._core.queues import PriorityQueue

from .test_core_support import FakeClock

# ---------------------------------------------------------------------------- config


def test_config_defaults_are_the_design_defaults() -> None:
    cfg = CoreConfig()
    assert (cfg.max_queue, cfg.max_retries, cfg.breaker_threshold) == (2000, 5, 10)
    assert (cfg.breaker_timeout_s, cfg.event_timeout_s, cfg.max_concurrent) == (60, 45, 200)
    assert (cfg.dedup_window_s, cfg.max_services) == (120, 100)
    assert cfg.backpressure == "wait" and cfg.balancing == "round_robin"
    assert cfg.max_event_bytes == 10 * 1024 * 1024


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_queue", 0),
        ("max_queue", 1.5),
        ("max_retries", -1),
        ("breaker_threshold", 0),
        ("breaker_timeout_s", -1.0),
        ("event_timeout_s", 0),
        ("max_concurrent", 0),
        ("dedup_window_s", float("nan")),
        ("max_services", True),
        ("backpressure", "drop"),
        ("service_concurrency", 0),
        ("retry_backoff_s", -0.1),
        ("retry_backoff_max_s", 0.001),
        ("balancing", "random"),
        ("health_check_interval_s", 0.0),
        ("max_event_bytes", -5),
        ("rules", [Rule("r", "file")]),
        ("seed", -1),
        ("clock", 3.0),
    ],
)
def test_config_rejects_bad_values_with_value_error(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=field):
        CoreConfig(**{field: value})


def test_duplicate_rule_names_are_rejected() -> None:
    with pytest.raises(ValueError, match="unique"):
        CoreConfig(rules=(Rule("r", "file"), Rule("r", "sync")))


def test_constructor_overrides_replace_config_fields() -> None:
    base = CoreConfig(max_queue=7, service_concurrency=2)
    core = CrucibleCore(base, max_queue=9)
    assert core.config.max_queue == 9 and core.config.service_concurrency == 2
    with pytest.raises(TypeError):
        CrucibleCore(not_a_field=1)
    with pytest.raises(ValueError, match="max_queue"):
        CrucibleCore(max_queue=0)


def test_every_config_field_is_read_outside_the_config_module() -> None:
    package = pathlib.Path(__file__).parents[1] / "crucible" / "_core"
    code = "\n".join(p.read_text() for p in package.glob("*.py") if p.name != "config.py")
    for field in dataclasses.fields(CoreConfig):
        assert re.search(rf"(cfg|config)\.{field.name}\b", code), f"{field.name} is never read"


def test_retry_backoff_is_exponential_and_capped() -> None:
    assert [backoff_delay_s(n, 0.01, 0.05) for n in (1, 2, 3, 4)] == [0.01, 0.02, 0.04, 0.05]


# ---------------------------------------------------------------------------- breaker


def state(breaker: CircuitBreaker) -> BreakerState:
    # A call, so mypy does not carry a narrowed state across record_*() calls.
    return breaker.state


def test_breaker_opens_after_threshold_consecutive_failures() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(3, 10.0, clock)
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()  # resets the run of failures
    breaker.record_failure()
    breaker.record_failure()
    assert state(breaker) is BreakerState.CLOSED
    breaker.record_failure()
    assert state(breaker) is BreakerState.OPEN and breaker.opens == 1
    assert not breaker.available() and not breaker.admit()


def test_breaker_half_open_admits_one_probe_then_closes_or_reopens() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(1, 10.0, clock)
    breaker.record_failure()
    clock.advance(9.9)
    assert not breaker.admit()
    clock.advance(0.2)
    assert breaker.available() and state(breaker) is BreakerState.OPEN  # available() is a peek
    assert breaker.admit() and state(breaker) is BreakerState.HALF_OPEN
    assert not breaker.admit() and not breaker.available()  # one probe at a time
    breaker.record_failure()
    assert state(breaker) is BreakerState.OPEN and breaker.opens == 2
    clock.advance(10.0)
    assert breaker.admit()
    breaker.record_success()
    assert state(breaker) is BreakerState.CLOSED and breaker.admit()


def test_abandoned_probe_lets_another_through() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(1, 1.0, clock)
    breaker.record_failure()
    clock.advance(1.0)
    assert breaker.admit() and not breaker.admit()
    breaker.abandon_probe()
    assert breaker.admit()


# ---------------------------------------------------------------------------- de-duplication


def test_dedup_window_and_bounded_memory() -> None:
    dedup = Deduplicator(10.0)
    assert dedup.admit("a", 0.0)
    assert not dedup.admit("a", 9.99)
    assert dedup.admit("a", 10.0)  # the window has passed: accepted again
    for i in range(100):
        assert dedup.admit(f"id{i}", 11.0)
    assert len(dedup) == 101
    dedup.admit("late", 30.0)  # everything else expired and is swept out
    assert len(dedup) == 1


def test_dedup_forget_and_zero_window() -> None:
    dedup = Deduplicator(5.0)
    assert dedup.admit("a", 0.0)
    dedup.forget("a")
    assert dedup.admit("a", 1.0)
    off = Deduplicator(0.0)
    assert off.admit("a", 0.0) and off.admit("a", 0.0) and len(off) == 0


# ---------------------------------------------------------------------------- queue


def test_priority_queue_orders_by_priority_then_fifo() -> None:
    queue: PriorityQueue[str] = PriorityQueue()
    for item, priority in [
        ("low", Priority.LOW),
        ("n1", Priority.NORMAL),
        ("crit", Priority.CRITICAL),
        ("n2", Priority.NORMAL),
        ("high", Priority.HIGH),
    ]:
        queue.push(item, priority)
    assert len(queue) == 5 and list(queue) == ["crit", "high", "n1", "n2", "low"]
    assert queue.pop() == "crit"
    assert queue.drain() == ["high", "n1", "n2", "low"]
    assert queue.pop() is None and not queue


# ---------------------------------------------------------------------------- rules


def test_rule_filters() -> None:
    src = Source("s1", SourceType.DATABASE)
    rule = Rule(
        "r",
        "database",
        categories={Category.DATABASE},
        kinds={Kind.RECORD_CREATED, Kind.RECORD_UPDATED},
        source_types={SourceType.DATABASE},
        source_ids={"s1"},
        min_priority=Priority.HIGH,
    )
    assert rule.matches(Kind.RECORD_CREATED, src, Priority.CRITICAL)
    assert rule.matches(Kind.RECORD_UPDATED, src, Priority.HIGH)
    assert not rule.matches(Kind.RECORD_UPDATED, src, Priority.NORMAL)
    assert not rule.matches(Kind.RECORD_DELETED, src, Priority.HIGH)
    assert not rule.matches(Kind.RECORD_CREATED, Source("s2", SourceType.DATABASE), Priority.HIGH)
    assert not rule.matches(Kind.RECORD_CREATED, Source("s1", SourceType.API), Priority.HIGH)
    assert isinstance(rule.kinds, frozenset)
    with pytest.raises(ValueError, match="empty"):
        Rule("r", "x", kinds=set())
    with pytest.raises(ValueError, match="wrong type"):
        Rule("r", "x", categories={"filesystem"})  # type: ignore[arg-type]


def test_default_rules_follow_the_default_wiring() -> None:
    wiring: dict[Category, set[str]] = {}
    for rule in default_rules():
        assert rule.categories is not None and len(rule.categories) == 1
        (category,) = rule.categories
        wiring.setdefault(category, set()).add(rule.target)
    assert wiring == {c: set(roles) for c, roles in DEFAULT_WIRING.items()}


def test_strategy_names() -> None:
    assert STRATEGIES == (
        "round_robin",
        "least_connections",
        "weighted_random",
        "health_based",
        "priority_based",
    )
