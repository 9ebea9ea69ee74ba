"""Finding a coordinator by name: a built-in, ``module:factory``, or an entry point.

``load_coordinator(spec)`` makes one (``crucible.load_coordinator`` is the same function);
``resolve_factory(spec)`` only finds its factory, importing its modules.
``BUILTIN_COORDINATORS`` are the built-ins the benchmarks measure by default,
``DAEMON_COORDINATORS`` the built-ins that run the core in a daemon process.

The implementation lives in ``crucible._loader``; this module is the name to import.
"""

from crucible._loader import (
    BUILTIN_COORDINATORS,
    DAEMON_COORDINATORS,
    ENTRY_POINT_GROUP,
    load_coordinator,
    resolve_factory,
)

__all__ = [
    "BUILTIN_COORDINATORS",
    "DAEMON_COORDINATORS",
    "ENTRY_POINT_GROUP",
    "load_coordinator",
    "resolve_factory",
]
