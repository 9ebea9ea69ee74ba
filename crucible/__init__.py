"""Crucible: event coordination with two architectures, DataCoordinator and CrucibleCore."""

from crucible._core import CoreConfig, CrucibleCore, DeadLetter, Rule
from crucible._data import DataConfig, DataCoordinator
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
from crucible._loader import load_coordinator
from crucible._protocol import (
    DEFAULT_WIRING,
    ROLES,
    Coordinator,
    CoordinatorError,
    Service,
    SettleTimeout,
    Stats,
)
from crucible._reference import ReferenceCoordinator
from crucible._services import FaultSpec, InjectedFault, ServiceCrashed, SimulatedService, WorkSpec

__all__ = [
    "DEFAULT_MAX_EVENT_BYTES",
    "DEFAULT_WIRING",
    "ROLES",
    "Category",
    "Coordinator",
    "CoordinatorError",
    "CoreConfig",
    "CrucibleCore",
    "DataConfig",
    "DataCoordinator",
    "DeadLetter",
    "Event",
    "FaultSpec",
    "InjectedFault",
    "Kind",
    "Priority",
    "ReferenceCoordinator",
    "RejectReason",
    "Rejected",
    "Rule",
    "Service",
    "ServiceCrashed",
    "SettleTimeout",
    "SimulatedService",
    "Source",
    "SourceType",
    "Stats",
    "WorkSpec",
    "load_coordinator",
    "validate",
]
