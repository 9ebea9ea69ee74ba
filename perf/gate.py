"""The gate: measure head against a base, decide, report. ``python -m perf gate``.

PR mode (``--base REF``, or the merge base with the default branch): the base commit is
checked out in a git worktree; each side of each round is a fresh process
(``perf.measure.sample``). Within a round, every unpaced case is measured ``UNPACED_REPEATS`` times
per side, base and head alternating in random order ask by ask, and the round's figure per
side is the median of its repeats: both sides sample the same seconds of the machine, so a
machine that changes speed mid-round moves both. Comparisons use the paired per-round
ratios. Inconclusive comparisons get more rounds of their own cases only, up to the
policy's ``max_rounds`` and the time budget (in both modes).

Baseline mode (``--baseline``, or when there is no base): head rounds are compared with the
stored baseline under baselines/ (unpaired statistics), on calibrated values when the
baseline comes from another machine.

Nothing below ``main`` prints to stdout or exits; ``main`` maps every GateError (and any
unexpected exception) to exit 2, so the gate never passes a build it could not measure.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import random
import select
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from perf.decide.outcome import GateOutcome
from perf.decide.policy import Mode, Policy, load_policy
from perf.decide.verdict import (
    Comparison,
    Verdict,
    compare,
    exit_status,
    hold_for_machine,
    machine_shift,
    needs_more_samples,
    run_verdict,
)
from perf.errors import ExitCode, GateError, OutputError, RefError, ResultError, exit_code
from perf.files import write_json
from perf.rundir import Artifact
from perf.workload.plan import UNPACED_REPEATS, cases_to_rerun, gated_keys, plan_cases

__all__ = [
    "GateConfig",
    "RoundSamples",
    "main",
    "merge_repeats",
    "run_gate",
]

from perf.paths import DEFAULT_OUTPUT
from perf.paths import REPO_ROOT as ROOT

DEFAULT_BUDGET_S = 360.0
# Differential profiles of regressions start only if they can end within this long after
# the measuring budget: a PR run then stays within 8 minutes (360 + 90 s, plus reports).
PROFILE_ALLOWANCE_S = 90.0
_KERNEL_NOTE = "calibration kernel"
SAMPLE_TIMEOUT_S = 600.0


@dataclass(frozen=True, slots=True, kw_only=True)
class GateConfig:
    mode: Mode
    base_ref: str | None
    baseline_path: Path | None
    set_name: str
    coordinators: tuple[str, ...]
    strict: bool
    output: Path
    keep: int
    rounds: int | None
    budget_s: float
    seed: int
    root: Path = ROOT
    write_baseline: bool = False
    suites_set: str | None = None  # also measure this pyperf suite set into the run folder
    suites: str | None = None
    pyperf_speed: str | None = None  # "--fast" or "--rigorous" for the suites
    analysis_from: Path | None = None
    profile: bool = False


@dataclass(slots=True)
class RoundSamples:
    """Samples per side, benchmark and metric, in the order measured (a case left out of a
    round has no entry for it); and the calibration kernel's time per round, where a round
    timed it (only runs that compare with or write a baseline do)."""

    calibration_s: dict[str, list[float]] = field(default_factory=dict)
    values: dict[str, dict[str, dict[str, list[float | None]]]] = field(default_factory=dict)
    counted: dict[str, int] = field(default_factory=dict)

    def add(self, side: str, document: Mapping[str, Any]) -> None:
        self.counted[side] = self.counted.get(side, 0) + 1
        calibration = document.get("calibration")
        if calibration is not None:
            self.calibration_s.setdefault(side, []).append(float(calibration["seconds"]))
        per_side = self.values.setdefault(side, {})
        for bench, metrics in document["samples"].items():
            for metric, value in metrics.items():
                per_side.setdefault(bench, {}).setdefault(metric, []).append(value)

    def rounds(self, side: str) -> int:
        return self.counted.get(side, 0)


# ----------------------------------------------------------------------------------------
# Running rounds
# ----------------------------------------------------------------------------------------


class _Worker:
    """One side's ``perf.measure.sample`` process for one round, driven line by line."""

    def __init__(self, side: str, tree: Path, plan_file: Path, label: str) -> None:
        self.side = side
        self.tree = tree
        self.label = label
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": "0"}
        # Kept open for the worker's lifetime; its tail explains a crash. Closed by the GC.
        self._stderr = tempfile.TemporaryFile(mode="w+", encoding="utf-8")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "perf.measure.sample",
                "--tree",
                str(tree),
                "--plan",
                str(plan_file),
            ],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            bufsize=1,
        )

    def _crashed(self, what: str) -> ResultError:
        self.close()
        self._stderr.seek(0)
        tail = "\n".join(self._stderr.read().strip().splitlines()[-8:])
        return ResultError(
            f"benchmark worker on {self.tree} {what} (exit {self.proc.returncode}): {tail}",
            self.label,
            "fix the crash, then rerun nox -s perf_quick",
        )

    def read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], SAMPLE_TIMEOUT_S)
        if not ready:
            raise self._crashed(f"did not answer within {SAMPLE_TIMEOUT_S:.0f} s")
        line = self.proc.stdout.readline()
        if not line:
            raise self._crashed("crashed")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def ask(self, request: Mapping[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise self._crashed("crashed") from None
        return self.read()

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write(json.dumps({"op": "exit"}) + "\n")
                self.proc.stdin.close()
                self.proc.wait(timeout=30)
            except (BrokenPipeError, subprocess.TimeoutExpired, OSError):
                self.proc.kill()
                self.proc.wait()


def merge_repeats(asks: Sequence[Mapping[str, float | None]]) -> dict[str, float | None]:
    """One side's figures of a case for a round, from its repeated asks: per metric the
    median of the asks that reported it (traced figures come from the first ask only). A
    metric one ask could not measure (None) stays None, which refuses the comparison."""
    if not asks:
        raise ValueError("a round's figure needs at least one ask")
    merged: dict[str, float | None] = {}
    for metric in dict.fromkeys(k for ask in asks for k in ask):
        values = [ask[metric] for ask in asks if metric in ask]
        if any(v is None for v in values):
            merged[metric] = None
        else:
            merged[metric] = statistics.median(v for v in values if v is not None)
    return merged


def _run_round(
    sides: Mapping[str, Path],
    plan: Sequence[Mapping[str, Any]],
    plan_file: Path,
    rng: random.Random,
    n: int,
    indices: Sequence[int],
) -> dict[str, dict[str, Any]]:
    """One round of the cases at ``indices``: a fresh worker per side; each case asked
    ``repeats`` times per side, the sides alternating in random order ask by ask. Returns
    each side's document (calibration and per-case figures, see ``merge_repeats``)."""
    workers = {
        side: _Worker(side, tree, plan_file, f"{side} round {n}") for side, tree in sides.items()
    }
    try:
        documents: dict[str, dict[str, Any]] = {}
        for side, worker in workers.items():
            hello = worker.read()
            if "error" in hello:
                raise ResultError(
                    f"benchmark crashed on {sides[side]}: {hello['error']}",
                    hello["bench"],
                    "fix the crash, then rerun nox -s perf_quick",
                )
            measured = Path(hello["crucible_file"])
            if not measured.is_relative_to(worker.tree.resolve()):
                raise ResultError(
                    f"the worker measured crucible from {measured}, not from {worker.tree}",
                    worker.label,
                    "make sure the tree's crucible package is importable (no conflicting install)",
                )
            documents[side] = {"calibration": hello["calibration"], "samples": {}}
        order = list(workers)
        for index in indices:
            item = plan[index]
            asks: dict[str, list[dict[str, float | None]]] = {}
            asked = [side for side in order if side in item.get("sides", workers)]
            for repeat in range(int(item.get("repeats", 1))):
                rng.shuffle(asked)
                request = {"case": index, "warmup": bool(item["warmup"]) and not repeat}
                request["traced"] = not repeat
                for side in asked:
                    reply = workers[side].ask(request)
                    if "error" in reply:
                        raise ResultError(
                            f"benchmark crashed on {sides[side]}: {reply['error']}",
                            reply["bench"],
                            "fix the crash, then rerun nox -s perf_quick",
                        )
                    asks.setdefault(side, []).append(reply["values"])
            for side, values in asks.items():
                documents[side]["samples"][item["bench"]] = merge_repeats(values)
        return documents
    finally:
        for worker in workers.values():
            worker.close()


def _compile(tree: Path) -> None:
    """Byte-compile a tree's library up front: a fresh checkout would otherwise compile in
    every worker, and the compiler's garbage shows in that side's memory figures."""
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(tree / "crucible")],
        capture_output=True,
        check=False,
    )


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _run_rounds(
    sides: Mapping[str, Path],
    plan: list[dict[str, Any]],
    samples: RoundSamples,
    count: int,
    rng: random.Random,
    work: Path,
    t0: float,
    total_hint: int,
    indices: Sequence[int] | None = None,
    budget_s: float | None = None,
) -> float:
    """Run ``count`` rounds (of the cases at ``indices``, all by default); returns the
    seconds the last one took. Progress counts down to ``total_hint`` rounds, or for extra
    rounds (``budget_s`` given: their number is not known ahead) to the time budget."""
    plan_file = work / "plan.json"
    first = next(iter(sides))
    chosen = list(range(len(plan))) if indices is None else list(indices)
    took = 0.0
    for _ in range(count):
        n = samples.rounds(first) + 1
        started = time.monotonic()
        documents = _run_round(sides, plan, plan_file, rng, n, chosen)
        for side, document in documents.items():
            samples.add(side, document)
        took = time.monotonic() - started
        elapsed = time.monotonic() - t0
        if budget_s is None:
            of, left = f"{n}/{total_hint}", f"about {took * max(total_hint - n, 0):.0f} s left"
        else:
            of, left = f"{n}", f"at most {max(budget_s - elapsed, 0.0):.0f} s of the budget left"
        _progress(
            f"[gate] round {of} done ({len(chosen)} cases x {len(sides)} sides, "
            f"{took:.0f} s); elapsed {elapsed:.0f} s, {left}"
        )
    return took


def _finite(values: Sequence[float | None], bench: str, metric: str, side: str) -> list[float]:
    out = []
    for v in values:
        if v is None or not math.isfinite(v) or v <= 0:
            raise ResultError(
                f"{metric} has a missing or non-positive sample on the {side} side",
                bench,
                "check the coordinator delivers events in this case; rerun nox -s perf_quick",
            )
        out.append(float(v))
    return out


def _sample_map(
    samples: RoundSamples, side: str, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], list[float]]:
    values = samples.values.get(side, {})
    out = {}
    for bench, metric in keys:
        if bench not in values or metric not in values[bench]:
            raise ResultError(
                f"no {metric} samples on the {side} side", bench, "rerun nox -s perf_quick"
            )
        out[(bench, metric)] = _finite(values[bench][metric], bench, metric, side)
    return out


# ----------------------------------------------------------------------------------------
# Result files
# ----------------------------------------------------------------------------------------


def write_pyperf(
    path: Path,
    side_values: Mapping[str, Mapping[str, list[float | None]]],
    case_meta: Mapping[str, Mapping[str, str | int | float]],
) -> None:
    """Every benchmark-stored metric of one side as a pyperf suite: one run per round (one
    fresh process each), so ``python -m pyperf stats`` and ``compare_to`` read it. Each run
    carries its case's parameters (``crucible_*`` metadata: scenario, events, seeds)."""
    import pyperf

    from perf.workload.metrics import METRICS, Storage

    benchmarks = []
    for bench in sorted(side_values):
        for metric, values in sorted(side_values[bench].items()):
            info = METRICS.get(metric)
            if info is None or info.storage is not Storage.BENCHMARK:
                continue
            runs = [
                pyperf.Run(
                    [v],
                    metadata={
                        **case_meta.get(bench, {}),
                        "name": f"{bench}.{metric}",
                        "unit": info.unit,
                        "loops": 1,
                    },
                    collect_metadata=False,
                )
                for v in values
                if v is not None and v > 0
            ]
            if runs:
                benchmarks.append(pyperf.Benchmark(runs))
    if benchmarks:
        pyperf.BenchmarkSuite(benchmarks).dump(str(path), replace=True)


def _prepare_output(output: Path, short_commit: str) -> Path:
    from perf.rundir import new_run_dir, run_dir_name

    try:
        output.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=output, prefix=".probe"):
            pass
        return new_run_dir(output, run_dir_name(dt.datetime.now(dt.UTC), short_commit))
    except OSError as exc:
        raise OutputError(
            f"cannot write results there ({exc.strerror or exc})",
            str(output),
            "pass a writable folder with --output DIR, or fix its permissions",
        ) from None


# ----------------------------------------------------------------------------------------
# The gate
# ----------------------------------------------------------------------------------------


def _initial_rounds(config: GateConfig, policy: Policy, n_keys: int) -> int:
    if config.rounds is not None:
        return config.rounds
    # Holm divides alpha by the number of comparisons: with n rounds the smallest
    # one-sided Wilcoxon p is 1 / 2**n, which must clear alpha / comparisons. The count
    # below is the two-sided one plus one (12 rounds for 27 comparisons at alpha 0.05, as
    # in the trials of docs/measurements.md#the-gate): two rounds to spare for rounds that
    # differ the other way.
    needed = math.ceil(math.log2(2 * max(n_keys, 1) / policy.alpha)) + 1
    return max(policy.min_rounds, needed)


def run_gate(config: GateConfig) -> GateOutcome:
    """Check every input (policy, base ref or baseline, output folder) before measuring,
    then measure, decide and write the reports. Raises GateError when it cannot decide;
    after the run folder exists, the error is written there too (report.json,
    pr_comment.md), and nothing else (baselines, earlier runs) is touched."""
    from perf.decide.baseline import baseline_path, check_sampling, load_baseline
    from perf.measure.meta import git_state, machine_info
    from perf.measure.worktree import default_base, resolve_ref

    started = dt.datetime.now(dt.UTC)
    t0 = time.monotonic()
    head = git_state(config.root)
    machine = machine_info()
    base_commit: str | None = None
    baseline = None
    notes: list[str] = []
    if config.mode is Mode.PR and config.base_ref:
        base_commit = resolve_ref(config.root, config.base_ref)
    elif config.mode is Mode.PR:
        try:
            base_commit = default_base(config.root)
        except RefError as exc:
            # No base to measure beside the head (on the default branch itself, or no
            # default branch): the stored baseline is what is left to compare with.
            notes.append(f"no base commit ({exc.message}): compared with the stored baseline")
            _progress(f"[gate] {notes[-1]}")
            config = replace(config, mode=Mode.BASELINE)
    policy = load_policy(config.root / "pyproject.toml", mode=config.mode.value)
    if config.mode is Mode.BASELINE and not config.write_baseline:
        path = config.baseline_path or baseline_path(config.root, config.set_name)
        baseline = load_baseline(path)
        check_sampling(baseline, UNPACED_REPEATS)
    run_dir = _prepare_output(config.output, head.commit[:10])
    _progress(f"[gate] results in {run_dir}")
    try:
        return _measure_and_decide(
            config, policy, head, machine, base_commit, baseline, run_dir, started, t0, notes
        )
    except GateError as exc:
        _write_error(run_dir, config, exc)
        raise


def _measure_and_decide(
    config: GateConfig,
    policy: Policy,
    head: Any,
    machine: Any,
    base_commit: str | None,
    baseline: Any,
    run_dir: Path,
    started: dt.datetime,
    t0: float,
    notes: list[str],
) -> GateOutcome:
    from perf.measure.machine import MachineWatch
    from perf.measure.worktree import base_worktree

    if config.suites_set is not None:
        _run_suites(config, run_dir)
    plan = plan_cases(config.set_name, config.coordinators)
    keys = gated_keys(plan)
    rounds = _initial_rounds(config, policy, len(keys))
    rng = random.Random(config.seed)
    samples = RoundSamples()
    warnings: list[str] = []
    with tempfile.TemporaryDirectory(prefix="crucible-gate-") as tmp, MachineWatch() as watch:
        work = Path(tmp)
        write_json(
            work / "plan.json",
            {
                "set": config.set_name,
                "cases": plan,
                "coordinators": list(config.coordinators),
                # The kernel (~0.3 s a worker) puts a baseline from another machine on this
                # machine's scale; paired base-vs-head rounds have no use for it.
                "calibrate": config.mode is not Mode.PR or config.write_baseline,
            },
        )
        if config.mode is Mode.PR:
            assert base_commit is not None
            with base_worktree(config.root, base_commit) as base_tree:
                sides = {"base": base_tree, "head": config.root}
                for tree in sides.values():
                    _compile(tree)
                _progress(
                    f"[gate] PR mode: head {head.commit[:10]}{' (dirty)' if head.dirty else ''}"
                    f" vs base {base_commit[:10]}; {len(plan)} cases, {len(keys)} decisions, "
                    f"{rounds} rounds to start"
                )
                _run_rounds(sides, plan, samples, rounds, rng, work, t0, rounds)

                def paired() -> list[Comparison]:
                    return _compare_head(samples, keys, policy, config.seed, None)

                comparisons = _rounds_until_decided(
                    sides, plan, samples, rng, work, t0, config, policy, paired
                )
                deadline = t0 + config.budget_s + PROFILE_ALLOWANCE_S
                sections = _profiles(config, run_dir, plan, comparisons, base_tree, deadline)
        else:
            sides = {"head": config.root}
            _progress(f"[gate] measuring head {head.commit[:10]}: {rounds} rounds")
            _run_rounds(sides, plan, samples, rounds, rng, work, t0, rounds)
            comparisons = []
            if baseline is not None:

                def against_baseline() -> list[Comparison]:
                    return _against_baseline(
                        samples, keys, policy, config.seed, baseline, machine, notes
                    )

                comparisons = _rounds_until_decided(
                    sides, plan, samples, rng, work, t0, config, policy, against_baseline
                )
        if config.mode is not Mode.PR:
            sections = _profiles(config, run_dir, plan, comparisons, None)
    if config.write_baseline:
        _store_baseline(config, samples, keys, head, machine)
    for side in samples.values:
        write_pyperf(
            run_dir / f"{side}.json", samples.values[side], {i["bench"]: i["meta"] for i in plan}
        )
    write_json(
        run_dir / "samples.json",
        {"plan": plan, "calibration_s": samples.calibration_s, "values": samples.values},
    )
    verdict = run_verdict(comparisons) if comparisons else Verdict.PASS
    memory_failures = [f for section in sections for f in section.failures]
    if memory_failures:
        verdict = Verdict.FAIL
        warnings.extend(memory_failures)
    notes.extend(n for section in sections for n in section.notes)
    held = sum(c.machine_held for c in comparisons)
    if held:
        kernel = next((n for n in notes if n.startswith(_KERNEL_NOTE)), _KERNEL_NOTE)
        warnings.append(
            f"{held} time comparisons held inconclusive, their change within what the "
            f"machine's own move could cause ({kernel}); compare within rounds with "
            "--base REF, or re-record the baseline on a quiet machine (nox -s perf_baseline)"
        )
    undecided = [c for c in comparisons if c.verdict is Verdict.INCONCLUSIVE and not c.machine_held]
    if undecided:
        warnings.append(
            f"{len(undecided)} comparisons stayed inconclusive after "
            f"{max(c.n_head for c in undecided)} rounds (budget {policy.max_rounds})"
        )
    status = int(exit_status(verdict, config.strict)) if comparisons or memory_failures else 0
    artifacts = (
        *tuple(
            Artifact(label=f"{side} results (pyperf)", path=f"{side}.json", kind="pyperf")
            for side in samples.values
        ),
        Artifact(label="all samples", path="samples.json", kind="json"),
        *(a for section in sections for a in section.artifacts),
    )
    outcome = GateOutcome(
        mode=config.mode.value,
        verdict=verdict,
        exit_status=status,
        strict=config.strict,
        comparisons=tuple(comparisons),
        head_commit=head.commit,
        head_dirty=head.dirty,
        base_label=base_commit or str(baseline.path if baseline else "none (baseline written)"),
        rounds=samples.rounds("head"),
        rounds_all_cases=rounds,
        max_rounds=policy.max_rounds,
        started_utc=started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        duration_s=time.monotonic() - t0,
        machine=watch.result(),
        run_dir=run_dir,
        artifacts=artifacts,
        warnings=tuple(warnings),
        notes=tuple(notes),
    )
    _finish(outcome, config)
    return outcome


def _profiles(
    config: GateConfig,
    run_dir: Path,
    plan: Sequence[Mapping[str, Any]],
    comparisons: Sequence[Comparison],
    base_tree: Path | None,
    deadline: float | None = None,
) -> list[Any]:
    """Profiles after the timed rounds: a differential for each regression (PR mode,
    always), and with --profile every capture plus the memory and leak gate."""
    from perf.profiling.gate_profiles import differentials, memory_and_leaks

    sections = []
    if base_tree is not None and any(c.verdict is Verdict.FAIL for c in comparisons):
        _progress("[gate] profiling base and head of each regressed benchmark")
        meta = {item["bench"]: item["meta"] for item in plan}
        sections.append(differentials(run_dir, comparisons, meta, base_tree, config.root, deadline))
    if config.profile:
        _progress("[gate] capturing memray and py-spy profiles")
        sections.append(memory_and_leaks(run_dir, config.coordinators, config.root, base_tree))
    return sections


def _compare_head(
    samples: RoundSamples,
    keys: Sequence[tuple[str, str]],
    policy: Policy,
    seed: int,
    stored: Mapping[tuple[str, str], list[float]] | None,
) -> list[Comparison]:
    """Head's rounds against the base side's (paired, PR mode) or, given ``stored``
    baseline samples, against those (unpaired)."""
    paired = stored is None
    base = _sample_map(samples, "base", keys) if stored is None else stored
    return compare(base, _sample_map(samples, "head", keys), policy, paired=paired, seed=seed)


def _against_baseline(
    samples: RoundSamples,
    keys: Sequence[tuple[str, str]],
    policy: Policy,
    seed: int,
    baseline: Any,
    machine: Any,
    notes: list[str],
) -> list[Comparison]:
    """Head's rounds against a stored baseline (``perf.decide.baseline.Baseline``). From another
    machine: on this machine's scale (``rescale_for_machine``). From this one: as stored,
    then ``hold_for_machine`` with the calibration kernel's move since the baseline, which
    ``notes`` reports (one note, updated as rounds are added)."""
    from perf.decide.baseline import TIME_LIKE_PREFIXES, rescale_for_machine

    calib = statistics.median(samples.calibration_s["head"])
    stored, note = rescale_for_machine(
        baseline,
        fingerprint=machine.fingerprint,
        python=machine.python_version,
        calibration_s=calib,
    )
    if note and note not in notes:
        notes.append(note)
    base_map = {(b, m): v for b, ms in stored.items() for m, v in ms.items() if (b, m) in keys}
    found = _compare_head(samples, keys, policy, seed, base_map)
    if note is not None:
        return found  # another machine: already on this one's scale
    # The baseline's own machine, maybe in another state (this one's speed changes by up
    # to 2x): the kernel says how far it moved.
    shift = machine_shift(baseline.calibration_s, samples.calibration_s["head"])
    if shift is None:
        return found
    notes[:] = [n for n in notes if not n.startswith(_KERNEL_NOTE)]
    notes.append(
        f"{_KERNEL_NOTE} {calib * 1e3:.2f} ms (median of this run's workers), "
        f"{baseline.calibration_median_s * 1e3:.2f} ms in the baseline: the machine is "
        f"{abs(shift) * 100:.1f}% {'slower' if shift > 0 else 'faster'} than when the "
        "baseline was recorded"
    )
    return hold_for_machine(found, shift, TIME_LIKE_PREFIXES)


def _rounds_until_decided(
    sides: Mapping[str, Path],
    plan: list[dict[str, Any]],
    samples: RoundSamples,
    rng: random.Random,
    work: Path,
    t0: float,
    config: GateConfig,
    policy: Policy,
    decide: Callable[[], list[Comparison]],
) -> list[Comparison]:
    """Decide on the rounds so far; while comparisons are inconclusive and below the
    policy's ``max_rounds``, run more rounds of just their cases, as long as the next one
    is expected to end within the time budget (``--budget-s``, counted from the start)."""
    per_case: float | None = None
    while True:
        comparisons = decide()
        wanted = needs_more_samples(comparisons, policy)
        if not wanted:
            return comparisons
        indices = cases_to_rerun(plan, wanted)
        elapsed = time.monotonic() - t0
        if per_case is None:
            per_case = elapsed / max(samples.rounds("head"), 1) / len(plan)
        # One round at a time: every wanted comparison is below max_rounds, so none
        # passes it, and the next decision sees the new round at once.
        expected = per_case * len(indices)
        if elapsed + expected > config.budget_s:
            _progress(
                f"[gate] {len(wanted)} comparisons inconclusive; time budget "
                f"({config.budget_s:.0f} s) spent"
            )
            return comparisons
        done = samples.rounds("head")
        _progress(
            f"[gate] {len(wanted)} comparisons inconclusive: one more round of their "
            f"{len(indices)} cases"
        )
        took = _run_rounds(
            sides, plan, samples, 1, rng, work, t0, done + 1, indices, config.budget_s
        )
        per_case = took / len(indices)


def _store_baseline(
    config: GateConfig,
    samples: RoundSamples,
    keys: Sequence[tuple[str, str]],
    head: Any,
    machine: Any,
) -> None:
    from perf.decide.baseline import baseline_path, write_baseline
    from perf.workload.calibration import CALIBRATION_VERSION

    values = _sample_map(samples, "head", keys)
    document = {
        "created_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": head.commit,
        "dirty": head.dirty,
        "set": config.set_name,
        "python": machine.python_version,
        "machine": machine.as_dict(),
        "calibration": {"version": CALIBRATION_VERSION, "seconds": samples.calibration_s["head"]},
        "sampling": {"unpaced_repeats": UNPACED_REPEATS},
        "samples": _nest(values),
    }
    write_baseline(config.baseline_path or baseline_path(config.root, config.set_name), document)


def _nest(values: Mapping[tuple[str, str], list[float]]) -> dict[str, dict[str, list[float]]]:
    out: dict[str, dict[str, list[float]]] = {}
    for (bench, metric), v in values.items():
        out.setdefault(bench, {})[metric] = v
    return out


def _finish(outcome: GateOutcome, config: GateConfig) -> None:
    """Reports, manifest, latest link, pruning, and the GitHub step summary."""
    from perf.rundir import prune_runs, update_latest

    run_dir = outcome.run_dir
    report_paths: list[Path] = []
    from perf.report.analysis import analyze_run_dir
    from perf.report.render import write_reports

    # The architecture comparison reads the pyperf suites measured in this run when there
    # are any (sweeps and leak runs included), else the head side of the gate's rounds:
    # data vs core vs reference measured in the same minutes either way.
    analysis = None
    suites_dir = _suites_dir(run_dir) or config.analysis_from
    if suites_dir is not None:
        analysis = analyze_run_dir(suites_dir, seed=config.seed)
    elif (run_dir / "head.json").exists():
        analysis = analyze_run_dir(run_dir, pyperf_files=["head.json"], seed=config.seed)
    report_paths = write_reports(outcome, analysis)
    write_json(
        run_dir / "manifest.json",
        {
            "schema_version": 1,
            "kind": "gate",
            "mode": outcome.mode,
            "verdict": outcome.verdict.value,
            "exit_status": outcome.exit_status,
            "head_commit": outcome.head_commit,
            "head_dirty": outcome.head_dirty,
            "base": outcome.base_label,
            "rounds": outcome.rounds,
            "started_utc": outcome.started_utc,
            "duration_s": outcome.duration_s,
            "files": sorted(p.name for p in run_dir.iterdir() if p.is_file()),
        },
    )
    update_latest(config.output, run_dir)
    prune_runs(config.output, config.keep, run_dir)
    _github(outcome, report_paths)


def _suites_dir(run_dir: Path) -> Path | None:
    latest = run_dir / "suites" / "latest"
    if latest.is_symlink() or latest.is_dir():
        return latest.resolve()
    if latest.is_file():
        return run_dir / "suites" / latest.read_text(encoding="utf-8").strip()
    return None


def _run_suites(config: GateConfig, run_dir: Path) -> None:
    """The pyperf suites of ``config.suites_set`` for the head, into run_dir/suites/: every
    metric, sweeps and leak runs included, for the reports (not for the verdict)."""
    assert config.suites_set is not None
    cmd = [
        sys.executable,
        "-m",
        "perf",
        "run",
        f"--{config.suites_set}",
        "--output",
        str(run_dir / "suites"),
        "--keep",
        "1",
    ]
    from perf.workload.cases import DEFAULT_COORDINATORS

    # With the default coordinators the suites choose their own (the full set adds the
    # daemon transport, core-daemon); an explicit list is passed on as given.
    if config.coordinators != DEFAULT_COORDINATORS:
        cmd += ["--coordinators", ",".join(config.coordinators)]
    if config.suites:
        cmd += ["--suites", config.suites]
    if config.pyperf_speed:
        cmd.append(config.pyperf_speed)
    _progress(f"[gate] measuring the {config.suites_set} pyperf suites of the head")
    proc = subprocess.run(cmd, cwd=config.root, check=False)
    if proc.returncode != 0:
        raise ResultError(
            f"the {config.suites_set} pyperf suites failed (exit {proc.returncode})",
            str(run_dir / "suites"),
            "see the benchmark output above; rerun with python -m perf run",
        )


def _write_error(run_dir: Path, config: GateConfig, exc: GateError) -> None:
    """The run folder of a run that could not decide says so, in the files CI shows."""
    from perf.rundir import update_latest

    text = str(exc)
    write_json(
        run_dir / "report.json",
        {"verdict": "error", "exit_status": int(exit_code(exc)), "error": text, "comparisons": []},
    )
    (run_dir / "pr_comment.md").write_text(
        "## Crucible perf gate: could not decide (exit 2)\n\n"
        f"{text}\n\nNo verdict was reached, so this build is not passed.\n",
        encoding="utf-8",
    )
    write_json(
        run_dir / "manifest.json",
        {
            "schema_version": 1,
            "kind": "gate",
            "mode": config.mode.value,
            "verdict": "error",
            "error": text,
            "files": sorted(p.name for p in run_dir.iterdir() if p.is_file()),
        },
    )
    update_latest(config.output, run_dir)


def _github(outcome: GateOutcome, report_paths: Sequence[Path]) -> None:
    if os.environ.get("GITHUB_ACTIONS") != "true":
        return
    summary_file = os.environ.get("GITHUB_STEP_SUMMARY")
    comment = outcome.run_dir / "pr_comment.md"
    if summary_file and comment.exists():
        with open(summary_file, "a", encoding="utf-8") as fh:
            fh.write(comment.read_text(encoding="utf-8") + "\n")
    from perf.report.render import github_annotations

    for line in github_annotations(outcome):
        print(line)


# ----------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    from perf.workload.cases import DEFAULT_COORDINATORS

    parser = argparse.ArgumentParser(
        prog="python -m perf gate",
        description="Measure the head against a base commit (PR mode) or the stored "
        "baseline, decide pass / fail / inconclusive, and write the reports. Exit 0 pass "
        "(inconclusive too, unless --strict), 1 regression, 2 the gate could not decide.",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--base",
        metavar="REF",
        help="PR mode against this git ref (default: the merge base with the default branch)",
    )
    where.add_argument(
        "--baseline",
        nargs="?",
        const="",
        metavar="FILE",
        help="compare with the stored baseline (default baselines/<set>.json)",
    )
    where.add_argument(
        "--write-baseline",
        action="store_true",
        help="measure the head and store it as the baseline (what nox -s perf_baseline runs)",
    )
    parser.add_argument("--set", dest="set_name", choices=("quick", "full"), default="quick")
    parser.add_argument(
        "--coordinators",
        default=",".join(DEFAULT_COORDINATORS),
        help="comma-separated coordinators (names or module:factory); default %(default)s",
    )
    parser.add_argument("--strict", action="store_true", help="inconclusive exits 2")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="results folder")
    parser.add_argument("--keep", type=int, default=10, help="run folders to keep")
    parser.add_argument("--rounds", type=int, default=None, help="rounds to start with")
    parser.add_argument(
        "--budget-s",
        type=float,
        default=DEFAULT_BUDGET_S,
        help="seconds from the start within which measuring ends; extra rounds of "
        "inconclusive comparisons stop there, differential profiles get up to "
        f"{PROFILE_ALLOWANCE_S:.0f} s more (default %(default)s s)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of round order and bootstrap")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also capture memray and py-spy profiles of data and core (medium, heavy) and "
        "run the memory and leak gate (needs the profile extra: memray, py-spy)",
    )
    suites = parser.add_argument_group(
        "pyperf suites (every metric, sweeps and leak runs: for the reports, not the verdict)"
    )
    suites.add_argument(
        "--suites-set",
        choices=("quick", "full"),
        default=None,
        help="also measure this set of the pyperf suites into the run folder first",
    )
    suites.add_argument("--suites", default=None, help="comma-separated suites of that set")
    speed = suites.add_mutually_exclusive_group()
    speed.add_argument("--fast", action="store_true", help="pyperf --fast for the suites")
    speed.add_argument("--rigorous", action="store_true", help="pyperf --rigorous")
    suites.add_argument(
        "--analysis-from",
        type=Path,
        default=None,
        help="compare the architectures from this earlier run folder of python -m perf run",
    )
    return parser


def config_from_args(args: argparse.Namespace) -> GateConfig:
    mode = Mode.BASELINE if args.write_baseline or args.baseline is not None else Mode.PR
    return GateConfig(
        mode=mode,
        base_ref=args.base,
        baseline_path=Path(args.baseline) if args.baseline else None,
        set_name=args.set_name,
        coordinators=tuple(c for c in args.coordinators.split(",") if c),
        strict=args.strict,
        output=args.output,
        keep=args.keep,
        rounds=args.rounds,
        budget_s=args.budget_s,
        seed=args.seed,
        write_baseline=args.write_baseline,
        suites_set=args.suites_set,
        suites=args.suites,
        pyperf_speed="--fast" if args.fast else "--rigorous" if args.rigorous else None,
        analysis_from=args.analysis_from,
        profile=args.profile,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = config_from_args(args)
        outcome = run_gate(config)
    except GateError as exc:
        print(f"perf gate: could not decide: {exc}", file=sys.stderr)
        if os.environ.get("GITHUB_ACTIONS") == "true":
            print(f"::error title=perf gate could not decide::{exc}")
        return int(exit_code(exc))
    except KeyboardInterrupt:
        print("perf gate: interrupted", file=sys.stderr)
        return int(ExitCode.UNDECIDED)
    except Exception as exc:
        traceback.print_exc()
        print(f"perf gate: could not decide: internal error {exc!r}", file=sys.stderr)
        return int(exit_code(exc))
    _progress(
        f"[gate] verdict {outcome.verdict.value.upper()} (exit {outcome.exit_status}); "
        f"report: {outcome.run_dir / 'report.md'}"
    )
    return outcome.exit_status


if __name__ == "__main__":
    raise SystemExit(main())
