"""The crucible names perf uses, from the tree being measured.

In PR mode the gate measures the base commit with the head's harness: its worker
(``perf.measure.sample``) runs with the measured tree's ``crucible`` first on ``sys.path``,
and that tree may be older than crucible's public modules (``crucible.measure``,
``crucible.workload``, ``crucible.loader``). So perf imports crucible's names from here,
and only here: the public modules when the tree has them, else the private modules the same
names lived in before. (The profile target, run by path in the profiled tree, cannot import
perf and makes the same choice itself: ``perf/profiling/target.py``.)

Import this module where ``crucible`` may be imported: a worker that puts a tree on
``sys.path`` first imports it only after that (lazily, inside a function). The daemon's
names are not here: ``perf.tools.daemon_pipeline`` measures only its own tree and imports
``crucible.daemon`` itself.
"""

from __future__ import annotations

from importlib.machinery import PathFinder

import crucible
from crucible import Coordinator, CoordinatorError, Event, Rejected, WorkSpec

# Whether the measured tree's crucible has the public modules (added together). Asked of
# its own package folder: an editable install of another tree (the head's, in the gate's
# virtualenv) would otherwise supply a module the measured tree lacks.
HAS_PUBLIC_MODULES = PathFinder.find_spec("crucible.measure", list(crucible.__path__)) is not None

if HAS_PUBLIC_MODULES:
    from crucible.loader import (
        BUILTIN_COORDINATORS,
        DAEMON_COORDINATORS,
        load_coordinator,
        resolve_factory,
    )
    from crucible.measure import (
        RssSampler,
        RunResult,
        RunSpec,
        measure,
        percentile_summary,
        publish_unpaced,
    )
    from crucible.workload import (
        SCENARIOS,
        Scenario,
        build_services,
        centered_range,
        generate_events,
        get_scenario,
        named_pattern,
    )
else:
    # private: a tree older than crucible's public modules (a base commit the gate measures)
    # has the same names in its private modules.
    from crucible._loader import (  # private: see above
        BUILTIN_COORDINATORS,
        DAEMON_COORDINATORS,
        load_coordinator,
        resolve_factory,
    )
    from crucible._measure import (  # private: see above
        RssSampler,
        RunResult,
        RunSpec,
        measure,
        percentile_summary,
        publish_unpaced,
    )
    from crucible._workload import (  # private: see above
        SCENARIOS,
        Scenario,
        build_services,
        centered_range,
        generate_events,
        get_scenario,
        named_pattern,
    )

__all__ = [
    "BUILTIN_COORDINATORS",
    "DAEMON_COORDINATORS",
    "HAS_PUBLIC_MODULES",
    "SCENARIOS",
    "Coordinator",
    "CoordinatorError",
    "Event",
    "Rejected",
    "RssSampler",
    "RunResult",
    "RunSpec",
    "Scenario",
    "WorkSpec",
    "build_services",
    "centered_range",
    "generate_events",
    "get_scenario",
    "load_coordinator",
    "measure",
    "named_pattern",
    "percentile_summary",
    "publish_unpaced",
    "resolve_factory",
]
