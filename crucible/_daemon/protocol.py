"""The daemon's wire protocol: frame types, the versioned handshake, limits and errors.

Every frame is a 4-byte big-endian body length followed by a msgpack body; the body is an
array whose first item is the frame type. The first frame on a connection is the client's
HELLO; the daemon answers WELCOME (with its limits) or ERROR and closes. After that, which
frames a connection may send depends on the role it declared:

====================  =========  ==================================================
frame                 direction  fields after the type
====================  =========  ==================================================
HELLO          1      c -> d     magic "crucible", version, role, client name
WELCOME        2      d -> c     version, {max_frame_bytes, max_events_per_frame, pid}
ERROR          3      both       code, message (the daemon closes after sending one)
PUBLISH       10      producer   first_seq, [event, ...]  (seqs are consecutive from 1)
RESULT        11      d -> prod  last_seq, [[seq, reason, detail], ...] (rejections)
REGISTER      20      service    sid, name, role, weight
REGISTERED    21      d -> svc   sid, error or nil
UNREGISTER    22      service    sid
UNREGISTERED  23      d -> svc   sid, error or nil
DELIVER       24      d -> svc   first_token, [event, ...], [seq, sid, retry, token, ...]
ACK           25      service    [seq, ...] (done), [[seq, error], ...] (failed)
HEALTH        26      service    sid, healthy
CANCEL        27      d -> svc   [seq, ...] (calls the daemon gave up on: timed out)
REQUEST       30      admin      request id, op, {args}
REPLY         31      d -> adm   request id, ok, result (on error {code, message})
====================  =========  ==================================================

An event is an array of 15 items, in ``Event`` field order: id, kind value, source id,
source type value, payload (bin or map), priority (int), targets, created_at, metadata,
correlation_id, causation_id, retry_count, max_retries, size_bytes, published_at.

A RESULT answers one PUBLISH frame: every event with a seq up to ``last_seq`` that is not
listed was accepted. In a DELIVER, the events it carries get the tokens first_token,
first_token + 1, ...; each delivery names its event by token, which may be one sent in an
earlier frame on the same connection (see ``codec.EVENT_WINDOW``), so an event going to
several services of one client, or retried, crosses the socket once. ``retry`` is the
delivery's retry_count (it overrides the event's).

Admin ops: ``ping``, ``stats``, ``settle`` {timeout_s}, ``dead_letters`` {limit},
``health``, ``stop`` {drain_timeout_s} (its reply is the final report).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from crucible._protocol import CoordinatorError, Stats

__all__ = [
    "ACK",
    "CANCEL",
    "DEFAULT_DRAIN_TIMEOUT_S",
    "DEFAULT_FRAME_TIMEOUT_S",
    "DEFAULT_HANDSHAKE_TIMEOUT_S",
    "DEFAULT_IDLE_TIMEOUT_S",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_MAX_EVENTS_PER_FRAME",
    "DEFAULT_MAX_FRAME_BYTES",
    "DEFAULT_MAX_HELLO_BYTES",
    "DEFAULT_MAX_OUTPUT_BYTES",
    "DEFAULT_READ_TIMEOUT_S",
    "DELIVER",
    "ERROR",
    "HEALTH",
    "HELLO",
    "MAGIC",
    "PROTOCOL_VERSION",
    "PUBLISH",
    "REGISTER",
    "REGISTERED",
    "REPLY",
    "REQUEST",
    "RESULT",
    "ROLES",
    "UNREGISTER",
    "UNREGISTERED",
    "WELCOME",
    "ConnectionLost",
    "DaemonError",
    "DaemonLimits",
    "DaemonUnavailable",
    "ErrorCode",
    "ProtocolError",
    "RemoteError",
    "hello",
    "stats_from_wire",
    "stats_to_wire",
    "welcome",
]

# 2: the event window of DELIVER tokens grew to 4096 (codec.EVENT_WINDOW); a version-1
# client keeps fewer events than a version-2 daemon names.
PROTOCOL_VERSION: Final = 2
MAGIC: Final = "crucible"
ROLES: Final = ("producer", "service", "admin")

HELLO: Final = 1
WELCOME: Final = 2
ERROR: Final = 3
PUBLISH: Final = 10
RESULT: Final = 11
REGISTER: Final = 20
REGISTERED: Final = 21
UNREGISTER: Final = 22
UNREGISTERED: Final = 23
DELIVER: Final = 24
ACK: Final = 25
HEALTH: Final = 26
CANCEL: Final = 27
REQUEST: Final = 30
REPLY: Final = 31


class ErrorCode:
    """The ``code`` of an ERROR frame (and of ProtocolError / RemoteError)."""

    MALFORMED: Final = "malformed"  # not msgpack, or not a frame this role may send
    OVERSIZED: Final = "oversized"  # longer than max_frame_bytes, or too many events
    TRUNCATED: Final = "truncated"  # the peer closed its side in the middle of a frame
    STALLED: Final = "stalled"  # no byte for read_timeout_s in the middle of a frame
    FRAME_TIMEOUT: Final = "frame_timeout"  # a frame not whole frame_timeout_s after its start
    IDLE_TIMEOUT: Final = "idle_timeout"  # nothing received for idle_timeout_s, nothing owed
    SLOW_READER: Final = "slow_reader"  # over max_output_bytes unread (closed without ERROR)
    HANDSHAKE: Final = "handshake"  # the first frame was not a valid HELLO
    VERSION: Final = "version"  # HELLO with a protocol version this daemon does not speak
    HANDSHAKE_TIMEOUT: Final = "handshake_timeout"
    TOO_MANY_CONNECTIONS: Final = "too_many_connections"
    SHUTDOWN: Final = "shutdown"  # the daemon is stopping
    INTERNAL: Final = "internal"  # a bug in the daemon; the connection is closed


# Defaults of the limits (documented in docs/daemon.md#limits).
DEFAULT_MAX_FRAME_BYTES: Final = 16 * 1024 * 1024  # room for one 10 MB event and overhead
DEFAULT_MAX_EVENTS_PER_FRAME: Final = 1024
DEFAULT_HANDSHAKE_TIMEOUT_S: Final = 5.0
DEFAULT_READ_TIMEOUT_S: Final = 10.0
# A whole frame, from its first byte: 16 MiB crosses a local socket in well under a second,
# so this leaves a loaded machine ample room while a trickling peer cannot hold its partial
# frame (and the memory it occupies) for long.
DEFAULT_FRAME_TIMEOUT_S: Final = 30.0
# The first frame (the HELLO, some 40 bytes plus the client's name): before it, a peer has
# proven nothing, so it may make the daemon hold at most this much (256 connections: 1 MiB,
# not the 4 GiB that max_frame_bytes would allow).
DEFAULT_MAX_HELLO_BYTES: Final = 4096
DEFAULT_IDLE_TIMEOUT_S: Final = 60.0
# Unsent output a connection may hold: four frames of the largest size, more than a reading
# service connection is sent at once with the daemon's defaults and events of up to 8 KiB
# (4,096 deliveries in flight, each such event crossing once), bounded for one that stops.
DEFAULT_MAX_OUTPUT_BYTES: Final = 4 * DEFAULT_MAX_FRAME_BYTES
DEFAULT_MAX_CONNECTIONS: Final = 256
DEFAULT_DRAIN_TIMEOUT_S: Final = 30.0
# The smallest frame limit accepted: a HELLO, an ERROR and a small event must fit.
MIN_FRAME_BYTES: Final = 4096
# The smallest first-frame limit accepted: a HELLO with a client name of 200 characters.
MIN_HELLO_BYTES: Final = 256
# The smallest output cap accepted: the transports' default write high-water mark (64 KiB),
# above which the daemon starts checking the cap (and it must hold a frame of the largest
# size besides).
MIN_OUTPUT_BYTES: Final = 64 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class DaemonLimits:
    """What the daemon tolerates from a connection. Units are in the names.

    - ``max_frame_bytes``: largest frame body accepted (and sent); a longer frame closes
      the connection with ``oversized``.
    - ``max_events_per_frame``: most events in a PUBLISH (and deliveries in a DELIVER).
    - ``handshake_timeout_s``: a connection must send its HELLO within this time.
    - ``read_timeout_s``: a connection that sent part of a frame and then nothing for this
      long is closed with ``stalled``.
    - ``frame_timeout_s``: a frame must be whole this long after its first byte arrived,
      however steadily its bytes come; otherwise the connection is closed with
      ``frame_timeout``. Time during which the daemon itself is not reading from the
      connection (its backlog is full, or the peer does not read) does not count.
    - ``max_hello_bytes``: largest first frame (the HELLO); a longer one is refused with
      ``handshake`` as soon as its length arrives. Later frames may use ``max_frame_bytes``.
    - ``idle_timeout_s``: a producer or admin connection that sent nothing for this long
      while the daemon owes it nothing (no PUBLISH being worked through, no request being
      answered) is closed with ``idle_timeout``; its client reconnects when next used. A
      service connection is exempt while it has services registered or deliveries
      outstanding (those are governed by the event timeout and health checks).
    - ``max_output_bytes``: unsent output the daemon holds for a connection whose peer does
      not read it (at least one frame of ``max_frame_bytes``). A write that leaves more
      unsent aborts the connection (counted in ``protocol_errors``, logged as
      ``slow_reader``), and the deliveries its services held fail over as on any
      disconnect (retried elsewhere or dead-lettered). It must exceed what a reading
      service connection may be sent at once: ``service_concurrency`` deliveries per
      service, an event of up to ``codec.CACHE_EVENT_BYTES`` once per connection, a larger
      one with each delivery.
    - ``max_connections``: connections open at once; one more is told
      ``too_many_connections`` and closed.
    - ``drain_timeout_s``: on stop, how long the daemon waits for events in flight before it
      dead-letters what is left (reason ``stopped``) and reports it.
    """

    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES
    max_events_per_frame: int = DEFAULT_MAX_EVENTS_PER_FRAME
    handshake_timeout_s: float = DEFAULT_HANDSHAKE_TIMEOUT_S
    read_timeout_s: float = DEFAULT_READ_TIMEOUT_S
    frame_timeout_s: float = DEFAULT_FRAME_TIMEOUT_S
    max_hello_bytes: int = DEFAULT_MAX_HELLO_BYTES
    idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S
    max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    drain_timeout_s: float = DEFAULT_DRAIN_TIMEOUT_S

    def __post_init__(self) -> None:
        if not _is_int(self.max_frame_bytes) or not (
            MIN_FRAME_BYTES <= self.max_frame_bytes < 2**32
        ):
            raise ValueError(
                f"max_frame_bytes must be an integer in [{MIN_FRAME_BYTES}, 2**32), "
                f"not {self.max_frame_bytes!r}"
            )
        for name in ("max_events_per_frame", "max_connections"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, not {value!r}")
        if not _is_int(self.max_hello_bytes) or not (
            MIN_HELLO_BYTES <= self.max_hello_bytes <= self.max_frame_bytes
        ):
            raise ValueError(
                f"max_hello_bytes must be an integer in [{MIN_HELLO_BYTES}, max_frame_bytes], "
                f"not {self.max_hello_bytes!r}"
            )
        # One frame of the largest size (and its 4-byte length) must fit.
        least_output = max(MIN_OUTPUT_BYTES, self.max_frame_bytes + 4)
        if not _is_int(self.max_output_bytes) or self.max_output_bytes < least_output:
            raise ValueError(
                f"max_output_bytes must be an integer >= {least_output} (64 KiB, and one "
                f"frame of max_frame_bytes), not {self.max_output_bytes!r}"
            )
        for name in ("handshake_timeout_s", "read_timeout_s", "frame_timeout_s", "idle_timeout_s"):
            value = getattr(self, name)
            if not _is_number(value) or not 0 < value < float("inf"):
                raise ValueError(f"{name} must be a finite number > 0, not {value!r}")
        if not _is_number(self.drain_timeout_s) or not 0 <= self.drain_timeout_s < float("inf"):
            raise ValueError(
                f"drain_timeout_s must be a finite number >= 0, not {self.drain_timeout_s!r}"
            )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def hello(role: str, client: str, version: int = PROTOCOL_VERSION) -> list[Any]:
    return [HELLO, MAGIC, version, role, client]


def welcome(limits: DaemonLimits, pid: int) -> list[Any]:
    return [
        WELCOME,
        PROTOCOL_VERSION,
        {
            "max_frame_bytes": limits.max_frame_bytes,
            "max_events_per_frame": limits.max_events_per_frame,
            "pid": pid,
        },
    ]


# -------------------------------------------------------------------------------- errors


class DaemonError(CoordinatorError):
    """Root of the daemon client's errors. Subclasses:

    - ``ProtocolError``: a frame could not be read (bad length, not msgpack, wrong shape).
    - ``RemoteError``: the daemon answered with an error (ERROR frame or failed REPLY).
    - ``DaemonUnavailable``: no connection after the configured number of attempts.
    - ``ConnectionLost``: an open connection dropped; says how many events lack a verdict.
    """


class ProtocolError(DaemonError):
    """A frame that cannot be read. ``code`` is one of ``ErrorCode``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class RemoteError(DaemonError):
    """The daemon refused a request or closed the connection with an ERROR frame."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"daemon error {code}: {message}")
        self.code = code
        self.message = message


class DaemonUnavailable(DaemonError):
    """Could not connect (or reconnect) to the daemon within the allowed attempts."""


class ConnectionLost(DaemonError):
    """The connection to the daemon dropped."""


# -------------------------------------------------------------------------------- stats

_STATS_COUNTS: Final = (
    "published",
    "delivered",
    "failed",
    "dead_lettered",
    "rejected",
    "in_flight",
    "retried",
)


def stats_to_wire(stats: Stats) -> dict[str, Any]:
    out: dict[str, Any] = {name: getattr(stats, name) for name in _STATS_COUNTS}
    out["extra"] = dict(stats.extra)
    return out


def stats_from_wire(data: object) -> Stats:
    """Stats from a REPLY. Raises ProtocolError when a count is missing or not a number."""
    if not isinstance(data, dict):
        raise ProtocolError(ErrorCode.MALFORMED, "stats must be a map")
    counts = {name: data.get(name) for name in _STATS_COUNTS}
    bad = [name for name, value in counts.items() if not _is_int(value)]
    extra = data.get("extra", {})
    if bad or not isinstance(extra, dict):
        raise ProtocolError(ErrorCode.MALFORMED, f"stats lack integer counts: {', '.join(bad)}")
    return Stats(
        published=counts["published"],  # type: ignore[arg-type]
        delivered=counts["delivered"],  # type: ignore[arg-type]
        failed=counts["failed"],  # type: ignore[arg-type]
        dead_lettered=counts["dead_lettered"],  # type: ignore[arg-type]
        rejected=counts["rejected"],  # type: ignore[arg-type]
        in_flight=counts["in_flight"],  # type: ignore[arg-type]
        retried=counts["retried"],  # type: ignore[arg-type]
        extra={str(k): float(v) for k, v in extra.items() if _is_number(v)},
    )
