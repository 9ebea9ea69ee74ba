from __future__ import annotations

import pytest

from crucible import Category, Event, Kind, Priority, RejectReason, Source, SourceType, validate
from crucible._events import payload_size

from .conftest import make_event

# Kinds per category named in docs/design.md#event-kinds.
EXPECTED_COUNTS = {
    Category.FILESYSTEM: 7,
    Category.DATABASE: 9,
    Category.EXTERNAL: 5,
    Category.MCP: 6,
    Category.SERVICE: 8,
    Category.SYSTEM: 9,
}


def test_every_category_has_its_kinds() -> None:
    for category, count in EXPECTED_COUNTS.items():
        kinds = Kind.of(category)
        assert len(kinds) == count
        assert all(k.category is category for k in kinds)
    assert sum(EXPECTED_COUNTS.values()) == len(Kind)


def test_priority_orders_critical_first() -> None:
    assert sorted([Priority.LOW, Priority.CRITICAL, Priority.NORMAL, Priority.HIGH]) == [
        Priority.CRITICAL,
        Priority.HIGH,
        Priority.NORMAL,
        Priority.LOW,
    ]


def test_event_defaults_and_derived_fields() -> None:
    event = make_event(Kind.RECORD_UPDATED, payload=b"abc")
    assert event.category is Category.DATABASE
    assert event.size_bytes == 3
    assert event.max_retries == 3
    assert event.retry_count == 0
    assert event.created_at > 0


def test_structured_payload_size_is_its_json_length() -> None:
    payload = {"table": "users", "row": 7}
    event = Event(
        id="s", kind=Kind.RECORD_CREATED, source=Source("db", SourceType.DATABASE), payload=payload
    )
    assert event.size_bytes == payload_size(payload) == len(b'{"table":"users","row":7}')


def test_valid_event_passes() -> None:
    assert validate(make_event()) is None


def test_oversized_event_is_rejected_with_reason() -> None:
    problem = validate(make_event(payload=b"x" * 2048), max_size_bytes=1024)
    assert problem is not None
    assert problem.reason is RejectReason.OVERSIZED
    assert "2048" in problem.detail and "1024" in problem.detail


def test_default_limit_is_ten_megabytes() -> None:
    assert validate(make_event(payload=b"x" * (10 * 1024 * 1024))) is None
    problem = validate(make_event(payload=b"x" * (10 * 1024 * 1024 + 1)))
    assert problem is not None and problem.reason is RejectReason.OVERSIZED


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("id", "", "id"),
        ("kind", "filesystem.file_created", "kind"),
        ("priority", 7, "priority"),
        ("payload", 12345, "payload"),
        ("targets", ["a"], "targets"),
        ("retry_count", -1, "retry"),
    ],
)
def test_malformed_events_are_rejected(field: str, value: object, fragment: str) -> None:
    event = make_event()
    object.__setattr__(event, field, value)
    problem = validate(event)
    assert problem is not None
    assert problem.reason is RejectReason.MALFORMED
    assert fragment in problem.detail


def test_non_event_is_malformed() -> None:
    problem = validate({"id": "x"})
    assert problem is not None and problem.reason is RejectReason.MALFORMED
