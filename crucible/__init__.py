"""Crucible: event coordination with two architectures, DataCoordinator and CrucibleCore."""

from crucible._events import (
    DEFAULT_MAX_EVENT_BYTES,
    Category,
    Event,
    Kind,
    Priority,
    Rejected,
    RejectReason,
    Source,
    SourceType,
    validate,
)
from crucible._protocol import (
    DEFAULT_WIRING,
    ROLES,
    Coordinator,
    CoordinatorError,
    Service,
    SettleTimeout,
    Stats,
)
from crucible._services import FaultSpec, InjectedFault, ServiceCrashed, SimulatedService, WorkSpec

__all__ = [
    "DEFAULT_MAX_EVENT_BYTES",
    "DEFAULT_WIRING",
    "ROLES",
    "Category",
    "Coordinator",
    "CoordinatorError",
    "Event",
    "FaultSpec",
    "InjectedFault",
    "Kind",
    "Priority",
    "RejectReason",
    "Rejected",
    "Service",
    "ServiceCrashed",
    "SettleTimeout",
    "SimulatedService",
    "Source",
    "SourceType",
    "Stats",
    "WorkSpec",
    "validate",
]
