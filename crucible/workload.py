"""The workload: seeded scenarios, their event streams, services and arrival patterns.

``get_scenario(name)`` (or ``SCENARIOS``, ``custom_scenario``, ``scenario_from_toml``) gives
a ``Scenario``; ``generate_events`` its event stream, the same for the same seed;
``build_services`` its simulated services; ``named_pattern`` an open-loop arrival schedule.

The implementation lives in ``crucible._workload``; this module is the name to import.
"""

from crucible._workload import (
    DEFAULT_MIX,
    DEFAULT_STRUCTURED_SHARE,
    DEFAULT_WORK,
    KIND_WEIGHTS,
    MAX_CHAIN_EVENTS,
    PATTERNS,
    PAYLOAD_POOL_SIZE,
    PRIORITY_OVERRIDES,
    PRIORITY_WEIGHTS,
    SCENARIOS,
    SOURCES,
    STRUCTURED_PAD_STEP,
    Burst,
    Mixed,
    Pattern,
    Ramp,
    Scenario,
    Spike,
    Steady,
    build_services,
    centered_range,
    custom_scenario,
    generate_events,
    get_scenario,
    named_pattern,
    scenario_from_toml,
    service_roles,
)

__all__ = [
    "DEFAULT_MIX",
    "DEFAULT_STRUCTURED_SHARE",
    "DEFAULT_WORK",
    "KIND_WEIGHTS",
    "MAX_CHAIN_EVENTS",
    "PATTERNS",
    "PAYLOAD_POOL_SIZE",
    "PRIORITY_OVERRIDES",
    "PRIORITY_WEIGHTS",
    "SCENARIOS",
    "SOURCES",
    "STRUCTURED_PAD_STEP",
    "Burst",
    "Mixed",
    "Pattern",
    "Ramp",
    "Scenario",
    "Spike",
    "Steady",
    "build_services",
    "centered_range",
    "custom_scenario",
    "generate_events",
    "get_scenario",
    "named_pattern",
    "scenario_from_toml",
    "service_roles",
]
