"""``profiles/[<side>/]profile.json``: what a profile run captured, what it could not and
why, each capture's memory figures, and for each profile captured what share of it is
setup (building the runs' services and events) rather than the measured workload, as the
run that took it measured (``profiled_runs``).

The memory figures are the leak gate's (``perf.decide.leakgate.memory_figures``), a stage
above this one, so the caller computes them and passes them in as plain data.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import fields, is_dataclass, replace
from enum import Enum
from pathlib import Path
from typing import Any

from perf.files import write_json
from perf.profiling.capture import CaptureOptions, ProfileResult, profiles_folder
from perf.rundir import Artifact

__all__ = ["PROFILE_SCHEMA_VERSION", "add_manifest", "manifest", "to_jsonable"]

# 1: {"schema_version", "kind", "tree", "duration_s", "options", "captures", "notes"}, each
#    capture a perf.profiling.capture.Capture with its "memory" figures.
# 2 (2026-12): each capture's "profiled_runs": per profile captured ("speedscope", "svg",
#    "memray"), {"runs", "inputs_built", "setup_s", "prepared_s", "workload_s",
#    "setup_share"} as that profile's target run measured them.
PROFILE_SCHEMA_VERSION = 2


def to_jsonable(value: Any) -> Any:
    """Records (dataclasses), mappings, sequences, enums and paths as plain JSON data;
    non-finite floats as None."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def manifest(
    result: ProfileResult, options: CaptureOptions, memory: Sequence[Any]
) -> dict[str, Any]:
    """The manifest's data; ``memory`` holds one JSON value per capture, in order."""
    captures = [
        {**to_jsonable(capture), "memory": figures}
        for capture, figures in zip(result.captures, memory, strict=True)
    ]
    return {
        "schema_version": PROFILE_SCHEMA_VERSION,
        "kind": "crucible-perf-profile",
        "tree": str(result.tree),
        "duration_s": round(result.duration_s, 3),
        "options": to_jsonable(options),
        "captures": captures,
        "notes": list(result.notes),
    }


def add_manifest(
    result: ProfileResult, options: CaptureOptions, memory: Sequence[Any], side: str = ""
) -> ProfileResult:
    """Write the manifest into the run's profiles folder (``side``'s, as captured) and
    return ``result`` with it listed last among its artifacts."""
    path = profiles_folder(result.run_dir, side) / "profile.json"
    write_json(path, manifest(result, options, memory))
    listed = Artifact(
        label="profiles: manifest",
        path=path.relative_to(result.run_dir).as_posix(),
        kind="json",
    )
    return replace(result, artifacts=(*result.artifacts, listed))
