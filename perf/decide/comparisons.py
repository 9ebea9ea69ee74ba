"""What the gate concludes from its rounds: how many rounds to start with, the comparisons
of head with base (paired, PR mode) or with a stored baseline (unpaired, baseline mode), and
the run's verdict, exit status and warnings."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from perf.decide.baseline import TIME_LIKE_PREFIXES, Baseline, rescale_for_machine
from perf.decide.policy import Policy
from perf.decide.verdict import (
    Comparison,
    Verdict,
    compare,
    exit_status,
    hold_for_machine,
    machine_shift,
    run_verdict,
)
from perf.measure.meta import MachineInfo
from perf.measure.rounds import RoundSamples, sample_map

__all__ = [
    "KERNEL_NOTE",
    "Conclusion",
    "compare_with_base",
    "compare_with_baseline",
    "conclude",
    "initial_rounds",
]

# How the note on the calibration kernel's move starts (one note a run, updated in place).
KERNEL_NOTE = "calibration kernel"

Keys = Sequence[tuple[str, str]]


def initial_rounds(policy: Policy, n_comparisons: int) -> int:
    """Rounds of every case to start with: enough for the smallest p-value to clear Holm's
    corrected alpha, and at least the policy's ``min_rounds``."""
    # Holm divides alpha by the number of comparisons: with n rounds the smallest
    # one-sided Wilcoxon p is 1 / 2**n, which must clear alpha / comparisons. The count
    # below is the two-sided one plus one (12 rounds for 27 comparisons at alpha 0.05, as
    # in the trials of docs/measurements.md#the-gate): two rounds to spare for rounds that
    # differ the other way.
    needed = math.ceil(math.log2(2 * max(n_comparisons, 1) / policy.alpha)) + 1
    return max(policy.min_rounds, needed)


def compare_with_base(
    samples: RoundSamples, keys: Keys, policy: Policy, seed: int
) -> list[Comparison]:
    """Head's rounds against the base side's of the same rounds (paired, PR mode)."""
    base = sample_map(samples, "base", keys)
    return compare(base, sample_map(samples, "head", keys), policy, paired=True, seed=seed)


def compare_with_baseline(
    samples: RoundSamples,
    keys: Keys,
    policy: Policy,
    seed: int,
    baseline: Baseline,
    machine: MachineInfo,
    notes: list[str],
) -> list[Comparison]:
    """Head's rounds against a stored baseline (unpaired). From another machine: on this
    machine's scale (``rescale_for_machine``). From this one: as stored, then
    ``hold_for_machine`` with the calibration kernel's move since the baseline, which
    ``notes`` reports (one note, updated as rounds are added)."""
    calib = statistics.median(samples.calibration_s["head"])
    stored, note = rescale_for_machine(
        baseline,
        fingerprint=machine.fingerprint,
        python=machine.python_version,
        calibration_s=calib,
    )
    if note and note not in notes:
        notes.append(note)
    base = {(b, m): v for b, ms in stored.items() for m, v in ms.items() if (b, m) in keys}
    head = sample_map(samples, "head", keys)
    found = compare(base, head, policy, paired=False, seed=seed)
    if note is not None:
        return found  # another machine: already on this one's scale
    # The baseline's own machine, maybe in another state (this one's speed changes by up
    # to 2x): the kernel says how far it moved.
    shift = machine_shift(baseline.calibration_s, samples.calibration_s["head"])
    if shift is None:
        return found
    notes[:] = [n for n in notes if not n.startswith(KERNEL_NOTE)]
    notes.append(
        f"{KERNEL_NOTE} {calib * 1e3:.2f} ms (median of this run's workers), "
        f"{baseline.calibration_median_s * 1e3:.2f} ms in the baseline: the machine is "
        f"{abs(shift) * 100:.1f}% {'slower' if shift > 0 else 'faster'} than when the "
        "baseline was recorded"
    )
    return hold_for_machine(found, shift, TIME_LIKE_PREFIXES)


@dataclass(frozen=True, slots=True, kw_only=True)
class Conclusion:
    """A run's verdict and exit status, with what the report should warn about and note."""

    verdict: Verdict
    exit_status: int
    warnings: tuple[str, ...]
    notes: tuple[str, ...]


def conclude(
    comparisons: Sequence[Comparison],
    policy: Policy,
    *,
    strict: bool,
    notes: Sequence[str],
    memory_failures: Sequence[str] = (),
) -> Conclusion:
    """The run's verdict: its comparisons', failed by any failure of the memory and leak
    gate (``memory_failures``, each with its top stacks). Warns of time comparisons held
    for the machine's move (naming the calibration kernel's note) and of comparisons still
    inconclusive after every round allowed."""
    verdict = run_verdict(comparisons) if comparisons else Verdict.PASS
    warnings: list[str] = []
    if memory_failures:
        verdict = Verdict.FAIL
        warnings.extend(memory_failures)
    held = sum(c.machine_held for c in comparisons)
    if held:
        kernel = next((n for n in notes if n.startswith(KERNEL_NOTE)), KERNEL_NOTE)
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
    status = int(exit_status(verdict, strict)) if comparisons or memory_failures else 0
    return Conclusion(
        verdict=verdict, exit_status=status, warnings=tuple(warnings), notes=tuple(notes)
    )
