"""Verdicts of the perf gate: compare samples, decide each comparison, aggregate, exit status.

``compare`` is the pure core: samples in, :class:`Comparison` records out; nothing here
prints, reads files or exits.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from perf.decide.policy import Correction, Direction, Mode, Policy
from perf.decide.stats import (
    Alternative,
    RatioEstimate,
    Samples,
    Significance,
    benjamini_hochberg,
    holm,
    min_detectable_change_pct,
    noise_floor_pct,
    paired_ratios,
    paired_test,
    ratio_ci_paired,
    ratio_ci_unpaired,
    unpaired_test,
)
from perf.errors import ExitCode, ResultError

__all__ = [
    "Comparison",
    "SampleKey",
    "SampleMap",
    "Verdict",
    "compare",
    "decide",
    "exit_status",
    "needs_more_samples",
    "run_verdict",
]

SampleKey = tuple[str, str]
"""``(benchmark, metric)``."""
SampleMap = Mapping[SampleKey, Samples]
"""Samples per ``(benchmark, metric)``; for paired runs, index ``i`` is round ``i``."""

_RERUN = "rerun the benchmarks on both sides (nox -s perf_quick)"
_REFRESH = "refresh the stored baseline (nox -s perf_baseline)"


class Verdict(StrEnum):
    """Outcome of one comparison, or of a whole run."""

    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True, slots=True)
class Comparison:
    """One benchmark metric, head against base.

    ``ratio`` is ``head / base`` (median of paired per-round ratios, or ratio of medians
    when unpaired) with its interval ``[ci_low, ci_high]``; ``p_value`` is the raw one-sided
    test against a change in the metric's bad ``direction`` (a regression), ``p_adjusted``
    after the run's multiple-comparison correction. ``threshold_pct``,
    ``noise_pct`` (this run's A/A noise floor) and ``min_detectable_pct`` are percentages of
    change in the metric's bad ``direction``. ``reason`` says in one line why ``verdict``.
    """

    benchmark: str
    metric: str
    ratio: float
    ci_low: float
    ci_high: float
    p_value: float
    p_adjusted: float
    threshold_pct: float
    noise_pct: float
    min_detectable_pct: float
    n_base: int
    n_head: int
    verdict: Verdict
    direction: Direction = Direction.LOWER_IS_BETTER
    reason: str = ""

    @property
    def change_pct(self) -> float:
        """Signed change of the metric, head against base, in percent."""
        return (self.ratio - 1.0) * 100.0

    @property
    def worse_pct(self) -> float:
        """Change in the metric's bad direction, in percent (negative: it improved)."""
        return _worse(self.ratio, self.direction) * 100.0


def _worse(ratio: float, direction: Direction) -> float:
    """How much worse a ratio is, as a fraction: +0.03 is 3 % worse."""
    return ratio - 1.0 if direction == Direction.LOWER_IS_BETTER else 1.0 - ratio


def _decide(
    *,
    ratio: float,
    ci_low: float,
    ci_high: float,
    p_adjusted: float,
    threshold_pct: float,
    noise_pct: float,
    direction: Direction,
    alpha: float,
    n_rounds: int,
    min_rounds: int,
) -> tuple[Verdict, str]:
    worse = _worse(ratio, direction)
    worse_low, worse_high = sorted((_worse(ci_low, direction), _worse(ci_high, direction)))
    threshold = threshold_pct / 100.0
    noise = noise_pct / 100.0
    interval = f"{worse_low * 100:+.2f}% to {worse_high * 100:+.2f}%"
    if n_rounds < min_rounds:
        return Verdict.INCONCLUSIVE, f"{n_rounds} rounds; the policy decides from {min_rounds}"
    # The interval must clear the run's own noise floor; a run noisier than the threshold
    # itself is held to the stricter plain test instead: the whole interval beyond the
    # threshold (else a noisy machine could never show a real regression).
    floor = min(noise, threshold)
    if p_adjusted < alpha and worse > threshold and worse_low > floor:
        return Verdict.FAIL, (
            f"{worse * 100:+.2f}% worse ({interval}), beyond the {threshold_pct:g}% threshold "
            f"and clear of {floor * 100:.2f}% (this run's noise {noise_pct:.2f}%); "
            f"p_adjusted {p_adjusted:.3g} < {alpha:g}"
        )
    if worse_high <= threshold:
        return Verdict.PASS, f"{worse * 100:+.2f}% ({interval}), within {threshold_pct:g}%"
    if worse > threshold and p_adjusted >= alpha:
        why = f"not significant after correction (p_adjusted {p_adjusted:.3g} >= {alpha:g})"
    elif worse > threshold:
        why = f"the interval does not clear this run's {noise_pct:.2f}% noise floor"
    else:
        why = f"the interval reaches past the {threshold_pct:g}% threshold"
    return Verdict.INCONCLUSIVE, f"{worse * 100:+.2f}% ({interval}): {why}; more rounds needed"


def decide(
    *,
    ratio: float,
    ci_low: float,
    ci_high: float,
    p_adjusted: float,
    threshold_pct: float,
    noise_pct: float,
    direction: Direction,
    alpha: float,
    n_rounds: int,
    min_rounds: int,
) -> Verdict:
    """Verdict of one comparison.

    Work in "worse" terms: ``w = ratio - 1`` for lower-is-better metrics, ``1 - ratio`` for
    higher-is-better ones, likewise for the interval ends (``w_low <= w <= w_high``);
    ``t = threshold_pct / 100``, ``f = noise_pct / 100``. In order:

    1. ``n_rounds < min_rounds``: INCONCLUSIVE (too few rounds to decide either way).
    2. FAIL when all three hold: ``p_adjusted < alpha`` (the change is real, after the
       correction across the run), ``w > t`` (its best estimate is beyond the threshold)
       and ``w_low > min(f, t)`` (even the interval's kind end is worse than identical
       code looks in this run; when the run is noisier than the threshold itself, the
       interval's kind end must be beyond the threshold).
    3. PASS when ``w_high <= t``: the whole interval is within the threshold; whatever
       changed is smaller than what the policy cares about (improvements pass here).
    4. Otherwise INCONCLUSIVE: the run cannot tell yet; collect more rounds.

    Why not "FAIL only if the whole interval is beyond the threshold": that too never
    fails identical code, but it misses real changes just above the threshold. In seeded
    simulations (normal noise of 0.5 % per sample, 20 rounds, 200 seeds) a true 2.5 %
    slowdown against a 2 % threshold failed 64 % of the time under it and 98 % under this
    rule; with 1 % noise a true 3 % failed 64 % against 92 % (the rest inconclusive, so
    the sample budget gets another go). Identical code would need its median ratio off by
    four or more standard errors to fail here, and the significance and noise-floor
    conditions guard short and noisy runs; it failed in none of 1,200 simulated runs. The
    price: a true change just below the threshold can fail (a true 1.5 % against 2 % did
    in 0-7 % of the seeds, depending on noise and rounds), which is what a threshold on
    the change means.
    """
    verdict, _ = _decide(
        ratio=ratio,
        ci_low=ci_low,
        ci_high=ci_high,
        p_adjusted=p_adjusted,
        threshold_pct=threshold_pct,
        noise_pct=noise_pct,
        direction=direction,
        alpha=alpha,
        n_rounds=n_rounds,
        min_rounds=min_rounds,
    )
    return verdict


@dataclass(frozen=True, slots=True)
class _Measured:
    """A comparison before the correction across the run."""

    key: SampleKey
    estimate: RatioEstimate
    significance: Significance
    noise_pct: float
    n_base: int
    n_head: int
    threshold_pct: float
    direction: Direction


def _label(key: SampleKey) -> str:
    return f"{key[0]} ({key[1]})"


def _checked(key: SampleKey, side: str, values: Samples, fix: str) -> list[float]:
    """The samples of one side, or a ResultError naming the benchmark."""
    samples = [float(value) for value in values]
    if not samples:
        raise ResultError(f"zero samples on the {side} side", _label(key), fix)
    if len(samples) < 2:
        raise ResultError(
            f"only 1 sample on the {side} side; comparing needs at least 2", _label(key), fix
        )
    if not all(math.isfinite(value) and value > 0.0 for value in samples):
        raise ResultError(
            f"a NaN, infinite, zero or negative sample on the {side} side (a crashed worker?)",
            _label(key),
            fix,
        )
    return samples


def _check_sides(base: SampleMap, head: SampleMap, mode: Mode) -> None:
    only_base = sorted(set(base) - set(head))
    only_head = sorted(set(head) - set(base))
    if only_base or only_head:
        named = [f"{_label(k)} on the base side only" for k in only_base]
        named += [f"{_label(k)} on the head side only" for k in only_head]
        raise ResultError(
            "benchmark measured on one side only: " + "; ".join(named),
            ", ".join(sorted({k[0] for k in (*only_base, *only_head)})),
            _REFRESH + " if the benchmark was added or removed on purpose"
            if mode == Mode.BASELINE
            else "measure the same benchmark set on base and head (nox -s perf_quick)",
        )
    if not base:
        raise ResultError("no benchmark results to compare", "results", _RERUN)


def _measure(
    key: SampleKey, base: Samples, head: Samples, policy: Policy, paired: bool, seed: int
) -> _Measured:
    base_fix = _REFRESH if policy.mode == Mode.BASELINE else _RERUN
    base_values = _checked(key, "base", base, base_fix)
    head_values = _checked(key, "head", head, _RERUN)
    threshold_pct = policy.threshold_pct(*key)
    direction = policy.direction(key[1])
    # Only a regression fails a build, so the test is one-sided, towards the bad direction.
    worse = Alternative.GREATER if direction == Direction.LOWER_IS_BETTER else Alternative.LESS
    if paired:
        if len(base_values) != len(head_values):
            raise ResultError(
                f"paired rounds differ: {len(base_values)} base and {len(head_values)} head "
                "samples",
                _label(key),
                _RERUN,
            )
        ratios = paired_ratios(base_values, head_values)
        estimate = ratio_ci_paired(ratios, confidence=policy.confidence, seed=seed)
        significance = paired_test(ratios, worse)
    else:
        estimate = ratio_ci_unpaired(
            base_values, head_values, confidence=policy.confidence, seed=seed
        )
        significance = unpaired_test(base_values, head_values, worse)
    noise_pct = noise_floor_pct(
        base_values, head_values, paired=paired, confidence=policy.confidence, seed=seed
    )
    return _Measured(
        key=key,
        estimate=estimate,
        significance=significance,
        noise_pct=noise_pct,
        n_base=len(base_values),
        n_head=len(head_values),
        threshold_pct=threshold_pct,
        direction=direction,
    )


def compare(
    base_samples: SampleMap,
    head_samples: SampleMap,
    policy: Policy,
    paired: bool | None = None,
    *,
    seed: int = 0,
) -> list[Comparison]:
    """Compare every ``(benchmark, metric)`` of a run, head against base.

    ``paired`` (default: true in PR mode, false in baseline mode) selects the estimator and
    test: paired per-round ratios, their median with an exact interval and the Wilcoxon
    signed-rank test; or the ratio of medians with a seeded bootstrap interval and the
    Mann-Whitney U test, for unequal sample counts. Either test is one-sided, against a
    change in the metric's bad direction: only a regression can fail a build, so the
    correction's alpha is the rate of false failures, none of it spent on improvements
    (whose intervals the reports judge). The noise floor comes from
    :func:`~perf.decide.stats.noise_floor_pct`. Raw p-values are corrected across all comparisons
    of the run with ``policy.correction`` (Holm or Benjamini-Hochberg), then each comparison
    is decided by :func:`decide`. Results come sorted by benchmark, then metric.

    Raises :class:`~perf.errors.ResultError` naming the benchmark for a key on one side
    only, zero (or a single) samples, non-finite or non-positive samples, unequal paired
    counts, or no results at all; :class:`~perf.errors.ConfigError` for a metric without
    a threshold or direction.
    """
    if paired is None:
        paired = policy.mode == Mode.PR
    _check_sides(base_samples, head_samples, policy.mode)
    measured = [
        _measure(key, base_samples[key], head_samples[key], policy, paired, seed)
        for key in sorted(base_samples)
    ]
    raw = [m.significance.p_value for m in measured]
    adjust = holm if policy.correction == Correction.HOLM else benjamini_hochberg
    comparisons = []
    for m, p_adjusted in zip(measured, adjust(raw), strict=True):
        verdict, reason = _decide(
            ratio=m.estimate.ratio,
            ci_low=m.estimate.ci_low,
            ci_high=m.estimate.ci_high,
            p_adjusted=p_adjusted,
            threshold_pct=m.threshold_pct,
            noise_pct=m.noise_pct,
            direction=m.direction,
            alpha=policy.alpha,
            n_rounds=m.estimate.n,
            min_rounds=policy.min_rounds,
        )
        if m.significance.degenerate:
            reason = f"{reason} [test not run: {m.significance.note}]"
        comparisons.append(
            Comparison(
                benchmark=m.key[0],
                metric=m.key[1],
                ratio=m.estimate.ratio,
                ci_low=m.estimate.ci_low,
                ci_high=m.estimate.ci_high,
                p_value=m.significance.p_value,
                p_adjusted=p_adjusted,
                threshold_pct=m.threshold_pct,
                noise_pct=m.noise_pct,
                min_detectable_pct=min_detectable_change_pct(m.estimate, m.noise_pct),
                n_base=m.n_base,
                n_head=m.n_head,
                verdict=verdict,
                direction=m.direction,
                reason=reason,
            )
        )
    return comparisons


def run_verdict(comparisons: Sequence[Comparison]) -> Verdict:
    """Verdict of a run: any FAIL fails it; else any INCONCLUSIVE makes it inconclusive;
    else it passes. No comparisons at all is a ResultError: a gate never passes on nothing.
    """
    if not comparisons:
        raise ResultError("no comparisons to judge", "results", _RERUN)
    verdicts = {c.verdict for c in comparisons}
    if Verdict.FAIL in verdicts:
        return Verdict.FAIL
    if Verdict.INCONCLUSIVE in verdicts:
        return Verdict.INCONCLUSIVE
    return Verdict.PASS


def exit_status(verdict: Verdict, strict: bool = False) -> ExitCode:
    """Exit code for a run's verdict: PASS 0, FAIL 1; INCONCLUSIVE 0, or with ``strict`` 2.

    An inconclusive run found no regression it could prove, so by default it does not
    block (the report says it was inconclusive). Under ``--strict`` it exits 2, "the gate
    could not decide" - never 1, since no regression was shown.
    """
    if verdict is Verdict.FAIL:
        return ExitCode.REGRESSION
    if verdict is Verdict.INCONCLUSIVE and strict:
        return ExitCode.UNDECIDED
    return ExitCode.PASS


def needs_more_samples(
    comparisons: Sequence[Comparison], policy: Policy | None = None
) -> list[SampleKey]:
    """``(benchmark, metric)`` of the inconclusive comparisons worth more rounds.

    With a ``policy``, those whose head side already has ``policy.max_rounds`` samples are
    left out: the sample budget is spent and they stay inconclusive.
    """
    budget = math.inf if policy is None else policy.max_rounds
    return [
        (c.benchmark, c.metric)
        for c in comparisons
        if c.verdict is Verdict.INCONCLUSIVE and c.n_head < budget
    ]
