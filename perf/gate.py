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

This module is the command: its options, and ``run_gate`` as a chain of steps over the
stages (the plan in ``perf.workload.plan``, the rounds in ``perf.measure.rounds``, the
comparisons in ``perf.decide.comparisons``, the reports in ``perf.report``). The loop that
adds rounds while comparisons are inconclusive is ``perf.decide.sequential``; this module
hands it the rounds of ``perf.measure`` and the comparison to repeat.

Nothing below ``main`` prints to stdout or exits; ``main`` maps every GateError (and any
unexpected exception) to exit 2, so the gate never passes a build it could not measure.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import sys
import tempfile
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from perf.decide.baseline import (
    Baseline,
    baseline_document,
    baseline_path,
    check_sampling,
    load_baseline,
    write_baseline,
)
from perf.decide.comparisons import (
    Conclusion,
    compare_with_base,
    compare_with_baseline,
    conclude,
    initial_rounds,
    time_not_judged_note,
)
from perf.decide.outcome import GateOutcome
from perf.decide.policy import Mode, Policy, load_policy
from perf.decide.sequential import rounds_until_decided
from perf.decide.verdict import Comparison, Verdict
from perf.errors import ExitCode, GateError, OutputError, RefError, exit_code
from perf.measure.machine import MachineLoad, MachineWatch
from perf.measure.meta import GitState, MachineInfo, git_state, machine_info
from perf.measure.round_files import write_round_files
from perf.measure.rounds import RoundRunner, RoundSamples, compile_tree, sample_map
from perf.measure.suites import run_suites
from perf.measure.worktree import base_worktree, default_base, resolve_ref
from perf.paths import DEFAULT_OUTPUT, display_path
from perf.paths import REPO_ROOT as ROOT
from perf.profile import memory_and_leaks
from perf.profiling.gate_profiles import ProfileSection, differentials
from perf.report.run_folder import analysis_of_run, write_error_files, write_manifest
from perf.rundir import (
    Artifact,
    latest_blocked,
    new_run_dir,
    prune_runs,
    run_dir_name,
    update_latest,
    utc_stamp,
)
from perf.workload.plan import (
    UNPACED_REPEATS,
    PlanItem,
    gated_keys,
    plan_cases,
    write_plan,
)

__all__ = ["GateConfig", "build_parser", "config_from_args", "main", "run_gate"]

DEFAULT_BUDGET_S = 360.0
# Differential profiles of regressions start only if they can end within this long after
# the measuring budget: a PR run then stays within 8 minutes (360 + 90 s, plus reports).
PROFILE_ALLOWANCE_S = 90.0

Keys = Sequence[tuple[str, str]]


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


@dataclass(frozen=True, slots=True, kw_only=True)
class GateRun:
    """A run whose inputs were checked: what it measures against, and where it writes."""

    config: GateConfig  # in baseline mode when PR mode found no base commit
    policy: Policy
    head: GitState
    machine: MachineInfo
    base_commit: str | None  # measured beside the head: PR mode, or the baseline's commit
    base_label: str  # what the head was compared with, as the reports name it
    baseline: Baseline | None  # its memory figures compared, when its commit is missing
    run_dir: Path
    started: dt.datetime
    t0: float  # time.monotonic() at the start: the time budget counts from here


@dataclass(frozen=True, slots=True)
class Measured:
    """The rounds of a run, what they were compared to, and the profiles taken after them."""

    samples: RoundSamples
    comparisons: tuple[Comparison, ...]
    sections: tuple[ProfileSection, ...]


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------
# Before measuring: every input checked
# ----------------------------------------------------------------------------------------


def run_gate(config: GateConfig) -> GateOutcome:
    """Check every input (policy, base ref or baseline, output folder) before measuring,
    then measure, decide and write the reports. Raises GateError when it cannot decide;
    after the run folder exists, the error is written there too (report.json,
    pr_comment.md), and nothing else (baselines, earlier runs) is touched."""
    started = dt.datetime.now(dt.UTC)
    t0 = time.monotonic()
    head = git_state(config.root)
    machine = machine_info()
    notes: list[str] = []
    config, base_commit = _choose_base(config, notes)
    baseline = _stored_baseline(config)
    base_label = base_commit or "none (baseline written)"
    if baseline is not None:
        config, base_commit, base_label = _beside_the_baseline(config, baseline, head, notes)
    policy = load_policy(config.root / "pyproject.toml", mode=config.mode.value)
    run_dir = _prepare_output(config.output, head.commit[:10])
    _progress(f"[gate] results in {run_dir}")
    run = GateRun(
        config=config,
        policy=policy,
        head=head,
        machine=machine,
        base_commit=base_commit,
        base_label=base_label,
        baseline=baseline if base_commit is None else None,
        run_dir=run_dir,
        started=started,
        t0=t0,
    )
    try:
        return _measure_and_decide(run, notes)
    except GateError as exc:
        write_error_files(run_dir, config.mode.value, exc)
        _point_latest(config.output, run_dir)
        raise


def _choose_base(config: GateConfig, notes: list[str]) -> tuple[GateConfig, str | None]:
    """The base commit of PR mode, resolved; without one (on the default branch itself, or
    no default branch) the run turns to baseline mode, and ``notes`` says so."""
    if config.mode is not Mode.PR:
        return config, None
    if config.base_ref:
        return config, resolve_ref(config.root, config.base_ref)
    try:
        return config, default_base(config.root)
    except RefError as exc:
        # No base to measure beside the head: the stored baseline is what is left.
        notes.append(f"no base commit ({exc.message}): baseline mode, with the stored baseline")
        _progress(f"[gate] {notes[-1]}")
        return replace(config, mode=Mode.BASELINE), None


def _beside_the_baseline(
    config: GateConfig, baseline: Baseline, head: GitState, notes: list[str]
) -> tuple[GateConfig, str | None, str]:
    """Baseline mode: the baseline names the commit it was taken at. When the clone has
    that commit, it is measured beside the head in paired rounds, exactly as PR mode does
    (time is judged only side by side); with the head at that very commit, the run is an
    A/A run of this machine. Without the commit (a shallow clone), only the figures a
    stored baseline can judge are compared (memory), and ``notes`` says what to do.
    Returns the config to run, the commit to measure beside the head, and the label."""
    where = display_path(baseline.path)
    try:
        commit = resolve_ref(config.root, baseline.commit)
    except RefError:
        notes.append(
            time_not_judged_note(
                f"the commit {where} was taken at ({baseline.commit[:12]}) is not in this "
                f"clone; fetch it (git fetch --unshallow, or git fetch origin "
                f"{baseline.commit}) to measure it beside the head, or pass --base REF"
            )
        )
        _progress(f"[gate] {notes[-1]}")
        return config, None, f"{where} (stored memory figures; time not judged)"
    if commit == head.commit and not head.dirty:
        notes.append(
            f"head is the baseline's commit {commit[:12]}: an A/A run of this machine, the "
            "same code measured on both sides; what it finds is this machine's noise"
        )
    else:
        notes.append(
            f"head vs baseline commit {commit[:12]} (paired): the commit {where} was taken "
            "at, measured beside the head in this run"
        )
    _progress(f"[gate] {notes[-1]}")
    return replace(config, mode=Mode.PR), commit, f"baseline commit {commit[:12]} (paired)"


def _baseline_file(config: GateConfig) -> Path:
    return config.baseline_path or baseline_path(config.root, config.set_name)


def _stored_baseline(config: GateConfig) -> Baseline | None:
    """The baseline to compare with (baseline mode), loaded and checked to be sampled the
    way this gate samples; None in PR mode and when this run writes the baseline."""
    if config.mode is not Mode.BASELINE or config.write_baseline:
        return None
    baseline = load_baseline(_baseline_file(config))
    check_sampling(baseline, UNPACED_REPEATS)
    return baseline


def _prepare_output(output: Path, short_commit: str) -> Path:
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
# Measuring and deciding
# ----------------------------------------------------------------------------------------


def _measure_and_decide(run: GateRun, notes: list[str]) -> GateOutcome:
    """Suites (if asked), rounds, comparisons and profiles; then the result files, the
    baseline (if asked), the conclusion and the reports."""
    config = run.config
    if config.suites_set is not None:
        _progress(f"[gate] measuring the {config.suites_set} pyperf suites of the head")
        run_suites(
            root=config.root,
            run_dir=run.run_dir,
            set_name=config.suites_set,
            coordinators=config.coordinators,
            suites=config.suites,
            speed=config.pyperf_speed,
        )
    plan = plan_cases(config.set_name, config.coordinators)
    keys = gated_keys(plan)
    rounds = config.rounds if config.rounds is not None else initial_rounds(run.policy, len(keys))
    with tempfile.TemporaryDirectory(prefix="crucible-gate-") as tmp, MachineWatch() as watch:
        plan_file = _write_plan(Path(tmp), config, plan)
        if config.mode is Mode.PR:
            measured = _measure_pr(run, plan, keys, rounds, plan_file)
        else:
            measured = _measure_head(run, plan, keys, rounds, plan_file)
    if config.write_baseline:
        _store_baseline(run, measured.samples, keys)
    artifacts = write_round_files(run.run_dir, measured.samples, plan)
    sections = measured.sections
    conclusion = conclude(
        measured.comparisons,
        run.policy,
        strict=config.strict,
        notes=[*notes, *(n for section in sections for n in section.notes)],
        memory_failures=[f for section in sections for f in section.failures],
    )
    outcome = _outcome(run, measured, conclusion, rounds, artifacts, watch.result())
    _finish(outcome, config)
    return outcome


def _write_plan(work: Path, config: GateConfig, plan: Sequence[PlanItem]) -> Path:
    plan_file = work / "plan.json"
    write_plan(
        plan_file,
        set_name=config.set_name,
        plan=plan,
        coordinators=config.coordinators,
        # The kernel (~0.3 s a worker) is timed only for a baseline being written, where it
        # records how fast the machine was (context); no verdict uses it.
        calibrate=config.write_baseline,
    )
    return plan_file


def _runner(
    run: GateRun, sides: Mapping[str, Path], plan: Sequence[PlanItem], plan_file: Path
) -> RoundRunner:
    return RoundRunner(
        sides=sides,
        plan=plan,
        plan_file=plan_file,
        rng=random.Random(run.config.seed),
        t0=run.t0,
        say=_progress,
    )


def _measure_pr(
    run: GateRun, plan: Sequence[PlanItem], keys: Keys, rounds: int, plan_file: Path
) -> Measured:
    """PR mode: base (in a worktree) and head, paired round by round; differential
    profiles of what regressed while the base tree is still there."""
    config, policy, head = run.config, run.policy, run.head
    assert run.base_commit is not None
    with base_worktree(config.root, run.base_commit) as base_tree:
        sides = {"base": base_tree, "head": config.root}
        for tree in sides.values():
            compile_tree(tree)
        _progress(
            f"[gate] PR mode: head {head.commit[:10]}{' (dirty)' if head.dirty else ''}"
            f" vs base {run.base_commit[:10]}; {len(plan)} cases, {len(keys)} decisions, "
            f"{rounds} rounds to start"
        )
        runner = _runner(run, sides, plan, plan_file)
        runner.run(rounds, rounds)

        def paired() -> list[Comparison]:
            return compare_with_base(runner.samples, keys, policy, config.seed)

        comparisons = rounds_until_decided(runner, policy, config.budget_s, paired, say=_progress)
        deadline = run.t0 + config.budget_s + PROFILE_ALLOWANCE_S
        sections = _profiles(config, run.run_dir, plan, comparisons, base_tree, deadline)
    return Measured(runner.samples, tuple(comparisons), tuple(sections))


def _measure_head(
    run: GateRun,
    plan: Sequence[PlanItem],
    keys: Keys,
    rounds: int,
    plan_file: Path,
) -> Measured:
    """Baseline mode without the baseline's commit: the head alone, its memory figures
    compared with the stored baseline's (none when this run writes the baseline)."""
    config, policy, baseline = run.config, run.policy, run.baseline
    _progress(f"[gate] measuring head {run.head.commit[:10]}: {rounds} rounds")
    runner = _runner(run, {"head": config.root}, plan, plan_file)
    runner.run(rounds, rounds)
    comparisons: list[Comparison] = []
    if baseline is not None:

        def against_baseline() -> list[Comparison]:
            assert baseline is not None
            return compare_with_baseline(
                runner.samples, keys, policy, config.seed, baseline, run.machine
            )

        comparisons = rounds_until_decided(
            runner, policy, config.budget_s, against_baseline, say=_progress
        )
    sections = _profiles(config, run.run_dir, plan, comparisons, None)
    return Measured(runner.samples, tuple(comparisons), tuple(sections))


def _profiles(
    config: GateConfig,
    run_dir: Path,
    plan: Sequence[PlanItem],
    comparisons: Sequence[Comparison],
    base_tree: Path | None,
    deadline: float | None = None,
) -> list[ProfileSection]:
    """Profiles after the timed rounds: a differential for each regression (PR mode,
    always), and with --profile every capture plus the memory and leak gate."""
    sections = []
    if base_tree is not None and any(c.verdict is Verdict.FAIL for c in comparisons):
        _progress("[gate] profiling base and head of each regressed benchmark")
        meta = {item["bench"]: item["meta"] for item in plan}
        regressed = [c.benchmark for c in comparisons if c.verdict is Verdict.FAIL]
        sections.append(differentials(run_dir, regressed, meta, base_tree, config.root, deadline))
    if config.profile:
        _progress("[gate] capturing memray and py-spy profiles")
        sections.append(memory_and_leaks(run_dir, config.coordinators, config.root, base_tree))
    return sections


def _store_baseline(run: GateRun, samples: RoundSamples, keys: Keys) -> None:
    document = baseline_document(
        head=run.head,
        machine=run.machine,
        set_name=run.config.set_name,
        samples=sample_map(samples, "head", keys),
        calibration_s=samples.calibration_s["head"],
    )
    write_baseline(_baseline_file(run.config), document)


# ----------------------------------------------------------------------------------------
# After deciding: the outcome, the reports, the run folder
# ----------------------------------------------------------------------------------------


def _outcome(
    run: GateRun,
    measured: Measured,
    conclusion: Conclusion,
    rounds: int,
    artifacts: Sequence[Artifact],
    machine: MachineLoad,
) -> GateOutcome:
    return GateOutcome(
        mode=run.config.mode.value,
        verdict=conclusion.verdict,
        exit_status=conclusion.exit_status,
        strict=run.config.strict,
        comparisons=measured.comparisons,
        head_commit=run.head.commit,
        head_dirty=run.head.dirty,
        base_label=run.base_label,
        rounds=measured.samples.rounds("head"),
        rounds_all_cases=rounds,
        max_rounds=run.policy.max_rounds,
        started_utc=utc_stamp(run.started),
        duration_s=time.monotonic() - run.t0,
        machine=machine,
        run_dir=run.run_dir,
        artifacts=(*artifacts, *(a for section in measured.sections for a in section.artifacts)),
        warnings=conclusion.warnings,
        notes=conclusion.notes,
    )


def _finish(outcome: GateOutcome, config: GateConfig) -> None:
    """Reports, manifest, latest link, pruning, and the GitHub step summary."""
    from perf.report.render import write_reports

    analysis = analysis_of_run(outcome.run_dir, config.analysis_from, seed=config.seed)
    write_reports(outcome, analysis)
    write_manifest(outcome)
    _point_latest(config.output, outcome.run_dir)
    prune_runs(config.output, config.keep, outcome.run_dir)
    _github(outcome)


def _point_latest(output: Path, run_dir: Path) -> None:
    if update_latest(output, run_dir) == "blocked":
        _progress(f"[gate] warning: {latest_blocked(output)}")


def _github(outcome: GateOutcome) -> None:
    """On GitHub Actions: the PR comment into the step summary, and the annotations."""
    if os.environ.get("GITHUB_ACTIONS") != "true":
        return
    summary_file = os.environ.get("GITHUB_STEP_SUMMARY")
    comment = outcome.run_dir / "pr_comment.md"
    if summary_file and comment.exists():
        with open(summary_file, "a", encoding="utf-8") as fh:
            fh.write(comment.read_text(encoding="utf-8") + "\n")
    from perf.report.github import github_annotations

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
            from perf.report.github import error_annotation

            print(error_annotation("perf gate could not decide", str(exc)))
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
