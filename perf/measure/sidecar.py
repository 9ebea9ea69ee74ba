"""pyperf wiring of the suite scripts: time in pyperf, every other metric through a side file.

Each suite script calls ``main(suite)``. It builds one ``pyperf.Runner`` whose time function
runs ``loops`` workloads of a case and returns their total wall time, so pyperf calibrates
the loops, runs the warm-ups and spawns the worker processes as usual.

The other metrics are measured by the workers in the same calls (the memory suite's
tracemalloc figures in one extra, untimed workload per worker process). A worker writes
them to a side file (JSON lines in a directory passed to every worker as ``--sidecar
DIR``), only for the calls whose time pyperf keeps as values: never in calibration workers
(``--calibrate-loops``, ``--recalibrate-loops``, ``--calibrate-warmups``,
``--recalibrate-warmups``) and never in a worker's first ``--warmups`` calls. When every
benchmark has run, the main process adds one pyperf run per worker process per metric to
the output file (``-o`` or ``--append``) and writes the JSON summary beside it
(``summary_path``): every sample's figures, including the metrics that cannot be pyperf
values, the leak runs' RSS series and the sweeps' curves, for the reports' charts.

Run one case of one coordinator from a given source tree, fresh processes, fixed loops::

    python TREE/perf/measure/bench_daemon_performance.py --set quick --case medium \\
        --coordinator core -p 1 -n 3 -w 1 -l 16 --append base.json
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import json
import math
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyperf

import crucible
from perf.files import write_json
from perf.measure.memory import leak_record, leak_run, leak_sample, leak_slopes, traced_workload
from perf.measure.meta import git_state, load_average, machine_info
from perf.measure.scalability import measure_step, run_sweep, sweep_sample
from perf.measure.suite_options import PROGRESS_PREFIX, build_runner, coordinators, split_values
from perf.paths import REPO_ROOT
from perf.workload.cases import Case, Kind, select_cases
from perf.workload.library import (
    CoordinatorError,
    RunResult,
    RunSpec,
    measure,
    resolve_factory,
)
from perf.workload.metrics import (
    METRICS,
    SampleValues,
    Storage,
    check_accounting,
    downsample,
    workload_sample,
)

__all__ = [
    "PROGRESS_PREFIX",
    "SUMMARY_SCHEMA_VERSION",
    "main",
    "merge_samples",
    "metric_runs",
    "read_samples",
    "summary_path",
]

SUMMARY_SCHEMA_VERSION = 1
SAMPLES_FILE = "samples.jsonl"
CONTEXT_FILE = "context.json"
RSS_SERIES_POINTS = 400

Meta = dict[str, str | int | float]


# --------------------------------------------------------------------------------------------
# Context: metadata common to every benchmark of one script run
# --------------------------------------------------------------------------------------------


def _utc_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def build_context(root: Path, set_name: str, affinity: str | None) -> dict[str, Any]:
    git = git_state(root)
    machine = machine_info()
    return {
        "root": str(root),
        "set": set_name,
        "commit": git.commit,
        "dirty": git.dirty,
        "machine": machine.as_dict(),
        "load_avg_before": list(load_average()),
        "affinity": affinity,
        "started_utc": _utc_now(),
        "python_executable": sys.executable,
    }


def context_metadata(context: dict[str, Any]) -> Meta:
    machine = context["machine"]
    return {
        "crucible_commit": context["commit"],
        "crucible_dirty": int(bool(context["dirty"])),
        "crucible_machine": machine["fingerprint"],
        "crucible_cpu_model": machine["cpu_model"] or "unknown",
        "crucible_cpu_count": machine["cpu_count"],
        "crucible_memory_total_bytes": machine["memory_total_bytes"],
        "crucible_os": machine["os"],
        "crucible_python": f"{machine['python_implementation']} {machine['python_version']}",
        "crucible_load_avg_before": float(context["load_avg_before"][0]),
        "crucible_set": context["set"],
        "crucible_source_root": context["root"],
        "crucible_affinity": context["affinity"] or "none",
    }


# --------------------------------------------------------------------------------------------
# Worker side: measure, and record the samples pyperf keeps
# --------------------------------------------------------------------------------------------


class Recorder:
    """Decides which calls of a time function are value computations, and writes their
    figures to the side file. One per process; the worker id tells processes apart (pids
    can be reused by successive workers)."""

    def __init__(self, args: argparse.Namespace, directory: Path) -> None:
        self.calibrating = bool(
            args.calibrate_loops
            or args.recalibrate_loops
            or args.calibrate_warmups
            or args.recalibrate_warmups
        )
        self.warmups = int(args.warmups or 0)
        self.path = directory / SAMPLES_FILE
        self.worker = uuid.uuid4().hex[:12]
        self._calls: dict[str, int] = {}
        self._traced: set[str] = set()

    def begin(self, name: str) -> bool:
        """Count a call of ``name``'s time function; True if its figures are to be kept."""
        n = self._calls.get(name, 0) + 1
        self._calls[name] = n
        return not self.calibrating and n > self.warmups

    def first_trace(self, name: str) -> bool:
        """True once per benchmark and process: tracemalloc slows a workload several
        times, so each worker traces one extra workload, with its first kept value."""
        if name in self._traced:
            return False
        self._traced.add(name)
        return True

    def write(self, record: dict[str, Any]) -> None:
        record = {"worker": self.worker, "pid": os.getpid(), **record}
        line = json.dumps(record, separators=(",", ":"), allow_nan=False)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line + "\n")


async def _workloads(spec: RunSpec, loops: int) -> list[RunResult]:
    return [await measure(spec) for _ in range(loops)]


def _clean(values: SampleValues) -> SampleValues:
    return {
        k: (float(v) if v is not None and math.isfinite(v) else None) for k, v in values.items()
    }


def time_case(loops: int, case: Case, recorder: Recorder) -> float:
    """pyperf's time function: run ``loops`` of the case, return their total wall time."""
    keep = recorder.begin(case.name)
    # Move what is alive now (interpreter, pyperf, modules, earlier samples) out of the
    # collector's reach: the full collection each workload starts with then costs a few
    # hundred microseconds instead of ~10 ms, which would otherwise dominate the wall time
    # of light workloads (and pyperf's loop calibration) without being measured.
    gc.collect()
    gc.freeze()
    definition = case.definition
    spec = case.run_spec()
    labels: dict[str, str] = {}
    extra: dict[str, Any] = {}
    if definition.kind is Kind.WORKLOAD:
        results = asyncio.run(_workloads(spec, loops))
        for result in results:
            check_accounting(result)
        elapsed = math.fsum(r.wall_s for r in results)
        if not keep:
            return elapsed
        values = workload_sample(results)
        del results
        if definition.traced and recorder.first_trace(case.name):
            values.update(traced_workload(spec))
    elif definition.kind is Kind.LEAK:
        assert definition.leak is not None
        leaks = [leak_run(case.coordinator, spec, definition.leak) for _ in range(loops)]
        elapsed = math.fsum(r.wall_s for r in leaks)
        if not keep:
            return elapsed
        values = leak_sample(leaks)
        extra["leak_runs"] = leak_record(leaks)
        extra["rss_series"] = downsample(
            [(t, float(v)) for t, v in leaks[-1].rss_series], RSS_SERIES_POINTS
        )
    else:
        assert definition.sweep is not None
        sweep = definition.sweep

        def step(value: float) -> Any:
            return measure_step(definition, case.coordinator, value)

        sweeps = [run_sweep(sweep, step) for _ in range(loops)]
        elapsed = math.fsum(r.wall_s for r in sweeps)
        if not keep:
            return elapsed
        values, labels = sweep_sample(sweeps)
        extra["points"] = [p.as_dict() for p in sweeps[-1].points]
    values["time"] = elapsed / loops
    recorder.write(
        {
            "bench": case.name,
            "loops": loops,
            "values": _clean(values),
            "labels": labels,
            "load_avg_1min": load_average()[0],
            "date": dt.datetime.now().isoformat(" "),
            **extra,
        }
    )
    return elapsed


# --------------------------------------------------------------------------------------------
# Main side: merge the side file into the pyperf file and write the summary
# --------------------------------------------------------------------------------------------


def read_samples(path: Path) -> list[dict[str, Any]]:
    """The side file's records; a truncated last line (a worker killed mid-write) is an
    error, not something to skip."""
    if not path.exists():
        return []
    out: list[dict[str, Any]] = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: corrupt side-file record: {exc}") from None
    return out


def complete_samples(cases: Sequence[Case], records: list[dict[str, Any]]) -> None:
    """Fill in the figures the workers leave to the main process: the leak slopes (scipy
    is too slow to import in every worker)."""
    leaks = {c.name: c.definition.leak for c in cases if c.definition.leak is not None}
    for record in records:
        leak = leaks.get(record.get("bench", ""))
        if leak is not None and record.get("leak_runs"):
            record["values"].update(_clean(leak_slopes(record["leak_runs"], leak.warmup_batches)))


def _group_by_worker(records: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        out.setdefault(str(record["worker"]), []).append(record)
    return out


def _meta_value(value: Any) -> str | int | float | None:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float) and math.isfinite(value):
        return value
    if isinstance(value, str) and value.strip() and "\n" not in value and "\r" not in value:
        return value
    return None


def metric_runs(
    case: Case, records: Sequence[dict[str, Any]], common: Meta
) -> dict[str, list[pyperf.Run]]:
    """One pyperf run per worker process per ``benchmark``-stored metric of the case.

    Each run's metadata carries the worker's ``metadata`` metrics (their mean over its
    samples, ``crucible_<metric>``), its labels, the case parameters and ``common``.
    A value that is missing or not > 0 is left out and counted in
    ``crucible_<metric>_nonpositive``; a worker left with no value has no run.
    """
    mine = [r for r in records if r.get("bench") == case.name]
    metrics = case.definition.metrics
    out: dict[str, list[pyperf.Run]] = {}
    for worker, samples in _group_by_worker(mine).items():
        shared: Meta = dict(common)
        shared.update(case.metadata())
        shared["crucible_worker"] = worker
        shared["loops"] = int(samples[0]["loops"])
        # The worker's time is accounted by its time run; a metric run adds none, so that
        # pyperf's total duration of a file stays the time actually spent.
        shared["duration"] = 0.0
        if isinstance(samples[0].get("date"), str):
            shared["date"] = samples[0]["date"]
        for name in metrics:
            m = METRICS[name]
            if m.storage is Storage.METADATA:
                got = [s["values"].get(name) for s in samples]
                nums = [float(v) for v in got if v is not None]
                if nums:
                    shared[f"crucible_{name}"] = math.fsum(nums) / len(nums)
            elif m.storage is Storage.LABEL:
                for key, value in samples[-1].get("labels", {}).items():
                    clean = _meta_value(value)
                    if clean is not None:
                        shared[f"crucible_{key}"] = clean
        for name in metrics[1:]:
            m = METRICS[name]
            if m.storage is not Storage.BENCHMARK:
                continue
            got = [s["values"].get(name) for s in samples]
            good = [float(v) for v in got if v is not None and v > 0]
            meta: Meta = dict(shared)
            meta["name"] = case.benchmark(name)
            meta["unit"] = m.unit
            if len(good) < len(got):
                meta[f"crucible_{name}_nonpositive"] = len(got) - len(good)
            if good:
                out.setdefault(name, []).append(
                    pyperf.Run(good, metadata=meta, collect_metadata=False)
                )
    return out


def merge_samples(
    suite: pyperf.BenchmarkSuite,
    cases: Sequence[Case],
    records: Sequence[dict[str, Any]],
    common: Meta,
) -> list[str]:
    """Add the metric runs of ``records`` to ``suite`` (into existing benchmarks of the
    same name when appending); returns the names of the benchmarks that got runs."""
    added: list[str] = []
    for case in cases:
        for name, runs in metric_runs(case, records, common).items():
            suite.add_runs(pyperf.Benchmark(runs))
            added.append(case.benchmark(name))
    return added


def summary_path(output: str | os.PathLike[str]) -> Path:
    """The JSON summary beside a pyperf file: ``x.json`` -> ``x.crucible.json``."""
    path = Path(output)
    stem = path.name[: -len(".json")] if path.name.endswith(".json") else path.name
    return path.with_name(f"{stem}.crucible.json")


def build_summary(
    suite_name: str,
    cases: Sequence[Case],
    records: Sequence[dict[str, Any]],
    invocation: dict[str, Any],
    previous: dict[str, Any] | None,
) -> dict[str, Any]:
    """The summary document: per benchmark its case, metrics (unit, storage, direction)
    and every sample; ``previous`` (an earlier summary of an appended file) is extended."""
    if previous is not None:
        version = previous.get("schema_version")
        if version != SUMMARY_SCHEMA_VERSION:
            raise ValueError(
                f"summary schema_version {version!r} is not {SUMMARY_SCHEMA_VERSION}; "
                "write to a new output file"
            )
        doc = previous
    else:
        doc = {
            "schema_version": SUMMARY_SCHEMA_VERSION,
            "kind": "crucible-perf-summary",
            "suite": suite_name,
            "invocations": [],
            "benchmarks": {},
        }
    index = len(doc["invocations"])
    doc["invocations"].append(invocation)
    for case in cases:
        entry = doc["benchmarks"].setdefault(
            case.name,
            {
                "suite": case.definition.suite,
                "case": case.definition.name,
                "coordinator": case.label,
                "coordinator_spec": case.coordinator,
                "description": case.definition.description,
                "params": case.metadata(),
                "metrics": {
                    name: {
                        "benchmark": case.benchmark(name),
                        "unit": METRICS[name].unit,
                        "storage": METRICS[name].storage.value,
                        "direction": METRICS[name].direction.value,
                        "description": METRICS[name].description,
                    }
                    for name in case.definition.metrics
                },
                "samples": [],
            },
        )
        for record in records:
            if record.get("bench") == case.name:
                sample = {k: v for k, v in record.items() if k != "bench"}
                sample["invocation"] = index
                entry["samples"].append(sample)
    return doc


def _finish(
    output: Path,
    suite_name: str,
    cases: Sequence[Case],
    sidecar: Path,
    context: dict[str, Any],
    append: bool,
    quiet: bool,
) -> None:
    records = read_samples(sidecar / SAMPLES_FILE)
    complete_samples(cases, records)
    load_after = list(load_average())
    invocation = dict(context, load_avg_after=load_after, finished_utc=_utc_now())
    common = context_metadata(context)
    common["crucible_load_avg_after"] = float(load_after[0])
    if output.exists():
        suite = pyperf.BenchmarkSuite.load(str(output))
        added = merge_samples(suite, cases, records, common)
        tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
        suite.dump(str(tmp), replace=True)
        os.replace(tmp, output)
        if not quiet:
            _print_metrics(suite, added)
    summary = summary_path(output)
    previous = None
    if append and summary.exists():
        with open(summary, encoding="utf-8") as f:
            previous = json.load(f)
    doc = build_summary(suite_name, cases, records, invocation, previous)
    doc["pyperf_file"] = output.name
    write_json(summary, doc)


def _print_metrics(suite: pyperf.BenchmarkSuite, names: Sequence[str]) -> None:
    for name in names:
        bench = suite.get_benchmark(name)
        values = bench.get_values()
        text = bench.format_value(bench.mean())
        if len(values) > 1:
            text += f" +- {bench.format_value(bench.stdev())}"
        print(f"{name}: Mean +- std dev: {text} ({len(values)} values)")
    sys.stdout.flush()


# --------------------------------------------------------------------------------------------
# Entry point of the suite scripts
# --------------------------------------------------------------------------------------------


def _progress(event: str, **fields: Any) -> None:
    print(PROGRESS_PREFIX + json.dumps({"event": event, **fields}), flush=True)


def _check_tree(root: Path) -> str | None:
    here = Path(crucible.__file__).resolve()
    if root not in here.parents:
        return (
            f"crucible was imported from {here.parent}, not from the tree {root}; run the "
            "script by its path inside the tree to measure"
        )
    return None


class _Refused(Exception):
    """A run the suite script refuses; ``main`` prints the message and exits 2."""


def _selected_cases(suite_name: str, args: argparse.Namespace) -> list[Case]:
    """The suite's cases the command line selects, their coordinators resolved (which
    imports them)."""
    try:
        cases = select_cases(
            suite_name, args.crucible_set, coordinators(args), split_values(args.crucible_cases)
        )
        for spec in dict.fromkeys(c.coordinator for c in cases):
            resolve_factory(spec)
    except (ValueError, CoordinatorError) as exc:
        raise _Refused(str(exc)) from exc
    return cases


def _serve_worker(runner: pyperf.Runner, args: argparse.Namespace, cases: Sequence[Case]) -> None:
    """A pyperf worker process: the cases' time functions, recording into the side file
    the main process made."""
    if not args.crucible_sidecar:
        raise _Refused("a worker needs --sidecar DIR")
    sidecar = Path(args.crucible_sidecar)
    with open(sidecar / CONTEXT_FILE, encoding="utf-8") as f:
        context = json.load(f)
    runner.metadata.update(context_metadata(context))
    recorder = Recorder(args, sidecar)
    for case in cases:
        runner.bench_time_func(
            case.benchmark("time"), time_case, case, recorder, metadata=case.metadata()
        )


def _bench_cases(
    runner: pyperf.Runner, args: argparse.Namespace, cases: Sequence[Case], recorder: Recorder
) -> None:
    """Each case through pyperf in turn (a case's fixed loops unless ``--loops`` is given),
    with progress lines when asked for."""
    for n, case in enumerate(cases, 1):
        if args.crucible_progress:
            _progress("start", name=case.name, index=n, total=len(cases))
        loops_before = args.loops
        if case.definition.fixed_loops and not args.loops:
            args.loops = case.definition.fixed_loops
        started = time.monotonic()
        try:
            runner.bench_time_func(
                case.benchmark("time"), time_case, case, recorder, metadata=case.metadata()
            )
        finally:
            args.loops = loops_before
        if args.crucible_progress:
            elapsed_s = time.monotonic() - started
            _progress("done", name=case.name, index=n, total=len(cases), elapsed_s=elapsed_s)


def _run_suite(
    suite_name: str,
    runner: pyperf.Runner,
    args: argparse.Namespace,
    cases: Sequence[Case],
    argv: Sequence[str],
) -> None:
    """The main process: check the tree, write the run's context to the side file, bench
    every case, then merge the side file's metrics into the output (also after a failure,
    so what was measured is kept)."""
    problem = _check_tree(REPO_ROOT)
    if problem:
        raise _Refused(problem)
    own_sidecar = not args.crucible_sidecar
    if own_sidecar:
        args.crucible_sidecar = tempfile.mkdtemp(prefix="crucible-sidecar-")
    sidecar = Path(args.crucible_sidecar)
    sidecar.mkdir(parents=True, exist_ok=True)
    context = build_context(REPO_ROOT, args.crucible_set, args.affinity)
    context["suite"] = suite_name
    context["argv"] = " ".join(argv)
    write_json(sidecar / CONTEXT_FILE, context)
    runner.metadata.update(context_metadata(context))
    recorder = Recorder(args, sidecar)  # used only with --in-process
    output = args.output or args.append
    failed: BaseException | None = None
    try:
        _bench_cases(runner, args, cases, recorder)
    except BaseException as exc:  # merge what was measured, then fail as pyperf did
        failed = exc
        raise
    finally:
        try:
            if output:
                append, quiet = bool(args.append), bool(args.quiet)
                _finish(Path(output), suite_name, cases, sidecar, context, append, quiet=quiet)
        except Exception as exc:
            print(f"{suite_name}: could not merge the side file: {exc}", file=sys.stderr)
            if failed is None:
                raise
        finally:
            if own_sidecar:
                shutil.rmtree(sidecar, ignore_errors=True)


def main(suite_name: str, argv: Sequence[str] | None = None) -> int:
    """Run the suite's selected cases under pyperf; see the module docstring."""
    argv = list(sys.argv[1:] if argv is None else argv)
    runner, args = build_runner(suite_name, argv)
    try:
        cases = _selected_cases(suite_name, args)
        if args.crucible_list:
            for case in cases:
                print(f"{case.name}: {', '.join(case.definition.metrics)}")
            return 0
        if not cases:
            raise _Refused(
                f"no case of the {args.crucible_set} set applies to {', '.join(coordinators(args))}"
            )
        if args.worker:
            _serve_worker(runner, args, cases)
        else:
            _run_suite(suite_name, runner, args, cases, argv)
    except _Refused as exc:
        print(f"{suite_name}: {exc}", file=sys.stderr)
        return 2
    return 0
