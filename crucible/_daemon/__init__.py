"""CrucibleCore as a daemon process on a Unix socket, its client library and coordinator.

- ``serve`` / ``DaemonServer``: the daemon (``python -m crucible daemon --socket PATH``).
- ``Producer``, ``ServiceClient``, ``AdminClient``: clients in other processes.
- ``CoreDaemon``: the ``core-daemon`` coordinator that the gate measures.
- ``protocol``: the frame types and the handshake; ``codec``: the frames themselves.
"""

from crucible._daemon.client import AdminClient, Backoff, Handler, Producer, ServiceClient
from crucible._daemon.coordinator import CoreDaemon
from crucible._daemon.protocol import (
    PROTOCOL_VERSION,
    ConnectionLost,
    DaemonError,
    DaemonLimits,
    DaemonUnavailable,
    ErrorCode,
    ProtocolError,
    RemoteError,
)
from crucible._daemon.server import (
    DAEMON_SERVICE_CONCURRENCY,
    DaemonServer,
    RemoteHandlerError,
    ServiceDisconnected,
    StopReport,
    serve,
)

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
    "Producer",
    "ProtocolError",
    "RemoteError",
    "RemoteHandlerError",
    "ServiceClient",
    "ServiceDisconnected",
    "StopReport",
    "serve",
]
