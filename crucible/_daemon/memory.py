"""Connections to a daemon through memory: a client and a ``DaemonServer`` in one event
loop, every frame encoded, decoded, routed, delivered and acked as over the socket, without
the socket.

A client connects so with ``await client.connect_in_memory(server)`` (any of ``Producer``,
``ServiceClient``, ``AdminClient``) once the server is started with ``start_in_memory()``.
It is what ``perf.tools.daemon_pipeline`` measures the daemon's path with: one process does
all the work of both ends, without the kernel's part.

Each direction is a ``MemoryTransport``: what is written during one loop iteration reaches
the peer's ``data_received`` joined, on a later iteration, as a socket read would. It never
pushes back (its write buffer is always empty), and closing one end only stops its writes:
neither end is told the connection is lost, so a server connected in memory is finished by
stopping it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from crucible._daemon.client import _Link
from crucible._daemon.server import _Conn

if TYPE_CHECKING:
    from crucible._daemon.client import _Endpoint
    from crucible._daemon.server import DaemonServer

__all__ = ["MemoryTransport", "open_in_memory"]


class MemoryTransport(asyncio.Transport):
    """One direction of an in-memory connection: what is written reaches ``peer``'s
    ``data_received`` on a later loop turn, joined, as a socket read would."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._loop = loop
        self.peer: asyncio.Protocol | None = None
        self._chunks: list[bytes] = []
        self._closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing:
            return
        if not self._chunks:
            self._loop.call_soon(self._pass_on)
        self._chunks.append(bytes(data))

    def _pass_on(self) -> None:
        data = b"".join(self._chunks)
        self._chunks.clear()
        if self.peer is not None and data:
            self.peer.data_received(data)

    def close(self) -> None:
        self._closing = True

    def abort(self) -> None:
        self.close()

    def is_closing(self) -> bool:
        return self._closing

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


def open_in_memory(endpoint: _Endpoint, server: DaemonServer) -> _Link:
    """A new connection of ``endpoint`` to ``server`` through memory, before the handshake
    (the in-memory counterpart of ``_Endpoint._open_transport``)."""
    loop = asyncio.get_running_loop()
    link = _Link(endpoint)
    conn = _Conn(server)
    to_daemon, to_client = MemoryTransport(loop), MemoryTransport(loop)
    to_daemon.peer, to_client.peer = conn, link
    conn.connection_made(to_client)
    link.connection_made(to_daemon)
    return link
