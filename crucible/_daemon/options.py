"""The daemon's command-line options: its limits and CrucibleCore's configuration.

One table serves both directions: ``add_arguments`` builds the ``daemon`` subcommand's
options, ``configs_from_args`` turns parsed options into ``CoreConfig`` and
``DaemonLimits``, and ``daemon_argv`` turns those back into options (how the ``core-daemon``
coordinator configures the process it spawns).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from crucible._core import BACKPRESSURE_MODES, STRATEGIES, CoreConfig
from crucible._daemon.protocol import DaemonLimits

# The daemon's CrucibleCore defaults, for its command line and core-daemon.
from crucible._daemon.server import daemon_core_config as default_core_config

__all__ = [
    "LOOPS",
    "add_arguments",
    "configs_from_args",
    "daemon_argv",
    "default_core_config",
]

LOOPS: Final = ("auto", "asyncio", "uvloop")


@dataclass(frozen=True, slots=True)
class _Flag:
    field: str
    flag: str
    type: Callable[[str], Any]
    help: str
    choices: tuple[str, ...] | None = None


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


LIMIT_FLAGS: Final = (
    _Flag("max_frame_bytes", "--max-frame-bytes", _int, "largest frame body, bytes"),
    _Flag("max_events_per_frame", "--max-events-per-frame", _int, "most events in one frame"),
    _Flag("handshake_timeout_s", "--handshake-timeout", _float, "seconds to send HELLO"),
    _Flag("read_timeout_s", "--read-timeout", _float, "seconds of silence mid-frame"),
    _Flag(
        "frame_timeout_s",
        "--frame-timeout",
        _float,
        "seconds a frame may take from its first byte to its last, however steadily its "
        "bytes come (time the daemon is not reading does not count)",
    ),
    _Flag(
        "max_hello_bytes",
        "--max-hello-bytes",
        _int,
        "largest first frame (the HELLO), bytes: what a connection may make the daemon "
        "hold before it has said who it is",
    ),
    _Flag(
        "idle_timeout_s",
        "--idle-timeout",
        _float,
        "seconds a producer or admin connection may send nothing while the daemon owes it "
        "nothing before it is closed (its client reconnects when next used); service "
        "connections with services registered are exempt",
    ),
    _Flag(
        "max_output_bytes",
        "--max-output-bytes",
        _int,
        "unsent output held for a connection whose peer does not read, bytes (at least "
        "max_frame_bytes + 4); past it the connection is aborted and its services' "
        "deliveries fail over as on a disconnect",
    ),
    _Flag("max_connections", "--max-connections", _int, "connections open at once"),
    _Flag("drain_timeout_s", "--drain-timeout", _float, "seconds to drain on stop"),
)

CORE_FLAGS: Final = (
    _Flag("max_queue", "--max-queue", _int, "events queued per service"),
    _Flag("max_retries", "--max-retries", _int, "re-deliveries before dead-lettering"),
    _Flag("breaker_threshold", "--breaker-threshold", _int, "failures that open a breaker"),
    _Flag("breaker_timeout_s", "--breaker-timeout", _float, "seconds a breaker stays open"),
    _Flag("event_timeout_s", "--event-timeout", _float, "seconds a handler call may take"),
    _Flag("max_concurrent", "--max-concurrent", _int, "handler calls in flight in all"),
    _Flag("service_concurrency", "--service-concurrency", _int, "calls in flight per service"),
    _Flag("wake_burst", "--wake-burst", _int, "workers one scheduling pass may wake"),
    _Flag("dedup_window_s", "--dedup-window", _float, "de-duplication window, s (0: off)"),
    _Flag("max_services", "--max-services", _int, "registered services at most"),
    _Flag("max_dead_letters", "--max-dead-letters", _int, "dead letters kept (oldest dropped)"),
    _Flag("backpressure", "--backpressure", str, "when a queue is full", tuple(BACKPRESSURE_MODES)),
    _Flag("retry_backoff_s", "--retry-backoff", _float, "first retry delay, s"),
    _Flag("retry_backoff_max_s", "--retry-backoff-max", _float, "longest retry delay, s"),
    _Flag("balancing", "--balancing", str, "replica choice", tuple(STRATEGIES)),
    _Flag("health_check_interval_s", "--health-check-interval", _float, "health poll, s"),
    _Flag("max_event_bytes", "--max-event-bytes", _int, "largest payload, bytes"),
    _Flag("seed", "--seed", _int, "seed of the weighted-random balancer"),
)


def _metavar(f: _Flag) -> str | None:
    if f.choices is not None:
        return None
    return "S" if f.type is _float else "N"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--socket", required=True, metavar="PATH", help="Unix socket path")
    parser.add_argument(
        "--loop",
        choices=LOOPS,
        default="auto",
        help="event loop: uvloop if installed (auto), or plain asyncio",
    )
    parser.add_argument(
        "--log-level", default="WARNING", choices=("DEBUG", "INFO", "WARNING", "ERROR")
    )
    _add_group(parser, "limits", LIMIT_FLAGS, DaemonLimits())
    _add_group(parser, "CrucibleCore", CORE_FLAGS, default_core_config())


def _add_group(
    parser: argparse.ArgumentParser, title: str, flags: tuple[_Flag, ...], defaults: object
) -> None:
    """One option per flag, default None (unset: the dataclass default applies); the help
    shows the default read from ``defaults``."""
    group = parser.add_argument_group(title)
    for f in flags:
        group.add_argument(
            f.flag,
            dest=f.field,
            type=f.type,
            default=None,
            choices=f.choices,
            metavar=_metavar(f),
            help=f"{f.help} (default {getattr(defaults, f.field)})",
        )


def configs_from_args(args: argparse.Namespace) -> tuple[CoreConfig, DaemonLimits]:
    """Raises ValueError with the message of the first invalid value."""
    limits = {f.field: getattr(args, f.field) for f in LIMIT_FLAGS}
    core = {f.field: getattr(args, f.field) for f in CORE_FLAGS}
    return (
        dataclasses.replace(
            default_core_config(), **{k: v for k, v in core.items() if v is not None}
        ),
        DaemonLimits(**{k: v for k, v in limits.items() if v is not None}),
    )


def daemon_argv(core: CoreConfig, limits: DaemonLimits) -> list[str]:
    """Options that give a daemon exactly ``core`` and ``limits``. Raises ValueError for
    what cannot go on a command line (routing rules, a custom clock)."""
    if core.rules is not None:
        raise ValueError("routing rules cannot be passed to a daemon process; use the default")
    if core.clock is not time.monotonic:
        raise ValueError("a custom clock cannot be passed to a daemon process")
    argv: list[str] = []
    for table, config in ((LIMIT_FLAGS, limits), (CORE_FLAGS, core)):
        for f in table:
            argv += [f.flag, str(getattr(config, f.field))]
    return argv
