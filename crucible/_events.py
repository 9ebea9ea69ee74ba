"""The event model: categories, kinds, priorities, the event record and its validation."""

from __future__ import annotations

import enum
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DEFAULT_MAX_EVENT_BYTES",
    "DEFAULT_MAX_RETRIES",
    "Category",
    "Event",
    "Kind",
    "Priority",
    "RejectReason",
    "Rejected",
    "Source",
    "SourceType",
    "payload_size",
    "validate",
]

DEFAULT_MAX_EVENT_BYTES = 10 * 1024 * 1024
DEFAULT_MAX_RETRIES = 3


class Category(enum.Enum):
    FILESYSTEM = "filesystem"
    DATABASE = "database"
    EXTERNAL = "external"
    MCP = "mcp"
    SERVICE = "service"
    SYSTEM = "system"


class Kind(enum.Enum):
    """Every event kind; the value is ``"<category>.<kind>"``."""

    FILE_CREATED = "filesystem.file_created"
    FILE_MODIFIED = "filesystem.file_modified"
    FILE_DELETED = "filesystem.file_deleted"
    FILE_MOVED = "filesystem.file_moved"
    DIRECTORY_CREATED = "filesystem.directory_created"
    DIRECTORY_DELETED = "filesystem.directory_deleted"
    BATCH_CHANGE = "filesystem.batch_change"

    RECORD_CREATED = "database.record_created"
    RECORD_UPDATED = "database.record_updated"
    RECORD_DELETED = "database.record_deleted"
    TABLE_CREATED = "database.table_created"
    TABLE_DROPPED = "database.table_dropped"
    SCHEMA_CHANGED = "database.schema_changed"
    TRANSACTION_STARTED = "database.transaction_started"
    TRANSACTION_COMMITTED = "database.transaction_committed"
    TRANSACTION_ROLLED_BACK = "database.transaction_rolled_back"

    DATA_RECEIVED = "external.data_received"
    WEBHOOK_TRIGGERED = "external.webhook_triggered"
    API_CALL_COMPLETED = "external.api_call_completed"
    STREAM_DATA = "external.stream_data"
    NOTIFICATION = "external.notification"

    TOOL_CALL = "mcp.tool_call"
    TOOL_RESPONSE = "mcp.tool_response"
    TOOL_ERROR = "mcp.tool_error"
    RESOURCE_REQUESTED = "mcp.resource_requested"
    RESOURCE_PROVIDED = "mcp.resource_provided"
    CONTEXT_UPDATED = "mcp.context_updated"

    SERVICE_REGISTERED = "service.registered"
    SERVICE_UNREGISTERED = "service.unregistered"
    HEALTH_CHECK = "service.health_check"
    STATUS_CHANGED = "service.status_changed"
    CONFIGURATION_CHANGED = "service.configuration_changed"
    REQUEST_RECEIVED = "service.request_received"
    RESPONSE_SENT = "service.response_sent"
    SERVICE_RESTARTED = "service.restarted"

    DAEMON_STARTED = "system.daemon_started"
    DAEMON_STOPPED = "system.daemon_stopped"
    CONFIG_RELOADED = "system.config_reloaded"
    EMERGENCY_SHUTDOWN = "system.emergency_shutdown"
    MAINTENANCE_STARTED = "system.maintenance_started"
    MAINTENANCE_COMPLETED = "system.maintenance_completed"
    METRICS_COLLECTED = "system.metrics_collected"
    LOG_ROTATED = "system.log_rotated"
    BACKUP_COMPLETED = "system.backup_completed"

    @property
    def category(self) -> Category:
        return _KIND_CATEGORY[self]

    @classmethod
    def of(cls, category: Category) -> tuple[Kind, ...]:
        """All kinds of one category, in declaration order."""
        return _CATEGORY_KINDS[category]


_KIND_CATEGORY: dict[Kind, Category] = {k: Category(k.value.split(".", 1)[0]) for k in Kind}
_CATEGORY_KINDS: dict[Category, tuple[Kind, ...]] = {
    c: tuple(k for k in Kind if _KIND_CATEGORY[k] is c) for c in Category
}


class Priority(enum.IntEnum):
    """Lower value is more urgent, so priority queues can order by the raw value."""

    CRITICAL = 0
    HIGH = 1
    NORMAL = 2
    LOW = 3


class SourceType(enum.Enum):
    FILE_WATCHER = "file_watcher"
    DATABASE = "database"
    API = "api"
    WEBHOOK = "webhook"
    MCP_CLIENT = "mcp_client"
    SERVICE = "service"
    SYSTEM = "system"


@dataclass(frozen=True, slots=True)
class Source:
    id: str
    type: SourceType


def payload_size(payload: bytes | Mapping[str, Any]) -> int:
    """Size in bytes of a payload: raw length, or the length of its compact JSON form."""
    if isinstance(payload, bytes | bytearray | memoryview):
        return len(payload)
    return len(json.dumps(payload, separators=(",", ":"), default=str).encode())


@dataclass(slots=True, eq=False)
class Event:
    """One event. ``published_at`` is a ``time.perf_counter()`` stamp set at publish time."""

    id: str
    kind: Kind
    source: Source
    payload: bytes | Mapping[str, Any] = b""
    priority: Priority = Priority.NORMAL
    targets: tuple[str, ...] = ()
    created_at: float = field(default_factory=time.time)
    metadata: dict[str, Any] = field(default_factory=dict)
    correlation_id: str | None = None
    causation_id: str | None = None
    retry_count: int = 0
    max_retries: int = DEFAULT_MAX_RETRIES
    size_bytes: int = -1
    published_at: float = 0.0
    category: Category = field(init=False)

    def __post_init__(self) -> None:
        # Derived once here so the hot path reads plain attributes.
        kind = self.kind
        self.category = kind.category if isinstance(kind, Kind) else None
        if self.size_bytes < 0 and isinstance(self.payload, bytes | bytearray | memoryview | dict):
            self.size_bytes = payload_size(self.payload)


class RejectReason(enum.Enum):
    MALFORMED = "malformed"
    OVERSIZED = "oversized"
    NO_ROUTE = "no_route"
    DUPLICATE = "duplicate"
    BACKPRESSURE = "backpressure"
    NOT_RUNNING = "not_running"


@dataclass(frozen=True, slots=True)
class Rejected:
    """Why an event was not accepted; ``publish`` returns this instead of raising."""

    reason: RejectReason
    detail: str

    def __str__(self) -> str:
        return f"{self.reason.value}: {self.detail}"


_PAYLOAD_TYPES = (bytes, bytearray, memoryview, Mapping)


def validate(event: object, max_size_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> Rejected | None:
    """Return why ``event`` cannot be accepted, or None when it is well formed and within size."""
    if not isinstance(event, Event):
        return Rejected(RejectReason.MALFORMED, f"not an Event: {type(event).__name__}")
    if not isinstance(event.id, str) or not event.id:
        return Rejected(RejectReason.MALFORMED, "event id must be a non-empty string")
    if not isinstance(event.kind, Kind):
        return Rejected(RejectReason.MALFORMED, f"unknown event kind {event.kind!r}")
    if not isinstance(event.priority, Priority):
        return Rejected(RejectReason.MALFORMED, f"unknown priority {event.priority!r}")
    if not isinstance(event.source, Source) or not event.source.id:
        return Rejected(RejectReason.MALFORMED, "source must be a Source with a non-empty id")
    if not isinstance(event.payload, _PAYLOAD_TYPES):
        return Rejected(RejectReason.MALFORMED, "payload must be bytes or a mapping")
    targets = event.targets
    if targets.__class__ is not tuple or (targets and not all(isinstance(t, str) for t in targets)):
        return Rejected(RejectReason.MALFORMED, "targets must be a tuple of service names")
    if event.retry_count < 0 or event.max_retries < 0:
        return Rejected(RejectReason.MALFORMED, "retry_count and max_retries must be >= 0")
    size = event.size_bytes if event.size_bytes >= 0 else payload_size(event.payload)
    if size > max_size_bytes:
        return oversized(size, max_size_bytes)
    return None


def oversized(size: int, max_size_bytes: int) -> Rejected:
    """The rejection of a payload of ``size`` bytes, over ``max_size_bytes``."""
    return Rejected(
        RejectReason.OVERSIZED, f"payload is {size} bytes, limit is {max_size_bytes} bytes"
    )
