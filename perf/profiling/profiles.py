"""Profiles as plain data: py-spy speedscope JSON, memray ``stats --json``, settle cycles.

Parsing only: nothing here runs a profiler (that is ``perf.profiling.capture``) or decides anything
(``perf.decide.leakgate``, ``perf.profiling.diffprof``). Every parser takes the decoded JSON
and returns frozen records; ``load_*`` read a file first. A file that is not what it claims raises
:class:`ProfileFormatError` naming the file; nothing is skipped silently.

Functions are keyed ``"name (file)"`` with ``file`` made comparable across source trees by
:func:`normalize_file`: relative to the profiled tree (``crucible/_core/core.py``) where
it lies inside one of ``roots``, else shortened to its part after ``site-packages/`` or the
standard library folder. So one function has one key in a base tree and in a head tree.

What each profiler's numbers mean here:

- py-spy (:class:`CpuProfile`): samples of every thread, each weighted as py-spy wrote it
  (seconds per sample). ``self_share`` is the share of the weight in which a function was
  the innermost Python frame (native frames recorded with ``--native`` are skipped, so time
  in C called from Python counts for the Python caller); ``total_share`` the share in
  which it was anywhere on the stack (counted once per sample).
- memray stats (:class:`MemoryStats`): every allocation the tracker saw in the process,
  in memray's default mode (the system allocator's calls; pymalloc's small objects show
  as its arena allocations). Sites are memray's "top allocations", i.e. the innermost
  Python frame of each allocation, only as many as ``memray stats -n`` asked for.
- settle cycles (:class:`SettleSeries`): ``perf/profiling/target.py settle``'s tracemalloc
  readings; see that file for what is attributed to the coordinator.
"""

from __future__ import annotations

import importlib
import itertools
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from perf.errors import ResultError

__all__ = [
    "SETTLE_KIND",
    "SETTLE_SCHEMA_VERSION",
    "SPEEDSCOPE_SCHEMA",
    "SPEEDSCOPE_SCHEMA_URL",
    "CpuProfile",
    "Frame",
    "MemoryStats",
    "ProfileFormatError",
    "SettleSeries",
    "StackGrowth",
    "clean_speedscope",
    "function_key",
    "load_json",
    "load_memray_stats",
    "load_settle",
    "load_speedscope",
    "normalize_file",
    "parse_memray_stats",
    "parse_settle",
    "parse_speedscope",
    "speedscope_problems",
    "speedscope_validator",
]

SPEEDSCOPE_SCHEMA_URL = "https://www.speedscope.app/file-format-schema.json"
SETTLE_KIND = "crucible-settle-cycles"
SETTLE_SCHEMA_VERSION = 1  # the newest perf/profiling/target.py settle output this reads

# The subset of speedscope's published schema (https://www.speedscope.app/
# file-format-schema.json, draft-06, generated from src/lib/file-format-spec.ts) that a
# py-spy file uses: the file, its shared frames and sampled profiles, with the same
# required keys, types and enums. Evented profiles are accepted only in their required
# shape. Checks the schema cannot state are in speedscope_problems.
_UNITS = ["bytes", "microseconds", "milliseconds", "nanoseconds", "none", "seconds"]
SPEEDSCOPE_SCHEMA: Mapping[str, Any] = MappingProxyType(
    {
        "$schema": "http://json-schema.org/draft-06/schema#",
        "definitions": {
            "Frame": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "file": {"type": "string"},
                    "line": {"type": "number"},
                    "col": {"type": "number"},
                },
                "required": ["name"],
            },
            "SampledProfile": {
                "type": "object",
                "properties": {
                    "type": {"type": "string", "enum": ["sampled"]},
                    "name": {"type": "string"},
                    "unit": {"type": "string", "enum": _UNITS},
                    "startValue": {"type": "number"},
                    "endValue": {"type": "number"},
                    "samples": {
                        "type": "array",
                        "items": {"type": "array", "items": {"type": "number"}},
                    },
                    "weights": {"type": "array", "items": {"type": "number"}},
                },
                "required": [
                    "endValue",
                    "name",
                    "samples",
                    "startValue",
                    "type",
                    "unit",
                    "weights",
                ],
            },
            "EventedProfile": {
                "type": "object",
                "properties": {
                    "type": {"type": "string", "enum": ["evented"]},
                    "name": {"type": "string"},
                    "unit": {"type": "string", "enum": _UNITS},
                    "startValue": {"type": "number"},
                    "endValue": {"type": "number"},
                    "events": {"type": "array"},
                },
                "required": ["endValue", "events", "name", "startValue", "type", "unit"],
            },
        },
        "type": "object",
        "properties": {
            "$schema": {"type": "string", "enum": [SPEEDSCOPE_SCHEMA_URL]},
            "shared": {
                "type": "object",
                "properties": {
                    "frames": {"type": "array", "items": {"$ref": "#/definitions/Frame"}}
                },
                "required": ["frames"],
            },
            "profiles": {
                "type": "array",
                "items": {
                    "anyOf": [
                        {"$ref": "#/definitions/EventedProfile"},
                        {"$ref": "#/definitions/SampledProfile"},
                    ]
                },
            },
            "name": {"type": "string"},
            "activeProfileIndex": {"type": "number"},
            "exporter": {"type": "string"},
        },
        "required": ["$schema", "profiles", "shared"],
    }
)


class ProfileFormatError(ResultError):
    """A profile file is missing, unreadable, or not in the format it claims."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One stack frame; ``file`` normalized (see :func:`normalize_file`)."""

    function: str
    file: str
    line: int | None = None

    @property
    def key(self) -> str:
        """The function's key, line left out: ``"name (file)"``."""
        return function_key(self.function, self.file)

    @property
    def label(self) -> str:
        """``"name (file:line)"``."""
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{self.function} ({where})"


@dataclass(frozen=True, slots=True, kw_only=True)
class CpuProfile:
    """A py-spy capture: shares of the sampled weight per function key (0..1)."""

    source: str
    samples: int
    weight: float
    unit: str
    threads: int
    self_share: Mapping[str, float]
    total_share: Mapping[str, float]


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryStats:
    """A memray ``stats --json`` file.

    ``site_bytes`` / ``site_allocations`` map an allocation site (``Frame.label``, the
    innermost Python frame) to the bytes and number of allocations made there, for the
    ``sites_listed`` largest sites memray reported; ``function_bytes`` sums ``site_bytes``
    per function key. ``module_bytes`` / ``module_allocations`` are memray's per-module
    totals (the closest non-stdlib frame's top-level package, "<root>" for the rest).
    """

    source: str
    allocations: int
    allocated_bytes: int
    peak_bytes: int
    site_bytes: Mapping[str, int]
    site_allocations: Mapping[str, int]
    site_frames: Mapping[str, Frame]
    function_bytes: Mapping[str, int]
    module_bytes: Mapping[str, int]
    module_allocations: Mapping[str, int]
    sites_listed: int
    python_allocator: str
    trace_python_allocators: bool
    native_traces: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class StackGrowth:
    """Bytes (and blocks) that one allocation site added between two tracemalloc
    snapshots; ``stack`` is innermost first."""

    site: Frame
    size_diff_bytes: int
    count_diff: int
    stack: tuple[Frame, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class SettleSeries:
    """Settle-cycle readings of one coordinator: ``retained_bytes[i]`` attributable bytes
    alive after batch ``i`` settled (``events[i]`` events published by then);
    ``held_after_stop_bytes`` attributable bytes alive after the coordinator was stopped,
    dropped and its event loop closed."""

    source: str
    coordinator: str
    scenario: str
    batch_events: int
    warmup_batches: int
    events: tuple[int, ...]
    retained_bytes: tuple[int, ...]
    held_after_stop_bytes: int
    attributed_to: tuple[str, ...]
    top_growth: tuple[StackGrowth, ...] = ()
    top_held_after_stop: tuple[StackGrowth, ...] = field(default_factory=tuple)

    @property
    def total_events(self) -> int:
        return self.events[-1] if self.events else 0


# ---------------------------------------------------------------------------------------
# shared helpers
# ---------------------------------------------------------------------------------------

_STDLIB_RE = re.compile(r"/lib/python\d+\.\d+/(?!site-packages/)")


def normalize_file(path: str, roots: Sequence[str | Path] = ()) -> str:
    """``path`` made comparable across trees: relative (POSIX) to the first of ``roots``
    that holds it; else the part after ``site-packages/``; else ``<stdlib>/...`` for the
    standard library; else unchanged (``<frozen ...>``, ``<string>``, native libraries)."""
    if not path or path.startswith("<"):
        return path
    for root in roots:
        prefix = str(root).rstrip("/") + "/"
        if path.startswith(prefix):
            return path[len(prefix) :]
    marker = "/site-packages/"
    if marker in path:
        return path.rsplit(marker, 1)[1]
    match = _STDLIB_RE.search(path)
    if match:
        return "<stdlib>/" + path[match.end() :]
    return path


def function_key(function: str, file: str) -> str:
    return f"{function} ({file})"


def load_json(path: str | Path) -> Any:
    """Decoded JSON of ``path``; ProfileFormatError when missing or not JSON."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise ProfileFormatError("profile file not found", str(path)) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProfileFormatError(f"not readable as JSON: {exc}", str(path)) from None


def _int(value: Any, what: str, source: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ProfileFormatError(f"{what} is not a count: {value!r}", source)
    return value


def _mapping(value: Any, what: str, source: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ProfileFormatError(f"{what} is not a JSON object", source)
    return value


def _list(value: Any, what: str, source: str) -> Sequence[Any]:
    if not isinstance(value, list):
        raise ProfileFormatError(f"{what} is not a JSON array", source)
    return value


# ---------------------------------------------------------------------------------------
# speedscope (py-spy)
# ---------------------------------------------------------------------------------------


def clean_speedscope(data: Any) -> Any:
    """``data`` without the null values py-spy writes (``"activeProfileIndex": null``
    and each frame's ``"col": null``), which speedscope's schema rejects: it types both as
    numbers, and leaving a key out is how the format says "unknown". Nothing else changes;
    anything that is not a speedscope-shaped dict is returned as it is."""
    if not isinstance(data, dict):
        return data
    out = {k: v for k, v in data.items() if v is not None}
    shared = out.get("shared")
    if isinstance(shared, dict) and isinstance(shared.get("frames"), list):
        out["shared"] = {
            **shared,
            "frames": [
                {k: v for k, v in f.items() if v is not None} if isinstance(f, dict) else f
                for f in shared["frames"]
            ],
        }
    return out


_JSON_TYPES: Mapping[str, tuple[type, ...]] = MappingProxyType(
    {
        "object": (dict,),
        "array": (list,),
        "string": (str,),
        "number": (int, float),
        "integer": (int,),
        "boolean": (bool,),
    }
)


def _subset_errors(
    schema: Mapping[str, Any], value: Any, path: str, root: Mapping[str, Any]
) -> list[str]:
    """Validate ``value`` against the JSON Schema keywords SPEEDSCOPE_SCHEMA uses ($ref to
    #/definitions, type, enum, required, properties, items, anyOf), for when the
    jsonschema package is not installed."""
    if "$ref" in schema:
        name = str(schema["$ref"]).removeprefix("#/definitions/")
        return _subset_errors(root["definitions"][name], value, path, root)
    where = path or "(file)"
    if "anyOf" in schema:
        if all(_subset_errors(option, value, path, root) for option in schema["anyOf"]):
            return [f"{where}: is not valid under any of the given schemas"]
        return []
    kind = schema.get("type")
    if kind is not None:
        ok = isinstance(value, _JSON_TYPES[kind]) and not (
            isinstance(value, bool) and kind in ("number", "integer")
        )
        if not ok:
            return [f"{where}: {value!r:.40} is not of type {kind!r}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{where}: {value!r:.40} is not one of {schema['enum']}"]
    errors: list[str] = []
    if isinstance(value, dict):
        errors += [
            f"{where}: {key!r} is a required property"
            for key in schema.get("required", ())
            if key not in value
        ]
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                errors += _subset_errors(sub, value[key], f"{path}/{key}".lstrip("/"), root)
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            errors += _subset_errors(schema["items"], item, f"{path}/{i}".lstrip("/"), root)
            if len(errors) > 20:
                break
    return errors


def speedscope_validator() -> str:
    """Which validator :func:`speedscope_problems` uses: "jsonschema" (the package, when
    installed) or "builtin" (:func:`_subset_errors`, the same schema's keywords)."""
    try:
        importlib.import_module("jsonschema")
    except ImportError:
        return "builtin"
    return "jsonschema"


def speedscope_problems(data: Any) -> list[str]:
    """Why ``data`` is not a speedscope file the viewer can load ([] when it is).

    First :data:`SPEEDSCOPE_SCHEMA`, with the jsonschema package's draft-6 validator when
    it is installed, else with the built-in validator of the keywords that schema uses;
    then what the schema cannot say: every sample's frame indexes within
    ``shared.frames``, as many weights as samples, finite non-negative weights and
    ``endValue >= startValue``."""
    schema = SPEEDSCOPE_SCHEMA
    if speedscope_validator() == "jsonschema":
        jsonschema = importlib.import_module("jsonschema")
        validator = jsonschema.Draft6Validator(_plain(schema))
        problems = [
            f"{'/'.join(str(p) for p in error.absolute_path) or '(file)'}: {error.message}"
            for error in sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
        ]
    else:
        problems = _subset_errors(schema, data, "", schema)
    if problems:
        return problems[:20]
    n_frames = len(data["shared"]["frames"])
    for i, profile in enumerate(data["profiles"]):
        if profile["endValue"] < profile["startValue"]:
            problems.append(f"profiles/{i}: endValue is before startValue")
        if profile["type"] != "sampled":
            continue
        samples, weights = profile["samples"], profile["weights"]
        if len(samples) != len(weights):
            problems.append(f"profiles/{i}: {len(samples)} samples but {len(weights)} weights")
        if any(not (isinstance(w, int | float) and math.isfinite(w) and w >= 0) for w in weights):
            problems.append(f"profiles/{i}: a weight is negative or not finite")
        for j, stack in enumerate(samples):
            if any(not float(k).is_integer() or not 0 <= k < n_frames for k in stack):
                problems.append(f"profiles/{i}/samples/{j}: frame index outside shared.frames")
                break
    return problems


def _plain(value: Any) -> Any:
    """Mapping proxies as dicts (jsonschema wants plain JSON-like data)."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _is_python_frame(file: str) -> bool:
    return file.endswith((".py", ".pyw")) or file.startswith("<")


def parse_speedscope(
    data: Any,
    roots: Sequence[str | Path] = (),
    source: str = "speedscope",
    *,
    within: str | None = None,
) -> CpuProfile:
    """Function shares of a py-spy speedscope capture (sampled profiles only; every
    thread counted). ``within`` keeps only the samples with a frame of that function name
    on their stack (e.g. the profiled runs, leaving out start-up). Raises
    ProfileFormatError when ``data`` fails :func:`speedscope_problems` or no sample is
    left."""
    problems = speedscope_problems(clean_speedscope(data))
    if problems:
        raise ProfileFormatError("not a valid speedscope file: " + "; ".join(problems), source)
    frames = data["shared"]["frames"]
    keys: list[str] = []
    python: list[bool] = []
    wanted: set[int] = set()
    for index, frame in enumerate(frames):
        file = str(frame.get("file") or "")
        keys.append(function_key(str(frame["name"]), normalize_file(file, roots)))
        python.append(_is_python_frame(file))
        if frame["name"] == within:
            wanted.add(index)
    self_weight: dict[str, float] = {}
    total_weight: dict[str, float] = {}
    total = 0.0
    samples = 0
    threads = 0
    units = set()
    for profile in data["profiles"]:
        if profile["type"] != "sampled":
            continue
        threads += 1
        units.add(profile["unit"])
        for stack, weight in zip(profile["samples"], profile["weights"], strict=True):
            indexes = [int(k) for k in stack]
            if within is not None and wanted.isdisjoint(indexes):
                continue
            samples += 1
            total += weight
            # speedscope stacks run from the root to the innermost frame
            leaf = next((k for k in reversed(indexes) if python[k]), None)
            if leaf is not None:
                self_weight[keys[leaf]] = self_weight.get(keys[leaf], 0.0) + weight
            for key in {keys[k] for k in indexes}:
                total_weight[key] = total_weight.get(key, 0.0) + weight
    if samples == 0 or total <= 0:
        where = f" within {within}" if within is not None else ""
        raise ProfileFormatError(f"the capture holds no samples{where}", source)
    return CpuProfile(
        source=source,
        samples=samples,
        weight=total,
        unit=units.pop() if len(units) == 1 else "mixed",
        threads=threads,
        self_share=MappingProxyType({k: v / total for k, v in self_weight.items()}),
        total_share=MappingProxyType({k: v / total for k, v in total_weight.items()}),
    )


def load_speedscope(
    path: str | Path, roots: Sequence[str | Path] = (), *, within: str | None = None
) -> CpuProfile:
    return parse_speedscope(load_json(path), roots, str(path), within=within)


# ---------------------------------------------------------------------------------------
# memray stats --json
# ---------------------------------------------------------------------------------------

_LOCATION_RE = re.compile(r"^(?P<function>.*):(?P<file>.*):(?P<line>\d+)$")


def _location(text: Any, roots: Sequence[str | Path], source: str) -> Frame:
    """memray's ``"function:file:line"`` (file may contain colons, the function not)."""
    if not isinstance(text, str):
        raise ProfileFormatError(f"allocation location is not a string: {text!r}", source)
    match = _LOCATION_RE.match(text)
    if match is None:  # "<stack trace unavailable>"
        return Frame(text, "", None)
    function, _, rest = text.partition(":")
    file = rest.rsplit(":", 1)[0]
    return Frame(function, normalize_file(file, roots), int(match["line"]))


def parse_memray_stats(
    data: Any, roots: Sequence[str | Path] = (), source: str = "memray stats"
) -> MemoryStats:
    """Totals, per-site and per-module figures of a ``memray stats --json`` file."""
    data = _mapping(data, "the file", source)
    for key in ("total_num_allocations", "total_bytes_allocated", "metadata"):
        if key not in data:
            raise ProfileFormatError(f"no {key!r}: not a memray stats --json file", source)
    metadata = _mapping(data["metadata"], "metadata", source)
    site_bytes: dict[str, int] = {}
    site_frames: dict[str, Frame] = {}
    function_bytes: dict[str, int] = {}
    by_size = _list(data.get("top_allocations_by_size", []), "top_allocations_by_size", source)
    for entry in by_size:
        entry = _mapping(entry, "an allocation site", source)
        frame = _location(entry.get("location"), roots, source)
        size = _int(entry.get("size"), "an allocation site's size", source)
        site_bytes[frame.label] = site_bytes.get(frame.label, 0) + size
        site_frames[frame.label] = frame
        function_bytes[frame.key] = function_bytes.get(frame.key, 0) + size
    site_allocations: dict[str, int] = {}
    by_count = _list(data.get("top_allocations_by_count", []), "top_allocations_by_count", source)
    for entry in by_count:
        entry = _mapping(entry, "an allocation site", source)
        frame = _location(entry.get("location"), roots, source)
        count = _int(entry.get("count"), "an allocation site's count", source)
        site_allocations[frame.label] = site_allocations.get(frame.label, 0) + count
        site_frames.setdefault(frame.label, frame)
    module_bytes: dict[str, int] = {}
    module_allocations: dict[str, int] = {}
    modules = _list(
        data.get("top_modules_by_allocation_size", []), "top_modules_by_allocation_size", source
    )
    for entry in modules:
        entry = _mapping(entry, "a module", source)
        name = str(entry.get("module"))
        module_bytes[name] = _int(entry.get("total_bytes"), "a module's bytes", source)
        module_allocations[name] = _int(
            entry.get("num_allocations"), "a module's allocations", source
        )
    return MemoryStats(
        source=source,
        allocations=_int(data["total_num_allocations"], "total_num_allocations", source),
        allocated_bytes=_int(data["total_bytes_allocated"], "total_bytes_allocated", source),
        peak_bytes=_int(metadata.get("peak_memory", 0), "metadata.peak_memory", source),
        site_bytes=MappingProxyType(site_bytes),
        site_allocations=MappingProxyType(site_allocations),
        site_frames=MappingProxyType(site_frames),
        function_bytes=MappingProxyType(function_bytes),
        module_bytes=MappingProxyType(module_bytes),
        module_allocations=MappingProxyType(module_allocations),
        sites_listed=len(by_size),
        python_allocator=str(metadata.get("python_allocator", "")),
        trace_python_allocators=bool(metadata.get("trace_python_allocators", False)),
        native_traces=bool(metadata.get("has_native_traces", False)),
    )


def load_memray_stats(path: str | Path, roots: Sequence[str | Path] = ()) -> MemoryStats:
    return parse_memray_stats(load_json(path), roots, str(path))


# ---------------------------------------------------------------------------------------
# settle cycles (perf/profiling/target.py settle)
# ---------------------------------------------------------------------------------------


def _frame(value: Any, source: str, roots: Sequence[str | Path] = ()) -> Frame:
    entry = _mapping(value, "a frame", source)
    line = entry.get("line")
    return Frame(
        str(entry.get("function", "?")),
        normalize_file(str(entry.get("file", "?")), roots),
        line if isinstance(line, int) and not isinstance(line, bool) else None,
    )


def _growths(value: Any, source: str, roots: Sequence[str | Path]) -> tuple[StackGrowth, ...]:
    out = []
    for entry in _list(value, "a stack list", source):
        entry = _mapping(entry, "a stack", source)
        count = entry.get("count_diff", 0)
        out.append(
            StackGrowth(
                site=_frame(entry.get("site"), source, roots),
                size_diff_bytes=int(entry.get("size_diff_bytes", 0)),
                count_diff=int(count) if isinstance(count, int) else 0,
                stack=tuple(
                    _frame(f, source, roots)
                    for f in _list(entry.get("stack", []), "a stack", source)
                ),
            )
        )
    return tuple(out)


def parse_settle(
    data: Any, source: str = "settle cycles", roots: Sequence[str | Path] = ()
) -> SettleSeries:
    """A settle-cycles file; refuses another kind and a newer schema version. Frames are
    already relative to the profiled tree; ``roots`` and :func:`normalize_file` shorten the
    rest."""
    data = _mapping(data, "the file", source)
    if data.get("kind") != SETTLE_KIND:
        raise ProfileFormatError(f"not a {SETTLE_KIND} file (kind {data.get('kind')!r})", source)
    version = data.get("schema_version")
    if not isinstance(version, int) or version < 1:
        raise ProfileFormatError(f"bad schema_version {version!r}", source)
    if version > SETTLE_SCHEMA_VERSION:
        raise ProfileFormatError(
            f"schema_version {version} is newer than this gate reads ({SETTLE_SCHEMA_VERSION})",
            source,
            "update the gate (perf/) to the version that wrote the file",
        )
    events = tuple(
        _int(v, "an event count", source) for v in _list(data.get("events"), "events", source)
    )
    retained = tuple(
        _int(v, "a retained byte count", source)
        for v in _list(data.get("retained_bytes"), "retained_bytes", source)
    )
    if not events or len(events) != len(retained):
        raise ProfileFormatError(f"{len(events)} event counts but {len(retained)} readings", source)
    if any(b <= a for a, b in itertools.pairwise(events)):
        raise ProfileFormatError("event counts do not increase", source)
    held = data.get("held_after_stop_bytes")
    if isinstance(held, bool) or not isinstance(held, int):
        raise ProfileFormatError(f"held_after_stop_bytes is not an integer: {held!r}", source)
    return SettleSeries(
        source=source,
        coordinator=str(data.get("coordinator", "?")),
        scenario=str(data.get("scenario", "?")),
        batch_events=_int(data.get("batch_events", 0), "batch_events", source),
        warmup_batches=_int(data.get("warmup_batches", 0), "warmup_batches", source),
        events=events,
        retained_bytes=retained,
        held_after_stop_bytes=held,
        attributed_to=tuple(
            str(a) for a in _list(data.get("attributed_to", []), "attributed_to", source)
        ),
        top_growth=_growths(data.get("top_growth", []), source, roots),
        top_held_after_stop=_growths(data.get("top_held_after_stop", []), source, roots),
    )


def load_settle(path: str | Path, roots: Sequence[str | Path] = ()) -> SettleSeries:
    return parse_settle(load_json(path), str(path), roots)
