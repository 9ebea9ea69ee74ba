"""The daemon: CrucibleCore in its own process, its clients, and its coordinator.

- ``serve`` / ``DaemonServer``: the daemon (``python -m crucible daemon --socket PATH``).
- ``Producer``, ``ServiceClient``, ``AdminClient``: its clients, each with a ``Backoff`` for
  connecting.
- ``CoreDaemon``: the ``core-daemon`` coordinator (a daemon process and its clients).

In memory: a ``DaemonServer`` started with ``start_in_memory()`` takes clients connected
with ``await client.connect_in_memory(server)`` in the same event loop, every frame going
through the codec and the server as over the socket (``MemoryTransport`` carries them).
``perf.tools.daemon_pipeline`` measures the daemon's path so, in one process.

The implementation lives in ``crucible._daemon``; this module is the name to import.
"""

from crucible._daemon import (
    DAEMON_SERVICE_CONCURRENCY,
    PROTOCOL_VERSION,
    AdminClient,
    Backoff,
    ConnectionLost,
    CoreDaemon,
    DaemonError,
    DaemonLimits,
    DaemonServer,
    DaemonUnavailable,
    ErrorCode,
    Handler,
    Producer,
    ProtocolError,
    RemoteError,
    RemoteHandlerError,
    ServiceClient,
    ServiceDisconnected,
    StopReport,
    serve,
)
from crucible._daemon.memory import MemoryTransport

__all__ = [
    "DAEMON_SERVICE_CONCURRENCY",
    "PROTOCOL_VERSION",
    "AdminClient",
    "Backoff",
    "ConnectionLost",
    "CoreDaemon",
    "DaemonError",
    "DaemonLimits",
    "DaemonServer",
    "DaemonUnavailable",
    "ErrorCode",
    "Handler",
    "MemoryTransport",
    "Producer",
    "ProtocolError",
    "RemoteError",
    "RemoteHandlerError",
    "ServiceClient",
    "ServiceDisconnected",
    "StopReport",
    "serve",
]
