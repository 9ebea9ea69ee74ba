"""crucible._daemon.memory: clients connected to a DaemonServer through memory."""

from __future__ import annotations

import asyncio
from pathlib import Path

from crucible import Event, Kind, Source, SourceType
from crucible.daemon import (
    AdminClient,
    Backoff,
    DaemonServer,
    MemoryTransport,
    Producer,
    ServiceClient,
)

from .test_daemon_support import Remote, fast_core


def _events(n: int) -> list[Event]:
    source = Source("test", SourceType.FILE_WATCHER)
    return [
        Event(id=f"m{i}", kind=Kind.FILE_CREATED, source=source, payload=b"x") for i in range(n)
    ]


def test_clients_connected_in_memory_reach_the_server_as_over_its_socket(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        server = DaemonServer(str(tmp_path / "never.sock"), core=fast_core())
        await server.start_in_memory()
        backoff = Backoff(attempts=1)
        producer = Producer(server.path, backoff=backoff)
        host = ServiceClient(server.path, backoff=backoff)
        admin = AdminClient(server.path, backoff=backoff)
        service = Remote("file-0")
        try:
            for client in (producer, host, admin):
                await client.connect_in_memory(server)
                assert client.connected
            await host.add(service)
            assert await producer.publish_many(_events(25)) == [None] * 25
            stats = await admin.settle(5)
            assert stats.delivered == 25 and stats.balanced and stats.in_flight == 0
            assert sorted(service.seen) == sorted(f"m{i}" for i in range(25))
            assert server.stats().extra["connections"] == 3
        finally:
            for client in (producer, host, admin):
                await client.close()
            await server.core.stop()
        assert not (tmp_path / "never.sock").exists()  # no socket was ever made

    asyncio.run(asyncio.wait_for(main(), 30))


class _Peer(asyncio.Protocol):
    def __init__(self) -> None:
        self.reads: list[bytes] = []

    def data_received(self, data: bytes) -> None:
        self.reads.append(data)


def test_a_memory_transport_joins_one_turns_writes_and_passes_them_on_later() -> None:
    async def main() -> None:
        transport = MemoryTransport(asyncio.get_running_loop())
        peer = _Peer()
        transport.peer = peer
        transport.write(b"ab")
        transport.write(bytearray(b"cd"))
        assert peer.reads == []  # not within the writer's turn
        await asyncio.sleep(0)
        assert peer.reads == [b"abcd"]
        assert transport.get_write_buffer_size() == 0 and not transport.is_closing()
        transport.close()
        transport.write(b"lost")
        await asyncio.sleep(0)
        assert peer.reads == [b"abcd"] and transport.is_closing()

    asyncio.run(main())
