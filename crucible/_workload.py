"""The workload: seeded, realistic traffic for the coordinators under test.

Everything here is pure and deterministic for a given seed: scenarios (how many events, how
many services, what payloads, what work), the event stream itself (category mix, kinds,
priorities, sources, payloads, correlation chains), the simulated services, and the arrival
patterns (open-loop schedules of offsets in seconds from the start of a run).

The one input from outside is ``Event.created_at``: ``generate_events`` stamps every event
with one wall-clock reading unless ``created_at`` is given, because coordinators may age
events by it. Pass ``created_at`` to make the events fully reproducible.
"""

from __future__ import annotations

import bisect
import math
import os
import random
import time
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, TypeAlias, TypeVar

from crucible._events import Category, Event, Kind, Priority, Source, SourceType, payload_size
from crucible._protocol import ROLES
from crucible._services import FaultSpec, SimulatedService, WorkSpec

__all__ = [
    "DEFAULT_MIX",
    "DEFAULT_STRUCTURED_SHARE",
    "DEFAULT_WORK",
    "KIND_WEIGHTS",
    "MAX_CHAIN_EVENTS",
    "PATTERNS",
    "PAYLOAD_POOL_SIZE",
    "PRIORITY_OVERRIDES",
    "PRIORITY_WEIGHTS",
    "SCENARIOS",
    "SOURCES",
    "STRUCTURED_PAD_STEP",
    "Burst",
    "Mixed",
    "Pattern",
    "Ramp",
    "Scenario",
    "Spike",
    "Steady",
    "build_services",
    "centered_range",
    "custom_scenario",
    "generate_events",
    "get_scenario",
    "named_pattern",
    "scenario_from_toml",
    "service_roles",
]

# --------------------------------------------------------------------------------------------
# The realistic mix
# --------------------------------------------------------------------------------------------

# Share of events per category (docs/design.md#category-mix). Sums to 1.
DEFAULT_MIX: Mapping[Category, float] = MappingProxyType(
    {
        Category.FILESYSTEM: 0.30,
        Category.DATABASE: 0.25,
        Category.EXTERNAL: 0.20,
        Category.MCP: 0.10,
        Category.SERVICE: 0.10,
        Category.SYSTEM: 0.05,
    }
)

# Relative weights of the kinds within each category (normalised per category, so each row
# reads as "out of its sum"). Routine traffic dominates: edits, row updates, API calls, tool
# calls, health checks and metrics. Destructive or exceptional kinds (table dropped, rollback,
# tool error, restart, emergency shutdown) are rare. Every kind of Kind.of(category) appears,
# so a long enough run exercises all of them.
KIND_WEIGHTS: Mapping[Category, tuple[tuple[Kind, float], ...]] = MappingProxyType(
    {
        Category.FILESYSTEM: (  # sum 100
            (Kind.FILE_MODIFIED, 45.0),
            (Kind.FILE_CREATED, 20.0),
            (Kind.FILE_DELETED, 10.0),
            (Kind.FILE_MOVED, 8.0),
            (Kind.BATCH_CHANGE, 8.0),
            (Kind.DIRECTORY_CREATED, 6.0),
            (Kind.DIRECTORY_DELETED, 3.0),
        ),
        Category.DATABASE: (  # sum 100
            (Kind.RECORD_UPDATED, 38.0),
            (Kind.RECORD_CREATED, 22.0),
            (Kind.RECORD_DELETED, 7.0),
            (Kind.TRANSACTION_STARTED, 14.0),
            (Kind.TRANSACTION_COMMITTED, 13.0),
            (Kind.TRANSACTION_ROLLED_BACK, 1.5),
            (Kind.SCHEMA_CHANGED, 2.0),
            (Kind.TABLE_CREATED, 2.0),
            (Kind.TABLE_DROPPED, 0.5),
        ),
        Category.EXTERNAL: (  # sum 100
            (Kind.API_CALL_COMPLETED, 35.0),
            (Kind.DATA_RECEIVED, 25.0),
            (Kind.WEBHOOK_TRIGGERED, 20.0),
            (Kind.STREAM_DATA, 15.0),
            (Kind.NOTIFICATION, 5.0),
        ),
        Category.MCP: (  # sum 100
            (Kind.TOOL_CALL, 30.0),
            (Kind.TOOL_RESPONSE, 27.0),
            (Kind.TOOL_ERROR, 3.0),
            (Kind.RESOURCE_REQUESTED, 15.0),
            (Kind.RESOURCE_PROVIDED, 14.0),
            (Kind.CONTEXT_UPDATED, 11.0),
        ),
        Category.SERVICE: (  # sum 100
            (Kind.HEALTH_CHECK, 35.0),
            (Kind.REQUEST_RECEIVED, 25.0),
            (Kind.RESPONSE_SENT, 24.0),
            (Kind.STATUS_CHANGED, 6.0),
            (Kind.CONFIGURATION_CHANGED, 4.0),
            (Kind.SERVICE_REGISTERED, 3.0),
            (Kind.SERVICE_UNREGISTERED, 2.0),
            (Kind.SERVICE_RESTARTED, 1.0),
        ),
        Category.SYSTEM: (  # sum 100
            (Kind.METRICS_COLLECTED, 60.0),
            (Kind.LOG_ROTATED, 10.0),
            (Kind.CONFIG_RELOADED, 8.0),
            (Kind.BACKUP_COMPLETED, 6.0),
            (Kind.MAINTENANCE_STARTED, 5.0),
            (Kind.MAINTENANCE_COMPLETED, 5.0),
            (Kind.DAEMON_STARTED, 3.0),
            (Kind.DAEMON_STOPPED, 2.0),
            (Kind.EMERGENCY_SHUTDOWN, 1.0),
        ),
    }
)

# Priority of an event: 80 % NORMAL, 10 % HIGH, 8 % LOW, 2 % CRITICAL, independent of the
# kind except for the overrides below.
PRIORITY_WEIGHTS: tuple[tuple[Priority, float], ...] = (
    (Priority.NORMAL, 0.80),
    (Priority.HIGH, 0.10),
    (Priority.LOW, 0.08),
    (Priority.CRITICAL, 0.02),
)

# Kinds whose priority is fixed rather than drawn.
PRIORITY_OVERRIDES: Mapping[Kind, Priority] = MappingProxyType(
    {Kind.EMERGENCY_SHUTDOWN: Priority.CRITICAL}
)

# A few producers per category, each with its matching source type. Webhook events come from
# the webhook sources, other external events from the API sources.
SOURCES: Mapping[Category, tuple[Source, ...]] = MappingProxyType(
    {
        Category.FILESYSTEM: (
            Source("fs-watch-src", SourceType.FILE_WATCHER),
            Source("fs-watch-data", SourceType.FILE_WATCHER),
            Source("fs-watch-home", SourceType.FILE_WATCHER),
        ),
        Category.DATABASE: (
            Source("db-primary", SourceType.DATABASE),
            Source("db-replica-1", SourceType.DATABASE),
        ),
        Category.EXTERNAL: (
            Source("api-gateway", SourceType.API),
            Source("api-partner", SourceType.API),
            Source("webhook-github", SourceType.WEBHOOK),
            Source("webhook-billing", SourceType.WEBHOOK),
        ),
        Category.MCP: (
            Source("mcp-client-ide", SourceType.MCP_CLIENT),
            Source("mcp-client-agent", SourceType.MCP_CLIENT),
        ),
        Category.SERVICE: (
            Source("svc-registry", SourceType.SERVICE),
            Source("svc-health", SourceType.SERVICE),
        ),
        Category.SYSTEM: (
            Source("crucible-daemon", SourceType.SYSTEM),
            Source("sys-monitor", SourceType.SYSTEM),
        ),
    }
)


def _sources_for(kind: Kind) -> tuple[Source, ...]:
    sources = SOURCES[kind.category]
    if kind.category is not Category.EXTERNAL:
        return sources
    webhook = kind is Kind.WEBHOOK_TRIGGERED
    return tuple(s for s in sources if (s.type is SourceType.WEBHOOK) == webhook)


_KIND_SOURCES: dict[Kind, tuple[Source, ...]] = {k: _sources_for(k) for k in Kind}

# Correlation chains: an "open" kind starts a group (its correlation_id is its own id), "join"
# kinds that follow in the same chain carry the group's correlation_id and the previous member
# as causation_id, and a "close" kind ends the group. One chain per name is open at a time; a
# group ends after MAX_CHAIN_EVENTS members. Events outside any group have neither id.
MAX_CHAIN_EVENTS = 8
_CHAIN_RULES: dict[Kind, tuple[str, str]] = {
    Kind.BATCH_CHANGE: ("batch", "open"),
    Kind.FILE_CREATED: ("batch", "join"),
    Kind.FILE_MODIFIED: ("batch", "join"),
    Kind.FILE_DELETED: ("batch", "join"),
    Kind.FILE_MOVED: ("batch", "join"),
    Kind.TRANSACTION_STARTED: ("transaction", "open"),
    Kind.RECORD_CREATED: ("transaction", "join"),
    Kind.RECORD_UPDATED: ("transaction", "join"),
    Kind.RECORD_DELETED: ("transaction", "join"),
    Kind.TRANSACTION_COMMITTED: ("transaction", "close"),
    Kind.TRANSACTION_ROLLED_BACK: ("transaction", "close"),
    Kind.TOOL_CALL: ("tool", "open"),
    Kind.TOOL_RESPONSE: ("tool", "close"),
    Kind.TOOL_ERROR: ("tool", "close"),
    Kind.RESOURCE_REQUESTED: ("resource", "open"),
    Kind.RESOURCE_PROVIDED: ("resource", "close"),
    Kind.REQUEST_RECEIVED: ("request", "open"),
    Kind.RESPONSE_SENT: ("request", "close"),
    Kind.MAINTENANCE_STARTED: ("maintenance", "open"),
    Kind.MAINTENANCE_COMPLETED: ("maintenance", "close"),
}

# --------------------------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------------------------

DEFAULT_WORK = WorkSpec()  # hash the payload once per event
DEFAULT_STRUCTURED_SHARE = 0.2


def centered_range(nominal_bytes: int) -> tuple[int, int]:
    """The payload range ``(n - n//2, n + n//2)`` around a nominal size ``n``.

    Sizes are drawn uniformly from it, so their mean is the nominal size: 512 B gives
    256..768, 8 KiB gives 4096..12288.
    """
    if isinstance(nominal_bytes, bool) or not isinstance(nominal_bytes, int) or nominal_bytes < 1:
        raise ValueError(f"payload_bytes must be an integer >= 1, not {nominal_bytes!r}")
    half = nominal_bytes // 2
    return (nominal_bytes - half, nominal_bytes + half)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _normalize_mix(mix: object) -> Mapping[Category, float]:
    accepted = ", ".join(c.value for c in Category)
    if not isinstance(mix, Mapping):
        raise ValueError(f"Scenario.mix must be a mapping of category to share, not {mix!r}")
    shares = dict.fromkeys(Category, 0.0)
    for key, share in mix.items():
        try:
            category = key if isinstance(key, Category) else Category(key)
        except ValueError:
            raise ValueError(
                f"Scenario.mix has unknown category {key!r}; accepted: {accepted}"
            ) from None
        if (
            isinstance(share, bool)
            or not isinstance(share, int | float)
            or not math.isfinite(share)
            or share < 0
        ):
            raise ValueError(
                f"Scenario.mix[{category.value!r}] must be a finite number >= 0, not {share!r}"
            )
        shares[category] = float(share)
    total = math.fsum(shares.values())
    if abs(total - 1.0) > 1e-9:
        raise ValueError(f"Scenario.mix shares must sum to 1 (within 1e-9), not {total!r}")
    return MappingProxyType(shares)


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    """One workload: how many events, how many services, what payloads and what work.

    ``payload_bytes`` is the inclusive (min, max) range that payload sizes are drawn from
    uniformly. ``structured_share`` is the share of events whose payload is a dict (a small
    realistic record padded to the drawn size) rather than raw bytes. ``mix`` maps categories
    (or their string values) to shares summing to 1; categories left out get 0.
    """

    name: str
    events: int
    services: int
    payload_bytes: tuple[int, int]
    work: WorkSpec = DEFAULT_WORK
    mix: Mapping[Category, float] = field(default_factory=lambda: DEFAULT_MIX, hash=False)
    structured_share: float = DEFAULT_STRUCTURED_SHARE
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"Scenario.name must be a non-empty string, not {self.name!r}")
        for name in ("events", "services"):
            value = getattr(self, name)
            if not _is_int(value) or value <= 0:
                raise ValueError(f"Scenario.{name} must be an integer > 0, not {value!r}")
        pb = self.payload_bytes
        if (
            not isinstance(pb, tuple | list)
            or len(pb) != 2
            or not all(_is_int(v) for v in pb)
            or not 0 < pb[0] <= pb[1]
        ):
            raise ValueError(
                "Scenario.payload_bytes must be a (min, max) pair of integers with "
                f"0 < min <= max, not {pb!r}"
            )
        object.__setattr__(self, "payload_bytes", (pb[0], pb[1]))
        if not isinstance(self.work, WorkSpec):
            raise ValueError(f"Scenario.work must be a WorkSpec, not {self.work!r}")
        object.__setattr__(self, "mix", _normalize_mix(self.mix))
        share = self.structured_share
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1:
            raise ValueError(f"Scenario.structured_share must be within [0, 1], not {share!r}")
        if not _is_int(self.seed):
            raise ValueError(f"Scenario.seed must be an integer, not {self.seed!r}")

    @property
    def payload_mean_bytes(self) -> float:
        """The mean payload size: the middle of the range (the nominal size)."""
        return (self.payload_bytes[0] + self.payload_bytes[1]) / 2


def _named(name: str, events: int, services: int, nominal_bytes: int) -> Scenario:
    return Scenario(
        name=name,
        events=events,
        services=services,
        payload_bytes=centered_range(nominal_bytes),
    )


# The four load levels of docs/design.md#benchmark-groups (daemon_performance). Payload sizes are
# centered on the nominal size (nominal/2 .. nominal*3/2), so their mean is the nominal size.
SCENARIOS: Mapping[str, Scenario] = MappingProxyType(
    {
        "light": _named("light", 100, 3, 512),
        "medium": _named("medium", 1_000, 10, 1024),
        "heavy": _named("heavy", 10_000, 50, 4 * 1024),
        "stress": _named("stress", 100_000, 100, 8 * 1024),
    }
)


def get_scenario(name: str) -> Scenario:
    """The named scenario; ValueError listing the accepted names when unknown."""
    try:
        return SCENARIOS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown scenario {name!r}; accepted: {', '.join(SCENARIOS)}") from None


_SCENARIO_KEYS: tuple[str, ...] = tuple(f.name for f in fields(Scenario))
_CUSTOM_KEYS: tuple[str, ...] = ("base", *_SCENARIO_KEYS)
_WORK_KEYS: tuple[str, ...] = tuple(f.name for f in fields(WorkSpec))


def _coerce_work(work: object) -> WorkSpec:
    if isinstance(work, WorkSpec):
        return work
    try:
        if isinstance(work, str):
            return WorkSpec(kind=work)
        if isinstance(work, Mapping):
            unknown = sorted(str(k) for k in work if k not in _WORK_KEYS)
            if unknown:
                raise ValueError(
                    f"unknown key(s) {', '.join(unknown)}; accepted: {', '.join(_WORK_KEYS)}"
                )
            return WorkSpec(**work)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"work: {exc}") from None
    raise ValueError(
        f"work must be a WorkSpec, a work kind (none, hash, parse) or a table with keys "
        f"{', '.join(_WORK_KEYS)}; not {work!r}"
    )


def custom_scenario(**kwargs: Any) -> Scenario:
    """A Scenario from keyword arguments, as read from a config file.

    Keys are the Scenario fields plus ``base``, the name of a scenario to start from.
    ``payload_bytes`` is an int (the nominal size, see ``centered_range``) or a (min, max)
    pair; ``work`` a WorkSpec, a work kind string or a dict of WorkSpec fields; ``mix`` a
    mapping keyed by Category or its string value. ``name`` defaults to "custom". Without
    ``base``, ``events``, ``services`` and ``payload_bytes`` are required.
    """
    unknown = sorted(k for k in kwargs if k not in _CUSTOM_KEYS)
    if unknown:
        raise ValueError(
            f"unknown scenario key(s) {', '.join(unknown)}; accepted: {', '.join(_CUSTOM_KEYS)}"
        )
    values: dict[str, Any] = {}
    base = kwargs.pop("base", None)
    if base is not None:
        if not isinstance(base, str):
            raise ValueError(f"base must be a scenario name, not {base!r}")
        template = get_scenario(base)
        values = {key: getattr(template, key) for key in _SCENARIO_KEYS}
    values["name"] = "custom"
    values.update(kwargs)
    missing = [k for k in ("events", "services", "payload_bytes") if k not in values]
    if missing:
        raise ValueError(
            f"missing scenario key(s) {', '.join(missing)}; give them or a base scenario "
            f"({', '.join(SCENARIOS)})"
        )
    payload = values["payload_bytes"]
    if _is_int(payload):
        values["payload_bytes"] = centered_range(payload)
    elif isinstance(payload, list):
        values["payload_bytes"] = tuple(payload)
    values["work"] = _coerce_work(values.get("work", DEFAULT_WORK))
    return Scenario(**values)


def _looks_like_toml(text: str) -> bool:
    return "\n" in text or "=" in text


def scenario_from_toml(text_or_path: str | os.PathLike[str], table: str = "scenario") -> Scenario:
    """A Scenario from a TOML table, with the keys of ``custom_scenario``.

    ``text_or_path`` is TOML text, or a path to a TOML file (any ``os.PathLike``, or a string
    with neither a newline nor ``=``). ``table`` is a dotted path such as ``"scenario"`` or
    ``"tool.crucible-perf.scenario"``. Errors are ValueErrors that name the source and table.
    """
    if isinstance(text_or_path, str) and _looks_like_toml(text_or_path):
        where, text = "<toml text>", text_or_path
    else:
        where = os.fspath(text_or_path)
        with open(where, encoding="utf-8") as f:
            text = f.read()
    try:
        doc: Any = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{where}: invalid TOML: {exc}") from None
    node: Any = doc
    for part in table.split("."):
        if not isinstance(node, dict) or part not in node:
            raise ValueError(f"{where}: no [{table}] table")
        node = node[part]
    if not isinstance(node, dict):
        raise ValueError(f"{where}: [{table}] must be a table, not {type(node).__name__}")
    try:
        return custom_scenario(**node)
    except ValueError as exc:
        raise ValueError(f"{where} [{table}]: {exc}") from None


# --------------------------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------------------------

# Payloads come from a pool instead of being generated per event: the stress scenario would
# otherwise hold 100,000 x 8 KiB = 800 MiB of bytes. The pool has at most PAYLOAD_POOL_SIZE
# random bytes objects whose sizes are evenly spaced over the range (mirrored, so their mean
# is exactly the middle of the range); each event picks one uniformly. Payloads therefore
# repeat across events, which does not matter: de-duplication is by event id, and the work
# per event (hashing, parsing) depends on the size, not on the content being unique.
PAYLOAD_POOL_SIZE = 256

# Structured payloads are fresh dicts per event, padded with a shared string whose length is
# a multiple of this step, so the pad strings are shared too. Their size is within
# STRUCTURED_PAD_STEP bytes below the drawn size (bumped back into the range when it falls
# below the minimum). A drawn size smaller than the unpadded record (about 100-200 bytes)
# gives the unpadded record, so only tiny ranges can see sizes outside them.
STRUCTURED_PAD_STEP = 16
_PAD_OVERHEAD = len(',"pad":""')


def _pool_sizes(lo: int, hi: int) -> list[int]:
    n = min(PAYLOAD_POOL_SIZE, hi - lo + 1)
    if n == 1:
        return [lo]
    sizes = [lo + (j * (hi - lo)) // (n - 1) for j in range(n)]
    for j in range(n // 2, n):  # mirror the upper half so the mean is exactly (lo + hi) / 2
        sizes[j] = lo + hi - sizes[n - 1 - j]
    return sizes


class _Payloads:
    """The seeded payload pool and the shared pad strings of one ``generate_events`` call."""

    def __init__(self, lo: int, hi: int, seed: int) -> None:
        rng = random.Random(f"crucible-workload-payloads-{seed}")
        self.lo = lo
        self.hi = hi
        self.sizes = _pool_sizes(lo, hi)
        self.blobs = [rng.randbytes(size) for size in self.sizes]
        self._pad_source = rng.randbytes(hi // 2 + 1).hex()
        self._pads: dict[int, str] = {}

    def pad(self, record: dict[str, Any], target: int) -> int:
        """Pad ``record`` towards ``target`` bytes in place; return its exact size."""
        size = payload_size(record)
        room = target - size - _PAD_OVERHEAD
        if room < 0:
            return size
        length = room - room % STRUCTURED_PAD_STEP
        padded = size + _PAD_OVERHEAD + length
        if padded < self.lo and padded + STRUCTURED_PAD_STEP <= self.hi:
            length += STRUCTURED_PAD_STEP
        pad = self._pads.get(length)
        if pad is None:
            pad = self._pads[length] = self._pad_source[:length]
        record["pad"] = pad
        return size + _PAD_OVERHEAD + length


_TABLES = ("orders", "users", "invoices", "sessions", "inventory", "audit_log")
_DIRS = ("src", "docs", "data", "build", "tests")
_EXTS = ("py", "md", "json", "csv", "log")
_ENDPOINTS = ("/v1/orders", "/v1/users", "/v2/search", "/v1/payments", "/hooks/push")
_METHODS = ("GET", "GET", "GET", "POST", "PUT", "DELETE")
_STATUSES = (200, 200, 200, 200, 201, 204, 404, 500)
_TOOLS = ("read_file", "search", "run_query", "list_directory", "fetch_url")
_HEALTH = ("healthy", "healthy", "healthy", "degraded", "unhealthy")


def _record(category: Category, kind: Kind, rng: random.Random, i: int) -> dict[str, Any]:
    """A small realistic record for a structured payload of this category."""
    op = kind.value.split(".", 1)[1]
    randrange = rng.randrange
    if category is Category.FILESYSTEM:
        path = f"/srv/{_DIRS[randrange(5)]}/file_{randrange(10_000):04d}.{_EXTS[randrange(5)]}"
        return {"op": op, "path": path, "size": randrange(1, 1 << 20), "mtime_ns": i * 1_000_003}
    if category is Category.DATABASE:
        row = {"id": randrange(1, 1_000_000), "version": randrange(1, 50), "owner": randrange(500)}
        return {"op": op, "table": _TABLES[randrange(6)], "txn": randrange(1 << 31), "row": row}
    if category is Category.EXTERNAL:
        return {
            "op": op,
            "endpoint": _ENDPOINTS[randrange(5)],
            "method": _METHODS[randrange(6)],
            "status": _STATUSES[randrange(8)],
            "duration_ms": randrange(1, 250_000) / 1000,
        }
    if category is Category.MCP:
        args = {"path": f"/workspace/{_DIRS[randrange(5)]}", "limit": randrange(1, 200)}
        return {"op": op, "tool": _TOOLS[randrange(5)], "args": args, "request_id": i}
    if category is Category.SERVICE:
        role = ROLES[randrange(len(ROLES))]
        return {
            "op": op,
            "service": f"{role}-{randrange(100)}",
            "status": _HEALTH[randrange(5)],
            "uptime_s": randrange(86_400 * 30),
        }
    return {
        "op": op,
        "host": f"node-{randrange(16)}",
        "cpu_pct": randrange(1000) / 10,
        "rss_bytes": randrange(1 << 20, 1 << 32),
    }


_T = TypeVar("_T")


def _cumulative(weights: Sequence[float]) -> list[float]:
    out: list[float] = []
    total = 0.0
    for w in weights:
        total += w
        out.append(total)
    return out


def _weighted(pairs: Sequence[tuple[_T, float]]) -> tuple[list[_T], list[float], float, int]:
    """A weighted choice as ``generate_events`` draws it: the values, their cumulative
    weights, the total and the last index (``bisect`` of ``rand() * total`` over the
    cumulative weights, at most the last index, picks a value)."""
    cumulative = _cumulative([w for _, w in pairs])
    return [v for v, _ in pairs], cumulative, cumulative[-1], len(cumulative) - 1


def generate_events(
    scenario: Scenario,
    seed: int | None = None,
    count: int | None = None,
    *,
    created_at: float | None = None,
) -> list[Event]:
    """The scenario's event stream, deterministic for a seed (None: ``scenario.seed``).

    ``count`` overrides ``scenario.events``; a shorter stream is a prefix of a longer one.
    Ids are ``f"{scenario.name}-{seed}-{i}"``. Each event's category follows the scenario's
    mix, its kind ``KIND_WEIGHTS``, its priority ``PRIORITY_WEIGHTS`` (and overrides), its
    source ``SOURCES``; its payload is one of the pooled bytes objects (see
    ``PAYLOAD_POOL_SIZE``) or, for ``structured_share`` of the events, a fresh record dict
    padded to the drawn size. Related events share a correlation_id and chain their
    causation_id (see ``MAX_CHAIN_EVENTS``). ``created_at`` stamps every event (default: the
    wall clock once, at the call).
    """
    seed = scenario.seed if seed is None else seed
    n = scenario.events if count is None else count
    if not _is_int(seed):
        raise ValueError(f"seed must be an integer, not {seed!r}")
    if not _is_int(n) or n < 0:
        raise ValueError(f"count must be an integer >= 0, not {n!r}")
    stamp = time.time() if created_at is None else float(created_at)

    # One generator for every draw, in a fixed order per event (category, kind, source,
    # priority, payload slot, structured or not, the record's fields): the stream of a seed
    # depends on that order. The draws stay inline, as locals: they run for every event of
    # streams up to the stress scenario's 100,000.
    rng = random.Random(seed)
    rand = rng.random
    categories, cat_cum, cat_total, cat_hi = _weighted(
        [(c, w) for c, w in scenario.mix.items() if w > 0]
    )
    priorities, prio_cum, prio_total, prio_hi = _weighted(PRIORITY_WEIGHTS)
    kinds = {c: _weighted(KIND_WEIGHTS[c])[:2] for c in categories}
    payloads = _Payloads(*scenario.payload_bytes, seed)
    blobs, sizes, n_pool = payloads.blobs, payloads.sizes, len(payloads.sizes)
    structured_share = scenario.structured_share
    chain_rules, chains = _CHAIN_RULES, _Chains()
    prefix = f"{scenario.name}-{seed}-"
    events: list[Event] = []
    append = events.append
    for i in range(n):
        event_id = prefix + str(i)
        category = categories[bisect.bisect(cat_cum, rand() * cat_total, 0, cat_hi)]
        kind_list, kind_cum = kinds[category]
        kind = kind_list[bisect.bisect(kind_cum, rand() * kind_cum[-1], 0, len(kind_cum) - 1)]
        sources = _KIND_SOURCES[kind]
        source = sources[int(rand() * len(sources))]
        priority = priorities[bisect.bisect(prio_cum, rand() * prio_total, 0, prio_hi)]
        priority = PRIORITY_OVERRIDES.get(kind, priority)
        slot = int(rand() * n_pool)
        payload: bytes | dict[str, Any]
        if rand() < structured_share:
            payload = _record(category, kind, rng, i)
            size = payloads.pad(payload, sizes[slot])
        else:
            payload = blobs[slot]
            size = sizes[slot]
        correlation_id = causation_id = None
        rule = chain_rules.get(kind)
        if rule is not None:
            correlation_id, causation_id = chains.link(rule, event_id)
        append(
            Event(
                id=event_id,
                kind=kind,
                source=source,
                payload=payload,
                priority=priority,
                created_at=stamp,
                correlation_id=correlation_id,
                causation_id=causation_id,
                size_bytes=size,
            )
        )
    return events


class _Chains:
    """The correlation chains open so far (``_CHAIN_RULES``, ``MAX_CHAIN_EVENTS``)."""

    def __init__(self) -> None:
        # chain name -> [correlation id, id of the last member, members so far]
        self.open: dict[str, list[Any]] = {}

    def link(self, rule: tuple[str, str], event_id: str) -> tuple[str | None, str | None]:
        """The correlation and causation ids of the next event, whose kind has ``rule``
        (chain name, role): it opens its chain, joins the open one (closing it at its last
        kind or at the length limit), or, when its chain is not open, belongs to none."""
        name, role = rule
        chain = self.open.get(name)
        if role == "open":
            self.open[name] = [event_id, event_id, 1]
            return event_id, None
        if chain is None:
            return None, None
        correlation_id, causation_id = chain[0], chain[1]
        chain[1] = event_id
        chain[2] += 1
        if role == "close" or chain[2] >= MAX_CHAIN_EVENTS:
            del self.open[name]
        return correlation_id, causation_id


# --------------------------------------------------------------------------------------------
# Services
# --------------------------------------------------------------------------------------------


def service_roles(n: int) -> list[str]:
    """``n`` roles assigned round-robin over ``crucible._protocol.ROLES``."""
    if not _is_int(n) or n < 0:
        raise ValueError(f"number of services must be an integer >= 0, not {n!r}")
    return [ROLES[i % len(ROLES)] for i in range(n)]


def build_services(
    scenario: Scenario,
    *,
    on_done: Callable[[float], None] | None = None,
    faults: Mapping[int, FaultSpec] | None = None,
    seed: int | None = None,
) -> list[SimulatedService]:
    """The scenario's simulated services, named ``f"{role}-{i}"`` with roles from
    ``service_roles``. ``faults`` maps a service index to its injected faults; each service
    gets its own seed derived from ``seed`` (None: ``scenario.seed``) and its index."""
    seed = scenario.seed if seed is None else seed
    faults = faults or {}
    bad = sorted(k for k in faults if not _is_int(k) or not 0 <= k < scenario.services)
    if bad:
        raise ValueError(
            f"faults keys must be service indexes 0..{scenario.services - 1}, not {bad!r}"
        )
    no_faults = FaultSpec()
    return [
        SimulatedService(
            f"{role}-{i}",
            role,
            work=scenario.work,
            faults=faults.get(i, no_faults),
            seed=seed * 1_000_003 + i,
            on_done=on_done,
        )
        for i, role in enumerate(service_roles(scenario.services))
    ]


# --------------------------------------------------------------------------------------------
# Arrival patterns
# --------------------------------------------------------------------------------------------
#
# A pattern is an open-loop schedule: the offsets in seconds from the start of a run at which
# events are published, nondecreasing. Arrivals are deterministic (no jitter), so two runs of
# a pattern offer exactly the same load. For a rate r(t) with cumulative Λ(t) = ∫ r, a pattern
# has round(Λ(duration)) arrivals, the k-th at Λ⁻¹(k): the first at 0, and k arrivals before
# any t with Λ(t) = k.


def _check_number(owner: str, name: str, value: object, *, positive: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{owner}.{name} must be a finite number, not {value!r}")
    if positive and value <= 0:
        raise ValueError(f"{owner}.{name} must be > 0, not {value!r}")
    if not positive and value < 0:
        raise ValueError(f"{owner}.{name} must be >= 0, not {value!r}")
    return float(value)


def _round_count(x: float) -> int:
    # Half up, and robust to x landing a hair below an integer after float arithmetic.
    return math.floor(x + 0.5)


def _piecewise_schedule(segments: Sequence[tuple[float, float]]) -> list[float]:
    """Arrivals for a piecewise-constant rate given as (length_s, rate_eps) segments."""
    total = math.fsum(length * rate for length, rate in segments)
    n = _round_count(total)
    out: list[float] = []
    start_t = start_k = 0.0
    seg = 0
    for k in range(n):
        while seg < len(segments) - 1 and k >= start_k + segments[seg][0] * segments[seg][1]:
            start_k += segments[seg][0] * segments[seg][1]
            start_t += segments[seg][0]
            seg += 1
        length, rate = segments[seg]
        if rate <= 0:  # only reachable through rounding at the very end
            out.append(start_t)
            continue
        out.append(start_t + min((k - start_k) / rate, length))
    return out


@dataclass(frozen=True, slots=True)
class Steady:
    """A constant rate of ``rate_eps`` events per second for ``duration_s`` seconds."""

    rate_eps: float
    duration_s: float

    def __post_init__(self) -> None:
        _check_number("Steady", "rate_eps", self.rate_eps, positive=True)
        _check_number("Steady", "duration_s", self.duration_s, positive=True)

    @property
    def arrivals(self) -> int:
        return _round_count(self.rate_eps * self.duration_s)

    def schedule(self) -> list[float]:
        rate = self.rate_eps
        return [k / rate for k in range(self.arrivals)]


@dataclass(frozen=True, slots=True)
class Burst:
    """``count`` bursts of ``size`` simultaneous events, one every ``gap_s`` seconds.

    Each burst is followed by its gap, so the duration is ``count * gap_s`` and the mean rate
    ``size / gap_s``.
    """

    size: int
    count: int
    gap_s: float

    def __post_init__(self) -> None:
        for name in ("size", "count"):
            value = getattr(self, name)
            if not _is_int(value) or value <= 0:
                raise ValueError(f"Burst.{name} must be an integer > 0, not {value!r}")
        _check_number("Burst", "gap_s", self.gap_s, positive=True)

    @property
    def duration_s(self) -> float:
        return self.count * self.gap_s

    @property
    def arrivals(self) -> int:
        return self.size * self.count

    def schedule(self) -> list[float]:
        return [j * self.gap_s for j in range(self.count) for _ in range(self.size)]


@dataclass(frozen=True, slots=True)
class Ramp:
    """A rate rising (or falling) linearly from ``from_eps`` to ``to_eps`` over ``duration_s``.

    Arrivals follow the integrated rate exactly: Λ(t) = a·t + (b - a)·t²/(2·D).
    """

    from_eps: float
    to_eps: float
    duration_s: float

    def __post_init__(self) -> None:
        a = _check_number("Ramp", "from_eps", self.from_eps, positive=False)
        b = _check_number("Ramp", "to_eps", self.to_eps, positive=False)
        _check_number("Ramp", "duration_s", self.duration_s, positive=True)
        if a == 0 and b == 0:
            raise ValueError("Ramp needs from_eps or to_eps > 0, not both 0")

    @property
    def arrivals(self) -> int:
        return _round_count((self.from_eps + self.to_eps) * self.duration_s / 2)

    def schedule(self) -> list[float]:
        a, d = float(self.from_eps), float(self.duration_s)
        c = (self.to_eps - a) / (2 * d)
        out: list[float] = []
        for k in range(self.arrivals):
            if k == 0:
                out.append(0.0)
                continue
            # The root of c·t² + a·t - k = 0 in [0, D], in the form that is stable for c of
            # either sign and for a = 0.
            disc = max(a * a + 4 * c * k, 0.0)
            out.append(min(2 * k / (a + math.sqrt(disc)), d))
        return out


@dataclass(frozen=True, slots=True)
class Spike:
    """``base_eps`` events per second, raised to ``peak_eps`` for ``length_s`` seconds from
    ``at_s``, over ``duration_s`` seconds in all."""

    base_eps: float
    peak_eps: float
    at_s: float
    length_s: float
    duration_s: float

    def __post_init__(self) -> None:
        base = _check_number("Spike", "base_eps", self.base_eps, positive=False)
        peak = _check_number("Spike", "peak_eps", self.peak_eps, positive=True)
        at = _check_number("Spike", "at_s", self.at_s, positive=False)
        length = _check_number("Spike", "length_s", self.length_s, positive=True)
        duration = _check_number("Spike", "duration_s", self.duration_s, positive=True)
        if peak < base:
            raise ValueError(f"Spike.peak_eps ({peak}) must be >= base_eps ({base})")
        if at + length > duration:
            raise ValueError(
                f"Spike must end within its duration: at_s + length_s = {at + length} > "
                f"duration_s = {duration}"
            )

    def _segments(self) -> list[tuple[float, float]]:
        after = self.duration_s - self.at_s - self.length_s
        return [
            (float(self.at_s), float(self.base_eps)),
            (float(self.length_s), float(self.peak_eps)),
            (float(after), float(self.base_eps)),
        ]

    @property
    def arrivals(self) -> int:
        return _round_count(math.fsum(length * rate for length, rate in self._segments()))

    def schedule(self) -> list[float]:
        return _piecewise_schedule(self._segments())


@dataclass(frozen=True, slots=True)
class Mixed:
    """Patterns one after another; each part starts where the previous one's duration ends."""

    parts: tuple[Pattern, ...]

    def __post_init__(self) -> None:
        parts = tuple(self.parts) if isinstance(self.parts, list | tuple) else None
        if not parts:
            raise ValueError(f"Mixed.parts must be a non-empty tuple of patterns, not {parts!r}")
        for part in parts:
            if not isinstance(part, Steady | Burst | Ramp | Spike | Mixed):
                raise ValueError(f"Mixed.parts must hold patterns, not {part!r}")
        object.__setattr__(self, "parts", parts)

    @property
    def duration_s(self) -> float:
        return math.fsum(p.duration_s for p in self.parts)

    @property
    def arrivals(self) -> int:
        return sum(p.arrivals for p in self.parts)

    def schedule(self) -> list[float]:
        out: list[float] = []
        offset = 0.0
        for part in self.parts:
            out.extend(offset + t for t in part.schedule())
            offset += part.duration_s
        return out


Pattern: TypeAlias = Steady | Burst | Ramp | Spike | Mixed

PATTERNS: tuple[str, ...] = ("steady", "burst", "ramp", "spike", "mixed")

_BURST_SIZE = 50
_SPIKE_FACTOR = 5.0
_SPIKE_SHARE = 0.10


def named_pattern(name: str, events: int, rate_eps: float = 1000.0) -> Pattern:
    """A pattern of kind ``name`` with exactly ``events`` arrivals at a mean of ``rate_eps``.

    - steady: ``rate_eps`` throughout.
    - burst: bursts of 50 (the last one smaller when ``events`` is not a multiple of 50, as a
      Mixed of two Bursts), each followed by the gap that keeps the mean rate.
    - ramp: linearly from 0.5x to 1.5x the rate.
    - spike: a base rate, with 5x the base for the middle 10 % of the duration.
    - mixed: steady, then burst, then spike, with a third of the events each.

    The duration is ``events / rate_eps`` in every case.
    """
    if name not in PATTERNS:
        raise ValueError(f"unknown pattern {name!r}; accepted: {', '.join(PATTERNS)}")
    if not _is_int(events) or events <= 0:
        raise ValueError(f"events must be an integer > 0, not {events!r}")
    rate = _check_number("named_pattern", "rate_eps", rate_eps, positive=True)
    duration = events / rate
    if name == "steady":
        return Steady(rate, duration)
    if name == "burst":
        full, rest = divmod(events, _BURST_SIZE)
        bursts: list[Pattern] = []
        if full:
            bursts.append(Burst(_BURST_SIZE, full, _BURST_SIZE / rate))
        if rest:
            bursts.append(Burst(rest, 1, rest / rate))
        return bursts[0] if len(bursts) == 1 else Mixed(tuple(bursts))
    if name == "ramp":
        return Ramp(0.5 * rate, 1.5 * rate, duration)
    if name == "spike":
        # base·(1 - share)·D + factor·base·share·D = rate·D
        base = rate / (1 - _SPIKE_SHARE + _SPIKE_FACTOR * _SPIKE_SHARE)
        length = _SPIKE_SHARE * duration
        at = (duration - length) / 2
        return Spike(base, _SPIKE_FACTOR * base, at, length, duration)
    thirds = (events // 3, events // 3, events - 2 * (events // 3))
    parts = tuple(
        named_pattern(kind, n, rate)
        for kind, n in zip(("steady", "burst", "spike"), thirds, strict=True)
        if n
    )
    return parts[0] if len(parts) == 1 else Mixed(parts)
