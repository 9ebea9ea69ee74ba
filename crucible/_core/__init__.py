"""CrucibleCore, the centralized event router, and its configuration and routing types."""

from crucible._core.balancing import (
    HealthBased,
    LeastConnections,
    PriorityBased,
    RoundRobin,
    WeightedRandom,
)
from crucible._core.breaker import BreakerState, CircuitBreaker
from crucible._core.config import (
    BACKPRESSURE_MODES,
    HEALTH_BASED,
    LEAST_CONNECTIONS,
    PRIORITY_BASED,
    ROUND_ROBIN,
    STRATEGIES,
    WEIGHTED_RANDOM,
    CoreConfig,
    Strategy,
)
from crucible._core.core import CrucibleCore, DeadLetter, DeadReason
from crucible._core.registry import CoreMetrics, ServiceHealth, ServiceMetrics
from crucible._core.rules import Rule, default_rules

__all__ = [
    "BACKPRESSURE_MODES",
    "HEALTH_BASED",
    "LEAST_CONNECTIONS",
    "PRIORITY_BASED",
    "ROUND_ROBIN",
    "STRATEGIES",
    "WEIGHTED_RANDOM",
    "BreakerState",
    "CircuitBreaker",
    "CoreConfig",
    "CoreMetrics",
    "CrucibleCore",
    "DeadLetter",
    "DeadReason",
    "HealthBased",
    "LeastConnections",
    "PriorityBased",
    "RoundRobin",
    "Rule",
    "ServiceHealth",
    "ServiceMetrics",
    "Strategy",
    "WeightedRandom",
    "default_rules",
]
