"""The daemon in this process: handshake, bad frames, limits, socket safety, and the router's
semantics through the socket (retries, dead letters, disconnects, timeouts, stop)."""

from __future__ import annotations

import asyncio
import os
import socket
import stat
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest

from crucible import Event, Kind, RejectReason, Source, SourceType
from crucible._daemon.client import AdminClient, Backoff, Producer, ServiceClient
from crucible._daemon.codec import encode_frame, event_fields
from crucible._daemon.protocol import (
    ACK,
    ERROR,
    HELLO,
    PROTOCOL_VERSION,
    PUBLISH,
    RESULT,
    DaemonError,
    DaemonLimits,
    DaemonUnavailable,
    ErrorCode,
    RemoteError,
    hello,
)
from crucible._daemon.server import DaemonServer, RemoteHandlerError, bind_socket

from .test_daemon_support import Raw, Remote, daemon, fast_core, short_dir, until

_SOURCE = Source("test", SourceType.FILE_WATCHER)
_n = 0


def ev(kind: Kind = Kind.FILE_CREATED, *, event_id: str | None = None, **kw: object) -> Event:
    global _n
    _n += 1
    return Event(id=event_id or f"e{_n}", kind=kind, source=_SOURCE, payload=b"x" * 32, **kw)  # type: ignore[arg-type]


def run(coro_fn: Callable[[], Awaitable[None]]) -> None:
    async def bounded() -> None:
        async with asyncio.timeout(30):
            await coro_fn()

    asyncio.run(bounded())


@asynccontextmanager
async def clients(
    server: DaemonServer, *services: Remote
) -> AsyncIterator[tuple[Producer, ServiceClient, AdminClient]]:
    backoff = Backoff(attempts=3, base_s=0.01, max_s=0.05)
    producer = Producer(server.path, backoff=backoff)
    host = ServiceClient(server.path, backoff=backoff, reconnect=False)
    admin = AdminClient(server.path, backoff=backoff)
    try:
        for service in services:
            await host.add(service)
        yield producer, host, admin
    finally:
        for client in (producer, host, admin):
            await client.close()


# ---------------------------------------------------------------------------- handshake


def test_handshake_welcomes_with_the_limits() -> None:
    async def main() -> None:
        limits = DaemonLimits(max_frame_bytes=65536, max_events_per_frame=10)
        async with daemon(limits=limits) as server:
            raw = await Raw.open(server.path)
            raw.send(hello("producer", "t"))
            kind, version, info = await raw.next_frame()
            assert (kind, version) == (2, PROTOCOL_VERSION)
            assert info["max_frame_bytes"] == 65536 and info["max_events_per_frame"] == 10
            assert info["pid"] == os.getpid()
            await raw.close()

    run(main)


@pytest.mark.parametrize(
    ("first_frame", "code"),
    [
        ([HELLO, "crucible", PROTOCOL_VERSION + 1, "producer", "t"], ErrorCode.VERSION),
        ([HELLO, "not-crucible", PROTOCOL_VERSION, "producer", "t"], ErrorCode.HANDSHAKE),
        ([HELLO, "crucible", PROTOCOL_VERSION, "superuser", "t"], ErrorCode.HANDSHAKE),
        ([PUBLISH, 1, []], ErrorCode.HANDSHAKE),
    ],
)
def test_a_wrong_handshake_gets_an_error_and_is_closed(
    first_frame: list[object], code: str
) -> None:
    async def main() -> None:
        async with daemon() as server:
            raw = await Raw.open(server.path)
            raw.send(first_frame)
            await raw.expect_error(code)
            assert server.protocol_errors == 1

    run(main)


def test_a_silent_connection_is_closed_after_the_handshake_timeout() -> None:
    async def main() -> None:
        async with daemon(limits=DaemonLimits(handshake_timeout_s=0.1)) as server:
            raw = await Raw.open(server.path)
            await raw.expect_error(ErrorCode.HANDSHAKE_TIMEOUT)

    run(main)


def test_a_refused_handshake_is_not_retried_by_clients() -> None:
    async def main() -> None:
        connections = 0

        async def old_daemon(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal connections
            connections += 1
            await reader.read(100)
            writer.write(encode_frame([ERROR, ErrorCode.VERSION, "this daemon speaks 0"]))
            writer.close()

        with short_dir() as tmp:
            path = os.path.join(tmp, "old.sock")
            server = await asyncio.start_unix_server(old_daemon, path)
            try:
                producer = Producer(path, backoff=Backoff(attempts=5, base_s=0.01))
                with pytest.raises(RemoteError, match="speaks 0"):
                    await producer.connect()
                assert connections == 1
            finally:
                server.close()
                await server.wait_closed()

    run(main)


# ---------------------------------------------------------------------------- bad frames


async def _bad(path: str, payload: Callable[[Raw], Awaitable[None]], code: str) -> None:
    raw = await Raw.open(path, "producer")
    await payload(raw)
    await raw.expect_error(code)


def test_bad_frames_close_only_their_connection() -> None:
    async def oversized(raw: Raw) -> None:
        raw.send_bytes(struct.pack(">I", 1 << 20) + b"x" * 100)

    async def too_many_events(raw: Raw) -> None:
        fields = event_fields(ev())
        raw.send([PUBLISH, 1, [fields] * 5])

    async def not_msgpack(raw: Raw) -> None:
        raw.send_bytes(struct.pack(">I", 3) + b"\xc1\xc1\xc1")

    async def truncated(raw: Raw) -> None:
        raw.send_bytes(struct.pack(">I", 100) + b"x" * 10)
        raw.writer.write_eof()

    async def stalled(raw: Raw) -> None:
        raw.send_bytes(struct.pack(">I", 100) + b"x" * 10)

    async def wrong_role(raw: Raw) -> None:
        raw.send([ACK, [1], []])

    async def wrong_seq(raw: Raw) -> None:
        raw.send([PUBLISH, 5, []])

    async def wrong_shape(raw: Raw) -> None:
        raw.send([PUBLISH, "one", 2, 3])

    async def main() -> None:
        limits = DaemonLimits(max_frame_bytes=65536, max_events_per_frame=4, read_timeout_s=0.2)
        service = Remote("file-0")
        async with daemon(limits=limits) as server, clients(server, service) as (p, _, admin):
            cases = [
                (oversized, ErrorCode.OVERSIZED),
                (too_many_events, ErrorCode.OVERSIZED),
                (not_msgpack, ErrorCode.MALFORMED),
                (truncated, ErrorCode.TRUNCATED),
                (stalled, ErrorCode.STALLED),
                (wrong_role, ErrorCode.MALFORMED),
                (wrong_seq, ErrorCode.MALFORMED),
                (wrong_shape, ErrorCode.MALFORMED),
            ]
            for payload, code in cases:
                assert await p.publish(ev()) is None  # the good pair keeps working
                await _bad(server.path, payload, code)
            assert await p.publish(ev()) is None
            stats = await admin.settle(5)
            assert stats.delivered == len(cases) + 1 and stats.balanced
            assert stats.extra["protocol_errors"] == len(cases)
            assert len(service.seen) == len(cases) + 1

    run(main)


def test_max_connections() -> None:
    async def main() -> None:
        async with daemon(limits=DaemonLimits(max_connections=2)) as server:
            first = await Raw.open(server.path, "admin")
            second = await Raw.open(server.path, "admin")
            third = await Raw.open(server.path)
            await third.expect_error(ErrorCode.TOO_MANY_CONNECTIONS)
            await first.close()
            await until(lambda: len(server.conns) == 1)
            fourth = await Raw.open(server.path, "admin")  # room again
            await second.close()
            await fourth.close()

    run(main)


def test_an_undecodable_event_is_rejected_and_counted_not_fatal() -> None:
    async def main() -> None:
        async with daemon() as server, clients(server, Remote("file-0")) as (_, _, admin):
            raw = await Raw.open(server.path, "producer")
            good = event_fields(ev())
            bad = (*good[:1], "filesystem.no_such_kind", *good[2:])
            raw.send([PUBLISH, 1, [good, bad, ("short",)]])
            kind, last, rejections = await raw.next_frame()
            assert (kind, last) == (RESULT, 3)
            assert [(seq, reason) for seq, reason, _ in rejections] == [
                (2, "malformed"),
                (3, "malformed"),
            ]
            stats = await admin.settle(5)
            assert (stats.published, stats.delivered, stats.rejected) == (3, 1, 2)
            assert stats.extra["wire_rejected"] == 2
            await raw.close()

    run(main)


# ---------------------------------------------------------------------------- the socket


def test_the_socket_is_private_and_only_a_stale_one_is_replaced() -> None:
    with short_dir() as tmp:
        path = os.path.join(tmp, "s.sock")
        sock, st = bind_socket(path)
        try:
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
            assert stat.S_ISSOCK(st.st_mode)
            with pytest.raises(DaemonError, match="already listening"):
                bind_socket(path)
        finally:
            sock.close()
        # Nobody listens any more: a stale socket, replaced.
        again, _ = bind_socket(path)
        again.close()
        os.unlink(path)
        with open(path, "w") as f:
            f.write("precious")
        with pytest.raises(DaemonError, match="not a socket"):
            bind_socket(path)
        with open(path) as f:
            assert f.read() == "precious"


def test_another_user_cannot_connect_because_of_the_mode() -> None:
    # We cannot switch users here; check what the kernel checks: no permission bits for
    # group and others, owner read/write.
    with short_dir() as tmp:
        path = os.path.join(tmp, "s.sock")
        sock, _ = bind_socket(path)
        try:
            mode = os.stat(path).st_mode
            assert mode & (stat.S_IRWXG | stat.S_IRWXO) == 0
            client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            client.connect(path)  # the owner can
            client.close()
        finally:
            sock.close()


# ---------------------------------------------------------------------------- semantics


def test_events_go_through_with_verdicts_and_balanced_stats() -> None:
    async def main() -> None:
        a, b = Remote("file-0"), Remote("file-1")
        async with daemon() as server, clients(server, a, b) as (producer, _, admin):
            verdicts = await producer.publish_many([ev() for _ in range(20)])
            assert verdicts == [None] * 20
            dup = ev()
            assert await producer.publish(dup) is None
            again = await producer.publish(ev(event_id=dup.id))
            assert again is not None and again.reason is RejectReason.DUPLICATE
            no_route = await producer.publish(ev(Kind.RECORD_CREATED))  # no database role
            assert no_route is not None and no_route.reason is RejectReason.NO_ROUTE
            stats = await admin.settle(5)
            assert stats.published == 23 and stats.delivered == 21 and stats.rejected == 2
            assert stats.balanced and stats.in_flight == 0
            assert len(a.seen) + len(b.seen) == 21 and a.seen and b.seen  # round robin
            assert producer.accepted == 21 and producer.rejected == 2

    run(main)


def test_a_remote_service_handles_one_event_when_awaited_directly() -> None:
    # The core sends batch calls; handle is the one-event form of the same path.
    async def main() -> None:
        good, bad = Remote("file-0"), Remote("file-1", fail=True)
        async with daemon() as server, clients(server, good, bad):
            await until(lambda: len(server.core.services()) == 2)
            remote = {name: server.core._slots[name].service for name in ("file-0", "file-1")}
            event = ev(event_id="direct")
            await remote["file-0"].handle(event)  # returns once acked
            assert good.seen == ["direct"]
            with pytest.raises(RemoteHandlerError, match="file-1 refused direct"):
                await remote["file-1"].handle(event)

    run(main)


def test_a_failing_service_is_retried_elsewhere_and_then_dead_lettered() -> None:
    async def main() -> None:
        bad, good = Remote("file-0", fail=True), Remote("file-1")
        core = fast_core(max_retries=20, breaker_threshold=3)
        async with daemon(core=core) as server, clients(server, bad, good) as (p, host, admin):
            events = [ev(max_retries=20) for _ in range(10)]
            assert await p.publish_many(events) == [None] * 10
            stats = await admin.settle(5)
            assert stats.delivered == 10 and stats.retried > 0 and stats.balanced
            assert stats.extra["handler_failures"] > 0 and stats.extra["breaker_opens"] >= 1
            await host.unsubscribe("file-1")  # also seen by the daemon
            assert "file-1" not in await admin.health()
        async with daemon() as server, clients(server, Remote("file-0", fail=True)) as clis:
            p, _, admin = clis
            assert await p.publish(ev(max_retries=1)) is None
            stats = await admin.settle(5)
            assert stats.dead_lettered == 1 and stats.retried == 1 and stats.balanced
            (letter,) = await admin.dead_letters()
            assert letter["reason"] == "error" and "RuntimeError" in letter["error"]
            assert letter["service"] == "file-0" and letter["attempts"] == 2

    run(main)


def test_a_service_that_disconnects_mid_event_loses_nothing() -> None:
    async def main() -> None:
        stuck, spare = Remote("file-0"), Remote("file-1")
        stuck.gate = asyncio.Event()  # never set: holds what it gets
        async with daemon() as server, clients(server, spare) as (producer, _, admin):
            host = ServiceClient(server.path, reconnect=False)
            await host.add(stuck)
            assert await producer.publish_many([ev() for _ in range(10)]) == [None] * 10
            await until(lambda: len(stuck.started) > 0)
            link = host._link
            assert link is not None and link.transport is not None
            link.transport.abort()  # the process "dies" with events in hand
            stats = await admin.settle(5)
            assert stats.delivered == 10 and stats.balanced and stats.retried >= 1
            assert len(spare.seen) == 10
            health = await admin.health()
            assert "file-0" not in health  # unregistered
            # With no replica left, accepted events are dead-lettered, not lost.
            stuck2 = Remote("file-2")
            stuck2.gate = asyncio.Event()
            host2 = ServiceClient(server.path, reconnect=False)
            await host2.add(stuck2)
            await host_close_spare(server, spare)
            assert await producer.publish(ev()) is None
            await until(lambda: len(stuck2.started) == 1)
            assert host2._link is not None and host2._link.transport is not None
            host2._link.transport.abort()
            stats = await admin.settle(5)
            assert stats.dead_lettered == 1 and stats.balanced
            letters = await admin.dead_letters()
            assert letters[-1]["reason"] in ("unregistered", "error")
            await host.close()
            await host2.close()

    async def host_close_spare(server: DaemonServer, spare: Remote) -> None:
        for conn in list(server.conns):
            if any(s.name == spare.name for s in conn.services.values()):
                assert conn.transport is not None
                conn.transport.abort()
        await until(lambda: spare.name not in server.core.services())

    run(main)


def test_a_call_over_the_event_timeout_is_cancelled_on_the_service() -> None:
    async def main() -> None:
        slow = Remote("file-0")
        slow.gate = asyncio.Event()
        core = fast_core(event_timeout_s=0.1, max_retries=0)
        async with daemon(core=core) as server, clients(server, slow) as (producer, _, admin):
            assert await producer.publish(ev(max_retries=0)) is None
            stats = await admin.settle(5)
            assert stats.dead_lettered == 1 and stats.extra["timeouts"] == 1
            await until(lambda: slow.cancelled == 1)  # the CANCEL reached the handler
            (letter,) = await admin.dead_letters()
            assert letter["reason"] == "timeout"

    run(main)


def test_a_suspended_handler_holds_up_no_other_delivery_and_is_acked_later() -> None:
    # Handlers run one after another in place; one that suspends goes on in a task and the
    # rest do not wait for it. Its ack comes after the others' ACK frames went out.
    async def main() -> None:
        slow, fast = Remote("file-0"), Remote("file-1")
        slow.gate = asyncio.Event()
        async with daemon() as server, clients(server, slow, fast) as (producer, _, admin):
            events = [ev(event_id="s1", targets=("file-0",))]
            events += [ev(event_id=f"f{i}", targets=("file-1",)) for i in range(20)]
            events += [ev(event_id="s2", targets=("file-0",))]
            assert await producer.publish_many(events) == [None] * 22
            await until(lambda: len(fast.seen) == 20 and len(slow.started) == 2)
            stats = await admin.stats()
            assert stats.delivered == 20 and stats.in_flight == 2 and slow.seen == []
            slow.gate.set()
            stats = await admin.settle(5)
            assert stats.delivered == 22 and stats.balanced
            assert sorted(slow.seen) == ["s1", "s2"]

    run(main)


def test_a_handler_that_fails_after_suspending_is_a_nack() -> None:
    async def main() -> None:
        late = Remote("file-0", fail=True)
        late.gate = asyncio.Event()
        async with (
            daemon(core=fast_core(max_retries=0)) as server,
            clients(server, late) as (
                producer,
                _,
                admin,
            ),
        ):
            assert await producer.publish(ev(event_id="x", targets=("file-0",))) is None
            await until(lambda: late.started == ["x"])
            late.gate.set()
            stats = await admin.settle(5)
            assert stats.dead_lettered == 1 and stats.delivered == 0 and stats.balanced
            (letter,) = await admin.dead_letters()
            assert "file-0 refused x" in letter["error"]

    run(main)


def test_backpressure_reject_and_wait_reach_the_producer() -> None:
    async def main() -> None:
        gated = Remote("file-0")
        gated.gate = asyncio.Event()
        core = fast_core(max_queue=1, service_concurrency=1, backpressure="reject")
        async with daemon(core=core) as server, clients(server, gated) as (producer, _, admin):
            verdicts = await producer.publish_many([ev() for _ in range(5)])
            reasons = [v.reason if v else None for v in verdicts]
            assert reasons[0] is None  # queued (max_queue=1): the rest find it full
            assert set(reasons[1:]) == {RejectReason.BACKPRESSURE}
            gated.gate.set()
            stats = await admin.settle(5)
            assert stats.delivered == 1 and stats.rejected == 4 and stats.balanced

        gated = Remote("file-0")
        gated.gate = asyncio.Event()
        core = fast_core(max_queue=1, service_concurrency=1, backpressure="wait")
        async with daemon(core=core) as server, clients(server, gated) as (producer, _, admin):
            publishing = asyncio.gather(producer.publish_many([ev() for _ in range(5)]))
            await until(lambda: len(gated.started) == 1)
            await asyncio.sleep(0.05)
            assert not publishing.done()  # waiting for room, as in-process
            gated.gate.set()
            assert list(await publishing) == [[None] * 5]
            stats = await admin.settle(5)
            assert stats.delivered == 5 and stats.balanced

    run(main)


def test_stop_drains_then_reports_what_it_did_not_deliver() -> None:
    async def main() -> None:
        stuck, fine = Remote("file-0"), Remote("database-0")
        stuck.gate = asyncio.Event()
        async with daemon() as server, clients(server, stuck, fine) as (producer, _, admin):
            assert (
                await producer.publish_many([ev(Kind.RECORD_CREATED) for _ in range(3)])
                == [None] * 3
            )
            assert await producer.publish_many([ev() for _ in range(4)]) == [None] * 4
            await until(lambda: len(fine.seen) == 3 and len(stuck.started) >= 1)
            report = await admin.stop(drain_timeout_s=0.2)
            assert report["drained"] is False and report["invariant_holds"] is True
            stats = report["stats"]
            assert stats["delivered"] == 3 and stats["dead_lettered"] == 4
            assert stats["in_flight"] == 0 and report["stopped_in_flight"] == 4
            assert {d["reason"] for d in report["dead_letters"]} == {"stopped"}
            assert not os.path.exists(server.path)
            await until(lambda: not producer.connected)
            verdict = await producer.publish(ev())  # nobody there any more
            assert verdict is not None and verdict.reason is RejectReason.NOT_RUNNING

    run(main)


def test_stop_counts_publishers_that_were_waiting_for_room() -> None:
    async def main() -> None:
        gated = Remote("file-0")
        gated.gate = asyncio.Event()
        core = fast_core(max_queue=1, service_concurrency=1, backpressure="wait")
        async with daemon(core=core) as server, clients(server, gated) as (producer, _, admin):
            publishing = asyncio.gather(producer.publish_many([ev() for _ in range(5)]))
            await until(lambda: len(gated.started) == 1 and bool(server.waiting_publishes))
            report = await admin.stop(drain_timeout_s=0.05)
            ((*_, last),) = await publishing
            assert last is not None and last.reason is RejectReason.NOT_RUNNING
            stats = report["stats"]
            assert report["invariant_holds"] and stats["published"] == 5
            assert stats["dead_lettered"] == report["dead_letters_total"] >= 2
            assert stats["dead_lettered"] + stats["rejected"] == 5

    run(main)


def test_health_reaches_the_daemon() -> None:
    async def main() -> None:
        ok = [True]
        async with daemon(core=fast_core(health_check_interval_s=0.02)) as server:
            host = ServiceClient(server.path, health_interval_s=0.01)
            admin = AdminClient(server.path)

            async def handler(event: Event) -> None:
                pass

            await host.subscribe("file-0", "file", handler, healthy=lambda: ok[0])
            assert (await admin.health())["file-0"]["healthy"] is True
            ok[0] = False
            await until(lambda: not server.core.health()["file-0"].healthy)
            with pytest.raises(RemoteError, match="already registered"):
                other = ServiceClient(server.path)
                try:
                    await other.subscribe("file-0", "file", handler)
                finally:
                    await other.close()
            with pytest.raises(RemoteError, match="unknown op"):
                await admin.request("reboot")
            assert (await admin.ping())["pid"] == os.getpid()
            await host.close()
            await admin.close()

    run(main)


# ---------------------------------------------------------------------------- reconnection


def test_connecting_gives_up_after_the_backoff_with_a_clear_error() -> None:
    async def main() -> None:
        waits: list[float] = []

        async def sleep(seconds: float) -> None:
            waits.append(seconds)

        with short_dir() as tmp:
            producer = Producer(
                os.path.join(tmp, "nobody.sock"), backoff=Backoff(attempts=4, base_s=0.5, max_s=1.0)
            )
            producer._sleep = sleep
            with pytest.raises(DaemonUnavailable, match="4 attempts") as info:
                await producer.connect()
            assert "FileNotFoundError" in str(info.value)
            assert waits == [0.5, 1.0, 1.0]
            verdict = await producer.submit(ev())
            assert verdict is not None and verdict.reason is RejectReason.NOT_RUNNING

    run(main)


def test_a_service_client_reconnects_and_registers_again() -> None:
    async def main() -> None:
        service = Remote("file-0")
        with short_dir() as tmp:
            path = os.path.join(tmp, "d.sock")
            first = DaemonServer(path, core=fast_core())
            await first.start()
            host = ServiceClient(path, backoff=Backoff(attempts=50, base_s=0.01, max_s=0.05))
            await host.add(service)
            await first.request_stop(0)
            second = DaemonServer(path, core=fast_core())
            await second.start()
            try:
                await until(lambda: "file-0" in second.core.services())
                producer = Producer(path)
                assert await producer.publish(ev()) is None
                await second.core.settle(5)
                assert len(service.seen) == 1
                await producer.close()
            finally:
                await host.close()
                await second.request_stop(0)

    run(main)
