"""CrucibleCore configuration: one frozen, keyword-only record with module-level defaults."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

from crucible._core.rules import Rule
from crucible._events import DEFAULT_MAX_EVENT_BYTES

__all__ = [
    "BACKPRESSURE_MODES",
    "DEFAULT_BACKPRESSURE",
    "DEFAULT_BALANCING",
    "DEFAULT_BREAKER_THRESHOLD",
    "DEFAULT_BREAKER_TIMEOUT_S",
    "DEFAULT_DEDUP_WINDOW_S",
    "DEFAULT_EVENT_TIMEOUT_S",
    "DEFAULT_HEALTH_CHECK_INTERVAL_S",
    "DEFAULT_MAX_CONCURRENT",
    "DEFAULT_MAX_DEAD_LETTERS",
    "DEFAULT_MAX_QUEUE",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_MAX_SERVICES",
    "DEFAULT_RETRY_BACKOFF_MAX_S",
    "DEFAULT_RETRY_BACKOFF_S",
    "DEFAULT_SERVICE_CONCURRENCY",
    "HEALTH_BASED",
    "LEAST_CONNECTIONS",
    "PRIORITY_BASED",
    "ROUND_ROBIN",
    "STRATEGIES",
    "WEIGHTED_RANDOM",
    "Backpressure",
    "CoreConfig",
    "Strategy",
]

# The original router's defaults (docs/design.md#router-defaults).
DEFAULT_MAX_QUEUE: Final = 2000
DEFAULT_MAX_RETRIES: Final = 5
DEFAULT_BREAKER_THRESHOLD: Final = 10
DEFAULT_BREAKER_TIMEOUT_S: Final = 60.0
DEFAULT_EVENT_TIMEOUT_S: Final = 45.0
DEFAULT_MAX_CONCURRENT: Final = 200
DEFAULT_DEDUP_WINDOW_S: Final = 120.0
DEFAULT_MAX_SERVICES: Final = 100
DEFAULT_MAX_DEAD_LETTERS: Final = 100_000
# CrucibleCore's own knobs.
DEFAULT_SERVICE_CONCURRENCY: Final = 4
DEFAULT_RETRY_BACKOFF_S: Final = 0.01
DEFAULT_RETRY_BACKOFF_MAX_S: Final = 1.0
DEFAULT_HEALTH_CHECK_INTERVAL_S: Final = 1.0

Strategy = Literal[
    "round_robin", "least_connections", "weighted_random", "health_based", "priority_based"
]
ROUND_ROBIN: Final = "round_robin"
LEAST_CONNECTIONS: Final = "least_connections"
WEIGHTED_RANDOM: Final = "weighted_random"
HEALTH_BASED: Final = "health_based"
PRIORITY_BASED: Final = "priority_based"
STRATEGIES: Final[tuple[Strategy, ...]] = (
    ROUND_ROBIN,
    LEAST_CONNECTIONS,
    WEIGHTED_RANDOM,
    HEALTH_BASED,
    PRIORITY_BASED,
)
DEFAULT_BALANCING: Final = ROUND_ROBIN

Backpressure = Literal["wait", "reject"]
BACKPRESSURE_MODES: Final[tuple[Backpressure, ...]] = ("wait", "reject")
DEFAULT_BACKPRESSURE: Final = "wait"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True, slots=True, kw_only=True)
class CoreConfig:
    """Everything CrucibleCore can be tuned by. Units are in the names.

    - ``max_queue``: events queued per service before backpressure applies to publishers.
    - ``max_retries``: ceiling on re-deliveries; an event gets
      ``min(event.max_retries, max_retries)``.
    - ``breaker_threshold`` consecutive failures open a service's breaker for
      ``breaker_timeout_s``; then one probe delivery decides between closed and open.
    - ``event_timeout_s``: a handler call running longer counts as a failed delivery.
    - ``max_concurrent``: handler calls in progress across all services;
      ``service_concurrency``: per service.
    - ``wake_burst``: workers one scheduling pass may wake while services are ready and
      every awake worker is inside a handler call. 1 suits quick handlers (a burst of
      them stays on one task); slow ones that await get more workers sooner with more.
      Batch calls (services in another process, ``core.batch``) keep no worker waiting.
    - ``dedup_window_s``: an event id seen within this window is a duplicate (0 disables).
    - ``max_services``: registry size limit.
    - ``max_dead_letters``: dead letters kept for inspection and replay; beyond it the
      oldest are dropped (their events stay counted as dead-lettered, cannot be replayed,
      and ``stats().extra["dead_letters_dropped"]`` counts them), so a long-running core's
      memory stays bounded.
    - ``backpressure``: when a target queue is full, ``"wait"`` makes ``publish`` wait for
      room, ``"reject"`` returns ``Rejected(BACKPRESSURE)``.
    - ``retry_backoff_s``: delay before retry n is ``retry_backoff_s * 2**(n-1)``, at most
      ``retry_backoff_max_s``.
    - ``balancing``: how a replica of a role is chosen, one of ``STRATEGIES``.
    - ``health_check_interval_s``: period of the ``service.healthy()`` poll.
    - ``max_event_bytes``: payload size limit.
    - ``rules``: routing rules; None means the default wiring (``default_rules()``).
    - ``seed``: seeds the weighted-random balancer.
    - ``clock``: monotonic seconds for de-duplication, breakers and the event-timeout
      watchdog; injectable so tests need not sleep.
    """

    max_queue: int = DEFAULT_MAX_QUEUE
    max_retries: int = DEFAULT_MAX_RETRIES
    breaker_threshold: int = DEFAULT_BREAKER_THRESHOLD
    breaker_timeout_s: float = DEFAULT_BREAKER_TIMEOUT_S
    event_timeout_s: float = DEFAULT_EVENT_TIMEOUT_S
    max_concurrent: int = DEFAULT_MAX_CONCURRENT
    dedup_window_s: float = DEFAULT_DEDUP_WINDOW_S
    max_services: int = DEFAULT_MAX_SERVICES
    max_dead_letters: int = DEFAULT_MAX_DEAD_LETTERS
    backpressure: Backpressure = DEFAULT_BACKPRESSURE
    service_concurrency: int = DEFAULT_SERVICE_CONCURRENCY
    wake_burst: int = 1
    retry_backoff_s: float = DEFAULT_RETRY_BACKOFF_S
    retry_backoff_max_s: float = DEFAULT_RETRY_BACKOFF_MAX_S
    balancing: Strategy = DEFAULT_BALANCING
    health_check_interval_s: float = DEFAULT_HEALTH_CHECK_INTERVAL_S
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
    rules: tuple[Rule, ...] | None = None
    seed: int = 0
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        for name in (
            "max_queue",
            "breaker_threshold",
            "max_concurrent",
            "max_services",
            "service_concurrency",
            "wake_burst",
            "max_dead_letters",
        ):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, not {value!r}")
        for name in ("max_retries", "max_event_bytes", "seed"):
            value = getattr(self, name)
            if not _is_int(value) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0, not {value!r}")
        for name in ("breaker_timeout_s", "dedup_window_s", "retry_backoff_s"):
            value = getattr(self, name)
            if not _is_number(value) or not 0 <= value < float("inf"):
                raise ValueError(f"{name} must be a finite number >= 0, not {value!r}")
        for name in ("event_timeout_s", "health_check_interval_s"):
            value = getattr(self, name)
            if not _is_number(value) or not 0 < value < float("inf"):
                raise ValueError(f"{name} must be a finite number > 0, not {value!r}")
        if not _is_number(self.retry_backoff_max_s) or not (
            self.retry_backoff_s <= self.retry_backoff_max_s < float("inf")
        ):
            raise ValueError(
                f"retry_backoff_max_s must be finite and >= retry_backoff_s "
                f"({self.retry_backoff_s}), not {self.retry_backoff_max_s!r}"
            )
        if self.backpressure not in BACKPRESSURE_MODES:
            raise ValueError(
                f"backpressure must be one of {', '.join(BACKPRESSURE_MODES)}, "
                f"not {self.backpressure!r}"
            )
        if self.balancing not in STRATEGIES:
            raise ValueError(
                f"balancing must be one of {', '.join(STRATEGIES)}, not {self.balancing!r}"
            )
        if self.rules is not None:
            if not isinstance(self.rules, tuple) or not all(
                isinstance(r, Rule) for r in self.rules
            ):
                raise ValueError("rules must be a tuple of Rule, or None for the default wiring")
            names = [r.name for r in self.rules]
            if len(set(names)) != len(names):
                raise ValueError(f"rule names must be unique, got {names}")
        if not callable(self.clock):
            raise ValueError(f"clock must be a callable returning seconds, not {self.clock!r}")
