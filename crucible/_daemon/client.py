"""Clients of the daemon: ``Producer``, ``ServiceClient`` and ``AdminClient``.

Each holds one connection, opened with a bounded exponential backoff (``Backoff``): the
k-th retry waits ``min(base_s * 2**k, max_s)``, and after ``attempts`` failed attempts
``DaemonUnavailable`` says how long it tried and the last error. A refused handshake (wrong
protocol version) is not retried.

Writes are batched: what is sent during one event-loop iteration goes out as one frame
(split at the daemon's ``max_frame_bytes`` / ``max_events_per_frame``), and while the
transport is above its write high-water mark events accumulate and go out together once it
drains.

Producer. ``await publish(event)`` returns the daemon's verdict (None: accepted, or the
``Rejected``) with the same backpressure contract as an in-process ``CrucibleCore``: with
``backpressure="wait"`` the verdict comes once there is room, with ``"reject"`` it is a
``Rejected(BACKPRESSURE)``. ``publish_many`` gets the verdicts of a batch in one round trip.
``submit(event)`` pipelines: it returns as soon as the event is queued for sending (a local
``Rejected`` only if it cannot be sent at all), its verdict arrives later (``on_rejected``,
``rejected``) and ``flush()`` waits for all of them. Events without a verdict are bounded by
``window``: ``submit`` waits for room, which is how a daemon that waits for queue room
slows a pipelining producer down. If the connection drops, every event sent without a
verdict fails with ``ConnectionLost`` (its fate is then only in the daemon's stats); the
next publish reconnects.

ServiceClient. ``subscribe(name, role, handler)`` registers a service in the daemon;
``handler(event)`` is awaited for each delivery: returning acks it, raising nacks it (the
daemon counts a handler failure, then retries or dead-letters). Handlers are started in
place (see ``eager``) and only those that suspend get a task. A CANCEL from the daemon (the
call overran its event timeout) cancels the handler. ``healthy()`` callbacks are polled and
changes reported, for the daemon's health checks. When the connection drops the client
reconnects with the backoff and registers its services again.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import os
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Final, cast

from crucible._daemon.codec import (
    CACHE_EVENT_BYTES,
    EVENT_WINDOW,
    FrameDecoder,
    SourceCache,
    decode_trusted,
    encode_body,
    event_fields,
    new_packer,
    pack_frame,
)
from crucible._daemon.eager import resume
from crucible._daemon.protocol import (
    ACK,
    CANCEL,
    DEFAULT_HANDSHAKE_TIMEOUT_S,
    DEFAULT_MAX_EVENTS_PER_FRAME,
    DEFAULT_MAX_FRAME_BYTES,
    DELIVER,
    ERROR,
    HEALTH,
    PUBLISH,
    REGISTER,
    REGISTERED,
    REPLY,
    REQUEST,
    RESULT,
    UNREGISTER,
    UNREGISTERED,
    WELCOME,
    ConnectionLost,
    DaemonError,
    DaemonUnavailable,
    ErrorCode,
    ProtocolError,
    RemoteError,
    hello,
    stats_from_wire,
)
from crucible._events import Event, Rejected, RejectReason
from crucible._protocol import Service, Stats

if TYPE_CHECKING:
    from crucible._daemon.server import DaemonServer

__all__ = [
    "AdminClient",
    "Backoff",
    "Handler",
    "Producer",
    "ServiceClient",
]

DEFAULT_WINDOW: Final = 4096
DEFAULT_HEALTH_INTERVAL_S: Final = 0.25
# Frame overhead per event beyond its payload, to keep frames under max_frame_bytes.
_EVENT_OVERHEAD_BYTES: Final = 512
# Ring index of an event token (codec.EVENT_WINDOW is a power of two).
_EVENT_MASK: Final = EVENT_WINDOW - 1
_UNENCODABLE: Final = ("", "unencodable")  # stands in for an event that cannot be sent

Handler = Callable[[Event], Coroutine[Any, Any, None]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Backoff:
    """Connection attempts: ``attempts`` in all; before retry k (from 0) wait
    ``min(base_s * 2**k, max_s)``."""

    attempts: int = 10
    base_s: float = 0.05
    max_s: float = 2.0

    def __post_init__(self) -> None:
        if isinstance(self.attempts, bool) or not isinstance(self.attempts, int):
            raise ValueError(f"attempts must be an integer >= 1, not {self.attempts!r}")
        if self.attempts < 1:
            raise ValueError(f"attempts must be >= 1, not {self.attempts}")
        if not 0 <= self.base_s <= self.max_s < float("inf"):
            raise ValueError(
                f"need 0 <= base_s <= max_s < inf, not base_s={self.base_s} max_s={self.max_s}"
            )

    def delays(self) -> Iterator[float]:
        """The waits between attempts (``attempts - 1`` of them)."""
        for k in range(self.attempts - 1):
            yield min(self.base_s * 2.0**k, self.max_s)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class _Link(asyncio.Protocol):
    """One connection of an endpoint: frames in, handshake, loss."""

    def __init__(self, owner: _Endpoint) -> None:
        self.owner = owner
        self.transport: asyncio.Transport | None = None
        self.decoder = FrameDecoder(DEFAULT_MAX_FRAME_BYTES)
        self.welcome: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.ready = False
        self.lost = False
        self.error: RemoteError | ProtocolError | None = None
        self.max_frame_bytes = DEFAULT_MAX_FRAME_BYTES
        self.max_events_per_frame = DEFAULT_MAX_EVENTS_PER_FRAME
        self.writing_paused = False
        self.pack_body = new_packer()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def send(self, obj: object) -> None:
        if self.transport is not None and not self.lost:
            self.transport.write(pack_frame(self.pack_body(obj)))

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.lost:
            self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        try:
            frames = self.decoder.feed(data)
        except ProtocolError as exc:
            self.error = exc
            assert self.transport is not None
            self.transport.abort()
            return
        owner = self.owner
        try:
            for f in frames:
                if self.lost:
                    return
                kind = f[0]
                if kind == ERROR:
                    self._on_error(f)
                elif not self.ready:
                    self._on_welcome(f)
                else:
                    owner._on_frame(self, f)
        except (ProtocolError, TypeError, ValueError, IndexError, KeyError) as exc:
            # The daemon sent something this client cannot follow: drop the connection.
            self.error = (
                exc
                if isinstance(exc, ProtocolError)
                else ProtocolError(ErrorCode.MALFORMED, _describe(exc))
            )
            assert self.transport is not None
            self.transport.abort()
            return
        if self.ready and not self.lost:
            owner._after_frames(self)

    def _on_error(self, f: tuple[Any, ...]) -> None:
        code = f[1] if len(f) > 1 and isinstance(f[1], str) else ErrorCode.MALFORMED
        message = f[2] if len(f) > 2 and isinstance(f[2], str) else "(no message)"
        self.error = RemoteError(code, message)
        if not self.welcome.done():
            self.welcome.set_exception(self.error)

    def _on_welcome(self, f: tuple[Any, ...]) -> None:
        if f[0] != WELCOME or len(f) != 3 or not isinstance(f[2], dict):
            self.error = ProtocolError(ErrorCode.HANDSHAKE, f"expected WELCOME, got {f[0]}")
            if not self.welcome.done():
                self.welcome.set_exception(self.error)
            return
        info = f[2]
        limit = info.get("max_frame_bytes")
        if isinstance(limit, int) and limit > 0:
            self.max_frame_bytes = limit
            self.decoder = FrameDecoder(max(limit, DEFAULT_MAX_FRAME_BYTES))
        count = info.get("max_events_per_frame")
        if isinstance(count, int) and count > 0:
            self.max_events_per_frame = count
        self.ready = True
        if not self.welcome.done():
            self.welcome.set_result(info)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if not self.welcome.done():
            self.welcome.set_exception(
                self.error or ConnectionLost(f"connection closed during the handshake ({exc})")
            )
        self.owner._on_lost(self, exc)

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        self.owner._on_writable(self)


class _Endpoint:
    """What the three clients share: connecting with backoff, the current link."""

    role: ClassVar[str] = ""
    # Set by connect_in_memory: connections go to this server through memory.
    _memory_server: DaemonServer | None = None

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        name: str | None = None,
        backoff: Backoff | None = None,
        handshake_timeout_s: float = DEFAULT_HANDSHAKE_TIMEOUT_S,
    ) -> None:
        self.path = os.fspath(path)
        self.name = name or f"{self.role}-{os.getpid()}"
        self.backoff = backoff or Backoff()
        self.handshake_timeout_s = handshake_timeout_s
        self.daemon_pid: int | None = None
        self._link: _Link | None = None
        self._closed = False
        self._connecting: asyncio.Task[_Link] | None = None
        # Injectable for tests of the backoff.
        self._sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    @property
    def connected(self) -> bool:
        link = self._link
        return link is not None and link.ready and not link.lost

    async def connect(self) -> None:
        """Connect now (with the backoff); a no-op when connected."""
        await self._ensure()

    async def _ensure(self) -> _Link:
        link = self._link
        if link is not None and not link.lost:
            return link
        if self._closed:
            raise DaemonError(f"{type(self).__name__} is closed")
        if self._connecting is None or self._connecting.done():
            self._connecting = asyncio.get_running_loop().create_task(self._dial())
        return await asyncio.shield(self._connecting)

    async def _dial(self) -> _Link:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        delays = self.backoff.delays()
        attempt = 0
        while True:
            attempt += 1
            try:
                link = await self._open_once()
            except RemoteError as exc:
                if exc.code in (ErrorCode.VERSION, ErrorCode.HANDSHAKE):
                    raise
                last: BaseException = exc
            except (OSError, ConnectionLost, ProtocolError, TimeoutError) as exc:
                last = exc
            else:
                self._link = link
                await self._on_connected(link)
                return link
            delay = next(delays, None)
            if delay is None or self._closed:
                raise DaemonUnavailable(
                    f"cannot connect to the daemon at {self.path} (role {self.role}): "
                    f"{attempt} attempts over {loop.time() - t0:.2f} s; last error: "
                    f"{_describe(last)}"
                ) from None
            await self._sleep(delay)

    async def _open_once(self) -> _Link:
        link = await self._open_transport()
        link.send(hello(self.role, self.name))
        try:
            async with asyncio.timeout(self.handshake_timeout_s):
                info = await link.welcome
        except BaseException:
            link.close()
            raise
        pid = info.get("pid")
        self.daemon_pid = pid if isinstance(pid, int) else None
        return link

    async def connect_in_memory(self, server: DaemonServer) -> None:
        """Connect, instead of ``connect()``, to ``server`` (in this event loop, started with
        ``start_in_memory()``) through memory rather than its socket
        (``crucible._daemon.memory``); reconnections go there too. The frames and
        everything done with them are as over the socket."""
        self._memory_server = server
        await self.connect()

    async def _open_transport(self) -> _Link:
        """A new connection to the daemon's socket (or, after ``connect_in_memory``, to its
        server through memory), before the handshake."""
        if self._memory_server is not None:
            from crucible._daemon.memory import open_in_memory  # it imports this module

            return open_in_memory(self, self._memory_server)
        loop = asyncio.get_running_loop()
        _, link = await loop.create_unix_connection(lambda: _Link(self), self.path)
        return link

    async def close(self) -> None:
        """Close the connection; no reconnection afterwards."""
        self._closed = True
        if self._connecting is not None and not self._connecting.done():
            self._connecting.cancel()
            with contextlib.suppress(BaseException):
                await self._connecting
        link = self._link
        if link is not None and not link.lost:
            link.close()
        self._on_close()

    # Hooks.
    async def _on_connected(self, link: _Link) -> None:
        pass

    def _on_frame(self, link: _Link, f: tuple[Any, ...]) -> None:
        raise ProtocolError(ErrorCode.MALFORMED, f"unexpected frame type {f[0]}")

    def _after_frames(self, link: _Link) -> None:
        pass

    def _on_lost(self, link: _Link, exc: Exception | None) -> None:
        pass

    def _on_writable(self, link: _Link) -> None:
        pass

    def _on_close(self) -> None:
        pass

    def _lost_error(self, link: _Link, what: str) -> ConnectionLost:
        cause = f" ({link.error})" if link.error is not None else ""
        return ConnectionLost(f"connection to the daemon at {self.path} lost{cause}; {what}")


# ------------------------------------------------------------------------------ Producer


class _Batch:
    __slots__ = ("first", "future", "last", "results")

    def __init__(self, first: int, last: int, future: asyncio.Future[list[Rejected | None]]):
        self.first = first
        self.last = last
        self.results: list[Rejected | None] = [None] * (last - first + 1)
        self.future = future


_REASONS: Final = {r.value: r for r in RejectReason}


class Producer(_Endpoint):
    """Publishes events to the daemon. See the module docstring for the contract."""

    role = "producer"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        name: str | None = None,
        backoff: Backoff | None = None,
        window: int = DEFAULT_WINDOW,
        on_rejected: Callable[[int, Rejected], None] | None = None,
        handshake_timeout_s: float = DEFAULT_HANDSHAKE_TIMEOUT_S,
    ) -> None:
        super().__init__(path, name=name, backoff=backoff, handshake_timeout_s=handshake_timeout_s)
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise ValueError(f"window must be an integer >= 1, not {window!r}")
        self.window = window
        self.on_rejected = on_rejected
        # Verdicts received over the producer's life (all connections).
        self.accepted = 0
        self.rejected = 0
        # Events sent whose connection dropped before their verdict came.
        self.unconfirmed = 0
        # Events rejected here, never sent (not describable on the wire, no daemon).
        self.local_rejected = 0
        self._seq = 0  # last seq given out on this connection
        self._verdict_seq = 0  # last seq with a verdict
        self._queued: list[tuple[Any, ...]] = []
        self._queued_bytes = 0
        self._first_queued = 1
        self._flush_scheduled = False
        self._batches: deque[_Batch] = deque()
        self._local: dict[int, Rejected] = {}  # verdicts decided here (unencodable events)
        self._room: deque[asyncio.Future[None]] = deque()
        self._idle: list[asyncio.Future[None]] = []

    @property
    def outstanding(self) -> int:
        """Events given a seq on this connection and still without a verdict."""
        return self._seq - self._verdict_seq

    async def submit(self, event: Event) -> Rejected | None:
        """Queue ``event`` for the next frame; None when queued, a Rejected when it cannot be
        sent (not an Event the wire can describe, or no daemon). Waits while ``window``
        events lack a verdict."""
        try:
            fields = event_fields(event)
        except (AttributeError, TypeError) as exc:
            self.local_rejected += 1
            return Rejected(RejectReason.MALFORMED, f"cannot send this event: {_describe(exc)}")
        link = self._link
        if link is None or link.lost:
            try:
                link = await self._ensure()
            except DaemonError as exc:
                self.local_rejected += 1
                return Rejected(RejectReason.NOT_RUNNING, str(exc))
        while self._seq - self._verdict_seq >= self.window:
            try:
                await self._wait_room(link)
            except ConnectionLost:
                return await self.submit(event)  # not queued yet: safe to send again
        self._queue(link, fields, event.size_bytes)
        return None

    def try_submit(self, event: Event) -> bool:
        """``submit`` without waiting: True if ``event`` was queued now; False if that needs
        a wait or has a verdict to give (then call ``submit``)."""
        link = self._link
        if link is None or link.lost or self._seq - self._verdict_seq >= self.window:
            return False
        try:
            fields = event_fields(event)
        except (AttributeError, TypeError):
            return False
        self._queue(link, fields, event.size_bytes)
        return True

    def _queue(self, link: _Link, fields: tuple[Any, ...], size: int) -> int:
        self._seq = seq = self._seq + 1
        queued = self._queued
        queued.append(fields)
        self._queued_bytes += max(size, 0) + _EVENT_OVERHEAD_BYTES
        if not link.writing_paused and (
            len(queued) >= link.max_events_per_frame
            or self._queued_bytes >= link.max_frame_bytes // 2
        ):
            self._flush(link)
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush_soon)
        return seq

    async def publish(self, event: Event) -> Rejected | None:
        """Publish one event and wait for the daemon's verdict."""
        return (await self.publish_many((event,)))[0]

    async def publish_many(self, events: Sequence[Event]) -> list[Rejected | None]:
        """Publish a batch; one verdict per event, in order, after one round trip. Raises
        ConnectionLost if the connection drops before the verdicts arrive."""
        if not events:
            return []
        try:
            link = await self._ensure()
        except DaemonError as exc:
            self.local_rejected += len(events)
            return [Rejected(RejectReason.NOT_RUNNING, str(exc))] * len(events)
        while self._seq - self._verdict_seq + len(events) > max(self.window, len(events)):
            try:
                await self._wait_room(link)
            except ConnectionLost:
                return await self.publish_many(events)  # none queued yet
        out: list[Rejected | None] = [None] * len(events)
        sent: list[int] = []
        for i, event in enumerate(events):
            try:
                fields = event_fields(event)
            except (AttributeError, TypeError) as exc:
                self.local_rejected += 1
                out[i] = Rejected(
                    RejectReason.MALFORMED, f"cannot send this event: {_describe(exc)}"
                )
                continue
            self._queue(link, fields, event.size_bytes)
            sent.append(i)
        if not sent:
            return out
        first = self._seq - len(sent) + 1
        fut: asyncio.Future[list[Rejected | None]] = asyncio.get_running_loop().create_future()
        self._batches.append(_Batch(first, self._seq, fut))
        for i, verdict in zip(sent, await fut, strict=True):
            out[i] = verdict
        return out

    async def flush(self, timeout_s: float | None = None) -> None:
        """Wait until every event sent so far has its verdict (TimeoutError after
        ``timeout_s``; ConnectionLost if the connection drops first)."""
        link = self._link
        if link is None or link.lost:
            return
        if self._flush_scheduled or self._queued:
            self._flush(link)
        if self._verdict_seq >= self._seq:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._idle.append(fut)
        async with asyncio.timeout(timeout_s):
            await fut

    async def _wait_room(self, link: _Link) -> None:
        if self._queued:
            self._flush(link)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._room.append(fut)
        try:
            await fut
        finally:
            with contextlib.suppress(ValueError):
                self._room.remove(fut)

    def _flush_soon(self) -> None:
        self._flush_scheduled = False
        link = self._link
        if link is not None and not link.writing_paused:
            self._flush(link)

    def _on_writable(self, link: _Link) -> None:
        if self._queued:
            self._flush(link)

    def _flush(self, link: _Link) -> None:
        """Write the queued events, a frame at a time, until the transport is above its
        high-water mark; the rest go when it drains (``_on_writable``), in fewer, larger
        frames, instead of piling up in the transport's buffer."""
        queued = self._queued
        if not queued or link.lost:
            return
        total = len(queued)
        limit = link.max_events_per_frame
        while queued:
            chunk = queued[:limit]
            del queued[:limit]
            first = self._first_queued
            self._first_queued = first + len(chunk)
            self._write(link, first, chunk)
            if link.writing_paused or link.lost:
                break
        self._queued_bytes = self._queued_bytes * len(queued) // total

    def _write(self, link: _Link, first: int, chunk: list[tuple[Any, ...]]) -> None:
        try:
            body = link.pack_body([PUBLISH, first, chunk])
        except (TypeError, ValueError, OverflowError):
            # Some event holds what msgpack cannot (a set, an object): send a stand-in the
            # daemon rejects as malformed (so it is counted), and give the real reason.
            for j, fields in enumerate(chunk):
                try:
                    encode_body(fields)
                except (TypeError, ValueError, OverflowError) as exc:
                    chunk[j] = _UNENCODABLE
                    self._local[first + j] = Rejected(
                        RejectReason.MALFORMED, f"cannot encode the event: {_describe(exc)}"
                    )
            body = encode_body([PUBLISH, first, chunk])
        if len(body) > link.max_frame_bytes:
            if len(chunk) == 1:
                self._local[first] = Rejected(
                    RejectReason.OVERSIZED,
                    f"the event encodes to {len(body)} bytes; the daemon's "
                    f"max_frame_bytes is {link.max_frame_bytes}",
                )
                body = encode_body([PUBLISH, first, [_UNENCODABLE]])
            else:
                half = len(chunk) // 2
                self._write(link, first, chunk[:half])
                self._write(link, first + half, chunk[half:])
                return
        link.write(pack_frame(body))

    def _on_frame(self, link: _Link, f: tuple[Any, ...]) -> None:
        if f[0] != RESULT or len(f) != 3 or not isinstance(f[1], int):
            raise ProtocolError(ErrorCode.MALFORMED, f"unexpected frame type {f[0]}")
        last = f[1]
        if last == self._verdict_seq and not f[2]:
            return  # nothing new
        if not self._verdict_seq < last <= self._seq:
            raise ProtocolError(ErrorCode.MALFORMED, f"RESULT up to seq {last} out of order")
        covered = last - self._verdict_seq
        rejections = 0
        batches = self._batches
        local = self._local
        for seq, reason, detail in f[2]:
            verdict = local.pop(seq, None) or Rejected(
                _REASONS.get(reason, RejectReason.MALFORMED), str(detail)
            )
            rejections += 1
            for batch in batches:
                if batch.first <= seq <= batch.last:
                    batch.results[seq - batch.first] = verdict
                    break
            else:
                if self.on_rejected is not None:
                    self.on_rejected(seq, verdict)
        self.rejected += rejections
        self.accepted += covered - rejections
        self._verdict_seq = last
        while batches and batches[0].last <= last:
            batch = batches.popleft()
            if not batch.future.done():
                batch.future.set_result(batch.results)
        room = self._room
        while room and self._seq - self._verdict_seq < self.window:
            fut = room.popleft()
            if not fut.done():
                fut.set_result(None)
        if last == self._seq and self._idle:
            idle, self._idle = self._idle, []
            for fut in idle:
                if not fut.done():
                    fut.set_result(None)

    def _on_lost(self, link: _Link, exc: Exception | None) -> None:
        if link is not self._link:
            return
        missing = self._seq - self._verdict_seq
        self.unconfirmed += missing
        error = self._lost_error(
            link, f"{missing} events were sent without a verdict (see the daemon's stats)"
        )
        for batch in self._batches:
            if not batch.future.done():
                batch.future.set_exception(error)
        for fut in (*self._idle, *self._room):
            if not fut.done():
                fut.set_exception(error)
        self._batches.clear()
        self._idle.clear()
        self._room.clear()
        self._local.clear()
        self._queued = []
        self._queued_bytes = 0
        self._seq = self._verdict_seq = 0
        self._first_queued = 1

    def _on_close(self) -> None:
        link = self._link
        if link is not None:
            self._on_lost(link, None)


# ------------------------------------------------------------------------------ services


class _Run:
    """One driver's pass over a DELIVER (``ServiceClient._drive``): the delivery whose
    handler it is in, and whether a task now owns it."""

    __slots__ = ("detached", "seq")

    def __init__(self) -> None:
        self.seq = 0
        self.detached = False


class _Subscription:
    __slots__ = ("handler", "healthy", "last_health", "name", "role", "sid", "weight")

    def __init__(
        self,
        sid: int,
        name: str,
        role: str,
        handler: Handler,
        weight: float,
        healthy: Callable[[], bool] | None,
    ) -> None:
        self.sid = sid
        self.name = name
        self.role = role
        self.handler = handler
        self.weight = weight
        self.healthy = healthy
        self.last_health = True


class ServiceClient(_Endpoint):
    """Hosts services for the daemon: one connection, any number of services."""

    role = "service"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        name: str | None = None,
        backoff: Backoff | None = None,
        reconnect: bool = True,
        health_interval_s: float = DEFAULT_HEALTH_INTERVAL_S,
        handshake_timeout_s: float = DEFAULT_HANDSHAKE_TIMEOUT_S,
    ) -> None:
        super().__init__(path, name=name, backoff=backoff, handshake_timeout_s=handshake_timeout_s)
        if not health_interval_s > 0:
            raise ValueError(f"health_interval_s must be > 0, not {health_interval_s!r}")
        self.reconnect = reconnect
        self.health_interval_s = health_interval_s
        # Why the client gave up reconnecting (None while it has not).
        self.failure: DaemonError | None = None
        self.handled = 0
        self.failed = 0
        self._subs: dict[int, _Subscription] = {}
        self._sids = itertools.count(1)
        self._replies: dict[tuple[int, int], asyncio.Future[str | None]] = {}
        self._sources: SourceCache = {}
        # The daemon's recent events by token (see codec.EVENT_WINDOW), in a ring indexed
        # by token modulo the window: wire arrays until a delivery needs them decoded, and
        # the token each slot holds.
        self._events: list[Any] = [None] * EVENT_WINDOW
        self._tokens: list[int] = [-1] * EVENT_WINDOW
        self._acks: list[int] = []
        self._nacks: list[tuple[int, str]] = []
        self._ack_scheduled = False
        self._running: dict[int, asyncio.Task[None]] = {}
        self._health_task: asyncio.Task[None] | None = None
        self._reconnect_task: asyncio.Task[None] | None = None
        self._gone: asyncio.Future[None] | None = None

    @property
    def services(self) -> tuple[str, ...]:
        return tuple(s.name for s in self._subs.values())

    async def subscribe(
        self,
        name: str,
        role: str,
        handler: Handler,
        *,
        weight: float = 1.0,
        healthy: Callable[[], bool] | None = None,
    ) -> None:
        """Register a service in the daemon; raises RemoteError if the daemon refuses it
        (name taken, max_services reached)."""
        if any(s.name == name for s in self._subs.values()):
            raise DaemonError(f"this client already hosts a service named {name!r}")
        link = await self._ensure()
        sub = _Subscription(next(self._sids), name, role, handler, weight, healthy)
        await self._register(link, sub)
        self._subs[sub.sid] = sub

    async def add(self, service: Service, *, weight: float | None = None) -> None:
        """Subscribe a ``Service``: its ``handle`` and ``healthy`` (and ``weight`` if any)."""
        w = weight if weight is not None else getattr(service, "weight", 1.0)
        await self.subscribe(
            service.name, service.role, service.handle, weight=w, healthy=service.healthy
        )

    async def unsubscribe(self, name: str) -> None:
        sub = next((s for s in self._subs.values() if s.name == name), None)
        if sub is None:
            raise DaemonError(f"this client hosts no service named {name!r}")
        del self._subs[sub.sid]
        link = await self._ensure()
        await self._request(link, UNREGISTERED, sub.sid, [UNREGISTER, sub.sid])

    async def _register(self, link: _Link, sub: _Subscription) -> None:
        await self._request(
            link, REGISTERED, sub.sid, [REGISTER, sub.sid, sub.name, sub.role, sub.weight]
        )

    async def _request(self, link: _Link, kind: int, sid: int, frame: list[Any]) -> None:
        fut: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._replies[(kind, sid)] = fut
        link.send(frame)
        try:
            error = await fut
        finally:
            self._replies.pop((kind, sid), None)
        if error is not None:
            raise RemoteError("refused", error)

    async def _on_connected(self, link: _Link) -> None:
        loop = asyncio.get_running_loop()
        if self._gone is None:
            self._gone = loop.create_future()
        if self._health_task is None:
            self._health_task = loop.create_task(self._poll_health())

    async def wait_closed(self) -> None:
        """Return when the client is closed; raise its failure if it gave up reconnecting."""
        if self._gone is None:
            return
        await asyncio.shield(self._gone)

    # -------------------------------------------------------------- deliveries

    def _on_frame(self, link: _Link, f: tuple[Any, ...]) -> None:
        kind = f[0]
        if kind == DELIVER:
            self._deliver(link, f)
        elif kind == CANCEL:
            for seq in f[1]:
                task = self._running.pop(seq, None)
                if task is not None:
                    task.cancel()
        elif kind in (REGISTERED, UNREGISTERED):
            fut = self._replies.get((kind, f[1]))
            if fut is not None and not fut.done():
                fut.set_result(f[2])
        else:
            raise ProtocolError(ErrorCode.MALFORMED, f"unexpected frame type {kind}")

    def _deliver(self, link: _Link, f: tuple[Any, ...]) -> None:
        _, first, events, items = f
        cache = self._events
        tokens = self._tokens
        mask = _EVENT_MASK
        large: list[int] | None = None
        for i, fields in enumerate(events):
            # Decoded when first needed; kept for later frames to name, unless large.
            token = first + i
            at = token & mask
            cache[at] = fields
            tokens[at] = token
            payload = fields[4]
            # A map's size is the daemon's measure of it (codec.decode_event), not the
            # producer's word.
            size = len(payload) if payload.__class__ is bytes else fields[13]
            if size > CACHE_EVENT_BYTES:
                if large is None:
                    large = []
                large.append(at)
        it = iter(items)
        todo = zip(it, it, it, it, strict=True)
        while True:
            run = _Run()
            driver = self._drive(link, todo, run)
            try:
                yielded = driver.send(None)
            except StopIteration:
                break
            # A handler suspended: its delivery finishes in a task (the driver stops after
            # it), and a new driver takes the frame's other deliveries.
            run.detached = True
            self._running[run.seq] = asyncio.get_running_loop().create_task(resume(driver, yielded))
        if large is not None:
            for at in large:
                cache[at] = None
                tokens[at] = -1

    async def _drive(
        self, link: _Link, todo: Iterator[tuple[int, int, int, int]], run: _Run
    ) -> None:
        """Call the handlers of a DELIVER's deliveries one after another, awaiting each in
        place: a handler that returns without suspending costs no task and no
        StopIteration of its own. The driver runs inside ``_deliver``'s ``send`` until a
        handler suspends; from then on (``run.detached``) it is a task's, finishes that one
        delivery (its ack, nack, or a CANCEL's cancellation) and stops."""
        cache = self._events
        tokens = self._tokens
        mask = _EVENT_MASK
        sources = self._sources
        subs = self._subs
        acks = self._acks
        nacks = self._nacks
        for seq, sid, retry, token in todo:
            at = token & mask
            if tokens[at] != token:
                raise KeyError(f"DELIVER names event token {token}, which is not kept")
            event = cache[at]
            if event.__class__ is tuple:
                event = cache[at] = decode_trusted(event, sources)
            if event.retry_count != retry:
                event = dataclasses.replace(event, retry_count=retry)
            sub = subs.get(sid)
            if sub is None:
                nacks.append((seq, f"no service with id {sid} here"))
                continue
            run.seq = seq
            try:
                await sub.handler(event)
            except (Exception, asyncio.CancelledError) as exc:
                if run.detached:
                    self._detached_end(link, sub, seq, exc)
                    return
                nacks.append((seq, _describe(exc)))
                self._check_health(link, sub)
            else:
                if run.detached:
                    self._detached_end(link, sub, seq, None)
                    return
                acks.append(seq)

    def _detached_end(
        self, link: _Link, sub: _Subscription, seq: int, exc: BaseException | None
    ) -> None:
        """A delivery whose handler suspended has ended. The lists of acks are looked up
        again: ``_send_acks`` and a lost connection replace them meanwhile."""
        if isinstance(exc, asyncio.CancelledError):
            if seq not in self._running:
                return  # cancelled by the daemon (CANCEL) or by a lost connection
            self._nacks.append((seq, "CancelledError"))
        elif exc is not None:
            self._nacks.append((seq, _describe(exc)))
            self._check_health(link, sub)
        else:
            self._acks.append(seq)
        self._running.pop(seq, None)
        if link is self._link and not self._ack_scheduled:
            self._ack_scheduled = True
            asyncio.get_running_loop().call_soon(self._send_acks)

    def _after_frames(self, link: _Link) -> None:
        self._send_acks()

    def _send_acks(self) -> None:
        self._ack_scheduled = False
        acks, nacks = self._acks, self._nacks
        if not acks and not nacks:
            return
        self.handled += len(acks)
        self.failed += len(nacks)
        self._acks = []
        self._nacks = []
        link = self._link
        if link is not None and not link.lost:
            link.send([ACK, acks, nacks])

    def _check_health(self, link: _Link, sub: _Subscription) -> None:
        if sub.healthy is None:
            return
        try:
            healthy = bool(sub.healthy())
        except Exception:
            healthy = False
        if healthy != sub.last_health:
            sub.last_health = healthy
            link.send([HEALTH, sub.sid, healthy])

    async def _poll_health(self) -> None:
        while True:
            await asyncio.sleep(self.health_interval_s)
            link = self._link
            if link is None or link.lost:
                continue
            for sub in list(self._subs.values()):
                self._check_health(link, sub)

    # -------------------------------------------------------------- loss, reconnection

    def _on_lost(self, link: _Link, exc: Exception | None) -> None:
        if link is not self._link:
            return
        # Tokens are per connection.
        self._events = [None] * EVENT_WINDOW
        self._tokens = [-1] * EVENT_WINDOW
        running, self._running = self._running, {}
        for task in running.values():
            task.cancel()  # the daemon has failed these deliveries already
        self._acks = []
        self._nacks = []
        error = self._lost_error(link, "registration did not complete")
        for fut in self._replies.values():
            if not fut.done():
                fut.set_exception(error)
        if self._closed or not self.reconnect:
            self._finish_life(None if self._closed else error)
            return
        self._reconnect_task = asyncio.get_running_loop().create_task(self._redial())

    async def _redial(self) -> None:
        try:
            link = await self._ensure()
            for sub in list(self._subs.values()):
                sub.last_health = True
                await self._register(link, sub)
        except asyncio.CancelledError:
            raise
        except DaemonError as exc:
            self.failure = exc
            self._finish_life(exc)

    def _finish_life(self, error: DaemonError | None) -> None:
        if self._health_task is not None:
            self._health_task.cancel()
            self._health_task = None
        gone = self._gone
        if gone is not None and not gone.done():
            if error is None:
                gone.set_result(None)
            else:
                gone.set_exception(error)
                gone.exception()  # retrieved here: nobody has to wait for it

    def _on_close(self) -> None:
        if self._reconnect_task is not None:
            self._reconnect_task.cancel()
        for task in self._running.values():
            task.cancel()
        self._running.clear()
        self._finish_life(None)


# ------------------------------------------------------------------------------ admin


class AdminClient(_Endpoint):
    """Asks the daemon for its figures, to settle, or to stop."""

    role = "admin"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        name: str | None = None,
        backoff: Backoff | None = None,
        handshake_timeout_s: float = DEFAULT_HANDSHAKE_TIMEOUT_S,
    ) -> None:
        super().__init__(path, name=name, backoff=backoff, handshake_timeout_s=handshake_timeout_s)
        self._rids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}

    async def request(self, op: str, **args: Any) -> Any:
        """Send one request and return its result; RemoteError if the daemon refuses it."""
        link = await self._ensure()
        rid = next(self._rids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        link.send([REQUEST, rid, op, args])
        try:
            return await fut
        finally:
            self._pending.pop(rid, None)

    async def ping(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("ping")
        return result

    async def stats(self) -> Stats:
        return stats_from_wire(await self.request("stats"))

    async def settle(self, timeout_s: float | None = None) -> Stats:
        """Wait until the daemon has nothing in flight; RemoteError ``settle_timeout``."""
        return stats_from_wire(await self.request("settle", timeout_s=timeout_s))

    async def dead_letters(self, limit: int = 1000) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = list(await self.request("dead_letters", limit=limit))
        return result

    async def health(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("health")
        return result

    async def stop(self, drain_timeout_s: float | None = None) -> dict[str, Any]:
        """Stop the daemon; returns its report (``StopReport.as_dict()``)."""
        result: dict[str, Any] = await self.request("stop", drain_timeout_s=drain_timeout_s)
        return result

    def _on_frame(self, link: _Link, f: tuple[Any, ...]) -> None:
        if f[0] != REPLY or len(f) != 4:
            raise ProtocolError(ErrorCode.MALFORMED, f"unexpected frame type {f[0]}")
        fut = self._pending.get(f[1])
        if fut is None or fut.done():
            return
        if f[2]:
            fut.set_result(f[3])
        else:
            info = f[3] if isinstance(f[3], dict) else {}
            fut.set_exception(
                RemoteError(str(info.get("code", "error")), str(info.get("message", "")))
            )

    def _on_lost(self, link: _Link, exc: Exception | None) -> None:
        if link is not self._link:
            return
        error = self._lost_error(link, "the request got no reply")
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(error)
