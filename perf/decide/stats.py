"""Statistics of the perf gate: pure functions over samples.

Each function states its test, its alpha or confidence, and its assumptions. Conventions:

- A *ratio* is ``head / base`` of one metric; above 1 the head measured more (slower for a
  time, faster for a throughput). Which way is bad is the policy's business, not this
  module's.
- Samples must be finite and strictly positive; anything else raises ``ValueError``
  (the gate validates results first and raises :class:`perf.errors.ResultError` naming the
  benchmark, so these are a second line of defence).
- Randomness (the bootstrap) is drawn from ``numpy.random.default_rng(seed)``: the same
  inputs and seed give the same interval on every machine.
- Degenerate tests (no differences at all, or too few observations for the test to ever
  reach ``p < DEGENERATE_P_FLOOR``) are reported explicitly with ``p_value = 1.0`` and
  ``degenerate = True``; no exception is turned into a "significant" result.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction

import numpy as np
import numpy.typing as npt
from scipy import stats as sps

__all__ = [
    "DEFAULT_CONFIDENCE",
    "DEFAULT_N_BOOT",
    "DEGENERATE_P_FLOOR",
    "Alternative",
    "CIMethod",
    "RatioEstimate",
    "Samples",
    "Significance",
    "benjamini_hochberg",
    "holm",
    "min_detectable_change_pct",
    "noise_floor_pct",
    "paired_ratios",
    "paired_test",
    "ratio_ci_paired",
    "ratio_ci_unpaired",
    "unpaired_test",
]

FloatArray = npt.NDArray[np.float64]
Samples = Sequence[float] | FloatArray

DEFAULT_CONFIDENCE = 0.95
DEFAULT_N_BOOT = 2000
# A test whose smallest attainable p-value is above this can never show a change at the
# conventional alpha; it is reported as degenerate (p = 1.0) rather than run.
DEGENERATE_P_FLOOR = 0.05
# Bootstrap resamples are drawn in blocks of this many to bound memory on long series.
_BOOT_BLOCK = 256


class CIMethod(StrEnum):
    """How a ratio's confidence interval was obtained."""

    EXACT = "exact"  # distribution-free order-statistic interval for a median
    BOOTSTRAP = "bootstrap"  # seeded percentile bootstrap


@dataclass(frozen=True, slots=True)
class RatioEstimate:
    """A ratio ``head / base`` with its confidence interval.

    ``confidence`` is the nominal level asked for; ``coverage`` the level the interval
    actually has (the exact interval's is at least the nominal one, the bootstrap's is
    the nominal one, approximately). ``n`` is the number of pairs, or for unpaired samples
    the smaller side.
    """

    ratio: float
    ci_low: float
    ci_high: float
    confidence: float
    coverage: float
    method: CIMethod
    n: int

    @property
    def half_width_pct(self) -> float:
        """Half the interval's width, in percent of the ratio 1.0."""
        return (self.ci_high - self.ci_low) / 2.0 * 100.0


class Alternative(StrEnum):
    """What a test of "no change" is against, in terms of the ratio ``head / base``.

    ``GREATER``: head measured more (ratio above 1); ``LESS``: head measured less;
    ``TWO_SIDED``: either. A gate that fails only regressions tests one side, the metric's
    bad direction: its false failures then happen at rate alpha, not alpha / 2.
    """

    TWO_SIDED = "two-sided"
    GREATER = "greater"
    LESS = "less"


@dataclass(frozen=True, slots=True)
class Significance:
    """Outcome of a test of "no change" against ``alternative``.

    ``n`` is the number of observations the test used (signed-rank: non-zero log ratios;
    Mann-Whitney: both samples together). ``min_attainable_p`` is the smallest p-value the
    test could give at these sizes without ties. When ``degenerate`` is true the test was
    not run, ``p_value`` is 1.0 and ``note`` says why.
    """

    test: str
    p_value: float
    statistic: float | None
    n: int
    min_attainable_p: float
    degenerate: bool
    note: str
    alternative: Alternative = Alternative.TWO_SIDED


def _as_samples(values: Samples, name: str) -> FloatArray:
    """Samples as a 1-D float array; empty, non-finite or non-positive values raise."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name}: expected a flat sequence of numbers, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name}: no samples")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name}: contains NaN or infinite values")
    if not np.all(array > 0.0):
        raise ValueError(f"{name}: contains zero or negative values; ratios need positive samples")
    return array


def _check_confidence(confidence: float) -> None:
    if not 0.5 <= confidence < 1.0:
        raise ValueError(f"confidence must be in [0.5, 1), got {confidence}")


def paired_ratios(base: Samples, head: Samples) -> FloatArray:
    """Per-round ratios ``head[i] / base[i]`` of two equally long paired sequences.

    Round ``i`` measured base and head back to back, so machine drift common to both
    cancels in the ratio. Raises ``ValueError`` if the lengths differ, a sequence is empty,
    or any value is zero, negative, NaN or infinite.
    """
    base_array = _as_samples(base, "base")
    head_array = _as_samples(head, "head")
    if base_array.size != head_array.size:
        raise ValueError(
            f"paired samples need equal lengths: base has {base_array.size}, "
            f"head has {head_array.size}"
        )
    ratios: FloatArray = head_array / base_array
    return ratios


@functools.lru_cache(maxsize=1024)
def _median_ci_rank(n: int, confidence: float) -> tuple[int, float] | None:
    """1-based rank ``k`` of the exact median interval ``[x(k), x(n+1-k)]`` and its coverage.

    For ``X ~ Binomial(n, 1/2)`` (the count of observations below the true median) the
    interval misses the median with probability ``2 * P(X <= k - 1)``; ``k`` is the largest
    rank keeping that at most ``1 - confidence``. None when even ``[min, max]`` is too narrow,
    i.e. when ``2 * 0.5**n > 1 - confidence`` (n < 6 at 95 %). Binomial tails are summed in
    exact integers, so no rounding moves a boundary.
    """
    total = 2**n
    allowed = (1 - Fraction(confidence)) / 2 * total  # outcomes one tail may hold
    rank: int | None = None
    below = 0  # outcomes with X <= rank - 1
    term = 1  # C(n, k - 1)
    for k in range(1, n // 2 + 2):
        if below + term > allowed:
            break
        below += term
        rank = k
        term = term * (n - k + 1) // k
    if rank is None:
        return None
    return rank, float(1 - Fraction(2 * below, total))


def _bootstrap_medians(values: FloatArray, n_boot: int, rng: np.random.Generator) -> FloatArray:
    """Medians of ``n_boot`` resamples (with replacement) of ``values``."""
    medians = np.empty(n_boot, dtype=np.float64)
    for start in range(0, n_boot, _BOOT_BLOCK):
        stop = min(start + _BOOT_BLOCK, n_boot)
        index = rng.integers(0, values.size, size=(stop - start, values.size))
        medians[start:stop] = np.median(values[index], axis=1)
    return medians


def _percentile_interval(draws: FloatArray, confidence: float) -> tuple[float, float]:
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(draws, [tail, 1.0 - tail])
    return float(low), float(high)


def ratio_ci_paired(
    ratios: Samples,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
    n_boot: int = DEFAULT_N_BOOT,
) -> RatioEstimate:
    """Median of paired per-round ratios, with a confidence interval for it.

    Estimator: the sample median of the ratios (the primary PR-mode estimator: alternating
    base and head and taking the median per-round ratio cut the A/A spread on the CI
    machine to about 0.5 %).

    Interval: when ``n`` is large enough for one to exist (``2 * 0.5**n <= 1 - confidence``,
    so n >= 6 at 95 %, n >= 8 at 99 %) the exact distribution-free order-statistic interval
    ``[x(k), x(n+1-k)]`` from the Binomial(n, 1/2) law; its coverage is at least the nominal
    level (reported in ``coverage``). Assumes only that rounds are independent and share one
    median ratio; no normality, no symmetry. For smaller ``n`` a seeded percentile bootstrap
    of the median (``n_boot`` resamples), which at such sizes covers less than nominal; the
    verdict's ``min_rounds`` keeps such runs from deciding.
    """
    _check_confidence(confidence)
    values = _as_samples(ratios, "ratios")
    n = int(values.size)
    ratio = float(np.median(values))
    exact = _median_ci_rank(n, confidence)
    if exact is not None:
        rank, coverage = exact
        ordered = np.sort(values)
        return RatioEstimate(
            ratio=ratio,
            ci_low=float(ordered[rank - 1]),
            ci_high=float(ordered[n - rank]),
            confidence=confidence,
            coverage=coverage,
            method=CIMethod.EXACT,
            n=n,
        )
    rng = np.random.default_rng(seed)
    low, high = _percentile_interval(_bootstrap_medians(values, n_boot, rng), confidence)
    return RatioEstimate(
        ratio=ratio,
        ci_low=min(low, ratio),
        ci_high=max(high, ratio),
        confidence=confidence,
        coverage=confidence,
        method=CIMethod.BOOTSTRAP,
        n=n,
    )


def ratio_ci_unpaired(
    base: Samples,
    head: Samples,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
    n_boot: int = DEFAULT_N_BOOT,
) -> RatioEstimate:
    """Ratio of medians ``median(head) / median(base)`` with a seeded bootstrap interval.

    For baseline mode, where the stored samples and this run's are not paired; the two
    sides may differ in size. Interval: percentile bootstrap, resampling each side
    independently with replacement ``n_boot`` times from ``default_rng(seed)``. Assumes the
    samples within each side are independent draws from one distribution; it knows nothing
    of drift between the two runs (separate runs on the CI machine differ by 3-6 %), which
    is why baseline mode uses wider thresholds. Coverage is approximate and poor below
    about 10 samples per side.
    """
    _check_confidence(confidence)
    base_array = _as_samples(base, "base")
    head_array = _as_samples(head, "head")
    ratio = float(np.median(head_array) / np.median(base_array))
    rng = np.random.default_rng(seed)
    base_medians = _bootstrap_medians(base_array, n_boot, rng)
    head_medians = _bootstrap_medians(head_array, n_boot, rng)
    low, high = _percentile_interval(head_medians / base_medians, confidence)
    return RatioEstimate(
        ratio=ratio,
        ci_low=min(low, ratio),
        ci_high=max(high, ratio),
        confidence=confidence,
        coverage=confidence,
        method=CIMethod.BOOTSTRAP,
        n=int(min(base_array.size, head_array.size)),
    )


def _degenerate(
    test: str, n: int, min_p: float, note: str, alternative: Alternative
) -> Significance:
    return Significance(
        test=test,
        p_value=1.0,
        statistic=None,
        n=n,
        min_attainable_p=min_p,
        degenerate=True,
        note=note,
        alternative=alternative,
    )


def _sides(alternative: Alternative | str) -> tuple[Alternative, int]:
    """The alternative, and how many tails its smallest p-value counts (2 or 1)."""
    chosen = Alternative(alternative)
    return chosen, 2 if chosen is Alternative.TWO_SIDED else 1


# scipy.stats.wilcoxon's limit for its exact null distribution (method "auto").
_EXACT_SIGNED_RANK_MAX_N = 50


@functools.lru_cache(maxsize=64)
def _signed_rank_pmf(n: int) -> FloatArray:
    """Null distribution of the signed-rank statistic ``T+`` for ``n`` untied, non-zero
    differences: ``pmf[t] = P(T+ = t)``, ``t = 0 .. n(n+1)/2``. Built as scipy builds it
    (``_get_wilcoxon_distr``: each rank joins the positive side with probability 1/2), so
    the p-values below are scipy's to the last bit."""
    pmf = np.ones(1, dtype=np.float64)
    for k in range(1, n + 1):
        previous = pmf
        pmf = np.zeros(k * (k + 1) // 2 + 1, dtype=np.float64)
        size = len(previous)
        pmf[:size] = previous * 0.5
        pmf[-size:] += previous * 0.5
    pmf.flags.writeable = False
    return pmf


def _signed_rank_exact(logs: FloatArray, alternative: Alternative) -> tuple[float, float] | None:
    """``(statistic, p-value)`` of scipy's exact signed-rank test of non-zero ``logs``
    without ties in their absolute values, computed without scipy's per-call overhead
    (a hundred times faster; the simulator of ``perf.decide.simulate`` calls this test
    millions of times). None where scipy would not use the exact distribution: ties, or
    more than ``_EXACT_SIGNED_RANK_MAX_N`` values; the caller then asks scipy."""
    n = int(logs.size)
    magnitudes = np.abs(logs)
    order = np.argsort(magnitudes, kind="stable")
    ordered = magnitudes[order]
    if n > _EXACT_SIGNED_RANK_MAX_N or bool(np.any(ordered[1:] == ordered[:-1])):
        return None
    ranks = np.empty(n, dtype=np.float64)
    ranks[order] = np.arange(1, n + 1, dtype=np.float64)
    r_plus = float(np.sum((logs > 0).astype(np.float64) * ranks))
    r_minus = float(np.sum((logs < 0).astype(np.float64) * ranks))
    pmf = _signed_rank_pmf(n)
    mean = n * (n + 1) / 4
    k = int(r_plus)

    def sf(k: int) -> float:  # P(T+ >= k), summed as scipy sums it
        return float(pmf[k:].sum()) if k <= mean else float(1 - pmf[:k].sum())

    def cdf(k: int) -> float:  # P(T+ <= k)
        return float(pmf[: k + 1].sum()) if k <= mean else float(1 - pmf[k + 1 :].sum())

    if alternative is Alternative.GREATER:
        return r_plus, sf(k)
    if alternative is Alternative.LESS:
        return r_plus, cdf(k)
    return min(r_plus, r_minus), float(np.clip(2 * min(sf(k), cdf(k)), 0.0, 1.0))


def paired_test(
    ratios: Samples, alternative: Alternative | str = Alternative.TWO_SIDED
) -> Significance:
    """Wilcoxon signed-rank test of "the log ratios are centred on 0" (no change).

    ``alternative``: two-sided, or one-sided ``GREATER`` (head above base) / ``LESS``.
    Uses ``scipy.stats.wilcoxon`` on ``log(ratios)`` after dropping exact zeros (ratio 1.0,
    the classic "wilcox" treatment); exact null distribution for n <= 50 without ties, the
    normal approximation otherwise. Assumes independent rounds whose log ratios are
    symmetric about their median. The p-value is raw: correct it across the run with
    :func:`holm` or :func:`benjamini_hochberg` before comparing it with alpha.

    Degenerate, reported with ``p_value = 1.0`` and ``degenerate = True``: every ratio is
    exactly 1 (nothing to test), or so few non-zero log ratios remain that the smallest
    attainable p-value, ``2 / 2**n`` two-sided or ``1 / 2**n`` one-sided, exceeds
    ``DEGENERATE_P_FLOOR`` (n < 6 two-sided, n < 5 one-sided).
    """
    chosen, tails = _sides(alternative)
    test = "wilcoxon signed-rank"
    logs = np.log(_as_samples(ratios, "ratios"))
    nonzero = logs[logs != 0.0]
    n = int(nonzero.size)
    if n == 0:
        return _degenerate(
            test, 0, 1.0, f"all {logs.size} ratios are exactly 1: nothing to test", chosen
        )
    min_p = min(1.0, tails * 2.0**-n)
    if min_p > DEGENERATE_P_FLOOR:
        return _degenerate(
            test,
            n,
            min_p,
            f"only {n} rounds differ; the {chosen.value} test cannot go below p={min_p:.3g}",
            chosen,
        )
    exact = _signed_rank_exact(nonzero, chosen)
    if exact is not None:
        statistic, p_value = exact
    else:
        result = sps.wilcoxon(nonzero, zero_method="wilcox", alternative=chosen.value)
        statistic, p_value = float(result.statistic), float(result.pvalue)
    if not math.isfinite(p_value):
        return _degenerate(test, n, min_p, "scipy returned a non-finite p-value", chosen)
    return Significance(
        test=test,
        p_value=p_value,
        statistic=statistic,
        n=n,
        min_attainable_p=min_p,
        degenerate=False,
        note="",
        alternative=chosen,
    )


def unpaired_test(
    base: Samples, head: Samples, alternative: Alternative | str = Alternative.TWO_SIDED
) -> Significance:
    """Mann-Whitney U test of "head and base come from one distribution".

    ``alternative``: two-sided, or one-sided ``GREATER`` (head tends above base) / ``LESS``.
    Uses ``scipy.stats.mannwhitneyu(head, base)``: exact for small samples without ties,
    otherwise the normal approximation with tie and continuity corrections. Valid for
    unequal sample sizes. Assumes independent samples within and between the sides; it
    is sensitive to a shift of one distribution against the other. The p-value is raw.

    Degenerate, reported with ``p_value = 1.0`` and ``degenerate = True``: every sample on
    both sides is the same value, or the sides are so small that the smallest attainable
    p-value, ``2 / C(n_base + n_head, n_base)`` two-sided (half that one-sided), exceeds
    ``DEGENERATE_P_FLOOR`` (two-sided: for example 3 against 3, or 2 against anything
    under 8).
    """
    chosen, tails = _sides(alternative)
    test = "mann-whitney u"
    base_array = _as_samples(base, "base")
    head_array = _as_samples(head, "head")
    n = int(base_array.size + head_array.size)
    min_p = min(1.0, tails / math.comb(n, int(base_array.size)))
    pooled = np.concatenate([base_array, head_array])
    if np.all(pooled == pooled[0]):
        return _degenerate(
            test, n, min_p, f"all {n} samples are identical: nothing to test", chosen
        )
    if min_p > DEGENERATE_P_FLOOR:
        return _degenerate(
            test,
            n,
            min_p,
            f"{base_array.size} base and {head_array.size} head samples; the {chosen.value} "
            f"test cannot go below p={min_p:.3g}",
            chosen,
        )
    result = sps.mannwhitneyu(head_array, base_array, alternative=chosen.value)
    p_value = float(result.pvalue)
    if not math.isfinite(p_value):
        return _degenerate(test, n, min_p, "scipy returned a non-finite p-value", chosen)
    return Significance(
        test=test,
        p_value=p_value,
        statistic=float(result.statistic),
        n=n,
        min_attainable_p=min_p,
        degenerate=False,
        note="",
        alternative=chosen,
    )


def _as_pvalues(pvalues: Sequence[float]) -> FloatArray:
    array = np.asarray(pvalues, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError("p-values must be a flat sequence")
    if not np.all((array >= 0.0) & (array <= 1.0)):
        raise ValueError(f"p-values must lie in [0, 1] and not be NaN: {array.tolist()}")
    return array


def holm(pvalues: Sequence[float]) -> tuple[float, ...]:
    """Holm step-down adjusted p-values, in the input order.

    Controls the family-wise error rate (the chance of any false "significant" among the
    ``m`` comparisons of a run) at alpha under any dependence between them. With the
    p-values sorted ascending, ``p(1) <= ... <= p(m)``, the adjusted value of the j-th is
    ``max over i <= j of min(1, (m - i + 1) * p(i))``; compare each with alpha.
    """
    p = _as_pvalues(pvalues)
    m = p.size
    if m == 0:
        return ()
    order = np.argsort(p, kind="stable")
    scaled = (m - np.arange(m)) * p[order]
    stepped = np.minimum(1.0, np.maximum.accumulate(scaled))
    adjusted = np.empty(m, dtype=np.float64)
    adjusted[order] = stepped
    return tuple(float(value) for value in adjusted)


def benjamini_hochberg(pvalues: Sequence[float]) -> tuple[float, ...]:
    """Benjamini-Hochberg adjusted p-values (``scipy.stats.false_discovery_control``).

    Controls the false discovery rate (the expected share of false "significant" among the
    significant ones) at alpha, assuming independent or positively dependent comparisons.
    More powerful than :func:`holm` when many benchmarks change at once, weaker in its
    guarantee: one false failure among many true ones is allowed.
    """
    p = _as_pvalues(pvalues)
    if p.size == 0:
        return ()
    adjusted = sps.false_discovery_control(p, method="bh")
    return tuple(float(value) for value in np.atleast_1d(adjusted))


def noise_floor_pct(
    base: Samples,
    head: Samples,
    *,
    paired: bool,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
    n_boot: int = DEFAULT_N_BOOT,
) -> float:
    """This run's own noise: how far from "no change" identical code would reach, in percent.

    An A/A comparison built from the run itself, measured with the same estimator and
    interval as the real comparison; the noise floor is that interval's end farthest from
    1: ``100 * max(ci_high - 1, 1 - ci_low)``. No change smaller than it is taken as real.

    Unpaired (baseline mode): each side's samples are split into interleaved halves, even-
    and odd-indexed, so slow drift falls on both halves alike, and the halves are compared
    with :func:`ratio_ci_unpaired` (base against base, head against head); the larger of the
    two counts. Needs at least 2 samples per side.

    Paired (PR mode): base against base would pair samples from different rounds and so
    carry the round-to-round drift that pairing exists to cancel (several percent on a
    shared machine, against about 0.5 % within a round). Instead the per-round ratios are
    divided by their median: that is what identical code would have shown in this run,
    with the same within-round noise and no change, and its median interval comes from
    :func:`ratio_ci_paired`. The figure is then the interval's relative half-width.

    Either way it covers noise within this run only: drift between separate runs (3-6 %
    on the CI machine) is invisible to it.
    """
    if paired:
        ratios = paired_ratios(base, head)
        centred = ratios / float(np.median(ratios))
        estimates = [ratio_ci_paired(centred, confidence=confidence, seed=seed, n_boot=n_boot)]
    else:
        estimates = []
        for name, side in (("base", base), ("head", head)):
            values = _as_samples(side, name)
            if values.size < 2:
                raise ValueError(f"{name}: the noise floor needs at least 2 samples to split")
            estimates.append(
                ratio_ci_unpaired(
                    values[0::2], values[1::2], confidence=confidence, seed=seed, n_boot=n_boot
                )
            )
    return 100.0 * max(max(e.ci_high - 1.0, 1.0 - e.ci_low, 0.0) for e in estimates)


def min_detectable_change_pct(estimate: RatioEstimate, noise_pct: float) -> float:
    """The smallest change, in percent, this run could have called a regression.

    The verdict fails a change only when its whole interval clears the noise floor
    (``ci_low > 1 + noise``). A true change ``d`` gives ``ci_low`` of about
    ``1 + d - half_width``, so it is detectable once ``d > noise + half_width``: the sum,
    not the larger of the two, is the honest figure. Compare it with the threshold: above
    it, the run was too noisy to catch a threshold-sized regression.
    """
    if not math.isfinite(noise_pct) or noise_pct < 0.0:
        raise ValueError(f"noise_pct must be a finite, non-negative percentage: {noise_pct}")
    return noise_pct + estimate.half_width_pct
