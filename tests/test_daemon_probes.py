"""Daemon probes: one misbehaving peer per test, beside a well-behaved producer and service
at work. Each checks that the attack is stopped, that the bystander's events keep being
delivered meanwhile, and that afterwards the accounting balances with nothing in flight
and no accepted event lost."""

from __future__ import annotations

import asyncio
import contextlib
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from crucible import Event, Kind, Source, SourceType
from crucible._daemon.client import AdminClient, Backoff, Producer, ServiceClient
from crucible._daemon.codec import CACHE_EVENT_BYTES, encode_body, encode_frame, event_fields
from crucible._daemon.protocol import (
    PUBLISH,
    REGISTER,
    REGISTERED,
    RESULT,
    WELCOME,
    DaemonLimits,
    ErrorCode,
    hello,
)
from crucible._daemon.server import DaemonServer
from crucible._protocol import Stats

from .test_daemon_support import WAIT_S, Raw, Remote, daemon, fast_core, until

_SOURCE = Source("probe", SourceType.API)
_BACKOFF = Backoff(attempts=5, base_s=0.01, max_s=0.05)
_n = 0


def ev(kind: Kind = Kind.RECORD_CREATED, **kw: Any) -> Event:
    global _n
    _n += 1
    kw.setdefault("payload", b"p" * 32)
    return Event(id=f"b{_n}", kind=kind, source=_SOURCE, **kw)


def run(coro_fn: Callable[[], Awaitable[None]]) -> None:
    async def bounded() -> None:
        async with asyncio.timeout(60):
            await coro_fn()

    asyncio.run(bounded())


class Bystander:
    """A producer publishing a small batch every few milliseconds to its own service."""

    def __init__(self, server: DaemonServer, service: Remote, kind: Kind) -> None:
        self.service = service
        self.kind = kind
        self.host = ServiceClient(server.path, backoff=_BACKOFF, reconnect=False)
        self.producer = Producer(server.path, backoff=_BACKOFF)
        self.admin = AdminClient(server.path, backoff=_BACKOFF)
        self.accepted: list[str] = []
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.host.add(self.service)
        self._task = asyncio.get_running_loop().create_task(self._publish())

    async def _publish(self) -> None:
        while not self._stop.is_set():
            batch = [ev(self.kind) for _ in range(5)]
            verdicts = await self.producer.publish_many(batch)
            self.accepted += [e.id for e, v in zip(batch, verdicts, strict=True) if v is None]
            await asyncio.sleep(0.01)

    async def progress(self, events: int = 20) -> None:
        """Return once ``events`` more of the bystander's events were handled."""
        target = len(self.service.seen) + events
        await until(lambda: len(self.service.seen) >= target)

    async def finish(self) -> Stats:
        """Stop publishing, settle, and check the bystander's events and the accounting."""
        self._stop.set()
        assert self._task is not None
        await self._task
        stats = await self.admin.settle(WAIT_S)
        assert stats.balanced and stats.in_flight == 0, stats
        letters = {d["id"] for d in await self.admin.dead_letters(100_000)}
        seen = set(self.service.seen)
        assert self.accepted, "the bystander published nothing"
        assert [e for e in self.accepted if e not in seen and e not in letters] == []  # lost
        for client in (self.producer, self.host, self.admin):
            await client.close()
        return stats


@asynccontextmanager
async def beside(
    server: DaemonServer, service: Remote | None = None, kind: Kind = Kind.RECORD_CREATED
) -> AsyncIterator[Bystander]:
    bystander = Bystander(server, service or Remote("database-0"), kind)
    await bystander.start()
    try:
        yield bystander
    finally:
        bystander._stop.set()
        if bystander._task is not None and not bystander._task.done():
            bystander._task.cancel()
            with contextlib.suppress(BaseException):
                await bystander._task
        for client in (bystander.producer, bystander.host, bystander.admin):
            await client.close()


def _ring_ids(host: ServiceClient) -> set[str]:
    """The ids of the events a service client keeps for later DELIVERs to name."""
    kept = (e for e in host._events if e is not None)
    return {e[0] if isinstance(e, tuple) else e.id for e in kept}


# ------------------------------------------------------- a map payload's declared size


def test_a_map_payloads_size_is_measured_not_taken_from_the_producer() -> None:
    async def main() -> None:
        async with (
            daemon(core=fast_core(max_event_bytes=1000)) as server,
            beside(server) as bystander,
        ):
            raw = await Raw.open(server.path, "producer")
            base = event_fields(ev())  # to the bystander's service

            def fields(event_id: str, payload: object, declared: int) -> tuple[Any, ...]:
                return (event_id, *base[1:4], payload, *base[5:13], declared, base[14])

            big = {"pad": "x" * 5000}  # about 5 KB, declared 0
            small = {"pad": "x" * 100}  # about 100 bytes, declared a gigabyte
            raw.send([PUBLISH, 1, [fields("big", big, 0), fields("small", small, 10**9)]])
            kind, last, rejections = await raw.next_frame()
            assert (kind, last) == (RESULT, 2)
            # The declared size is ignored: the big map is over the limit, the small one not.
            assert [(seq, reason) for seq, reason, _ in rejections] == [(1, "oversized")]
            assert str(len(encode_body(big))) in rejections[0][2]
            await bystander.progress()
            await raw.close()
            stats = await bystander.finish()
            assert stats.rejected == 1

    run(main)


def test_a_service_client_does_not_keep_a_large_map_declared_small() -> None:
    async def main() -> None:
        got: list[Event] = []

        async def handler(event: Event) -> None:
            got.append(event)

        async with daemon() as server, beside(server) as bystander:
            host = ServiceClient(server.path, backoff=_BACKOFF, reconnect=False)
            await host.subscribe("file-0", "file", handler)
            raw = await Raw.open(server.path, "producer")
            payload = {"pad": "y" * (4 * CACHE_EVENT_BYTES)}
            fields = list(event_fields(Event(id="large", kind=Kind.FILE_CREATED, source=_SOURCE)))
            fields[4], fields[13] = payload, 0
            raw.send([PUBLISH, 1, [fields]])
            assert (await raw.next_frame())[2] == ()  # accepted
            await until(lambda: len(got) == 1)
            # The service sees the daemon's measure, and its client did not keep the event.
            assert got[0].size_bytes == len(encode_body(payload)) > CACHE_EVENT_BYTES
            assert "large" not in _ring_ids(host)
            await bystander.progress()
            await raw.close()
            await host.close()
            stats = await bystander.finish()
            assert stats.delivered == len(bystander.accepted) + 1

    run(main)


# ------------------------------------------------------- a frame trickled byte by byte


def test_a_frame_trickled_byte_by_byte_is_cut_off_at_its_deadline() -> None:
    async def main() -> None:
        # Each byte comes well within read_timeout_s: only the whole frame's deadline binds.
        limits = DaemonLimits(read_timeout_s=2.0, frame_timeout_s=1.0)
        async with daemon(limits=limits) as server, beside(server) as bystander:
            raw = await Raw.open(server.path, "producer")
            t0 = time.monotonic()
            raw.send_bytes(struct.pack(">I", 2 << 20) + b"z" * (1 << 20))

            async def trickle() -> None:
                while True:
                    await asyncio.sleep(0.1)
                    raw.send_bytes(b"z")

            dripping = asyncio.get_running_loop().create_task(trickle())
            try:
                await bystander.progress()  # others go on while the frame is held
                message = await raw.expect_error(ErrorCode.FRAME_TIMEOUT, timeout_s=6.0)
            finally:
                dripping.cancel()
                with contextlib.suppress(asyncio.CancelledError, OSError):
                    await dripping
            assert time.monotonic() - t0 >= limits.frame_timeout_s
            assert "frame_timeout_s=1.0" in message
            assert server.protocol_errors == 1
            await raw.close()
            await bystander.finish()

    run(main)


def test_time_the_daemon_is_not_reading_does_not_count_against_a_frame() -> None:
    async def main() -> None:
        # One delivery at a time and a queue of one, waiting for room: a producer's frames
        # pile up until the daemon stops reading from it (backlog), its next frame half in.
        gated = Remote("file-0")
        gated.gate = asyncio.Event()
        core = fast_core(max_queue=1, service_concurrency=1, backpressure="wait")
        limits = DaemonLimits(read_timeout_s=1.0, frame_timeout_s=0.5)
        async with daemon(core=core, limits=limits) as server, beside(server) as bystander:
            host = ServiceClient(server.path, backoff=_BACKOFF, reconnect=False)
            await host.add(gated)
            raw = await Raw.open(server.path, "producer")
            frames = [
                encode_frame([PUBLISH, seq, [event_fields(ev(Kind.FILE_CREATED))]])
                for seq in range(1, 8)
            ]
            raw.send_bytes(b"".join(frames[:6]) + frames[6][:20])
            await until(lambda: any("backlog" in c._paused for c in server.conns))
            (held,) = [c for c in server.conns if c._paused]
            assert held.decoder.buffered == 20  # the seventh frame's start
            await asyncio.sleep(3 * limits.frame_timeout_s)  # held up by the daemon
            gated.gate.set()
            await until(lambda: not held._paused)  # reading again: the frame's clock runs
            raw.send_bytes(frames[6][20:])
            results = [await raw.next_frame() for _ in range(7)]
            assert results == [(RESULT, seq, ()) for seq in range(1, 8)]
            await bystander.progress()
            await until(lambda: len(gated.seen) == 7)
            assert server.protocol_errors == 0
            await raw.close()
            await host.close()
            stats = await bystander.finish()
            assert stats.delivered == len(bystander.accepted) + 7

    run(main)


# ------------------------------------------------------- a large frame before HELLO


def test_a_frame_before_hello_is_limited_to_max_hello_bytes() -> None:
    async def main() -> None:
        async with daemon() as server, beside(server) as bystander:
            raw = await Raw.open(server.path)
            raw.send_bytes(struct.pack(">I", (16 << 20) - 1) + b"q" * 65536)
            # Refused at the length, long before the handshake timeout would close it.
            message = await raw.expect_error(ErrorCode.HANDSHAKE, timeout_s=2.0)
            assert "max_hello_bytes=4096" in message
            # What a connection may make the daemon hold before its HELLO: 4 KiB.
            holders = [await Raw.open(server.path) for _ in range(8)]
            for h in holders:
                h.send_bytes(struct.pack(">I", 4000) + b"q" * 3000)
            await until(lambda: sum(c.decoder.buffered for c in server.conns) >= 8 * 3004)
            assert max(c.decoder.buffered for c in server.conns) <= 4 + 4096
            await bystander.progress()
            # Only the first frame: one pipelined after the HELLO may be full size.
            big = event_fields(ev(Kind.RECORD_CREATED, payload=b"B" * 20_000))
            piped = await Raw.open(server.path)
            piped.send_bytes(
                encode_frame(hello("producer", "p")) + encode_frame([PUBLISH, 1, [big]])
            )
            assert (await piped.next_frame())[0] == WELCOME
            assert (await piped.next_frame()) == (RESULT, 1, ())
            for c in (raw, piped, *holders):
                await c.close()
            stats = await bystander.finish()
            # The refused frame, and the holders that hung up mid-frame (truncated).
            assert stats.extra["protocol_errors"] == 1 + len(holders)

    run(main)


# ------------------------------------------------------- connections left idle


def test_idle_producer_and_admin_connections_are_closed_and_free_their_slots() -> None:
    async def main() -> None:
        # The bystander holds two connections (its admin connects at the end).
        limits = DaemonLimits(idle_timeout_s=0.3, max_connections=6)
        async with daemon(limits=limits) as server, beside(server) as bystander:
            t0 = time.monotonic()
            idle = [
                await Raw.open(server.path, "producer"),
                await Raw.open(server.path, "admin"),
                await Raw.open(server.path, "service"),  # no service registered
            ]
            registered = await Raw.open(server.path, "service")
            registered.send([REGISTER, 1, "file-0", "file", 1.0])
            assert (await registered.next_frame()) == (REGISTERED, 1, None)
            full = await Raw.open(server.path)
            await full.expect_error(ErrorCode.TOO_MANY_CONNECTIONS)
            for raw in idle:
                await raw.expect_error(ErrorCode.IDLE_TIMEOUT)
            assert time.monotonic() - t0 >= limits.idle_timeout_s
            assert server.stats().extra["idle_closed"] == 3
            assert server.protocol_errors == 1  # the refused connection: idleness is no error
            await until(lambda: len(server.conns) == 3)
            again = await Raw.open(server.path, "admin")  # a slot is free again
            await bystander.progress()
            # Connections with a service registered stay, however long they are silent:
            # their deliveries are governed by the event timeout, their health by checks.
            await asyncio.sleep(3 * limits.idle_timeout_s)
            assert sum(1 for c in server.conns if c.services) == 2
            assert not registered.reader.at_eof() and bystander.host.connected
            # A client whose connection was closed for idleness reconnects when next used.
            producer = Producer(server.path, backoff=_BACKOFF)
            assert await producer.publish(ev()) is None
            await until(lambda: not producer.connected)
            assert await producer.publish(ev()) is None
            await producer.close()
            for raw in (*idle, registered, again, full):
                await raw.close()
            stats = await bystander.finish()
            assert stats.delivered == len(bystander.accepted) + 2

    run(main)


# ------------------------------------------------------- a service that stops reading


def test_a_service_that_stops_reading_is_cut_off_and_its_deliveries_fail_over() -> None:
    async def main() -> None:
        # A connection may be sent at most service_concurrency deliveries per service at a
        # time, so a reader's burst is bounded: 16 events of 16 KiB for the replica, well
        # under the 1 MiB cap. The stuck connection registered eight services and reads
        # nothing: eight times that piles up. The event timeout is long, so only the cap
        # can free what it holds.
        limits = DaemonLimits(max_frame_bytes=65536, max_output_bytes=1 << 20)
        core = fast_core(event_timeout_s=60.0, service_concurrency=16, max_retries=5)
        replica = Remote("file-1")
        async with (
            daemon(core=core, limits=limits) as server,
            beside(server, replica, Kind.FILE_CREATED) as bystander,
        ):
            stuck = await Raw.open(server.path, "service")
            names = [f"file-s{i}" for i in range(8)]
            for sid, name in enumerate(names):
                stuck.send([REGISTER, sid, name, "file", 1.0])
            replies: list[Any] = []
            while len(replies) < len(names):  # (the bystander's deliveries come in between)
                frame = await stuck.next_frame()
                if frame[0] == REGISTERED:
                    replies.append(frame)
            assert all(error is None for _, _, error in replies)
            # From here on it reads nothing.
            producer = Producer(server.path, backoff=_BACKOFF)
            events = [ev(Kind.FILE_CREATED, payload=b"S" * 16384) for _ in range(256)]
            assert await producer.publish_many(events) == [None] * len(events)
            services = server.core.services
            await until(lambda: not any(name in services() for name in names))
            await bystander.progress()
            stats = await bystander.finish()
            ids = {e.id for e in events}
            assert ids <= set(replica.seen)  # every one of them, through the replica
            assert stats.delivered == len(ids) + len(bystander.accepted)
            assert stats.retried >= 1 and stats.dead_lettered == 0
            assert stats.extra["protocol_errors"] == 1
            with contextlib.suppress(ConnectionError):
                async with asyncio.timeout(WAIT_S):
                    while await stuck.reader.read(1 << 20):
                        pass  # what the daemon sent before it gave up, then the end
            await producer.close()
            await stuck.close()

    run(main)
