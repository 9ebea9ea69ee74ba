"""perf.profiling.manifest: a profile run's profile.json, and records as JSON data."""

from __future__ import annotations

import json
import math
from enum import Enum
from pathlib import Path

import pytest

from perf.profiling.capture import Capture, CaptureOptions, ProfileResult
from perf.profiling.manifest import PROFILE_SCHEMA_VERSION, add_manifest, to_jsonable


class Colour(Enum):
    RED = "red"


def result(run_dir: Path) -> ProfileResult:
    capture = Capture(
        coordinator="core", scenario="light", label="core/light", folder="f", tree="t"
    )
    return ProfileResult(
        run_dir=run_dir,
        tree=Path("/t"),
        captures=(capture,),
        artifacts=(),
        notes=("core/light: could not capture x",),
        duration_s=1.23456,
    )


def test_records_as_json_data() -> None:
    assert to_jsonable({"v": Colour.RED, "p": Path("/a"), "x": (1.0, math.nan)}) == {
        "v": "red",
        "p": "/a",
        "x": [1.0, None],
    }
    assert to_jsonable(CaptureOptions())["pyspy_rate_hz"] == 100


def test_manifest_is_written_beside_the_side_and_listed_last(tmp_path: Path) -> None:
    done = add_manifest(result(tmp_path), CaptureOptions(), [{"allocations": 3}], side="base")
    assert done.artifacts[-1].path == "profiles/base/profile.json"
    data = json.loads((tmp_path / "profiles/base/profile.json").read_text())
    assert data["schema_version"] == PROFILE_SCHEMA_VERSION
    assert data["duration_s"] == 1.235
    assert data["captures"][0]["memory"] == {"allocations": 3}
    assert data["notes"] == ["core/light: could not capture x"]
    with pytest.raises(ValueError):
        add_manifest(result(tmp_path), CaptureOptions(), [], side="base")
