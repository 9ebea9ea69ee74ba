"""Known-answer and synthetic tests of perf.decide.stats."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from perf.decide.stats import (
    Alternative,
    CIMethod,
    RatioEstimate,
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
from perf.workload.slope import linear_slope_ci

# --- paired_ratios -------------------------------------------------------------------------


def test_paired_ratios_are_head_over_base_per_round() -> None:
    ratios = paired_ratios([2.0, 4.0, 5.0], [3.0, 2.0, 10.0])
    assert ratios.tolist() == [1.5, 0.5, 2.0]


@pytest.mark.parametrize(
    ("base", "head", "message"),
    [
        ([1.0, 2.0], [1.0], "equal lengths"),
        ([], [], "no samples"),
        ([1.0, 0.0], [1.0, 1.0], "zero or negative"),
        ([1.0, 1.0], [1.0, -2.0], "zero or negative"),
        ([1.0, math.nan], [1.0, 1.0], "NaN"),
        ([1.0, 1.0], [math.inf, 1.0], "NaN or infinite"),
    ],
)
def test_paired_ratios_reject_bad_input(base: list[float], head: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        paired_ratios(base, head)


# --- ratio_ci_paired: exact order-statistic interval ----------------------------------------


def test_exact_median_interval_n10() -> None:
    # Binomial(10, 1/2): P(X <= 1) = 11/1024 <= 0.025 < P(X <= 2) = 56/1024, so k = 2.
    estimate = ratio_ci_paired(np.arange(1.0, 11.0))
    assert estimate.method is CIMethod.EXACT
    assert estimate.ratio == 5.5
    assert (estimate.ci_low, estimate.ci_high) == (2.0, 9.0)
    assert estimate.coverage == pytest.approx(1 - 2 * 11 / 1024)
    assert estimate.n == 10


def test_exact_median_interval_n20_is_x6_to_x15() -> None:
    values = np.arange(1.0, 21.0)[::-1]  # order of input must not matter
    estimate = ratio_ci_paired(values)
    assert (estimate.ci_low, estimate.ci_high) == (6.0, 15.0)
    assert estimate.coverage == pytest.approx(1 - 2 * sps.binom.cdf(5, 20, 0.5))
    assert estimate.coverage >= 0.95


def test_exact_interval_at_n6_is_the_range_and_needs_n8_at_99_percent() -> None:
    six = ratio_ci_paired([1.0, 1.1, 1.2, 1.3, 1.4, 1.5])
    assert six.method is CIMethod.EXACT
    assert (six.ci_low, six.ci_high) == (1.0, 1.5)
    assert six.coverage == pytest.approx(1 - 2 / 64)
    assert ratio_ci_paired(np.arange(1.0, 8.0), confidence=0.99).method is CIMethod.BOOTSTRAP
    assert ratio_ci_paired(np.arange(1.0, 9.0), confidence=0.99).method is CIMethod.EXACT


def test_small_n_falls_back_to_a_seeded_bootstrap() -> None:
    ratios = [1.01, 0.99, 1.03, 1.00, 1.02]
    first = ratio_ci_paired(ratios, seed=7)
    again = ratio_ci_paired(ratios, seed=7)
    assert first == again
    assert first.method is CIMethod.BOOTSTRAP
    assert first.ratio == 1.01
    assert 0.99 <= first.ci_low <= first.ratio <= first.ci_high <= 1.03


def test_paired_interval_covers_the_true_median_at_least_nominally() -> None:
    rng = np.random.default_rng(1)
    hits = 0
    trials = 400
    for _ in range(trials):
        ratios = 1.03 * np.exp(rng.normal(0.0, 0.01, 20))
        estimate = ratio_ci_paired(ratios)
        hits += estimate.ci_low <= 1.03 <= estimate.ci_high
    assert hits / trials >= 0.93  # exact coverage 95.9 %, minus simulation error


# --- ratio_ci_unpaired ------------------------------------------------------------------


def test_unpaired_ratio_of_medians_with_unequal_sizes() -> None:
    estimate = ratio_ci_unpaired([1.0, 2.0, 3.0], [4.0, 6.0, 8.0, 10.0], seed=3)
    assert estimate.ratio == 3.5  # 7 / 2
    assert estimate.method is CIMethod.BOOTSTRAP
    assert estimate.n == 3
    assert estimate.ci_low <= 3.5 <= estimate.ci_high
    assert estimate == ratio_ci_unpaired([1.0, 2.0, 3.0], [4.0, 6.0, 8.0, 10.0], seed=3)


def test_unpaired_interval_of_identical_constant_samples_is_a_point() -> None:
    estimate = ratio_ci_unpaired([2.0] * 10, [2.0] * 7)
    assert (estimate.ratio, estimate.ci_low, estimate.ci_high) == (1.0, 1.0, 1.0)


def test_unpaired_bootstrap_covers_a_known_ratio() -> None:
    rng = np.random.default_rng(2)
    hits = 0
    trials = 200
    for seed in range(trials):
        base = np.exp(rng.normal(0.0, 0.01, 25))
        head = 1.05 * np.exp(rng.normal(0.0, 0.01, 18))
        estimate = ratio_ci_unpaired(base, head, seed=seed, n_boot=1000)
        hits += estimate.ci_low <= 1.05 <= estimate.ci_high
    assert hits / trials >= 0.85  # percentile bootstrap of medians, nominal 95 %


# --- paired_test (Wilcoxon signed-rank) -----------------------------------------------------


def test_signed_rank_all_up_has_the_exact_two_sided_p() -> None:
    result = paired_test([1.01, 1.02, 1.03, 1.04, 1.05, 1.06, 1.07, 1.08])
    assert result.p_value == pytest.approx(2 / 2**8)
    assert result.n == 8
    assert not result.degenerate


def test_signed_rank_matches_scipy_on_fixed_data() -> None:
    ratios = np.array([1.021, 0.994, 1.013, 1.030, 0.988, 1.007, 1.018, 1.025, 0.999, 1.011])
    expected = sps.wilcoxon(np.log(ratios))
    result = paired_test(ratios)
    assert result.p_value == pytest.approx(float(expected.pvalue))
    assert result.statistic == pytest.approx(float(expected.statistic))


def test_signed_rank_drops_exact_ones() -> None:
    ratios = [1.0, 1.0, 1.0, 1.0, 1.02, 1.03, 1.01, 1.04, 1.05, 1.06]
    result = paired_test(ratios)
    assert result.n == 6
    assert result.p_value == pytest.approx(2 / 2**6)


def test_signed_rank_with_tied_log_ratios_matches_scipy() -> None:
    ratios = [1.02, 1.02, 0.98, 1.02, 1.04, 1.04, 0.98, 1.02]
    expected = sps.wilcoxon(np.log(ratios))
    assert paired_test(ratios).p_value == pytest.approx(float(expected.pvalue))


def test_signed_rank_all_equal_is_degenerate_not_significant() -> None:
    result = paired_test([1.0] * 12)
    assert result.degenerate
    assert result.p_value == 1.0
    assert "exactly 1" in result.note


def test_signed_rank_too_few_rounds_is_degenerate() -> None:
    result = paired_test([1.1, 1.2, 1.3, 1.4, 1.5])
    assert result.degenerate
    assert result.p_value == 1.0
    assert result.min_attainable_p == pytest.approx(0.0625)


@pytest.mark.parametrize("alternative", ["greater", "less"])
def test_signed_rank_one_sided_matches_scipy(alternative: str) -> None:
    ratios = np.array([1.021, 0.994, 1.013, 1.030, 0.988, 1.007, 1.018, 1.025, 0.999, 1.011])
    expected = sps.wilcoxon(np.log(ratios), alternative=alternative)
    result = paired_test(ratios, alternative)
    assert result.p_value == pytest.approx(float(expected.pvalue))
    assert result.alternative is Alternative(alternative)


@pytest.mark.parametrize("alternative", list(Alternative))
def test_signed_rank_is_scipys_to_the_bit_with_ties_large_n_and_all(
    alternative: Alternative,
) -> None:
    rng = np.random.default_rng(7)
    for trial in range(60):
        # 14 rounds at least: with ties below that scipy runs a permutation test (slow).
        n = int(rng.integers(14, 70))
        logs = rng.normal(rng.normal(0.0, 0.02), 0.05, n)
        if trial % 4 == 0:  # ties: scipy's own path
            logs = np.round(logs, 2)
            logs[logs == 0.0] = 0.01
        ratios = np.exp(logs)
        expected = sps.wilcoxon(np.log(ratios), alternative=alternative.value)
        result = paired_test(ratios, alternative)
        assert result.p_value == float(expected.pvalue)
        assert result.statistic == float(expected.statistic)
    for n in range(6, 14):  # the smallest sizes, untied
        ratios = np.exp(rng.normal(0.01, 0.05, n))
        expected = sps.wilcoxon(np.log(ratios), alternative=alternative.value)
        assert paired_test(ratios, alternative).p_value == float(expected.pvalue)


def test_signed_rank_one_sided_halves_the_p_of_a_change_its_way_only() -> None:
    up = [1.01, 1.02, 1.03, 1.04, 1.05, 1.06, 1.07, 1.08]
    assert paired_test(up, Alternative.GREATER).p_value == pytest.approx(1 / 2**8)
    assert paired_test(up, Alternative.LESS).p_value == pytest.approx(1.0)
    assert paired_test(up).p_value == pytest.approx(2 / 2**8)


def test_signed_rank_one_sided_degenerates_one_round_later() -> None:
    # One-sided, 5 rounds can reach 1 / 32 < 0.05; 4 cannot (1 / 16).
    assert not paired_test([1.1, 1.2, 1.3, 1.4, 1.5], Alternative.GREATER).degenerate
    four = paired_test([1.1, 1.2, 1.3, 1.4], Alternative.GREATER)
    assert four.degenerate
    assert four.min_attainable_p == pytest.approx(1 / 16)
    assert "greater" in four.note


def test_an_unknown_alternative_is_refused() -> None:
    with pytest.raises(ValueError, match="sideways"):
        paired_test([1.01] * 8, "sideways")


# --- unpaired_test (Mann-Whitney U) ---------------------------------------------------------


def test_mann_whitney_complete_separation_has_the_exact_p() -> None:
    result = unpaired_test([1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0])
    assert result.p_value == pytest.approx(2 / math.comb(8, 4))
    assert result.statistic == 16.0


def test_mann_whitney_unequal_sizes() -> None:
    result = unpaired_test([1.0, 2.0, 3.0], [4.0, 5.0, 6.0, 7.0, 8.0])
    assert result.p_value == pytest.approx(2 / math.comb(8, 3))
    assert result.n == 8


def test_mann_whitney_with_ties_matches_scipy() -> None:
    base = [1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 3.0]
    head = [2.0, 3.0, 3.0, 4.0, 4.0, 5.0, 5.0, 5.0, 6.0]
    expected = sps.mannwhitneyu(head, base, alternative="two-sided")
    assert unpaired_test(base, head).p_value == pytest.approx(float(expected.pvalue))


def test_mann_whitney_one_sided_points_the_way_of_the_head() -> None:
    base = [1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 3.0]
    head = [2.0, 3.0, 3.0, 4.0, 4.0, 5.0, 5.0, 5.0, 6.0]
    for alternative in ("greater", "less"):
        expected = sps.mannwhitneyu(head, base, alternative=alternative)
        result = unpaired_test(base, head, alternative)
        assert result.p_value == pytest.approx(float(expected.pvalue))
    assert (
        unpaired_test(base, head, "greater").p_value
        < 0.05
        < unpaired_test(base, head, "less").p_value
    )
    # Complete separation, 3 against 3: 1 / 20 one-sided, exactly the floor, so it is run.
    separated = unpaired_test([1.0, 2.0, 3.0], [4.0, 5.0, 6.0], Alternative.GREATER)
    assert not separated.degenerate
    assert separated.p_value == pytest.approx(1 / math.comb(6, 3))


def test_mann_whitney_all_identical_is_degenerate() -> None:
    result = unpaired_test([3.0] * 10, [3.0] * 6)
    assert result.degenerate
    assert result.p_value == 1.0


def test_mann_whitney_too_small_is_degenerate() -> None:
    result = unpaired_test([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
    assert result.degenerate
    assert result.min_attainable_p == pytest.approx(0.1)


def test_tests_reject_empty_and_nonpositive_input() -> None:
    with pytest.raises(ValueError):
        unpaired_test([], [1.0])
    with pytest.raises(ValueError):
        paired_test([1.0, 0.0])


# --- multiple-comparison corrections --------------------------------------------------------


def test_holm_textbook_example() -> None:
    # Sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 = 0.02, 0.03, 0.06, 0.04 -> monotone 0.06.
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx((0.03, 0.06, 0.06, 0.02))


def test_holm_enforces_monotonicity_and_caps_at_one() -> None:
    assert holm([0.01, 0.02, 0.03]) == pytest.approx((0.03, 0.04, 0.04))
    assert holm([0.5, 0.6]) == (1.0, 1.0)
    assert holm([0.02, 0.02]) == pytest.approx((0.04, 0.04))
    assert holm([0.3]) == (0.3,)
    assert holm([]) == ()


def test_benjamini_hochberg_textbook_examples() -> None:
    assert benjamini_hochberg([0.01, 0.02, 0.03, 0.04, 0.05]) == pytest.approx((0.05,) * 5)
    adjusted = benjamini_hochberg([0.13, 0.04, 0.005, 0.02, 0.011])
    assert adjusted == pytest.approx((0.13, 0.05, 0.025, 0.1 / 3, 0.0275))
    assert benjamini_hochberg([]) == ()


def test_holm_is_never_below_benjamini_hochberg() -> None:
    p = np.random.default_rng(5).uniform(0, 0.2, 30).tolist()
    for h, b in zip(holm(p), benjamini_hochberg(p), strict=True):
        assert h >= b - 1e-12


@pytest.mark.parametrize("bad", [[0.1, math.nan], [1.5], [-0.1]])
def test_corrections_reject_invalid_pvalues(bad: list[float]) -> None:
    with pytest.raises(ValueError):
        holm(bad)
    with pytest.raises(ValueError):
        benjamini_hochberg(bad)


# --- noise floor and minimum detectable change ----------------------------------------------


def test_paired_noise_floor_is_the_centred_interval_reach() -> None:
    head = 1.0 + 0.01 * np.array([-3, -2, -1, 0, 1, 2, 3, 4, 5, 6], dtype=float)
    # Median 1.015, exact interval [x(2), x(9)] = [0.98, 1.05]; centred: +/- 0.035 / 1.015.
    noise = noise_floor_pct(np.ones(10), head, paired=True)
    assert noise == pytest.approx(100 * 0.035 / 1.015)


def test_paired_noise_floor_ignores_drift_that_pairing_cancels() -> None:
    rng = np.random.default_rng(4)
    drift = np.exp(rng.normal(0.0, 0.05, 20))  # 5 % round-to-round machine drift
    base = drift * np.exp(rng.normal(0.0, 0.002, 20))
    head = drift * np.exp(rng.normal(0.0, 0.002, 20))
    assert noise_floor_pct(base, head, paired=True) < 0.5


def test_unpaired_noise_floor_splits_each_side_into_interleaved_halves() -> None:
    base = [1.0, 1.1] * 6  # even rounds 1.0, odd rounds 1.1: the halves differ by 10 %
    head = [2.0] * 9
    assert noise_floor_pct(base, head, paired=False) == pytest.approx(10.0)
    assert noise_floor_pct(head, head, paired=False) == 0.0
    with pytest.raises(ValueError, match="at least 2"):
        noise_floor_pct([1.0], head, paired=False)


def test_min_detectable_change_adds_noise_and_half_width() -> None:
    estimate = RatioEstimate(
        ratio=1.01,
        ci_low=0.99,
        ci_high=1.03,
        confidence=0.95,
        coverage=0.95,
        method=CIMethod.EXACT,
        n=20,
    )
    assert estimate.half_width_pct == pytest.approx(2.0)
    assert min_detectable_change_pct(estimate, 0.5) == pytest.approx(2.5)
    with pytest.raises(ValueError):
        min_detectable_change_pct(estimate, -1.0)


# --- linear_slope_ci ------------------------------------------------------------------------


def test_slope_interval_known_answer() -> None:
    # Hand computed: slope 0.6, SSE 2.4, s^2 = 0.8, Sxx = 10, se = sqrt(0.08), t(0.975, 3).
    result = linear_slope_ci([1, 2, 3, 4, 5], [2, 4, 5, 4, 5])
    half = 3.182446305284263 * math.sqrt(0.08)
    assert result.slope == pytest.approx(0.6)
    assert result.intercept == pytest.approx(2.2)
    assert (result.ci_low, result.ci_high) == pytest.approx((0.6 - half, 0.6 + half))
    assert result.n == 5


def test_slope_detects_a_synthetic_leak_and_not_a_flat_series() -> None:
    rng = np.random.default_rng(11)
    x = np.arange(50, dtype=float)
    leaking = linear_slope_ci(x, 1e6 + 2000.0 * x + rng.normal(0, 5000.0, 50))
    flat = linear_slope_ci(x, 1e6 + rng.normal(0, 5000.0, 50))
    assert leaking.ci_low > 0.0
    assert leaking.ci_low < 2000.0 < leaking.ci_high
    assert flat.ci_low < 0.0 < flat.ci_high


def test_slope_edge_cases() -> None:
    exact = linear_slope_ci([0, 1, 2], [1, 3, 5])
    assert (exact.slope, exact.ci_low, exact.ci_high) == pytest.approx((2.0, 2.0, 2.0))
    constant = linear_slope_ci([0, 1, 2, 3], [7, 7, 7, 7])
    assert (constant.slope, constant.ci_low, constant.ci_high, constant.p_value) == (
        0.0,
        0.0,
        0.0,
        1.0,
    )
    with pytest.raises(ValueError, match="at least 3"):
        linear_slope_ci([0, 1], [1, 2])
    with pytest.raises(ValueError, match="all equal"):
        linear_slope_ci([1, 1, 1], [1, 2, 3])
    with pytest.raises(ValueError, match="equally long"):
        linear_slope_ci([1, 2, 3], [1, 2])
