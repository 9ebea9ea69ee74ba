"""A run folder's results, as ``python -m perf run`` writes them: one pyperf JSON per suite
and the JSON summary beside it (``{suite}.crucible.json``), named by ``manifest.json``.

:func:`load_run` is the one reader of these files for the reports; it returns plain
:class:`RunData` and judges nothing. Time values come from the pyperf file (pyperf's own
measurement), every other metric from the summary, which keeps every sample. What is not
in the files becomes a :class:`Missing` entry naming the file, never an invented figure.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "BASE",
    "CANDIDATE",
    "FLOOR",
    "SUITES",
    "SUMMARY_KIND",
    "SUMMARY_SCHEMA_VERSIONS",
    "CaseResult",
    "Missing",
    "RunData",
    "SweepPointData",
    "float_or_none",
    "load_run",
]

# The coordinators of the architecture comparison: the base (the current approach), the
# candidate, and the reference dispatcher as the floor.
BASE = "data"
CANDIDATE = "core"
FLOOR = "reference"
SUITES: tuple[str, ...] = (
    "daemon_performance",
    "load_testing",
    "memory_profiling",
    "scalability_testing",
)
SUMMARY_KIND = "crucible-perf-summary"
SUMMARY_SCHEMA_VERSIONS = frozenset({1})  # perf.measure.sidecar.SUMMARY_SCHEMA_VERSION


# --------------------------------------------------------------------------------------------
# Loaded data
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SweepPointData:
    """One judged step of a scalability sweep (``perf.measure.scalability.SweepPoint.as_dict``)."""

    value: float
    offered_eps: float
    achieved_eps: float
    latency_p99_s: float | None
    error_rate_pct: float
    cpu_pct: float
    passed: bool
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CaseResult:
    """Everything one run measured for one case on one coordinator.

    ``values`` maps a metric to its per-sample values (None where a sample has no value:
    a metric that was not > 0 in pyperf, or not measured in that sample); "time" comes
    from the pyperf file, the others from the summary when it exists. ``loops`` is the
    number of workloads per sample (summary), ``labels`` the last sample's labels (the
    sweep's binding resource), ``sweep_points`` and ``rss_series`` the last sample's
    curve and RSS series."""

    suite: str
    case: str
    coordinator: str
    kind: str
    description: str = ""
    events: int | None = None
    faults: bool = False
    sweep_axis: str | None = None
    params: Mapping[str, str | int | float] = field(default_factory=dict)
    values: Mapping[str, tuple[float | None, ...]] = field(default_factory=dict)
    loops: tuple[int, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    sweep_points: tuple[SweepPointData, ...] = ()
    rss_series: tuple[tuple[float, float], ...] = ()

    @property
    def name(self) -> str:
        return f"{self.suite}.{self.case}.{self.coordinator}"

    def measured(self, metric: str) -> tuple[float, ...]:
        """The sample values of ``metric`` that exist, in sample order."""
        return tuple(v for v in self.values.get(metric, ()) if v is not None)


@dataclass(frozen=True, slots=True, kw_only=True)
class Missing:
    """Something the analysis needed and the run did not have: ``what`` names it (a suite,
    a coordinator, a file, a case), ``detail`` says what is missing and why it matters."""

    what: str
    detail: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RunData:
    """A run folder's results, as :func:`load_run` read them."""

    source: str
    cases: tuple[CaseResult, ...]
    suites: tuple[str, ...]  # suites with results
    coordinators: tuple[str, ...]  # coordinators with results, in first-seen order
    missing: tuple[Missing, ...] = ()
    set_name: str | None = None
    commit: str | None = None

    def case(self, suite: str, case: str, coordinator: str) -> CaseResult | None:
        for result in self.cases:
            if (result.suite, result.case, result.coordinator) == (suite, case, coordinator):
                return result
        return None


# --------------------------------------------------------------------------------------------
# Loading (the one place that reads result files)
# --------------------------------------------------------------------------------------------


def _read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _summary_entry(summary_file: Path) -> tuple[str, tuple[str, str]]:
    """suite -> (pyperf file name, summary file name) as one summary file names them."""
    try:
        doc = _read_json(summary_file)
    except (OSError, ValueError):
        doc = None
    suite = doc.get("suite") if isinstance(doc, dict) else None
    stem = summary_file.name.removesuffix(".crucible.json")
    found = doc.get("pyperf_file") if isinstance(doc, dict) else None
    return str(suite or stem), (str(found or f"{stem}.json"), summary_file.name)


def _suite_files(
    run_dir: Path,
    manifest: Mapping[str, Any] | None,
    summaries: Sequence[str | Path] | None,
    missing: list[Missing],
) -> dict[str, tuple[str, str]]:
    """suite -> (pyperf file name, summary file name): the given summaries, else the
    manifest's files, else every ``*.crucible.json`` (two naming one suite is ambiguous,
    and that suite is reported, not guessed), else ``{suite}.json``."""
    files: dict[str, tuple[str, str]] = {}
    if summaries is not None:
        for name in summaries:
            suite, entry = _summary_entry(run_dir / name)
            files[suite] = entry
        return files
    if manifest is not None and isinstance(manifest.get("files"), dict):
        for suite, names in manifest["files"].items():
            if isinstance(names, dict) and isinstance(names.get("pyperf"), str):
                summary = names.get("summary")
                pyperf_name = str(names["pyperf"])
                stem = pyperf_name.removesuffix(".json")
                files[str(suite)] = (
                    pyperf_name,
                    str(summary) if isinstance(summary, str) else f"{stem}.crucible.json",
                )
        return files
    ambiguous: dict[str, list[str]] = {}
    for summary_file in sorted(run_dir.glob("*.crucible.json")):
        suite, entry = _summary_entry(summary_file)
        if suite in files:
            ambiguous.setdefault(suite, [files[suite][1]]).append(entry[1])
        files[suite] = entry
    for suite, names in ambiguous.items():
        del files[suite]
        missing.append(
            Missing(
                what=suite,
                detail=f"several summaries hold this suite ({', '.join(names)}); name the "
                "one to analyse (load_run(..., summaries=[...]))",
            )
        )
    for suite in SUITES:
        if suite not in files and suite not in ambiguous and (run_dir / f"{suite}.json").is_file():
            files[suite] = (f"{suite}.json", f"{suite}.crucible.json")
    return files


def _split_name(name: str) -> tuple[str, str, str, str] | None:
    parts = name.split(".")
    if len(parts) != 4:
        return None
    return parts[0], parts[1], parts[2], parts[3]


def float_or_none(value: Any) -> float | None:
    """A JSON number as a finite float; None for anything else (booleans included)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _point(raw: Mapping[str, Any]) -> SweepPointData | None:
    value = float_or_none(raw.get("value"))
    offered = float_or_none(raw.get("offered_eps"))
    achieved = float_or_none(raw.get("achieved_eps"))
    if value is None or offered is None or achieved is None:
        return None
    return SweepPointData(
        value=value,
        offered_eps=offered,
        achieved_eps=achieved,
        latency_p99_s=float_or_none(raw.get("latency_p99_s")),
        error_rate_pct=float_or_none(raw.get("error_rate_pct")) or 0.0,
        cpu_pct=float_or_none(raw.get("cpu_pct")) or 0.0,
        passed=bool(raw.get("passed")),
        reason=str(raw.get("reason") or ""),
    )


def _has_faults(params: Mapping[str, Any]) -> bool:
    keys = ("crucible_failure_rate", "crucible_crashed_services", "crucible_slow_services")
    return any((float_or_none(params.get(k)) or 0.0) > 0 for k in keys)


def _pyperf_cases(
    suite: str, path: Path, missing: list[Missing]
) -> dict[tuple[str, str], dict[str, Any]]:
    """(case, coordinator) -> fields read from a pyperf file."""
    import pyperf  # imported here: only the loader needs it

    out: dict[tuple[str, str], dict[str, Any]] = {}
    try:
        loaded = pyperf.BenchmarkSuite.load(str(path))
    except Exception as exc:  # any unreadable file is reported, whatever pyperf raised
        missing.append(
            Missing(what=path.name, detail=f"{suite} results unreadable ({exc}); rerun the suite")
        )
        return out
    for bench in loaded.get_benchmarks():
        parsed = _split_name(bench.get_name())
        if parsed is None or parsed[0] != suite:
            continue
        _, case, coordinator, metric = parsed
        meta = bench.get_metadata()
        entry = out.setdefault((case, coordinator), {"values": {}, "meta": dict(meta)})
        entry["values"][metric] = tuple(float(v) for v in bench.get_values())
        if metric == "time":
            entry["meta"] = dict(meta)
    return out


def load_run(
    run_dir: str | Path,
    *,
    summaries: Sequence[str | Path] | None = None,
    pyperf_files: Sequence[str | Path] | None = None,
) -> RunData:
    """Read a run folder: each suite's pyperf file and JSON summary (``summaries``, the
    summary files to read, relative to ``run_dir``; else those ``manifest.json`` names;
    else the ``*.crucible.json`` summaries; else ``{suite}.json``). With ``pyperf_files``
    only those pyperf files are read (benchmarks of any suite, by name), with no summary:
    the metrics stored only in summaries are then reported missing.

    Missing or unreadable files, summaries of an unknown schema and suites or coordinators
    without results become :class:`Missing` entries naming the file, never an invented
    figure and never a silent skip. Time values come from the pyperf file (pyperf's own
    measurement); every other metric from the summary, which keeps every sample, zeros
    and metadata metrics included, or from the pyperf file when there is no summary.
    """
    root = Path(run_dir)
    missing: list[Missing] = []
    manifest = _read_manifest(root, missing)
    cases: list[CaseResult] = []
    found_suites: list[str] = []
    if pyperf_files is not None:
        cases = _pyperf_only(root, pyperf_files, missing)
        found_suites = [s for s in SUITES if any(c.suite == s for c in cases)]
    files = {} if pyperf_files is not None else _suite_files(root, manifest, summaries, missing)
    planned = manifest.get("suites") if manifest is not None else None
    reported = {m.what for m in missing}
    for suite in SUITES:
        if suite in reported or suite in found_suites:
            continue
        if suite not in files:
            missing.append(_absent_suite(root, suite, planned))
            continue
        suite_cases = _load_suite(root, suite, files[suite], missing)
        if suite_cases:
            found_suites.append(suite)
        cases.extend(suite_cases)
    coordinators = list(dict.fromkeys(c.coordinator for c in cases))
    for name in (BASE, CANDIDATE, FLOOR):
        if cases and name not in coordinators:
            missing.append(
                Missing(what=f"coordinator {name}", detail="no results for it in any suite")
            )
    return RunData(
        source=str(root),
        cases=tuple(cases),
        suites=tuple(found_suites),
        coordinators=tuple(coordinators),
        missing=tuple(missing),
        set_name=str(manifest["set"]) if manifest and manifest.get("set") else None,
        commit=str(manifest["commit"]) if manifest and manifest.get("commit") else None,
    )


def _read_manifest(root: Path, missing: list[Missing]) -> Mapping[str, Any] | None:
    """The run's ``manifest.json`` when it exists and holds an object."""
    manifest_path = root / "manifest.json"
    if not manifest_path.is_file():
        return None
    try:
        loaded = _read_json(manifest_path)
    except (OSError, ValueError) as exc:
        missing.append(Missing(what="manifest.json", detail=f"unreadable ({exc})"))
        return None
    return loaded if isinstance(loaded, dict) else None


def _absent_suite(root: Path, suite: str, planned: Any) -> Missing:
    """Why a suite has no files: not run at all, or run (or planned) without results."""
    if planned is None or suite in planned:
        return Missing(what=suite, detail=f"no result files for this suite in {root}")
    return Missing(what=suite, detail="not run (not in the run's suites)")


def _load_suite(
    root: Path, suite: str, names: tuple[str, str], missing: list[Missing]
) -> list[CaseResult]:
    """One suite's cases from its pyperf file and its summary (``names``)."""
    pyperf_name, summary_name = names
    pyperf_path = root / pyperf_name
    from_pyperf: dict[tuple[str, str], dict[str, Any]] = {}
    if pyperf_path.is_file():
        from_pyperf = _pyperf_cases(suite, pyperf_path, missing)
    else:
        missing.append(Missing(what=pyperf_name, detail=f"{suite}: pyperf result file not found"))
    summary = _read_summary(root, summary_name, suite, bool(from_pyperf), missing)
    return _merge_case(suite, from_pyperf, summary)


def _read_summary(
    root: Path, summary_name: str, suite: str, have_pyperf: bool, missing: list[Missing]
) -> dict[str, Any] | None:
    """A suite's summary when it is readable and of a schema this reader knows; a summary
    that is absent is reported only where the pyperf file had results to complete."""
    summary_file = root / summary_name
    if not summary_file.is_file():
        if have_pyperf:
            missing.append(
                Missing(
                    what=summary_name,
                    detail=f"{suite}: summary not found; error rates, sweep curves, RSS series "
                    "and leak figures of this suite are unavailable",
                )
            )
        return None
    try:
        doc = _read_json(summary_file)
    except (OSError, ValueError) as exc:
        missing.append(Missing(what=summary_name, detail=f"unreadable ({exc})"))
        return None
    if not isinstance(doc, dict):
        return None
    version = doc.get("schema_version")
    if version not in SUMMARY_SCHEMA_VERSIONS or doc.get("kind") != SUMMARY_KIND:
        missing.append(
            Missing(
                what=summary_name,
                detail=f"summary schema_version {version!r} / kind "
                f"{doc.get('kind')!r} is not one this report reads "
                f"({sorted(SUMMARY_SCHEMA_VERSIONS)}); update the gate",
            )
        )
        return None
    return doc


def _pyperf_only(
    root: Path, pyperf_files: Sequence[str | Path], missing: list[Missing]
) -> list[CaseResult]:
    cases: list[CaseResult] = []
    for suite in SUITES:
        merged: dict[tuple[str, str], dict[str, Any]] = {}
        for name in pyperf_files:
            path = root / name
            if not path.is_file():
                continue
            for key, got in _pyperf_cases(suite, path, []).items():
                entry = merged.setdefault(key, {"values": {}, "meta": {}})
                entry["values"].update(got["values"])
                entry["meta"] = {**got["meta"], **entry["meta"]}
        cases.extend(_merge_case(suite, merged, None))
    for name in pyperf_files:
        path = root / name
        if not path.is_file():
            missing.append(Missing(what=str(name), detail="pyperf result file not found"))
        else:
            _check_loads(path, missing)
    if cases:
        missing.append(
            Missing(
                what="summaries",
                detail="only pyperf files were read: error rates, sweep curves and labels, RSS "
                "series and leak figures are not in them",
            )
        )
    return cases


def _check_loads(path: Path, missing: list[Missing]) -> None:
    import pyperf

    try:
        pyperf.BenchmarkSuite.load(str(path))
    except Exception as exc:  # any unreadable file is reported, whatever pyperf raised
        missing.append(Missing(what=path.name, detail=f"unreadable ({exc})"))


def _merge_case(
    suite: str,
    from_pyperf: Mapping[tuple[str, str], Mapping[str, Any]],
    summary: Mapping[str, Any] | None,
) -> list[CaseResult]:
    entries: dict[tuple[str, str], dict[str, Any]] = {}
    for key, got in from_pyperf.items():
        meta = got["meta"]
        entries[key] = {
            "params": dict(meta),
            "description": "",
            "values": {m: tuple(v) for m, v in got["values"].items()},
            "samples": [],
        }
    benchmarks = summary.get("benchmarks", {}) if summary is not None else {}
    for entry in benchmarks.values() if isinstance(benchmarks, dict) else ():
        if not isinstance(entry, dict) or entry.get("suite") != suite:
            continue
        key = (str(entry.get("case")), str(entry.get("coordinator")))
        target = entries.setdefault(key, {"params": {}, "description": "", "values": {}})
        params = entry.get("params")
        if isinstance(params, dict):
            target["params"] = {**target["params"], **params}
        target["description"] = str(entry.get("description") or "")
        raw_samples = [s for s in entry.get("samples", ()) if isinstance(s, dict)]
        target["samples"] = raw_samples
        sample_values = [
            s["values"] if isinstance(s.get("values"), dict) else {} for s in raw_samples
        ]
        names = dict.fromkeys(name for values in sample_values for name in values)
        merged = {
            name: tuple(float_or_none(values.get(name)) for values in sample_values)
            for name in names
        }
        pyperf_time = target["values"].get("time")
        if pyperf_time is not None or from_pyperf:
            # pyperf's own time measurement is the one the gate and pyperf tools read.
            merged.pop("time", None)
            if pyperf_time is not None:
                merged["time"] = pyperf_time
        target["values"] = merged
    return [
        _case_result(suite, case, coordinator, got) for (case, coordinator), got in entries.items()
    ]


def _case_result(suite: str, case: str, coordinator: str, got: Mapping[str, Any]) -> CaseResult:
    """One case's merged fields as a :class:`CaseResult`; the labels, sweep points and RSS
    series are the last sample's."""
    case_params: dict[str, Any] = dict(got["params"])
    samples: list[dict[str, Any]] = list(got.get("samples", []))
    last: dict[str, Any] = samples[-1] if samples else {}
    raw_labels = last.get("labels")
    labels: dict[str, Any] = raw_labels if isinstance(raw_labels, dict) else {}
    points = [_point(p) for p in last.get("points", ()) if isinstance(p, dict)]
    series = [
        (float(p[0]), float(p[1]))
        for p in last.get("rss_series", ())
        if isinstance(p, list | tuple) and len(p) == 2
    ]
    events = case_params.get("crucible_events")
    axis = case_params.get("crucible_sweep_axis")
    return CaseResult(
        suite=suite,
        case=case,
        coordinator=coordinator,
        kind=str(case_params.get("crucible_kind") or "workload"),
        description=str(got.get("description") or ""),
        events=int(events) if isinstance(events, int | float) and events > 0 else None,
        faults=_has_faults(case_params),
        sweep_axis=str(axis) if isinstance(axis, str) else None,
        params={
            str(k): v
            for k, v in case_params.items()
            if isinstance(v, str | int | float) and not isinstance(v, bool)
        },
        values=got["values"],
        loops=tuple(int(s.get("loops") or 1) for s in samples),
        labels={str(k): str(v) for k, v in labels.items()},
        sweep_points=tuple(p for p in points if p is not None),
        rss_series=tuple(series),
    )
