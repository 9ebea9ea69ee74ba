"""What the gate concludes from its rounds: how many rounds to start with, the comparisons
of head with base (paired: PR mode, or the baseline's commit measured beside the head) or
with a stored baseline's memory figures (unpaired, when its commit is not in the clone), and
the run's verdict, exit status and warnings."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from perf.decide.baseline import TIME_LIKE_PREFIXES, Baseline, check_python
from perf.decide.policy import Policy
from perf.decide.verdict import Comparison, Verdict, compare, exit_status, run_verdict
from perf.measure.meta import MachineInfo
from perf.measure.rounds import RoundSamples, sample_map

__all__ = [
    "Conclusion",
    "compare_with_base",
    "compare_with_baseline",
    "conclude",
    "initial_rounds",
    "time_not_judged_note",
]

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


def time_not_judged_note(reason: str) -> str:
    """The note of a run whose wall-clock figures were not judged, and why."""
    return (
        f"time and latency not judged: {reason}. Wall-clock figures are judged only side by "
        "side (base and head in the same minutes); stored ones, from another run, are shown "
        "as context"
    )


def compare_with_baseline(
    samples: RoundSamples,
    keys: Keys,
    policy: Policy,
    seed: int,
    baseline: Baseline,
    machine: MachineInfo,
) -> list[Comparison]:
    """Head's rounds against a stored baseline (unpaired), for the metrics a figure stored
    by another run can judge: memory (tracemalloc's bytes, peak RSS). Time and latency are
    left out: on this machine the same workload runs up to 2x slower from one minute to the
    next, so a wall-clock figure of another run is context, never a verdict, and no
    calibration can make it one (an open-loop latency does not even follow a CPU kernel).
    A baseline taken under another Python is refused: its allocations differ."""
    check_python(baseline, machine.python_version)
    judged = [k for k in keys if not k[1].startswith(TIME_LIKE_PREFIXES)]
    base = {
        (b, m): v for b, ms in baseline.samples.items() for m, v in ms.items() if (b, m) in judged
    }
    head = sample_map(samples, "head", judged)
    return compare(base, head, policy, paired=False, seed=seed)


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
    gate (``memory_failures``, each with its top stacks). Warns of comparisons still
    inconclusive after every round allowed."""
    verdict = run_verdict(comparisons) if comparisons else Verdict.PASS
    warnings: list[str] = []
    if memory_failures:
        verdict = Verdict.FAIL
        warnings.extend(memory_failures)
    undecided = [c for c in comparisons if c.verdict is Verdict.INCONCLUSIVE]
    if undecided:
        warnings.append(
            f"{len(undecided)} comparisons stayed inconclusive after "
            f"{max(c.n_head for c in undecided)} rounds (budget {policy.max_rounds})"
        )
    status = int(exit_status(verdict, strict)) if comparisons or memory_failures else 0
    return Conclusion(
        verdict=verdict, exit_status=status, warnings=tuple(warnings), notes=tuple(notes)
    )
