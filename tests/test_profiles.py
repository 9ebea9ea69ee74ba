"""perf.profiling.profiles: parsing py-spy speedscope, memray stats and settle-cycle files.

Known-answer data for the arithmetic; real captures (memray of a tiny script, py-spy of a
short process through perf.profiling.capture) for the formats as the tools write them.
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from perf.profiling.capture import CaptureOptions, capture_profiles
from perf.profiling.profiles import (
    SETTLE_KIND,
    SPEEDSCOPE_SCHEMA,
    SPEEDSCOPE_SCHEMA_URL,
    ProfileFormatError,
    _subset_errors,
    clean_speedscope,
    load_memray_stats,
    load_speedscope,
    normalize_file,
    parse_memray_stats,
    parse_settle,
    parse_speedscope,
    speedscope_problems,
)

MEMRAY = importlib.util.find_spec("memray") is not None


def speedscope(samples: list[list[int]], weights: list[float] | None = None) -> dict[str, Any]:
    """A py-spy-shaped file: frames 0..3 are Python (root, mid, leaf), 3 is native."""
    return {
        "$schema": SPEEDSCOPE_SCHEMA_URL,
        "activeProfileIndex": None,
        "exporter": "py-spy@0.4.3",
        "name": "py-spy profile",
        "shared": {
            "frames": [
                {"name": "<module>", "file": "/tree/main.py", "line": 1, "col": None},
                {"name": "mid", "file": "/tree/crucible/a.py", "line": 10, "col": None},
                {"name": "leaf", "file": "/tree/crucible/b.py", "line": 20, "col": None},
                {"name": "memcpy", "file": "libc.so.6", "line": 0, "col": None},
            ]
        },
        "profiles": [
            {
                "type": "sampled",
                "name": "Thread 1",
                "unit": "seconds",
                "startValue": 0.0,
                "endValue": 0.04,
                "samples": samples,
                "weights": weights if weights is not None else [0.01] * len(samples),
            }
        ],
    }


# ----------------------------------------------------------------------------- speedscope


def test_speedscope_shares_known_answer() -> None:
    data = speedscope([[0, 1, 2], [0, 1, 2], [0, 1], [0, 1, 2, 3]])
    profile = parse_speedscope(data, roots=["/tree"])
    assert profile.samples == 4
    assert profile.self_share["leaf (crucible/b.py)"] == pytest.approx(0.75)  # native skipped
    assert profile.self_share["mid (crucible/a.py)"] == pytest.approx(0.25)
    assert profile.total_share["<module> (main.py)"] == pytest.approx(1.0)
    assert profile.total_share["memcpy (libc.so.6)"] == pytest.approx(0.25)
    assert sum(profile.self_share.values()) == pytest.approx(1.0)


def test_speedscope_weights_count() -> None:
    data = speedscope([[0, 1], [0, 1, 2]], weights=[0.03, 0.01])
    profile = parse_speedscope(data, roots=["/tree"])
    assert profile.self_share["mid (crucible/a.py)"] == pytest.approx(0.75)


def test_py_spy_nulls_fail_the_schema_until_cleaned() -> None:
    data = speedscope([[0, 1]])
    problems = speedscope_problems(data)
    assert any("activeProfileIndex" in p for p in problems)
    assert any("col" in p for p in problems)
    cleaned = clean_speedscope(data)
    assert speedscope_problems(cleaned) == []
    assert "activeProfileIndex" not in cleaned
    assert all("col" not in f for f in cleaned["shared"]["frames"])
    assert cleaned["profiles"] == data["profiles"]


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda d: d.pop("shared"), "shared"),
        (lambda d: d.update({"$schema": "https://example.com"}), "$schema"),
        (lambda d: d["profiles"][0].update({"unit": "parsecs"}), "profiles/0"),
        (lambda d: d["profiles"][0].pop("weights"), "profiles/0"),
        (lambda d: d["shared"]["frames"][0].pop("name"), "frames/0"),
        (lambda d: d["profiles"][0]["samples"].append([0, 99]), "frame index"),
        (lambda d: d["profiles"][0]["weights"].append(0.01), "weights"),
        (lambda d: d["profiles"][0].update({"endValue": -1.0}), "endValue"),
    ],
)
def test_speedscope_problems_name_what_is_wrong(mutate: Any, fragment: str) -> None:
    data = clean_speedscope(speedscope([[0, 1], [0, 2]]))
    mutate(data)
    problems = speedscope_problems(data)
    assert problems
    assert any(fragment in p for p in problems), problems
    with pytest.raises(ProfileFormatError):
        parse_speedscope(data)


def test_builtin_validator_agrees_with_jsonschema() -> None:
    good = clean_speedscope(speedscope([[0, 1]]))
    bad = speedscope([[0, 1]])
    broken = copy.deepcopy(good)
    broken["profiles"][0]["type"] = "timeline"
    assert _subset_errors(SPEEDSCOPE_SCHEMA, good, "", SPEEDSCOPE_SCHEMA) == []
    assert _subset_errors(SPEEDSCOPE_SCHEMA, bad, "", SPEEDSCOPE_SCHEMA)
    assert _subset_errors(SPEEDSCOPE_SCHEMA, broken, "", SPEEDSCOPE_SCHEMA)
    if importlib.util.find_spec("jsonschema") is not None:
        jsonschema = importlib.import_module("jsonschema")
        validator = jsonschema.Draft6Validator(json.loads(json.dumps(dict(SPEEDSCOPE_SCHEMA))))
        assert validator.is_valid(good)
        assert not validator.is_valid(bad)
        assert not validator.is_valid(broken)


def test_empty_capture_is_an_error() -> None:
    with pytest.raises(ProfileFormatError, match="no samples"):
        parse_speedscope(speedscope([]))


def test_normalize_file() -> None:
    assert normalize_file("/a/tree/crucible/x.py", ["/a/tree"]) == "crucible/x.py"
    assert normalize_file("/v/lib/python3.11/site-packages/psutil/_common.py") == (
        "psutil/_common.py"
    )
    assert normalize_file("/r/lib/python3.11/asyncio/events.py") == "<stdlib>/asyncio/events.py"
    assert normalize_file("<frozen runpy>", ["/a"]) == "<frozen runpy>"


def test_real_py_spy_capture_parses(tmp_path: Path) -> None:
    """A short real process under py-spy (through perf.profiling.capture); where py-spy cannot
    attach, the capture must say so instead."""
    options = CaptureOptions(memray=False, settle=False, native=False, cpu_seconds=0.5)
    result = capture_profiles(tmp_path, ["data"], ["light"], options=options, stream=sys.stderr)
    (capture,) = result.captures
    if capture.speedscope is None:
        assert any("could not capture" in n and "py-spy" in n for n in result.notes)
        return
    profile = load_speedscope(tmp_path / capture.speedscope, [str(result.tree)])
    assert profile.samples > 0
    assert any(k.endswith("(crucible/_data.py)") for k in profile.total_share)
    stored = json.loads((tmp_path / capture.speedscope).read_text())
    assert speedscope_problems(stored) == []  # stored cleaned: the schema accepts it


# ----------------------------------------------------------------------------- memray stats


def memray_stats_doc() -> dict[str, Any]:
    return {
        "total_num_allocations": 10,
        "total_bytes_allocated": 1000,
        "top_allocations_by_size": [
            {"location": "grow:/t/crucible/a.py:3", "size": 600},
            {"location": "grow:/t/crucible/a.py:4", "size": 100},
            {"location": "_create_fn:/r/lib/python3.11/dataclasses.py:433", "size": 200},
        ],
        "top_allocations_by_count": [{"location": "grow:/t/crucible/a.py:3", "count": 6}],
        "top_modules_by_allocation_size": [
            {"module": "crucible", "num_allocations": 8, "total_bytes": 700}
        ],
        "metadata": {"peak_memory": 900, "python_allocator": "pymalloc"},
    }


def test_memray_stats_known_answer() -> None:
    stats = parse_memray_stats(memray_stats_doc(), roots=["/t"])
    assert (stats.allocations, stats.allocated_bytes, stats.peak_bytes) == (10, 1000, 900)
    assert stats.site_bytes["grow (crucible/a.py:3)"] == 600
    assert stats.function_bytes["grow (crucible/a.py)"] == 700
    assert stats.function_bytes["_create_fn (<stdlib>/dataclasses.py)"] == 200
    assert stats.site_allocations["grow (crucible/a.py:3)"] == 6
    assert stats.module_bytes == {"crucible": 700}


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.pop("total_num_allocations"),
        lambda d: d.update({"total_bytes_allocated": -1}),
        lambda d: d["top_allocations_by_size"].append({"location": 3, "size": 1}),
        lambda d: d.update({"metadata": []}),
    ],
)
def test_memray_stats_rejects_other_shapes(mutate: Any) -> None:
    doc = memray_stats_doc()
    mutate(doc)
    with pytest.raises(ProfileFormatError):
        parse_memray_stats(doc)


def test_real_memray_capture_parses(tmp_path: Path) -> None:
    script = tmp_path / "alloc.py"
    script.write_text(
        textwrap.dedent(
            """
            def grow():
                return bytearray(8_000_000)

            kept = grow()
            """
        )
    )
    if not MEMRAY:  # the capture code says so; no silent skip
        options = CaptureOptions(pyspy=False, settle=False)
        result = capture_profiles(tmp_path / "run", ["data"], ["light"], options=options)
        assert any("memray" in n and "profile extra" in n for n in result.notes)
        return
    capture = tmp_path / "alloc.bin"
    stats_path = tmp_path / "stats.json"
    run = [sys.executable, "-m", "memray", "run", "-q", "-o", str(capture), str(script)]
    subprocess.run(run, check=True, cwd=tmp_path, stdin=subprocess.DEVNULL, timeout=120)
    stats_cmd = [sys.executable, "-m", "memray", "stats", "--json", "-n", "50"]
    stats_cmd += ["-o", str(stats_path), str(capture)]
    subprocess.run(stats_cmd, check=True, capture_output=True, timeout=120)
    stats = load_memray_stats(stats_path, roots=[str(tmp_path)])
    assert stats.allocated_bytes >= 8_000_000
    assert stats.site_bytes["grow (alloc.py:3)"] >= 8_000_000
    assert not stats.trace_python_allocators


# ----------------------------------------------------------------------------- settle files


def settle_doc(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schema_version": 1,
        "kind": SETTLE_KIND,
        "coordinator": "core",
        "scenario": "light",
        "batch_events": 100,
        "warmup_batches": 1,
        "events": [100, 200, 300, 400],
        "retained_bytes": [10, 20, 30, 40],
        "held_after_stop_bytes": 5,
        "attributed_to": ["crucible/"],
        "top_growth": [
            {
                "site": {"function": "f", "file": "crucible/a.py", "line": 3},
                "size_diff_bytes": 30,
                "count_diff": 3,
                "stack": [
                    {"function": "f", "file": "crucible/a.py", "line": 3},
                    {"function": "run", "file": "/r/lib/python3.11/asyncio/events.py", "line": 80},
                ],
            }
        ],
        "top_held_after_stop": [],
    }
    doc.update(changes)
    return doc


def test_settle_parses() -> None:
    series = parse_settle(settle_doc())
    assert series.total_events == 400
    assert series.top_growth[0].site.label == "f (crucible/a.py:3)"
    assert series.top_growth[0].stack[1].file == "<stdlib>/asyncio/events.py"


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"kind": "other"}, "not a"),
        ({"schema_version": 99}, "newer"),
        ({"events": [1, 2]}, "readings"),
        ({"events": [100, 100, 300, 400]}, "increase"),
        ({"held_after_stop_bytes": None}, "held_after_stop"),
    ],
)
def test_settle_refuses_bad_files(changes: dict[str, Any], match: str) -> None:
    with pytest.raises(ProfileFormatError, match=match):
        parse_settle(settle_doc(**changes))
