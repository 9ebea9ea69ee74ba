"""CrucibleCore: the centralized event router.

Path of an event: ``publish`` validates it, resolves its targets (explicit
``event.targets``, else the routing rules; cached per route key), checks the
de-duplication window, picks one replica per target with the balancing strategy, and pushes
one delivery per target on that service's priority queue; a service with queued work joins
the ring of ready services.

A shared pool of long-lived worker tasks (at most ``max_concurrent``, spawned on demand)
serves the ring: a worker claims the service at the head, moves it to the back (so services
take turns) and takes up to ``_BATCH`` of its deliveries, most urgent first, awaiting each
handler directly. A service leaves the ring while ``service_concurrency`` workers hold it
(each makes one call at a time, so that bounds its calls in progress). A push
wakes a worker only when every awake one is inside a handler call, and a worker that
suspends in a handler hands the rest of the ring to the next (``_kick``): quick handlers
are all run by one task, as in a plain dispatch loop, and slow ones get up to the limits.
The breaker is consulted when a delivery is taken; a watchdog task cancels calls that
overrun ``event_timeout_s``. A failed delivery is re-dispatched after an exponential
backoff (a timer, not a task) and dead-lettered once its retries are spent. A service in
another process takes batch calls instead (``batch``): the worker sends it several
deliveries and moves on, and each is accounted when its answer arrives.

Accounting is per event: ``published`` counts every call; an accepted event is in flight
until each of its deliveries has succeeded (``delivered``) or one has been dead-lettered
(``dead_lettered``, once per event). ``failed`` is always 0: CrucibleCore retries failures
and dead-letters what it cannot deliver, so no event ends as merely failed; per-call
failures are in ``metrics()`` and ``Stats.extra["handler_failures"]``. Replaying dead
letters moves their events from ``dead_lettered`` back to in flight (``published`` does not
change), so the invariant published = delivered + failed + dead_lettered + rejected +
in_flight holds at every await point.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from crucible._core.balancing import make_balancer, roomiest
from crucible._core.batch import BatchCall
from crucible._core.breaker import BreakerState, CircuitBreaker
from crucible._core.config import HEALTH_BASED, ROUND_ROBIN, CoreConfig
from crucible._core.dedup import Deduplicator
from crucible._core.registry import (
    CoreMetrics,
    Delivery,
    ReplicaGroup,
    ServiceHealth,
    ServiceMetrics,
    ServiceSlot,
    Ticket,
    Worker,
)
from crucible._core.rules import Rule, default_rules, match_targets
from crucible._events import Event, Priority, Rejected, RejectReason, oversized, validate
from crucible._protocol import CoordinatorError, Service, SettleTimeout, Stats

__all__ = ["CrucibleCore", "DeadLetter", "DeadReason", "backoff_delay_s"]

# Route caches are cleared when they reach this size, so an unbounded variety of explicit
# target tuples or source ids cannot grow memory without limit.
_ROUTE_CACHE_MAX = 4096

# Deliveries a worker takes from one service before it moves on to the next in the ring.
_BATCH = 32

# What the rules route cache is keyed by (see _rules_changed).
_KEY_CATEGORY, _KEY_KIND, _KEY_FULL = 0, 1, 2

_NOT_RUNNING = Rejected(RejectReason.NOT_RUNNING, "CrucibleCore is not running")


class DeadReason(enum.StrEnum):
    """Why a delivery was dead-lettered."""

    ERROR = "error"  # the handler raised on the last allowed attempt
    TIMEOUT = "timeout"  # the last allowed attempt overran event_timeout_s
    NO_REPLICA = "no_replica"  # no replica would take it (breakers open / unhealthy), retries spent
    UNREGISTERED = "unregistered"  # its target lost its last service
    STOPPED = "stopped"  # the core stopped before it was delivered


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A delivery given up on. ``attempts`` counts tries made (handler calls, and routing
    attempts that found no replica), including re-deliveries the event's ``retry_count``
    already held when published; ``service`` is the service it was last queued at or failed
    on; ``target`` is the role or service name it was routed to; ``error`` the last error."""

    event: Event
    reason: DeadReason
    error: str | None
    attempts: int
    service: str | None
    target: str


def backoff_delay_s(retry: int, base_s: float, max_s: float) -> float:
    """Delay before re-delivery number ``retry`` (1 for the first): ``base_s * 2**(retry-1)``,
    at most ``max_s``. ``retry`` is the event's ``retry_count`` after the increment, so
    retries made before the event was published lengthen the backoff too."""
    return min(base_s * 2.0 ** (retry - 1), max_s)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class CrucibleCore:
    """The centralized router. See the module docstring for the path of an event.

    ``CrucibleCore(config, **overrides)``: overrides replace fields of ``config`` (or of
    the default ``CoreConfig``).
    """

    name = "core"

    def __init__(self, config: CoreConfig | None = None, **overrides: Any) -> None:
        cfg = config if config is not None else CoreConfig()
        if overrides:
            cfg = dataclasses.replace(cfg, **overrides)
        self.config = cfg
        self._clock: Callable[[], float] = cfg.clock
        self._max_queue = cfg.max_queue
        self._max_retries = cfg.max_retries
        self._max_concurrent = cfg.max_concurrent
        self._service_concurrency = cfg.service_concurrency
        self._wake_burst = cfg.wake_burst
        self._event_timeout_s = cfg.event_timeout_s
        self._max_event_bytes = cfg.max_event_bytes
        self._wait_for_room_mode = cfg.backpressure == "wait"
        self._dedup = Deduplicator(cfg.dedup_window_s)
        self._dedup_on = cfg.dedup_window_s > 0
        self._admit = self._dedup.admit
        self._pick = make_balancer(cfg.balancing, cfg.seed).pick
        self._round_robin = cfg.balancing == ROUND_ROBIN
        self._healthy_only = cfg.balancing == HEALTH_BASED

        self._rules: list[Rule] = list(default_rules() if cfg.rules is None else cfg.rules)
        self._key_mode = _KEY_CATEGORY
        # Route caches. Rejections are cached apart so the hot path needs no type check.
        self._routes: dict[object, tuple[ReplicaGroup, ...]] = {}
        self._explicit: dict[tuple[str, ...], tuple[ReplicaGroup, ...]] = {}
        self._no_routes: dict[object, Rejected] = {}
        self._rules_changed()

        self._slots: dict[str, ServiceSlot] = {}
        self._names: dict[str, ReplicaGroup] = {}
        self._roles: dict[str, ReplicaGroup] = {}
        self._workers: set[Worker] = set()
        # Deliveries awaiting a retry: key -> (timer, delivery, service that last had it).
        self._parked: dict[int, tuple[asyncio.TimerHandle, Delivery, str | None]] = {}
        self._park_seq = 0
        # Publishers blocked by backpressure, with the deliveries they still hold.
        self._waiting: dict[int, list[Delivery]] = {}
        self._dead: deque[tuple[DeadLetter, object, ReplicaGroup]] = deque(
            maxlen=cfg.max_dead_letters
        )
        self._dead_dropped = 0
        # Multi-target events (by id of their ticket, alive until they settle) that had a
        # delivery dead-lettered: they settle as dead-lettered.
        self._failed_tickets: set[int] = set()
        # The pool: services with queued work, parked workers, how many workers are not
        # parked (awake) and how many are inside a handler call.
        self._ready: deque[ServiceSlot] = deque()
        self._idle_workers: deque[asyncio.Future[None]] = deque()
        self._awake = 0
        self._calls = 0
        # Batch calls with deliveries unanswered (a dict as an ordered set), and how many
        # deliveries those are (see core.batch).
        self._remote: dict[BatchCall, None] = {}
        self._remote_calls = 0
        # Services with batch calls waiting for the core to drop below max_concurrent.
        self._saturated: dict[ServiceSlot, None] = {}
        self._kick_pending = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._running = False
        self._tasks: list[asyncio.Task[None]] = []
        self._idle: asyncio.Future[None] | None = None

        self._published = 0
        self._delivered = 0
        self._dead_lettered = 0
        self._rejected = 0
        self._in_flight = 0
        self._retried = 0
        self._replayed = 0
        self._health_checks = 0

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start the workers, the health checks and the event-timeout watchdog. Idempotent;
        a stopped core can be started again."""
        if self._running:
            return
        self._loop = loop = asyncio.get_running_loop()
        self._running = True
        # Workers are spawned on demand by _wake_one.
        self._tasks = [
            loop.create_task(self._health_loop(), name="core-health"),
            loop.create_task(self._watchdog(), name="core-watchdog"),
        ]

    async def stop(self) -> None:
        """Stop delivering. Every event not yet delivered - queued, awaiting a retry, held
        by a publisher waiting for room, or in a handler call (which is cancelled) - is
        dead-lettered with reason ``stopped``. Background tasks end before this returns."""
        if not self._running:
            return
        self._running = False
        tasks = list(self._tasks)
        self._tasks = []
        parked, self._parked = self._parked, {}
        for timer, d, last_service in parked.values():
            timer.cancel()
            self._dead_letter(d, DeadReason.STOPPED, None, last_service, 0)
        for pending in list(self._waiting.values()):
            for d in pending:
                self._dead_letter(d, DeadReason.STOPPED, None, None, 0)
            pending.clear()
        for slot in self._slots.values():
            for d in slot.queue.drain():
                self._dead_letter(d, DeadReason.STOPPED, None, slot.name, 0)
            while slot.room_waiters:
                fut = slot.room_waiters.popleft()
                if not fut.done():
                    fut.set_result(False)
            slot.ready = False
        self._ready.clear()
        self._saturated.clear()
        for call in list(self._remote):
            self._end_remote_call(call, stopped=True)
        for w in self._workers:
            if w.task is not None:
                tasks.append(w.task)
        # A handler may stop the core: its own worker finishes that call and then ends.
        me = asyncio.current_task()
        tasks = [t for t in tasks if t is not me]
        for task in tasks:
            task.cancel()
        # Cancelled workers dead-letter the call they were in before they end.
        await asyncio.gather(*tasks, return_exceptions=True)
        self._idle_workers.clear()
        self._awake = 0
        self._kick_pending = False

    # ------------------------------------------------------------------ registry

    async def register(self, service: Service, *, weight: float | None = None) -> None:
        """Add a service. ``weight`` (else ``service.weight`` if it has one, else 1.0) is
        used by the weighted-random strategy. Raises CoordinatorError when the name is taken
        or ``max_services`` are registered."""
        if not isinstance(service, Service):
            raise CoordinatorError(f"{service!r} does not implement the Service protocol")
        name = service.name
        if not isinstance(name, str) or not name or not isinstance(service.role, str):
            raise CoordinatorError(f"service name and role must be strings, got {name!r}")
        if name in self._slots:
            raise CoordinatorError(f"a service named {name!r} is already registered")
        if len(self._slots) >= self.config.max_services:
            raise CoordinatorError(
                f"cannot register {name!r}: max_services={self.config.max_services} reached"
            )
        raw_weight = weight if weight is not None else getattr(service, "weight", 1.0)
        if (
            not isinstance(raw_weight, int | float)
            or isinstance(raw_weight, bool)
            or not 0 < raw_weight < float("inf")
        ):
            raise ValueError(f"weight of {name!r} must be a finite number > 0, not {raw_weight!r}")
        cfg = self.config
        breaker = CircuitBreaker(cfg.breaker_threshold, cfg.breaker_timeout_s, self._clock)
        slot = ServiceSlot(service, float(raw_weight), breaker)
        slot.healthy = self._probe(slot)
        self._slots[name] = slot
        self._names.setdefault(name, ReplicaGroup(name)).add(slot)
        self._roles.setdefault(slot.role, ReplicaGroup(slot.role)).add(slot)
        self._clear_routes()

    async def unregister(self, name: str) -> None:
        """Remove a service. Its queued deliveries go to another replica of their target, or
        are dead-lettered (``unregistered``) when none is left; a call in progress finishes
        and is accounted as usual. Raises CoordinatorError for an unknown name."""
        slot = self._slots.pop(name, None)
        if slot is None:
            raise CoordinatorError(f"no service named {name!r} is registered")
        slot.closed = True
        self._names[name].remove(slot)
        self._roles[slot.role].remove(slot)
        self._clear_routes()
        for d in slot.queue.drain():
            self._dispatch(d, name)
        # Blocked publishers re-pick among the remaining replicas. A ring entry left for
        # the slot is dropped by the worker that meets it.
        while slot.room_waiters:
            fut = slot.room_waiters.popleft()
            if not fut.done():
                fut.set_result(True)

    def services(self) -> tuple[str, ...]:
        return tuple(self._slots)

    # ------------------------------------------------------------------ rules

    @property
    def rules(self) -> tuple[Rule, ...]:
        return tuple(self._rules)

    def add_rule(self, rule: Rule) -> None:
        """Append a routing rule. Raises CoordinatorError if its name is taken."""
        if not isinstance(rule, Rule):
            raise CoordinatorError(f"add_rule needs a Rule, not {type(rule).__name__}")
        if any(r.name == rule.name for r in self._rules):
            raise CoordinatorError(f"a rule named {rule.name!r} already exists")
        self._rules.append(rule)
        self._rules_changed()

    def remove_rule(self, name: str) -> Rule:
        """Remove and return the rule called ``name``. Raises CoordinatorError if absent."""
        for i, rule in enumerate(self._rules):
            if rule.name == name:
                del self._rules[i]
                self._rules_changed()
                return rule
        raise CoordinatorError(f"no rule named {name!r}")

    def _rules_changed(self) -> None:
        # The route cache key holds only what some rule discriminates on, so the cache
        # stays small and warms fast: the category alone for the default wiring.
        rules = self._rules
        if any(
            r.source_types is not None or r.source_ids is not None or r.min_priority is not None
            for r in rules
        ):
            self._key_mode = _KEY_FULL
        elif any(r.kinds is not None for r in rules):
            self._key_mode = _KEY_KIND
        else:
            self._key_mode = _KEY_CATEGORY
        self._clear_routes()

    def _clear_routes(self) -> None:
        self._routes.clear()
        self._explicit.clear()
        self._no_routes.clear()

    def _group_for(self, target: str) -> ReplicaGroup | None:
        """A target names a service first, else a role; None when nothing serves it."""
        group = self._names.get(target)
        if group is not None and group.replicas:
            return group
        group = self._roles.get(target)
        if group is not None and group.replicas:
            return group
        return None

    def _resolve_explicit(self, targets: tuple[str, ...]) -> tuple[ReplicaGroup, ...] | Rejected:
        groups: list[ReplicaGroup] = []
        missing: list[str] = []
        for target in dict.fromkeys(targets):
            group = self._group_for(target)
            if group is None:
                missing.append(target)
            else:
                groups.append(group)
        if missing:
            names = ", ".join(repr(t) for t in missing)
            return self._cache_no_route(
                ("targets", targets),
                f"no registered service has the name or role {names}",
            )
        if len(self._explicit) >= _ROUTE_CACHE_MAX:
            self._explicit.clear()
        route = self._explicit[targets] = tuple(groups)
        return route

    def _resolve_rules(self, event: Event, key: object) -> tuple[ReplicaGroup, ...] | Rejected:
        source, priority = event.source, event.priority
        targets = match_targets(self._rules, event.kind, source, priority)
        if not targets:
            return self._cache_no_route(
                key,
                f"no rule matches {event.kind.value} from {source.type.value}:{source.id} "
                f"at {priority.name}",
            )
        groups = [g for g in map(self._group_for, targets) if g is not None]
        if not groups:
            return self._cache_no_route(
                key,
                f"rules route {event.kind.value} to {', '.join(targets)} but no registered "
                "service has that name or role",
            )
        if len(self._routes) >= _ROUTE_CACHE_MAX:
            self._routes.clear()
        route = self._routes[key] = tuple(groups)
        return route

    def _cache_no_route(self, key: object, detail: str) -> Rejected:
        if len(self._no_routes) >= _ROUTE_CACHE_MAX:
            self._no_routes.clear()
        rejection = self._no_routes[key] = Rejected(RejectReason.NO_ROUTE, detail)
        return rejection

    # ------------------------------------------------------------------ publish

    async def publish(self, event: Event, *, checked: bool = False) -> Rejected | None:
        """Accept ``event`` (None) or say why not. Never raises for a bad event.
        ``checked``: the caller built ``event`` itself and has checked every field that
        ``validate`` checks (the daemon's ``decode_event``), so only its size is checked
        here."""
        # One function on purpose: this path is tuned against instruction counts
        # (docs/measurements.md), and a call per step costs measurably here.
        self._published += 1
        if not self._running:
            self._rejected += 1
            return _NOT_RUNNING
        if checked:
            size = event.size_bytes
            problem = (
                oversized(size, self._max_event_bytes) if size > self._max_event_bytes else None
            )
        else:
            problem = validate(event, self._max_event_bytes)
        if problem is not None:
            self._rejected += 1
            return problem
        targets = event.targets
        found: tuple[ReplicaGroup, ...] | Rejected | None
        if targets:
            route = self._explicit.get(targets)
            if route is None:
                found = self._no_routes.get(("targets", targets))
                if found is None:
                    found = self._resolve_explicit(targets)
                if isinstance(found, Rejected):
                    self._rejected += 1
                    return found
                route = found
        else:
            # Enum hashing runs Python code; the members' string values hash in C.
            key: object
            key_mode = self._key_mode
            if key_mode == _KEY_CATEGORY:
                key = event.category._value_
            elif key_mode == _KEY_KIND:
                key = event.kind._value_
            else:
                source = event.source
                key = (event.kind._value_, source.type._value_, source.id, event.priority)
            route = self._routes.get(key)
            if route is None:
                found = self._no_routes.get(key)
                if found is None:
                    found = self._resolve_rules(event, key)
                if isinstance(found, Rejected):
                    self._rejected += 1
                    return found
                route = found
        if self._dedup_on and not self._admit(event.id, self._clock()):
            self._rejected += 1
            return Rejected(
                RejectReason.DUPLICATE,
                f"event id {event.id!r} was accepted within the last "
                f"{self.config.dedup_window_s} s",
            )
        priority = event.priority
        if len(route) != 1:
            blocked = self._publish_many(event, priority, route)
            if blocked is None:
                return None
            if isinstance(blocked, Rejected):
                return blocked
            await self._wait_for_room(blocked)
            return None

        # Fast path: one target, a replica available, room in its queue.
        group = route[0]
        slot: ServiceSlot | None
        if self._round_robin:
            # RoundRobin.pick inlined for the usual case, a closed breaker.
            slot = next(group.rotation)
            if not slot.breaker.closed and not slot.breaker.available():
                slot = self._pick(group, priority)
        else:
            slot = self._pick(group, priority)
        d: Delivery = (event, group, None)
        if slot is not None:
            queue = slot.queue
            if queue.size < self._max_queue:
                self._in_flight += 1
                queue.levels[priority].append(d)
                queue.size += 1
                if not slot.ready:
                    slot.ready = True
                    self._ready.append(slot)
                if self._awake <= self._calls:
                    self._wake_one()
                return None
            slot = self._with_room(group, slot)
            if slot.queue.size >= self._max_queue and not self._wait_for_room_mode:
                return self._backpressure(event, slot)
        self._in_flight += 1
        if slot is None:
            self._no_replica(d, None)
        elif slot.queue.size < self._max_queue:
            self._push(slot, d)
        else:
            await self._wait_for_room([d])
        return None

    def _publish_many(
        self, event: Event, priority: Priority, route: tuple[ReplicaGroup, ...]
    ) -> list[Delivery] | Rejected | None:
        """Queue one delivery per target; return the ones that must wait for room (None if
        none), or the rejection (backpressure "reject" is all or nothing)."""
        max_queue = self._max_queue
        slot: ServiceSlot | None
        if not self._wait_for_room_mode:
            picks: list[ServiceSlot | None] = []
            for group in route:
                slot = self._pick(group, priority)
                if slot is not None and slot.queue.size >= max_queue:
                    slot = self._with_room(group, slot)
                    if slot.queue.size >= max_queue:
                        return self._backpressure(event, slot)
                picks.append(slot)
            self._in_flight += 1
            ticket: Ticket = [len(route)]
            for group, slot in zip(route, picks, strict=True):
                d: Delivery = (event, group, ticket)
                if slot is None:
                    self._no_replica(d, None)
                else:
                    self._push(slot, d)
            return None

        self._in_flight += 1
        ticket = [len(route)]
        blocked: list[Delivery] | None = None
        round_robin = self._round_robin
        for group in route:
            if round_robin:
                slot = next(group.rotation)
                if not slot.breaker.closed and not slot.breaker.available():
                    slot = self._pick(group, priority)
            else:
                slot = self._pick(group, priority)
            d = (event, group, ticket)
            if slot is None:
                self._no_replica(d, None)
                continue
            queue = slot.queue
            if queue.size >= max_queue:
                slot = self._with_room(group, slot)
                queue = slot.queue
                if queue.size >= max_queue:
                    if blocked is None:
                        blocked = [d]
                    else:
                        blocked.append(d)
                    continue
            queue.levels[priority].append(d)
            queue.size += 1
            if not slot.ready:
                slot.ready = True
                self._ready.append(slot)
        if self._awake <= self._calls:
            self._wake_one()
        return blocked

    def _backpressure(self, event: Event, slot: ServiceSlot) -> Rejected:
        self._rejected += 1
        # Not accepted after all, so a retry of the same id must not be a duplicate.
        self._dedup.forget(event.id)
        return Rejected(
            RejectReason.BACKPRESSURE,
            f"queue of service {slot.name!r} is full ({self._max_queue} events)",
        )

    def _with_room(self, group: ReplicaGroup, slot: ServiceSlot) -> ServiceSlot:
        """The strategy chose a full replica: take another with room if the group has one."""
        if len(group.replicas) > 1:
            return roomiest(group, self._max_queue, self._healthy_only) or slot
        return slot

    def _choose(self, group: ReplicaGroup, priority: int) -> ServiceSlot | None:
        slot = self._pick(group, priority)
        if slot is not None and slot.queue.size >= self._max_queue:
            slot = self._with_room(group, slot)
        return slot

    async def _wait_for_room(self, pending: list[Delivery]) -> None:
        """Backpressure "wait": queue each pending delivery as room appears. The list is
        registered in ``_waiting`` so stop() can dead-letter what is still held."""
        key = id(pending)
        self._waiting[key] = pending
        try:
            while pending:
                if not self._running:
                    while pending:
                        self._dead_letter(pending.pop(0), DeadReason.STOPPED, None, None, 0)
                    break
                d = pending[0]
                slot = self._choose(d[1], d[0].priority)
                if slot is None:
                    pending.pop(0)
                    self._no_replica(d, None)
                    continue
                if slot.queue.size < self._max_queue:
                    pending.pop(0)
                    self._push(slot, d)
                    continue
                assert self._loop is not None
                fut: asyncio.Future[bool] = self._loop.create_future()
                slot.room_waiters.append(fut)
                try:
                    await fut
                except asyncio.CancelledError:
                    # The publisher was cancelled, but these events were accepted: queue
                    # them past the bound rather than lose them.
                    with contextlib.suppress(ValueError):
                        slot.room_waiters.remove(fut)
                    while pending:
                        self._dispatch(pending.pop(0), None)
                    raise
        finally:
            del self._waiting[key]

    def _push(self, slot: ServiceSlot, d: Delivery) -> None:
        slot.queue.push(d, d[0].priority)
        if not slot.ready:
            slot.ready = True
            self._ready.append(slot)
        if self._awake <= self._calls:
            self._wake_one()

    def _dispatch(self, d: Delivery, last_service: str | None) -> None:
        """Queue a delivery the core already owns (retry, re-route, replay). The queue bound
        is for publishers; these go past it so an accepted event is never dropped."""
        if not self._running:
            self._dead_letter(d, DeadReason.STOPPED, None, last_service, 0)
            return
        slot = self._choose(d[1], d[0].priority)
        if slot is None:
            self._no_replica(d, last_service)
        else:
            self._push(slot, d)

    def _wake_one(self) -> None:
        """Get one more worker going: a parked one, else a new one while the pool is
        below ``max_concurrent``. Callers check first that no awake worker is free."""
        idle = self._idle_workers
        while idle:
            fut = idle.popleft()
            if not fut.done():
                fut.set_result(None)
                self._awake += 1
                return
        if len(self._workers) < self._max_concurrent and self._running:
            loop = self._loop
            assert loop is not None
            w = Worker()
            w.task = loop.create_task(self._work(w), name="core-worker")
            self._workers.add(w)
            self._awake += 1

    def _kick(self) -> None:
        """Runs once the worker that scheduled it has suspended or parked: if services are
        still ready and every awake worker is inside a handler call, wake more, up to
        ``wake_burst`` (and one per ready service). A burst of quick calls thus keeps one
        worker, slow calls get more."""
        self._kick_pending = False
        ready = self._ready
        if not ready:
            return
        spare = min(len(ready), self._wake_burst)
        while self._awake < self._calls + spare:
            awake = self._awake
            self._wake_one()
            if self._awake == awake:
                break  # max_concurrent workers, none parked

    @staticmethod
    def _wake_room(slot: ServiceSlot) -> None:
        waiters = slot.room_waiters
        while waiters:
            fut = waiters.popleft()
            if not fut.done():
                fut.set_result(True)
                return

    # ------------------------------------------------------------------ delivery

    async def _work(self, w: Worker) -> None:
        """One worker of the pool: claim the service at the head of the ring, then take up
        to ``_BATCH`` of its deliveries in priority order - check the breaker, await the
        handler, account - and release it. The claim counts in ``in_flight``, which
        ``service_concurrency`` bounds; the batch spreads the ring's bookkeeping over many
        deliveries."""
        # One function on purpose: the worker loop is tuned against instruction counts
        # (docs/measurements.md), and a call per step costs measurably here.
        ready = self._ready
        idle = self._idle_workers
        limit = self._service_concurrency
        task = w.task
        loop = self._loop
        assert task is not None and loop is not None
        try:
            while True:
                if not ready:
                    if not self._running:
                        return
                    fut: asyncio.Future[None] = loop.create_future()
                    idle.append(fut)
                    self._awake -= 1
                    await fut
                    continue
                slot = ready.popleft()
                if slot.handle_batch is not None:
                    self._send_batch(slot)  # never waits; keeps its own place in the ring
                    continue
                queue = slot.queue
                if not queue.size or slot.in_flight >= limit or slot.closed:
                    # Re-joins the ring when a worker releases it (see below).
                    slot.ready = False
                    continue
                slot.in_flight += 1
                if queue.size > 1 and slot.in_flight < limit:
                    ready.append(slot)  # to the back: services take turns
                else:
                    slot.ready = False
                if ready and not self._kick_pending:
                    self._kick_pending = True
                    loop.call_soon(self._kick)
                levels = queue.levels
                room_waiters = slot.room_waiters
                breaker = slot.breaker
                handle = slot.handle
                budget = _BATCH
                while queue.size and budget:
                    budget -= 1
                    # PriorityQueue.pop inlined: most urgent level first.
                    for level in levels:
                        if level:
                            d = level.popleft()
                            break
                    queue.size -= 1
                    if room_waiters:
                        self._wake_room(slot)
                    if not breaker.closed and not breaker.admit():
                        slot.refused += 1
                        self._dispatch(d, slot.name)
                        continue
                    event, _, ticket = d
                    self._calls += 1
                    w.current = d
                    try:
                        await handle(event)
                    except asyncio.CancelledError as exc:
                        w.current = None
                        self._calls -= 1
                        if task.cancelling() and not (w.timed_out and self._running):
                            # stop() cancelled the call: no verdict on the service.
                            slot.in_flight -= 1
                            if not breaker.closed:
                                breaker.abandon_probe()
                            self._dead_letter(d, DeadReason.STOPPED, None, slot.name, 1)
                            raise
                        if not w.timed_out:
                            self._on_failure(d, slot, DeadReason.ERROR, _describe(exc))
                            continue
                    except Exception as exc:
                        w.current = None
                        self._calls -= 1
                        if not w.timed_out:
                            self._on_failure(d, slot, DeadReason.ERROR, _describe(exc))
                            continue
                    else:
                        w.current = None
                        self._calls -= 1
                        if not w.timed_out:
                            slot.delivered += 1
                            # Failures are only reset by a success, so a breaker that is
                            # not closed always has some.
                            if breaker.failures:
                                breaker.record_success()
                            # Accounted in place, not by a call: the in-process path runs this
                            # once per delivery (a call cost 1.5 % of a medium event's
                            # instructions). _remote_handled does the same for batch calls.
                            if ticket is None:
                                self._delivered += 1
                                self._in_flight -= 1
                                if not self._in_flight and self._idle is not None:
                                    self._now_idle()
                            else:
                                ticket[0] -= 1
                                if not ticket[0]:
                                    self._settle_ticket(ticket)
                            continue
                    # The watchdog cancelled the call (or the handler swallowed that).
                    w.timed_out = False
                    task.uncancel()
                    slot.timeouts += 1
                    self._on_failure(
                        d,
                        slot,
                        DeadReason.TIMEOUT,
                        f"TimeoutError: handler ran longer than {self._event_timeout_s} s",
                    )
                slot.in_flight -= 1
                if queue.size and not slot.ready and not slot.closed:
                    slot.ready = True
                    ready.append(slot)
                if self._saturated:
                    self._release_saturated()
        finally:
            self._workers.discard(w)
            if self._running:
                # Only a crash gets here while running (stop() resets the pool state).
                self._awake -= 1

    def _send_batch(self, slot: ServiceSlot) -> None:
        """A worker took ``slot``, a service with ``handle_batch`` (see ``batch``), from the
        ring: send it up to ``_BATCH`` of its deliveries at once - as many as its free
        ``service_concurrency`` and the core's free ``max_concurrent`` allow - without
        waiting; each holds a unit of ``in_flight`` until it is answered
        (``_remote_outcome``). The service stays in the ring while it has deliveries and
        room; with none of its own it re-joins when one of its calls ends, and with none
        across the core, when any call ends (``_release_saturated``)."""
        queue = slot.queue
        if not queue.size or slot.closed:
            slot.ready = False
            return
        limit = self._service_concurrency
        spare = self._max_concurrent - self._calls - self._remote_calls
        room = min(_BATCH, limit - slot.in_flight, spare)
        if room <= 0:
            slot.ready = False
            if slot.in_flight < limit:
                self._saturated[slot] = None
            return
        room_waiters = slot.room_waiters
        breaker = slot.breaker
        batch: list[Delivery] = []
        events: list[Event] = []
        budget = _BATCH
        pop = queue.pop
        while queue.size and budget and len(batch) < room:
            budget -= 1
            d = cast(Delivery, pop())  # most urgent first; not None: size > 0
            if room_waiters:
                self._wake_room(slot)
            if breaker.closed or breaker.admit():
                batch.append(d)
                events.append(d[0])
            else:
                slot.refused += 1
                self._dispatch(d, slot.name)
        k = len(batch)
        if k:
            slot.in_flight += k
            self._remote_calls += k
            call = BatchCall(slot, batch, self._remote_outcome, self._remote_handled)
            self._remote[call] = None
            handle_batch = slot.handle_batch
            assert handle_batch is not None
            try:
                handle_batch(call, events)
            except Exception as exc:
                for i in range(k):
                    self._remote_outcome(call, i, exc)
        if not queue.size or slot.closed:
            slot.ready = False
        elif slot.in_flight >= limit:
            slot.ready = False  # re-joins when one of its calls ends
        elif spare - k <= 0:
            slot.ready = False
            self._saturated[slot] = None
        elif slot.ready:
            self._ready.append(slot)  # to the back: services take turns

    def _remote_outcome(self, call: BatchCall, i: int, outcome: BaseException | None) -> None:
        """Account the i-th delivery of a batch call as ``_work`` accounts a handler call
        that returned (``outcome`` None: ``_remote_handled``) or raised ``outcome``; free
        its unit of the service's concurrency, and put the service back in the ring if it
        has work."""
        if outcome is None:
            self._remote_handled(call, [i])
            return
        d = self._release(call, i)
        if d is not None:
            self._on_failure(d, call.slot, DeadReason.ERROR, _describe(outcome))
            self._room_freed(call.slot)

    def _release(self, call: BatchCall, i: int) -> Delivery | None:
        """Take the i-th delivery out of ``call`` and give back its unit of concurrency;
        None if it was answered already, or timed out or stopped."""
        pending = call.pending
        d = pending[i]
        if d is None:
            return None
        pending[i] = None
        call.left -= 1
        if not call.left:
            self._remote.pop(call, None)
        self._remote_calls -= 1
        call.slot.in_flight -= 1
        return d

    def _remote_handled(self, call: BatchCall, indices: list[int]) -> None:
        """``_remote_outcome(call, i, None)`` for each of ``indices`` (an ACK frame answers
        a call's deliveries in runs), with the call's, the service's and the ring's
        bookkeeping done once for the run."""
        pending = call.pending
        k = 0
        for i in indices:
            d = pending[i]
            if d is None:
                continue  # answered already, or timed out or stopped
            pending[i] = None
            k += 1
            ticket = d[2]
            if ticket is None:
                self._delivered += 1
                self._in_flight -= 1
            else:
                ticket[0] -= 1
                if not ticket[0]:
                    self._settle_ticket(ticket)
        if not k:
            return
        call.left -= k
        if not call.left:
            self._remote.pop(call, None)
        self._remote_calls -= k
        slot = call.slot
        slot.in_flight -= k
        slot.delivered += k
        breaker = slot.breaker
        if breaker.failures:
            breaker.record_success()
        if not self._in_flight and self._idle is not None:
            self._now_idle()
        self._room_freed(slot)

    def _room_freed(self, slot: ServiceSlot) -> None:
        """A batch delivery of ``slot`` ended: services waiting for the core to drop below
        ``max_concurrent`` go back in the ring, and so does ``slot`` if it has work."""
        if self._saturated:
            self._release_saturated()
        if slot.queue.size and not slot.ready and not slot.closed and self._running:
            slot.ready = True
            self._ready.append(slot)
            if self._awake <= self._calls:
                self._wake_one()

    def _release_saturated(self) -> None:
        """A call ended: the services that found the core at ``max_concurrent`` go back
        in the ring (the first worker to claim one takes the room)."""
        saturated, self._saturated = self._saturated, {}
        if not self._running:
            return
        ready = self._ready
        for slot in saturated:
            if slot.queue.size and not slot.ready and not slot.closed:
                slot.ready = True
                ready.append(slot)
        if ready and self._awake <= self._calls:
            self._wake_one()

    def _end_remote_call(self, call: BatchCall, stopped: bool) -> None:
        """Give up on the unanswered deliveries of ``call``: a timeout (each fails, and is
        retried or dead-lettered) or ``stop`` (each is dead-lettered ``stopped``)."""
        call.cancelled = True
        self._remote.pop(call, None)
        slot = call.slot
        for i in range(len(call.pending)):
            d = self._release(call, i)
            if d is None:
                continue
            if stopped:
                if not slot.breaker.closed:
                    slot.breaker.abandon_probe()
                self._dead_letter(d, DeadReason.STOPPED, None, slot.name, 1)
            else:
                slot.timeouts += 1
                self._on_failure(
                    d,
                    slot,
                    DeadReason.TIMEOUT,
                    f"TimeoutError: handler ran longer than {self._event_timeout_s} s",
                )
        if not stopped:
            self._room_freed(slot)

    def _on_failure(self, d: Delivery, slot: ServiceSlot, reason: DeadReason, error: str) -> None:
        slot.failed += 1
        slot.breaker.record_failure()
        if self._retry_or_dead(d, reason, error, slot.name):
            slot.retried += 1

    def _no_replica(self, d: Delivery, last_service: str | None) -> None:
        if not d[1].replicas:
            self._dead_letter(d, DeadReason.UNREGISTERED, None, last_service, 0)
        else:
            self._retry_or_dead(
                d,
                DeadReason.NO_REPLICA,
                "no replica available (breakers open or unhealthy)",
                last_service,
            )

    def _retry_or_dead(
        self, d: Delivery, reason: DeadReason, error: str, last_service: str | None
    ) -> bool:
        """Schedule a re-delivery after the backoff (True), or dead-letter ``d`` when its
        retries are spent (False). The attempt that just ended counts as made."""
        event, group, ticket = d
        if not self._running:
            self._dead_letter(d, DeadReason.STOPPED, error, last_service, 1)
            return False
        if event.retry_count >= min(event.max_retries, self._max_retries):
            self._dead_letter(d, reason, error, last_service, 1)
            return False
        if ticket is None:
            event.retry_count += 1
        else:
            # The event object is shared with the deliveries to its other targets, each
            # with its own retry count.
            event = dataclasses.replace(event, retry_count=event.retry_count + 1)
        # A new tuple: each handler call gets a delivery object of its own, which is how
        # the watchdog tells one call from the next.
        d = (event, group, ticket)
        self._retried += 1
        cfg = self.config
        delay = backoff_delay_s(event.retry_count, cfg.retry_backoff_s, cfg.retry_backoff_max_s)
        self._park_seq += 1
        key = self._park_seq
        assert self._loop is not None
        timer = self._loop.call_later(delay, self._unpark, key)
        self._parked[key] = (timer, d, last_service)
        return True

    def _unpark(self, key: int) -> None:
        parked = self._parked.pop(key, None)
        if parked is not None:
            _, d, last_service = parked
            self._dispatch(d, last_service)

    def _dead_letter(
        self,
        d: Delivery,
        reason: DeadReason,
        error: str | None,
        service: str | None,
        tried: int,
    ) -> None:
        """Record the delivery in the dead-letter queue and settle its share of the event.
        ``tried`` is 1 when the attempt that ended it was made: attempts are the
        re-deliveries counted in ``retry_count`` plus that one."""
        event, group, ticket = d
        letter = DeadLetter(
            event=event,
            reason=reason,
            error=error,
            attempts=event.retry_count + tried,
            service=service,
            target=group.name,
        )
        dead = self._dead
        if len(dead) == dead.maxlen:
            self._dead_dropped += 1  # the oldest letter goes; its event stays counted
        dead.append((letter, ticket if ticket is not None else d, group))
        if ticket is None:
            self._dead_lettered += 1
            self._in_flight -= 1
            if not self._in_flight and self._idle is not None:
                self._now_idle()
        else:
            self._finish(ticket, False)

    def _finish(self, ticket: Ticket, ok: bool) -> None:
        """Settle one delivery of a multi-target event; the event settles with its last."""
        if not ok:
            self._failed_tickets.add(id(ticket))
        ticket[0] -= 1
        if not ticket[0]:
            self._settle_ticket(ticket)

    def _settle_ticket(self, ticket: Ticket) -> None:
        if self._failed_tickets and id(ticket) in self._failed_tickets:
            self._failed_tickets.discard(id(ticket))
            self._dead_lettered += 1
        else:
            self._delivered += 1
        self._in_flight -= 1
        if not self._in_flight and self._idle is not None:
            self._now_idle()

    def _now_idle(self) -> None:
        idle, self._idle = self._idle, None
        if idle is not None and not idle.done():
            idle.set_result(None)

    # ------------------------------------------------------------------ background

    async def _watchdog(self) -> None:
        """Cancel handler calls (and time out batch calls) that overrun event_timeout_s.
        Each call has its own delivery tuple, so a call is recognised across ticks by
        ``worker.current`` and the hot path reads no clock; a call is cancelled no earlier
        than the timeout and at most two ticks after it."""
        timeout = self._event_timeout_s
        interval = min(max(timeout / 4, 0.001), 1.0)
        clock = self._clock
        while True:
            await asyncio.sleep(interval)
            now = clock()
            for w in self._workers:
                current = w.current
                if current is None:
                    w.seen = None
                elif current is not w.seen:
                    w.seen = current
                    w.seen_at = now
                elif not w.timed_out and now - w.seen_at >= timeout and w.task is not None:
                    w.timed_out = True
                    w.task.cancel()
            # Batch calls likewise, by when a tick first saw them unanswered.
            for call in list(self._remote):
                if call.seen is None:
                    call.seen = now
                elif now - call.seen >= timeout:
                    self._end_remote_call(call, stopped=False)

    async def _health_loop(self) -> None:
        interval = self.config.health_check_interval_s
        while True:
            await asyncio.sleep(interval)
            for slot in list(self._slots.values()):
                slot.healthy = self._probe(slot)
            self._health_checks += 1

    @staticmethod
    def _probe(slot: ServiceSlot) -> bool:
        try:
            return bool(slot.service.healthy())
        except Exception:
            # A health check that raises is a failed health check.
            return False

    # ------------------------------------------------------------------ settle, DLQ

    async def settle(self, timeout_s: float | None = None) -> None:
        """Wait until no published event is in flight. Raises SettleTimeout after
        ``timeout_s`` seconds (None: wait as long as it takes)."""
        if not self._in_flight:
            return
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout_s):
                while self._in_flight:
                    if self._idle is None:
                        self._idle = loop.create_future()
                    # Shielded: a timed-out settle must not cancel other settlers' future.
                    await asyncio.shield(self._idle)
        except TimeoutError:
            raise SettleTimeout(
                f"CrucibleCore: {self._in_flight} events still in flight after {timeout_s} s"
            ) from None

    def dead_letters(self) -> tuple[DeadLetter, ...]:
        return tuple(letter for letter, _, _ in self._dead)

    async def replay_dead_letters(self) -> int:
        """Re-deliver every dead letter of a settled event to its original target, with
        ``retry_count`` reset and without de-duplication (same event ids). Each replayed
        event moves from ``dead_lettered`` back to in flight; ``published`` is unchanged.
        Returns the number of dead letters replayed."""
        if not self._running:
            raise CoordinatorError("replay_dead_letters needs a running core")
        # Grouped by identity of the event's ticket (or of its one delivery).
        by_event: dict[int, list[tuple[DeadLetter, ReplicaGroup]]] = {}
        keep: list[tuple[DeadLetter, object, ReplicaGroup]] = []
        for letter, key, group in self._dead:
            if isinstance(key, list) and key[0]:
                # Another delivery of this event is still under way: it has not been
                # counted as dead-lettered yet, so it cannot be replayed yet.
                keep.append((letter, key, group))
            else:
                by_event.setdefault(id(key), []).append((letter, group))
        self._dead = deque(keep, maxlen=self._dead.maxlen)
        replayed = 0
        for letters in by_event.values():
            self._dead_lettered -= 1
            self._in_flight += 1
            ticket: Ticket | None = [len(letters)] if len(letters) > 1 else None
            for letter, group in letters:
                event = dataclasses.replace(letter.event, retry_count=0)
                self._dispatch((event, group, ticket), letter.service)
                replayed += 1
        self._replayed += replayed
        return replayed

    # ------------------------------------------------------------------ figures

    def stats(self) -> Stats:
        slots = self._slots.values()
        return Stats(
            published=self._published,
            delivered=self._delivered,
            failed=0,
            dead_lettered=self._dead_lettered,
            rejected=self._rejected,
            in_flight=self._in_flight,
            retried=self._retried,
            extra={
                "handler_failures": sum(s.failed for s in slots),
                "timeouts": sum(s.timeouts for s in slots),
                "breaker_opens": sum(s.breaker.opens for s in slots),
                "dead_letter_queue": len(self._dead),
                "dead_letters_dropped": self._dead_dropped,
                "replayed": self._replayed,
                "queue_depth": sum(s.queue.size for s in slots),
            },
        )

    def health(self) -> dict[str, ServiceHealth]:
        """Per service: last health check, breaker state, queue depth, calls in progress."""
        return {
            name: ServiceHealth(
                name=name,
                role=s.role,
                healthy=s.healthy,
                breaker=s.breaker.state,
                queue_depth=s.queue.size,
                in_flight=s.in_flight,
            )
            for name, s in self._slots.items()
        }

    def breaker_state(self, name: str) -> BreakerState:
        slot = self._slots.get(name)
        if slot is None:
            raise CoordinatorError(f"no service named {name!r} is registered")
        return slot.breaker.state

    def metrics(self) -> CoreMetrics:
        services = {
            name: ServiceMetrics(
                name=name,
                role=s.role,
                weight=s.weight,
                healthy=s.healthy,
                breaker=s.breaker.state,
                breaker_opens=s.breaker.opens,
                consecutive_failures=s.breaker.failures,
                queue_depth=s.queue.size,
                in_flight=s.in_flight,
                delivered=s.delivered,
                failed=s.failed,
                timeouts=s.timeouts,
                retried=s.retried,
                refused=s.refused,
            )
            for name, s in self._slots.items()
        }
        return CoreMetrics(
            running=self._running,
            queue_depth=sum(m.queue_depth for m in services.values()),
            calls_in_flight=self._calls + self._remote_calls,
            awaiting_retry=len(self._parked),
            waiting_publishers=len(self._waiting),
            workers=len(self._workers),
            dead_letters=len(self._dead),
            replayed=self._replayed,
            dedup_ids=len(self._dedup),
            route_cache_entries=len(self._routes) + len(self._explicit) + len(self._no_routes),
            health_checks=self._health_checks,
            timeouts=sum(m.timeouts for m in services.values()),
            breaker_opens=sum(m.breaker_opens for m in services.values()),
            services=services,
        )
