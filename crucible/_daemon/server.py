"""The daemon: CrucibleCore in its own process, reached over a Unix domain socket.

Producers' events are decoded and published to an ordinary ``CrucibleCore``; a service in
another process is registered in it as a ``RemoteService`` that takes batch calls
(``crucible._core.batch``): the core hands it deliveries, it sends them down that service's
connection, and it passes each ack or nack back to the core as it arrives. So the router's
validation, rules, de-duplication, balancing, queues, backpressure, breakers, event
timeout, retries and dead letters all apply unchanged, and the core's accounting is the
daemon's accounting.

What happens when things go wrong:

- A service connection drops: its services are unregistered first (their queued
  deliveries go to other replicas or are dead-lettered ``unregistered``), then each call
  waiting for an ack fails with ``ServiceDisconnected``, which the core retries elsewhere or
  dead-letters like any handler failure.
- A call overruns ``event_timeout_s``: the core's watchdog cancels it (a failure, retried);
  the daemon sends CANCEL so the service can stop the handler, and ignores a late ack.
- A frame cannot be read (not msgpack, oversized, wrong shape, wrong handshake, truncated,
  stalled, not whole within ``frame_timeout_s``): that connection gets an ERROR frame and
  is closed; the others carry on.
- A producer or admin connection idle for ``idle_timeout_s`` is closed (``idle_timeout``);
  its client reconnects when next used.
- A peer that stops reading what the daemon sends: past ``max_output_bytes`` unsent, its
  connection is aborted and its services' deliveries fail over as on a disconnect.
- Stop (SIGTERM/SIGINT or an admin ``stop``): no new connections; new PUBLISHes are
  rejected ``not_running``; the core is drained (``settle``) for ``drain_timeout_s``, then
  stopped, which dead-letters (reason ``stopped``) whatever is still in flight; the final
  Stats and dead letters are returned in a ``StopReport``.

Accounting: ``stats()`` is the core's, plus events that reached the daemon but never the
core (an event array it could not decode, a PUBLISH during stop); those count as published
and rejected, so published = delivered + failed + dead_lettered + rejected + in_flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import resource
import signal
import socket
import stat
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Final, cast

from crucible._core import CoreConfig, CrucibleCore, DeadLetter
from crucible._core.batch import BatchCall
from crucible._daemon.codec import (
    BACKREF_WINDOW,
    CACHE_EVENT_BYTES,
    FrameDecoder,
    SourceCache,
    decode_event,
    encode_frame,
    event_fields,
    new_packer,
    pack_frame,
)
from crucible._daemon.eager import resume
from crucible._daemon.protocol import (
    ACK,
    CANCEL,
    DELIVER,
    ERROR,
    HEALTH,
    HELLO,
    MAGIC,
    PROTOCOL_VERSION,
    PUBLISH,
    REGISTER,
    REGISTERED,
    REPLY,
    REQUEST,
    RESULT,
    ROLES,
    UNREGISTER,
    UNREGISTERED,
    DaemonError,
    DaemonLimits,
    ErrorCode,
    ProtocolError,
    stats_to_wire,
    welcome,
)
from crucible._events import Event
from crucible._protocol import CoordinatorError, Service, SettleTimeout, Stats

__all__ = [
    "DAEMON_MAX_CONCURRENT",
    "DAEMON_MAX_QUEUE",
    "DAEMON_SERVICE_CONCURRENCY",
    "DaemonServer",
    "RemoteHandlerError",
    "RemoteService",
    "ServiceDisconnected",
    "StopReport",
    "bind_socket",
    "daemon_core_config",
    "serve",
]

_log = logging.getLogger("crucible.daemon")

# Deliveries in flight per service (CoreConfig.service_concurrency; in-process 4), like a
# message broker's prefetch: a remote delivery spans two socket hops, and the more a
# service's client holds, the larger the DELIVER and ACK frames and the fewer the round
# trips. 20,000 medium events a run, 3 runs per setting, two interleaved series:
# 28,830-30,936 events/s at 32, 34,215-37,649 at 64, 35,149-44,331 at 128, 36,656-40,071 at
# 256 (with max_concurrent high enough not to bind). --service-concurrency overrides it.
DAEMON_SERVICE_CONCURRENCY: Final = 128
# Deliveries in flight across all services (CoreConfig.max_concurrent; in-process 200,
# where it is also the most worker tasks). No worker waits on a remote delivery, so this
# bounds only the outstanding deliveries: 32 services at the full service concurrency.
DAEMON_MAX_CONCURRENT: Final = 32 * DAEMON_SERVICE_CONCURRENCY
# Deliveries queued per service before backpressure (CoreConfig.max_queue; in-process 2,000).
# A producer outruns the daemon easily, and every queued event is data the daemon and its
# services touch again later: with 2,000 a run of 20,000 medium events kept thousands of
# events in flight, and in five interleaved pairs of runs 256 delivered 7-13 % more events
# per second, with less CPU per event in both processes. --max-queue overrides it.
DAEMON_MAX_QUEUE: Final = 256
# Deliveries buffered for one connection before a DELIVER is written without waiting for
# the end of the loop iteration: the service starts on the first ones while the daemon
# produces the rest.
_DELIVER_FLUSH_AT: Final = 64
# Longest a delivery waits for more to share its frame while the service is busy.
_DELIVER_DELAY_S: Final = 0.0005
# PUBLISH frames queued (unpublished) before the daemon stops reading from that producer.
_MAX_BACKLOG_FRAMES: Final = 4
# Events published per loop iteration per producer (see _Conn._publish_slice).
_PUBLISH_SLICE: Final = 64
# The garbage collector's thresholds in the daemon's own process (see tune_gc).
DAEMON_GC_THRESHOLD: Final = (50_000, 20, 20)
# A connection being closed after an error gets this long to take the ERROR frame.
_CLOSE_GRACE_S: Final = 1.0
# At most this many dead letters are listed in a StopReport or a dead_letters reply.
MAX_REPORTED_DEAD_LETTERS: Final = 10_000
# Rough frame overhead per delivered event beyond its payload, for splitting DELIVERs.
_EVENT_OVERHEAD_BYTES: Final = 512


def daemon_core_config() -> CoreConfig:
    """CrucibleCore's defaults, but for ``service_concurrency``, ``max_concurrent`` and
    ``max_queue`` (see ``DAEMON_SERVICE_CONCURRENCY``, ``DAEMON_MAX_CONCURRENT`` and
    ``DAEMON_MAX_QUEUE``)."""
    return CoreConfig(
        service_concurrency=DAEMON_SERVICE_CONCURRENCY,
        max_concurrent=DAEMON_MAX_CONCURRENT,
        max_queue=DAEMON_MAX_QUEUE,
    )


class ServiceDisconnected(Exception):
    """The connection of a remote service dropped while it held the delivery."""


class RemoteHandlerError(Exception):
    """The remote service's handler raised (it nacked); the message is its error."""


class RemoteService:
    """A service in another process, as CrucibleCore sees it."""

    __slots__ = ("_conn", "_healthy", "name", "role", "sid", "weight")

    def __init__(self, conn: _Conn, sid: int, name: str, role: str, weight: float) -> None:
        self._conn = conn
        self.sid = sid
        self.name = name
        self.role = role
        self.weight = weight
        self._healthy = True

    def healthy(self) -> bool:
        return self._healthy and not self._conn.lost

    async def handle(self, event: Event) -> None:
        """Send ``event`` to the service and wait for its ack: raises RemoteHandlerError
        when the service nacks and ServiceDisconnected when it goes away. CrucibleCore uses
        ``handle_batch``; this is the one-event form, for callers that await."""
        loop = self._conn.loop
        done: asyncio.Future[None] = loop.create_future()

        def answered(_call: BatchCall, _i: int, outcome: BaseException | None) -> None:
            if done.done():
                return
            if outcome is None:
                done.set_result(None)
            else:
                done.set_exception(outcome)

        call = BatchCall(cast(Any, None), [cast(Any, event)], answered)
        self.handle_batch(call, [event])
        try:
            await done
        except asyncio.CancelledError:
            call.cancelled = True  # the sweep sends CANCEL
            raise

    def handle_batch(self, call: BatchCall, events: list[Event]) -> None:
        """Send ``events`` to the service, each a delivery of its own, and answer ``call``
        for each as its ack (None), nack (RemoteHandlerError) or the loss of the
        connection (ServiceDisconnected) arrives. When the core gives up on the call
        (``call.cancelled``: timeout, stop), the service is sent a CANCEL for the
        deliveries it still holds."""
        conn = self._conn
        if conn.lost:
            for i in range(len(events)):
                call.settle(i, ServiceDisconnected(f"service {self.name!r} is disconnected"))
            return
        sid = self.sid
        pending = conn.pending
        out = conn._out
        seq = conn._seq
        added = 0
        for i, event in enumerate(events):
            seq += 1
            pending[seq] = (call, i)
            try:
                wire = event.wire  # type: ignore[attr-defined]  # a WireEvent, decoded here
            except AttributeError:
                wire = event_fields(event)
            size = event.size_bytes
            out.append((seq, sid, event.retry_count, wire, size))
            added += size + _EVENT_OVERHEAD_BYTES
        conn._seq = seq
        conn._out_bytes += added
        if len(out) >= _DELIVER_FLUSH_AT or conn._out_bytes >= conn.half_frame_bytes:
            conn._flush()
        elif not conn._flush_scheduled:
            conn.schedule_flush()


@dataclass(frozen=True, slots=True)
class StopReport:
    """What a stopping daemon did not deliver. ``drained``: every event settled within the
    drain timeout; otherwise ``stopped_in_flight`` events were dead-lettered ``stopped``.
    ``dead_letters`` lists at most ``MAX_REPORTED_DEAD_LETTERS`` (newest last) of the
    ``dead_letters_total``."""

    stats: Stats
    drained: bool
    drain_s: float
    stopped_in_flight: int
    dead_letters_total: int
    dead_letters: tuple[dict[str, Any], ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        return {
            "stats": stats_to_wire(self.stats),
            "invariant_holds": self.stats.balanced,
            "drained": self.drained,
            "drain_s": self.drain_s,
            "stopped_in_flight": self.stopped_in_flight,
            "dead_letters_total": self.dead_letters_total,
            "dead_letters": list(self.dead_letters),
        }


def dead_letter_info(letter: DeadLetter) -> dict[str, Any]:
    event = letter.event
    return {
        "id": event.id,
        "kind": getattr(event.kind, "value", str(event.kind)),
        "reason": letter.reason.value,
        "error": letter.error,
        "attempts": letter.attempts,
        "service": letter.service,
        "target": letter.target,
    }


def bind_socket(path: str) -> tuple[socket.socket, os.stat_result]:
    """A listening Unix socket at ``path`` with mode 0600, created under a umask (so it is
    never reachable by others, not even briefly) and checked with ``os.stat``. A stale
    socket (nobody listening) is replaced; anything else at ``path`` is refused."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        pass
    else:
        if not stat.S_ISSOCK(st.st_mode):
            raise DaemonError(f"{path} exists and is not a socket; refusing to replace it")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
        except ConnectionRefusedError:
            _log.info("removing stale socket %s", path)
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise DaemonError(f"{path} exists and cannot be probed ({exc}); refusing") from None
        else:
            raise DaemonError(f"a daemon is already listening on {path}")
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        old = os.umask(0o177)
        try:
            sock.bind(path)
        finally:
            os.umask(old)
        st = os.stat(path)
        mode = stat.S_IMODE(st.st_mode)
        if mode != 0o600 or st.st_uid != os.getuid() or not stat.S_ISSOCK(st.st_mode):
            os.unlink(path)
            raise DaemonError(
                f"socket {path} came out with mode {mode:o} and owner {st.st_uid}, "
                f"not 600 and {os.getuid()}; refusing to serve on it"
            )
        sock.listen(128)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise DaemonError(f"cannot listen on {path}: {exc}") from None
    except BaseException:
        sock.close()
        raise
    return sock, st


class DaemonServer:
    """The daemon's state: its core, socket, connections and stop sequence."""

    def __init__(
        self,
        socket_path: str,
        *,
        core: CoreConfig | None = None,
        limits: DaemonLimits | None = None,
    ) -> None:
        if core is None:
            core = daemon_core_config()
        self.path = socket_path
        self.limits = limits or DaemonLimits()
        self.core = CrucibleCore(core)
        self.sources: SourceCache = {}
        self.conns: set[_Conn] = set()
        # Publishes waiting for queue room (backpressure "wait"), across connections.
        self.waiting_publishes: set[asyncio.Task[None]] = set()
        self.stopping = False
        # Events that reached the daemon but not the core (counted published + rejected).
        self.wire_rejected = 0
        self.connections_total = 0
        self.protocol_errors = 0
        # Connections closed for idleness (not errors: not in protocol_errors).
        self.idle_closed = 0
        self._warned = 0
        self._last_warning = float("-inf")
        self._server: asyncio.AbstractServer | None = None
        self._stat: os.stat_result | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_task: asyncio.Task[StopReport] | None = None
        self._stop_waiters: list[Callable[[StopReport], None]] = []
        self._done: asyncio.Future[StopReport] | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None
        return self._loop

    async def start(self) -> None:
        self._loop = loop = asyncio.get_running_loop()
        self._done = loop.create_future()
        sock, self._stat = bind_socket(self.path)
        try:
            await self.core.start()
            self._server = await loop.create_unix_server(lambda: _Conn(self), sock=sock)
        except BaseException:
            sock.close()
            self._unlink()
            await self.core.stop()
            raise
        _log.info("listening on %s (pid %d)", self.path, os.getpid())

    async def start_in_memory(self) -> None:
        """Start the core but no socket: clients connect through memory, with
        ``connect_in_memory(server)`` (``crucible._daemon.memory``)."""
        self._loop = asyncio.get_running_loop()
        self._done = self._loop.create_future()
        await self.core.start()

    def note_protocol_error(self, role: str | None, code: str, message: str) -> None:
        """Count it; log it, at most once a second (a misbehaving client must not be able
        to flood the log)."""
        self.protocol_errors += 1
        now = self.loop.time()
        if now - self._last_warning >= 1.0:
            more = self.protocol_errors - self._warned - 1
            self._last_warning = now
            self._warned = self.protocol_errors
            _log.warning(
                "closed a %s connection: %s: %s%s",
                role or "new",
                code,
                message,
                f" ({more} more since the last warning)" if more else "",
            )

    def stats(self) -> Stats:
        s = self.core.stats()
        extra = dict(s.extra)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        extra.update(
            wire_rejected=self.wire_rejected,
            connections=len(self.conns),
            connections_total=self.connections_total,
            protocol_errors=self.protocol_errors,
            idle_closed=self.idle_closed,
            daemon_cpu_s=usage.ru_utime + usage.ru_stime,
            daemon_gc_collections=sum(g["collections"] for g in gc.get_stats()),
            daemon_peak_rss_bytes=usage.ru_maxrss * 1024,
        )
        return Stats(
            published=s.published + self.wire_rejected,
            delivered=s.delivered,
            failed=s.failed,
            dead_lettered=s.dead_lettered,
            rejected=s.rejected + self.wire_rejected,
            in_flight=s.in_flight,
            retried=s.retried,
            extra=extra,
        )

    def request_stop(self, drain_timeout_s: float | None = None) -> asyncio.Task[StopReport]:
        """Start the stop sequence (once); the task's result is the report."""
        if self._stop_task is None:
            timeout = self.limits.drain_timeout_s if drain_timeout_s is None else drain_timeout_s
            self._stop_task = self.loop.create_task(self._stop(timeout), name="daemon-stop")
        return self._stop_task

    def on_stopped(self, callback: Callable[[StopReport], None]) -> None:
        """``callback(report)`` runs before the connections are closed (admin replies)."""
        self._stop_waiters.append(callback)

    async def wait_stopped(self) -> StopReport:
        assert self._done is not None
        return await asyncio.shield(self._done)

    async def _stop(self, drain_timeout_s: float) -> StopReport:
        self.stopping = True
        if self._server is not None:
            self._server.close()
        loop = self.loop
        t0 = loop.time()
        drained = True
        try:
            await self.core.settle(drain_timeout_s)
        except SettleTimeout:
            drained = False
        drain_s = loop.time() - t0
        in_flight = self.core.stats().in_flight
        await self.core.stop()
        # Publishers that were waiting for room have their verdicts now (dead-lettered
        # "stopped"); let them finish their frames (the rest are rejected "not_running") so
        # that the report counts every event that reached the daemon.
        if self.waiting_publishes:
            await asyncio.wait(self.waiting_publishes, timeout=_CLOSE_GRACE_S)
        letters = self.core.dead_letters()
        report = StopReport(
            stats=self.stats(),
            drained=drained,
            drain_s=drain_s,
            stopped_in_flight=in_flight,
            dead_letters_total=len(letters),
            dead_letters=tuple(dead_letter_info(d) for d in letters[-MAX_REPORTED_DEAD_LETTERS:]),
        )
        for callback in self._stop_waiters:
            try:
                callback(report)
            except Exception:
                _log.exception("stop callback failed")
        for conn in list(self.conns):
            conn.fail(ErrorCode.SHUTDOWN, "the daemon stopped", count=False)
        self._unlink()
        assert self._done is not None
        if not self._done.done():
            self._done.set_result(report)
        _log.info("stopped: %s", report.stats.as_dict())
        return report

    def _unlink(self) -> None:
        # Only our own socket: another daemon may have taken the path since.
        with contextlib.suppress(OSError):
            st = os.lstat(self.path)
            if self._stat is not None and (st.st_ino, st.st_dev) == (
                self._stat.st_ino,
                self._stat.st_dev,
            ):
                os.unlink(self.path)


_Handler = Callable[["_Conn", tuple[Any, ...]], None]
# A delivery waiting for the next DELIVER: seq, service id, retry_count, wire array, size.
_Delivery = tuple[int, int, int, tuple[Any, ...], int]


class _Frame:
    """A PUBLISH being worked through: its events, how far, and the rejections so far."""

    __slots__ = ("events", "first", "pos", "rejections")

    def __init__(self, first: int, events: tuple[Any, ...]) -> None:
        self.first = first
        self.events = events
        self.pos = 0
        self.rejections: list[list[Any]] = []


class _Conn(asyncio.Protocol):
    """One client connection, whatever its role."""

    def __init__(self, server: DaemonServer) -> None:
        self.server = server
        self.loop = server.loop
        self.limits = server.limits
        self.transport: asyncio.Transport | None = None
        self.decoder = FrameDecoder(
            self.limits.max_frame_bytes, first_frame_bytes=self.limits.max_hello_bytes
        )
        self.role: str | None = None
        self.client = ""
        self.lost = False
        self.closing = False
        self._handlers: dict[int, _Handler] = _HELLO_HANDLERS
        self._paused: set[str] = set()
        self._paused_at = 0.0
        self._last_rx = 0.0
        # When the first byte of the incomplete frame the decoder holds arrived (shifted by
        # the time reading was paused since); None when it holds none.
        self._frame_started: float | None = None
        # One timer for both read deadlines (stall, whole frame), armed only while a frame
        # is incomplete; one for the idle timeout, from the HELLO on.
        self._stall_timer: asyncio.TimerHandle | None = None
        self._hello_timer: asyncio.TimerHandle | None = None
        self._idle_timer: asyncio.TimerHandle | None = None
        # Above the transport's write high-water mark: until it drains, each write is
        # followed by a check of the unsent output against max_output_bytes.
        self._write_blocked = False
        # producer
        self._next_seq = 1
        self._publishing = False
        self._backlog: deque[_Frame] = deque()
        # service
        self.services: dict[int, RemoteService] = {}
        # Deliveries awaiting an ack: seq -> (the batch call, index in it).
        self.pending: dict[int, tuple[BatchCall, int]] = {}
        self._sweep_timer: asyncio.TimerHandle | None = None
        self._sweep_s = min(max(server.core.config.event_timeout_s / 4, 0.01), 1.0)
        self._seq = 0
        self._out: list[_Delivery] = []
        self._out_bytes = 0
        self.half_frame_bytes = self.limits.max_frame_bytes // 2
        self._pack_body = new_packer()
        self._flush_scheduled = False
        self._flush_timer: asyncio.TimerHandle | None = None
        # Events recently sent on this connection: id(wire) -> (token, wire), oldest first.
        self._sent: dict[int, tuple[int, tuple[Any, ...]]] = {}
        self._next_token = 0
        # admin
        self._tasks: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ transport events

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        server = self.server
        server.connections_total += 1
        if len(server.conns) >= self.limits.max_connections:
            self.fail(
                ErrorCode.TOO_MANY_CONNECTIONS,
                f"max_connections={self.limits.max_connections} reached",
            )
            return
        if server.stopping:
            self.fail(ErrorCode.SHUTDOWN, "the daemon is stopping", count=False)
            return
        server.conns.add(self)
        self._hello_timer = self.loop.call_later(
            self.limits.handshake_timeout_s, self._hello_expired
        )

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        self._last_rx = now = self.loop.time()
        try:
            frames = self.decoder.feed(data)
            for frame in frames:
                if self.closing:
                    return
                handler = self._handlers.get(frame[0])
                if handler is None:
                    self._unexpected(frame)
                else:
                    handler(self, frame)
        except ProtocolError as exc:
            self.fail(exc.code, exc.message)
            return
        except (TypeError, ValueError, KeyError, IndexError) as exc:
            # A frame whose fields have the wrong types got past the shape checks.
            self.fail(ErrorCode.MALFORMED, f"bad frame fields ({type(exc).__name__}: {exc})")
            return
        except Exception as exc:
            _log.exception("internal error on a %s connection", self.role)
            self.fail(ErrorCode.INTERNAL, f"{type(exc).__name__}: {exc}")
            return
        if self.decoder.buffered:
            # A frame completed here means the one held began in this data.
            if frames or self._frame_started is None:
                self._frame_started = now
            if self._stall_timer is None and not self._paused:
                self._arm_stall(now)
        elif self._frame_started is not None:
            self._frame_started = None
            if self._stall_timer is not None:
                self._stall_timer.cancel()
                self._stall_timer = None

    def eof_received(self) -> bool:
        try:
            self.decoder.check_eof()
        except ProtocolError as exc:
            self.fail(exc.code, exc.message)
            return True
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.closing = True
        server = self.server
        server.conns.discard(self)
        for timer in (
            self._stall_timer,
            self._hello_timer,
            self._idle_timer,
            self._sweep_timer,
            self._flush_timer,
        ):
            if timer is not None:
                timer.cancel()
        self._stall_timer = self._hello_timer = self._idle_timer = None
        self._out.clear()
        if self.services:
            self._drop_services()

    def pause_writing(self) -> None:
        # The peer is not reading what we send: stop taking work from it, and from now on
        # hold it to max_output_bytes.
        self._write_blocked = True
        self._pause("writing")

    def resume_writing(self) -> None:
        self._write_blocked = False
        self._unpause("writing")

    # ------------------------------------------------------------------ helpers

    def send(self, obj: object) -> None:
        transport = self.transport
        if transport is not None and not self.closing:
            transport.write(encode_frame(obj))
            if self._write_blocked:
                self._check_output(transport)

    def _check_output(self, transport: asyncio.Transport) -> None:
        """Abort the connection if its peer left more than ``max_output_bytes`` unread (an
        ERROR frame would wait behind what it does not read). Its loss fails the deliveries
        its services hold over, as any disconnect does (``_drop_services``). Called after a
        write only while the transport is above its high-water mark (``pause_writing``)."""
        held = transport.get_write_buffer_size()
        cap = self.limits.max_output_bytes
        if held <= cap:
            return
        self.server.note_protocol_error(
            self.role,
            ErrorCode.SLOW_READER,
            f"{held} bytes unsent, over max_output_bytes={cap}; the peer stopped reading "
            f"({len(self.pending)} deliveries it held fail over)",
        )
        self.closing = True
        transport.abort()

    def fail(self, code: str, message: str, *, count: bool = True) -> None:
        """Send an ERROR frame and close: the connection's buffered output is flushed for
        at most ``_CLOSE_GRACE_S``, then it is aborted."""
        if self.closing:
            return
        if count:
            self.server.note_protocol_error(self.role, code, message)
        transport = self.transport
        assert transport is not None
        with contextlib.suppress(Exception):
            transport.write(encode_frame([ERROR, code, message]))
        self.closing = True
        transport.close()
        self.loop.call_later(_CLOSE_GRACE_S, transport.abort)

    def _pause(self, reason: str) -> None:
        if not self._paused and self.transport is not None and not self.closing:
            self.transport.pause_reading()
            self._paused_at = self.loop.time()
            if self._stall_timer is not None:
                self._stall_timer.cancel()
                self._stall_timer = None
        self._paused.add(reason)

    def _unpause(self, reason: str) -> None:
        if reason not in self._paused:
            return
        self._paused.discard(reason)
        if not self._paused and self.transport is not None and not self.closing:
            self.transport.resume_reading()
            self._last_rx = now = self.loop.time()
            started = self._frame_started
            if started is not None:
                # The time the daemon was not reading is not the frame's.
                self._frame_started = started + now - max(self._paused_at, started)
                if self._stall_timer is None:
                    self._arm_stall(now)

    def _arm_stall(self, now: float) -> None:
        """Check the incomplete frame at the nearer of its two deadlines: ``read_timeout_s``
        of silence, ``frame_timeout_s`` from its first byte."""
        assert self._frame_started is not None
        limits = self.limits
        delay = min(
            self._last_rx + limits.read_timeout_s, self._frame_started + limits.frame_timeout_s
        )
        self._stall_timer = self.loop.call_later(delay - now, self._check_stall)

    def _check_stall(self) -> None:
        self._stall_timer = None
        started = self._frame_started
        if self.closing or self._paused or started is None:
            return
        now = self.loop.time()
        limits = self.limits
        age = now - started
        idle = now - self._last_rx
        if age >= limits.frame_timeout_s:
            self.fail(
                ErrorCode.FRAME_TIMEOUT,
                f"a frame still incomplete {age:.1f} s after its first byte "
                f"({self.decoder.buffered} bytes held; frame_timeout_s={limits.frame_timeout_s})",
            )
        elif idle >= limits.read_timeout_s:
            self.fail(
                ErrorCode.STALLED,
                f"no data for {idle:.1f} s in the middle of a frame "
                f"({self.decoder.buffered} bytes held; read_timeout_s={limits.read_timeout_s})",
            )
        else:
            self._arm_stall(now)

    def _check_idle(self) -> None:
        """Close the connection if it sent nothing for ``idle_timeout_s`` and the daemon owes
        it nothing; otherwise look again when it next could be. Services with registrations
        or deliveries outstanding are exempt (the event timeout and health checks govern
        them), and so is every connection while the daemon stops (an admin waits for its
        report)."""
        self._idle_timer = None
        if self.closing:
            return
        now = self.loop.time()
        timeout = self.limits.idle_timeout_s
        quiet = now - self._last_rx
        owed = bool(
            self.services
            or self.pending
            or self._backlog
            or self._publishing
            or self._tasks
            or self.server.stopping
        )
        if owed or quiet < timeout:
            self._idle_timer = self.loop.call_later(
                timeout if owed else timeout - quiet, self._check_idle
            )
            return
        self.server.idle_closed += 1
        _log.info(
            "closed an idle %s connection (%r): nothing received for %.1f s (idle_timeout_s=%s)",
            self.role,
            self.client,
            quiet,
            timeout,
        )
        self.fail(
            ErrorCode.IDLE_TIMEOUT,
            f"nothing received for {quiet:.1f} s (idle_timeout_s={timeout})",
            count=False,
        )

    def _hello_expired(self) -> None:
        self._hello_timer = None
        if self.role is None:
            self.fail(
                ErrorCode.HANDSHAKE_TIMEOUT,
                f"no HELLO within handshake_timeout_s={self.limits.handshake_timeout_s}",
            )

    def _unexpected(self, frame: tuple[Any, ...]) -> None:
        if self.role is None:
            raise ProtocolError(ErrorCode.HANDSHAKE, f"expected HELLO, got frame type {frame[0]}")
        raise ProtocolError(
            ErrorCode.MALFORMED, f"frame type {frame[0]} is not valid on a {self.role} connection"
        )

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # ------------------------------------------------------------------ handshake

    def _on_hello(self, f: tuple[Any, ...]) -> None:
        if len(f) != 5 or f[1] != MAGIC:
            raise ProtocolError(
                ErrorCode.HANDSHAKE, "HELLO must be [1, 'crucible', version, role, name]"
            )
        _, _, version, role, client = f
        if version != PROTOCOL_VERSION:
            raise ProtocolError(
                ErrorCode.VERSION,
                f"protocol version {version!r} is not supported; this daemon speaks "
                f"{PROTOCOL_VERSION}",
            )
        if role not in ROLES:
            raise ProtocolError(
                ErrorCode.HANDSHAKE, f"unknown role {role!r}; accepted: {', '.join(ROLES)}"
            )
        if self._hello_timer is not None:
            self._hello_timer.cancel()
            self._hello_timer = None
        self.role = role
        self.client = client if isinstance(client, str) else ""
        self._handlers = _ROLE_HANDLERS[role]
        self._idle_timer = self.loop.call_later(self.limits.idle_timeout_s, self._check_idle)
        self.send(welcome(self.limits, os.getpid()))

    # ------------------------------------------------------------------ producer

    def _on_publish(self, f: tuple[Any, ...]) -> None:
        if len(f) != 3 or f[1].__class__ is not int or f[2].__class__ is not tuple:
            raise ProtocolError(
                ErrorCode.MALFORMED, "PUBLISH must be [10, first_seq, [event, ...]]"
            )
        first, events = f[1], f[2]
        if first != self._next_seq:
            raise ProtocolError(
                ErrorCode.MALFORMED, f"PUBLISH first_seq {first}, expected {self._next_seq}"
            )
        if len(events) > self.limits.max_events_per_frame:
            raise ProtocolError(
                ErrorCode.OVERSIZED,
                f"{len(events)} events in one frame; "
                f"max_events_per_frame={self.limits.max_events_per_frame}",
            )
        self._next_seq = first + len(events)
        self._backlog.append(_Frame(first, events))
        if self._publishing:
            if len(self._backlog) >= _MAX_BACKLOG_FRAMES:
                self._pause("backlog")
            return
        self._publish_slice()

    def _reject(self, frame: _Frame, seq: int, reason: str, detail: str) -> None:
        self.server.wire_rejected += 1
        frame.rejections.append([seq, reason, detail])

    def _publish_slice(self) -> None:
        """Publish up to ``_PUBLISH_SLICE`` queued events, then give the loop a turn before
        the next slice: the core's workers start delivering (and its worker pool grows)
        while a large batch is still being published, instead of after it. Each publish is
        stepped in place; one that suspends (backpressure "wait") continues in a task."""
        server = self.server
        publish = server.core.publish
        sources = server.sources
        pack = self._pack_body  # measures map payloads (decode_event)
        backlog = self._backlog
        budget = _PUBLISH_SLICE
        while backlog and budget:
            frame = backlog[0]
            events = frame.events
            first = frame.first
            i = frame.pos
            end = min(len(events), i + budget)
            budget -= end - i
            while i < end:
                if server.stopping:
                    self._reject(frame, first + i, "not_running", "the daemon is stopping")
                    i += 1
                    continue
                try:
                    event = decode_event(events[i], sources, True, pack)
                except ValueError as exc:
                    self._reject(frame, first + i, "malformed", str(exc))
                    i += 1
                    continue
                coro = publish(event, checked=True)
                try:
                    yielded = coro.send(None)
                except StopIteration as stop:
                    verdict = stop.value
                    if verdict is not None:
                        frame.rejections.append([first + i, verdict.reason.value, verdict.detail])
                    i += 1
                    continue
                frame.pos = i
                self._publishing = True
                task = self._spawn(self._publish_waiting(coro, yielded, frame))
                server.waiting_publishes.add(task)
                task.add_done_callback(server.waiting_publishes.discard)
                return
            frame.pos = i
            if i == len(events):
                backlog.popleft()
                if events:
                    self.send([RESULT, first + i - 1, frame.rejections])
        if backlog:
            self._publishing = True
            self.loop.call_soon(self._publish_slice)
        else:
            self._publishing = False
            self._unpause("backlog")

    async def _publish_waiting(
        self, coro: Coroutine[Any, Any, Any], yielded: Any, frame: _Frame
    ) -> None:
        verdict = await resume(coro, yielded)
        if verdict is not None:
            frame.rejections.append([frame.first + frame.pos, verdict.reason.value, verdict.detail])
        frame.pos += 1
        if frame.pos == len(frame.events):
            self._backlog.popleft()
            self.send([RESULT, frame.first + frame.pos - 1, frame.rejections])
        self._publish_slice()

    # ------------------------------------------------------------------ service

    def _on_register(self, f: tuple[Any, ...]) -> None:
        if len(f) != 5 or f[1].__class__ is not int:
            raise ProtocolError(
                ErrorCode.MALFORMED, "REGISTER must be [20, sid, name, role, weight]"
            )
        _, sid, name, role, weight = f
        error: str | None = None
        if sid in self.services:
            error = f"service id {sid} is already registered on this connection"
        elif not isinstance(name, str) or not isinstance(role, str):
            error = "service name and role must be strings"
        elif isinstance(weight, bool) or not isinstance(weight, int | float):
            error = f"weight must be a number, not {weight!r}"
        elif self.server.stopping:
            error = "the daemon is stopping"
        else:
            remote = RemoteService(self, sid, name, role, float(weight))
            # Its handle returns a future, not a coroutine: awaitable all the same.
            service = cast(Service, remote)
            try:
                _run_now(self.server.core.register(service, weight=float(weight)))
            except (CoordinatorError, ValueError) as exc:
                error = str(exc)
            else:
                self.services[sid] = remote
                _log.info("registered service %r (role %r)", name, role)
        self.send([REGISTERED, sid, error])

    def _on_unregister(self, f: tuple[Any, ...]) -> None:
        if len(f) != 2 or f[1].__class__ is not int:
            raise ProtocolError(ErrorCode.MALFORMED, "UNREGISTER must be [22, sid]")
        sid = f[1]
        service = self.services.pop(sid, None)
        error: str | None = None
        if service is None:
            error = f"no service with id {sid} on this connection"
        else:
            with contextlib.suppress(CoordinatorError):
                _run_now(self.server.core.unregister(service.name))
        self.send([UNREGISTERED, sid, error])

    def _drop_services(self) -> None:
        """The connection is gone: unregister its services (queued deliveries move to
        other replicas or are dead-lettered), then fail the calls waiting for an ack."""
        core = self.server.core
        services, self.services = self.services, {}
        for service in services.values():
            with contextlib.suppress(CoordinatorError):
                _run_now(core.unregister(service.name))
            _log.info("service %r disconnected", service.name)
        pending, self.pending = self.pending, {}
        for call, i in pending.values():
            call.settle(i, ServiceDisconnected("the service's connection dropped"))

    def schedule_flush(self) -> None:
        """Send the queued deliveries soon: at the end of this loop iteration if the service
        has nothing else of ours, else after its next ACK or ``_DELIVER_DELAY_S``."""
        self._flush_scheduled = True
        if self._sweep_timer is None:
            self._sweep_timer = self.loop.call_later(self._sweep_s, self._sweep)
        if len(self.pending) <= len(self._out):
            self.loop.call_soon(self._flush)
        else:
            self._flush_timer = self.loop.call_later(_DELIVER_DELAY_S, self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        out = self._out
        if not out or self.closing:
            return
        self._out = []
        self._out_bytes = 0
        limit = min(self.limits.max_events_per_frame, BACKREF_WINDOW)
        for i in range(0, len(out), limit):
            self._write_deliveries(out[i : i + limit])

    def _write_deliveries(self, batch: list[_Delivery]) -> None:
        """One DELIVER. An event this connection was sent recently (another target's
        delivery, or a retry) goes by its token; others are included and given the next
        tokens (see ``codec.EVENT_WINDOW``)."""
        sent = self._sent
        first = self._next_token
        oldest = first - BACKREF_WINDOW
        events: list[tuple[Any, ...]] = []
        items: list[int] = []
        for seq, sid, retry, wire, size in batch:
            known = sent.get(id(wire))
            if known is not None and known[0] >= oldest and known[1] is wire:
                token = known[0]
            else:
                token = first + len(events)
                events.append(wire)
                if size <= CACHE_EVENT_BYTES:  # the client keeps it (codec.cacheable)
                    sent[id(wire)] = (token, wire)
            items += (seq, sid, retry, token)
        self._next_token = first + len(events)
        if len(sent) > 2 * BACKREF_WINDOW:
            # Forget the events too old to be named, all at once (deleting a dict's oldest
            # entry one at a time makes the next lookup of the oldest slower and slower).
            horizon = self._next_token - BACKREF_WINDOW
            self._sent = {k: v for k, v in sent.items() if v[0] >= horizon}
        try:
            body = self._pack_body([DELIVER, first, events, items])
        except (TypeError, ValueError) as exc:
            for seq, *_ in batch:
                self._nack_locally(seq, f"cannot encode the event for delivery: {exc}")
            return
        if len(body) > self.limits.max_frame_bytes:
            self._next_token = first  # not sent: the tokens are free again
            for wire in events:
                sent.pop(id(wire), None)
            if len(batch) == 1:
                self._nack_locally(
                    batch[0][0],
                    f"the event encodes to {len(body)} bytes, over max_frame_bytes="
                    f"{self.limits.max_frame_bytes}",
                )
                return
            half = len(batch) // 2
            self._write_deliveries(batch[:half])
            self._write_deliveries(batch[half:])
            return
        transport = self.transport
        assert transport is not None
        if self._write_blocked and self.closing:
            return  # aborted for its unread output: ``batch`` fails over with the connection
        transport.write(pack_frame(body))
        if self._write_blocked:
            self._check_output(transport)

    def _nack_locally(self, seq: int, error: str) -> None:
        entry = self.pending.pop(seq, None)
        if entry is not None:
            entry[0].settle(entry[1], RemoteHandlerError(error))

    def _sweep(self) -> None:
        """Deliveries the core gave up on (timed out, or the core stopped) belong to batch
        calls marked cancelled: forget them and tell the service, so it can cancel the
        handlers."""
        self._sweep_timer = None
        if self.lost:
            return
        pending = self.pending
        gone = [seq for seq, (call, _) in pending.items() if call.cancelled]
        for seq in gone:
            del pending[seq]
        if gone:
            self.send([CANCEL, gone])
        if pending:
            self._sweep_timer = self.loop.call_later(self._sweep_s, self._sweep)

    def _on_ack(self, f: tuple[Any, ...]) -> None:
        if len(f) != 3 or f[1].__class__ is not tuple or f[2].__class__ is not tuple:
            raise ProtocolError(
                ErrorCode.MALFORMED, "ACK must be [25, [seq, ...], [[seq, error], ...]]"
            )
        pop = self.pending.pop
        # A call's deliveries have consecutive seqs and are mostly acked in order: each run
        # of one call's acks is settled in one call.
        call: BatchCall | None = None
        run: list[int] = []
        for seq in f[1]:
            entry = pop(seq, None)
            if entry is None:
                continue
            if entry[0] is call:
                run.append(entry[1])
                continue
            if call is not None:
                call.settle_handled(run)
            call, run = entry[0], [entry[1]]
        if call is not None:
            call.settle_handled(run)
        for seq, error in f[2]:
            entry = pop(seq, None)
            if entry is not None:
                entry[0].settle(
                    entry[1],
                    RemoteHandlerError(error if isinstance(error, str) and error else "failed"),
                )
        if self._out or f[1] or f[2]:
            # The answers freed room: a worker woken by them sends the service's next
            # deliveries; this flush runs after it (call_soon keeps order) and sends them.
            if self._flush_timer is not None:
                self._flush_timer.cancel()
                self._flush_timer = None
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)

    def _on_health(self, f: tuple[Any, ...]) -> None:
        if len(f) != 3 or f[1].__class__ is not int:
            raise ProtocolError(ErrorCode.MALFORMED, "HEALTH must be [26, sid, healthy]")
        service = self.services.get(f[1])
        if service is not None:
            service._healthy = bool(f[2])

    # ------------------------------------------------------------------ admin

    def _on_request(self, f: tuple[Any, ...]) -> None:
        if len(f) != 4 or not isinstance(f[2], str) or not isinstance(f[3], dict):
            raise ProtocolError(ErrorCode.MALFORMED, "REQUEST must be [30, id, op, {args}]")
        self._spawn(self._answer(f[1], f[2], f[3]))

    async def _answer(self, rid: Any, op: str, args: dict[str, Any]) -> None:
        try:
            result = await self._admin(rid, op, args)
        except _AdminError as exc:
            self.send([REPLY, rid, False, {"code": exc.code, "message": exc.message}])
            return
        except Exception as exc:
            _log.exception("admin request %r failed", op)
            self.send([REPLY, rid, False, {"code": ErrorCode.INTERNAL, "message": str(exc)}])
            return
        if result is not _DEFERRED:
            self.send([REPLY, rid, True, result])

    async def _admin(self, rid: Any, op: str, args: dict[str, Any]) -> Any:
        server = self.server
        core = server.core
        if op == "ping":
            return {"pid": os.getpid(), "version": PROTOCOL_VERSION, "stopping": server.stopping}
        if op == "stats":
            return stats_to_wire(server.stats())
        if op == "settle":
            timeout = _timeout_arg(args, "timeout_s")
            try:
                await core.settle(timeout)
            except SettleTimeout as exc:
                raise _AdminError("settle_timeout", str(exc)) from None
            return stats_to_wire(server.stats())
        if op == "dead_letters":
            limit = args.get("limit", 1000)
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
                raise _AdminError("bad_request", "limit must be an integer >= 0")
            limit = min(limit, MAX_REPORTED_DEAD_LETTERS)
            letters = core.dead_letters()
            return [dead_letter_info(d) for d in letters[len(letters) - limit :]] if limit else []
        if op == "health":
            return {
                name: {
                    "role": h.role,
                    "healthy": h.healthy,
                    "breaker": h.breaker.value,
                    "queue_depth": h.queue_depth,
                    "in_flight": h.in_flight,
                }
                for name, h in core.health().items()
            }
        if op == "stop":
            drain = _timeout_arg(args, "drain_timeout_s")

            def reply(report: StopReport) -> None:
                self.send([REPLY, rid, True, report.as_dict()])

            server.on_stopped(reply)
            server.request_stop(drain)
            return _DEFERRED
        raise _AdminError(
            "unknown_op",
            f"unknown op {op!r}; accepted: ping, stats, settle, dead_letters, health, stop",
        )


_DEFERRED: Final = object()


class _AdminError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _timeout_arg(args: dict[str, Any], name: str) -> float | None:
    value = args.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise _AdminError("bad_request", f"{name} must be a number >= 0 or nil")
    return float(value)


def _run_now(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that does not suspend (CrucibleCore.register / unregister) to its
    end, here; if it ever does suspend, finish it in a task."""
    try:
        yielded = coro.send(None)
    except StopIteration as stop:
        return stop.value
    asyncio.get_running_loop().create_task(resume(coro, yielded))
    return None


def tune_gc() -> None:
    """Tune the cyclic garbage collector for the daemon's process. Every PUBLISH frame
    unpacks into thousands of containers, so with the default threshold (700) collections
    ran inside nearly every frame, and each young collection also walked the events queued
    and in flight: measured in the daemon on medium events, 4.6 us of collection per event
    (0.27 s for 60,000), with ``DAEMON_GC_THRESHOLD`` 0.003 s. The objects of start-up
    (modules, classes) are frozen out of every collection. Cycles are still collected,
    ``DAEMON_GC_THRESHOLD[0]`` allocations apart."""
    gc.freeze()
    gc.set_threshold(*DAEMON_GC_THRESHOLD)


_ROLE_HANDLERS: dict[str, dict[int, _Handler]] = {
    "producer": {PUBLISH: _Conn._on_publish},
    "service": {
        REGISTER: _Conn._on_register,
        UNREGISTER: _Conn._on_unregister,
        ACK: _Conn._on_ack,
        HEALTH: _Conn._on_health,
    },
    "admin": {REQUEST: _Conn._on_request},
}
_HELLO_HANDLERS: dict[int, _Handler] = {HELLO: _Conn._on_hello}


async def serve(
    socket_path: str,
    *,
    core: CoreConfig | None = None,
    limits: DaemonLimits | None = None,
    handle_signals: bool = False,
    ready: Callable[[DaemonServer], None] | None = None,
    own_process: bool = False,
) -> StopReport:
    """Run a daemon on ``socket_path`` until it is stopped; return its StopReport. With
    ``handle_signals``, SIGTERM and SIGINT start the stop sequence. ``own_process`` (the
    ``crucible daemon`` command) says the process is the daemon's alone, so its garbage
    collector is tuned for it (``tune_gc``)."""
    server = DaemonServer(socket_path, core=core, limits=limits)
    await server.start()
    if own_process:
        tune_gc()
    loop = asyncio.get_running_loop()
    if handle_signals:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, server.request_stop)
    try:
        if ready is not None:
            ready(server)
        return await server.wait_stopped()
    finally:
        if handle_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
        if server._stop_task is None or not server._stop_task.done():
            # Cancelled from outside: still stop the core and remove the socket.
            with contextlib.suppress(BaseException):
                await server.request_stop(0.0)
