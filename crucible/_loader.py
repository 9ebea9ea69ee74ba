"""Find a coordinator by name: a built-in, ``module:factory``, or an entry point."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from crucible._protocol import Coordinator, CoordinatorError

__all__ = [
    "BUILTIN_COORDINATORS",
    "DAEMON_COORDINATORS",
    "ENTRY_POINT_GROUP",
    "load_coordinator",
    "resolve_factory",
]

ENTRY_POINT_GROUP = "crucible.coordinators"
BUILTIN_COORDINATORS = ("data", "core", "reference")
# Built in too, but not (yet) among the coordinators the benchmarks measure by default:
# perf.workload.cases.DEFAULT_COORDINATORS is BUILTIN_COORDINATORS. ``core-daemon`` spawns a daemon
# process (crucible._daemon).
DAEMON_COORDINATORS = ("core-daemon",)

_REQUIRED = ("start", "stop", "register", "publish", "settle", "stats")


def _builtin(name: str) -> Callable[..., Any]:
    if name == "data":
        from crucible._data import DataCoordinator

        return DataCoordinator
    if name == "core":
        from crucible._core import CrucibleCore

        return CrucibleCore
    if name == "core-daemon":
        from crucible._daemon.coordinator import CoreDaemon

        return CoreDaemon
    from crucible._reference import ReferenceCoordinator

    return ReferenceCoordinator


def _accepted() -> str:
    names = ", ".join(BUILTIN_COORDINATORS + DAEMON_COORDINATORS)
    return (
        f"accepted: {names}, 'module:factory', or an entry point in the {ENTRY_POINT_GROUP!r} group"
    )


def resolve_factory(spec: str) -> Callable[..., Any]:
    """The callable that builds the coordinator named by ``spec``."""
    if spec in BUILTIN_COORDINATORS or spec in DAEMON_COORDINATORS:
        return _builtin(spec)
    if ":" in spec:
        module_name, _, attr = spec.partition(":")
        if not module_name or not attr:
            raise CoordinatorError(f"coordinator {spec!r} is not 'module:factory'; {_accepted()}")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise CoordinatorError(f"cannot import {module_name!r} for {spec!r}: {exc}") from exc
        factory: Any = module
        for part in attr.split("."):
            try:
                factory = getattr(factory, part)
            except AttributeError:
                raise CoordinatorError(
                    f"module {module_name!r} has no attribute {attr!r} (from {spec!r})"
                ) from None
        if not callable(factory):
            raise CoordinatorError(f"{spec!r} is not callable")
        return factory  # type: ignore[no-any-return]
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == spec:
            loaded = ep.load()
            if not callable(loaded):
                raise CoordinatorError(f"entry point {spec!r} is not callable")
            return loaded  # type: ignore[no-any-return]
    raise CoordinatorError(f"unknown coordinator {spec!r}; {_accepted()}")


def load_coordinator(spec: str, **kwargs: Any) -> Coordinator:
    """Build the coordinator named by ``spec`` and check it implements the protocol."""
    coordinator = resolve_factory(spec)(**kwargs)
    missing = [m for m in _REQUIRED if not callable(getattr(coordinator, m, None))]
    if missing:
        raise CoordinatorError(
            f"{spec!r} built a {type(coordinator).__name__} that lacks {', '.join(missing)}; "
            "a coordinator needs start, stop, register, publish, settle and stats"
        )
    if not isinstance(getattr(coordinator, "name", None), str):
        raise CoordinatorError(f"{spec!r} built a coordinator without a string 'name'")
    return coordinator  # type: ignore[no-any-return]
