"""Tests of perf.decide.verdict (and the exit codes of perf.errors): the decision rule on hand-made
numbers, and compare() on seeded synthetic series with known changes."""

from __future__ import annotations

import pickle
from collections import Counter
from dataclasses import replace

import numpy as np
import pytest

from perf.decide.policy import Correction, Direction, Mode, Policy, load_policy
from perf.decide.verdict import (
    Comparison,
    SampleKey,
    Verdict,
    compare,
    decide,
    exit_status,
    needs_more_samples,
    run_verdict,
)
from perf.errors import (
    BaselineError,
    ConfigError,
    ExitCode,
    GateError,
    OutputError,
    RefError,
    ResultError,
    exit_code,
)

PR = Policy()
BASELINE = Policy(mode=Mode.BASELINE)
KEY: SampleKey = ("daemon_performance.medium_core", "time")


def _rounds(
    seed: int,
    n: int,
    change: float,
    *,
    noise: float = 0.005,
    drift: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Paired base/head samples: per-sample normal noise, optional drift common to a round."""
    rng = np.random.default_rng(seed)
    level = np.exp(rng.normal(0.0, drift, n))
    base = level * (1.0 + rng.normal(0.0, noise, n))
    head = level * (1.0 + rng.normal(0.0, noise, n)) * (1.0 + change)
    return base, head


def _paired_run(seed: int, n: int, change: float, **kwargs: float) -> Comparison:
    """One paired comparison among three of a run (two unchanged), so the correction bites."""
    base_map: dict[SampleKey, np.ndarray] = {}
    head_map: dict[SampleKey, np.ndarray] = {}
    for index in range(3):
        base, head = _rounds(seed * 10 + index, n, change if index == 0 else 0.0, **kwargs)
        base_map[(f"bench_{index}", "time")] = base
        head_map[(f"bench_{index}", "time")] = head
    return compare(base_map, head_map, PR, paired=True)[0]


def _tally(n: int, change: float, seeds: int = 60, **kwargs: float) -> Counter[Verdict]:
    return Counter(_paired_run(seed, n, change, **kwargs).verdict for seed in range(seeds))


# --- decide on hand-made numbers ------------------------------------------------------------

_BASE_ARGS = {
    "p_adjusted": 0.001,
    "threshold_pct": 2.0,
    "noise_pct": 0.5,
    "alpha": 0.05,
    "n_rounds": 20,
    "min_rounds": 10,
}


@pytest.mark.parametrize(
    ("ratio", "ci_low", "ci_high", "changes", "expected"),
    [
        (1.03, 1.025, 1.035, {}, Verdict.FAIL),
        (1.001, 0.996, 1.006, {}, Verdict.PASS),
        (0.90, 0.88, 0.92, {}, Verdict.PASS),  # a big improvement passes
        (1.03, 1.025, 1.035, {"p_adjusted": 0.2}, Verdict.INCONCLUSIVE),  # not significant
        (1.03, 1.004, 1.05, {}, Verdict.INCONCLUSIVE),  # interval within the noise floor
        (1.015, 1.005, 1.025, {}, Verdict.INCONCLUSIVE),  # interval crosses the threshold
        # A run noisier than the threshold: the whole interval must lie beyond it.
        (1.025, 1.015, 1.035, {"noise_pct": 3.0}, Verdict.INCONCLUSIVE),
        (1.025, 1.021, 1.029, {"noise_pct": 3.0}, Verdict.FAIL),
        (1.03, 1.025, 1.035, {"n_rounds": 5}, Verdict.INCONCLUSIVE),  # too few rounds
        (1.001, 0.996, 1.006, {"n_rounds": 9}, Verdict.INCONCLUSIVE),
        (1.019, 1.015, 1.0199, {}, Verdict.PASS),  # just within the threshold
    ],
)
def test_decide_lower_is_better(
    ratio: float, ci_low: float, ci_high: float, changes: dict[str, float], expected: Verdict
) -> None:
    args = {**_BASE_ARGS, **changes}
    verdict = decide(
        ratio=ratio,
        ci_low=ci_low,
        ci_high=ci_high,
        p_adjusted=args["p_adjusted"],
        threshold_pct=args["threshold_pct"],
        noise_pct=args["noise_pct"],
        direction=Direction.LOWER_IS_BETTER,
        alpha=args["alpha"],
        n_rounds=int(args["n_rounds"]),
        min_rounds=int(args["min_rounds"]),
    )
    assert verdict is expected


@pytest.mark.parametrize(
    ("ratio", "ci_low", "ci_high", "expected"),
    [
        (0.97, 0.965, 0.975, Verdict.FAIL),  # throughput fell 3 %
        (1.03, 1.025, 1.035, Verdict.PASS),  # throughput rose 3 %
        (0.99, 0.97, 1.01, Verdict.INCONCLUSIVE),
    ],
)
def test_decide_higher_is_better(
    ratio: float, ci_low: float, ci_high: float, expected: Verdict
) -> None:
    verdict = decide(
        ratio=ratio,
        ci_low=ci_low,
        ci_high=ci_high,
        p_adjusted=0.001,
        threshold_pct=2.0,
        noise_pct=0.5,
        direction=Direction.HIGHER_IS_BETTER,
        alpha=0.05,
        n_rounds=20,
        min_rounds=10,
    )
    assert verdict is expected


# --- compare on synthetic series with known changes ------------------------------------------


@pytest.mark.parametrize("n", [15, 30])
def test_identical_code_never_fails_and_passes_at_least_nine_in_ten(n: int) -> None:
    tally = _tally(n, 0.0)
    assert tally[Verdict.FAIL] == 0
    assert tally[Verdict.PASS] >= 54  # 9 in 10; observed: all 60 at 15 and at 30 rounds


@pytest.mark.parametrize("n", [15, 30])
def test_a_real_3_percent_slowdown_fails_at_least_nine_in_ten(n: int) -> None:
    assert _tally(n, 0.03)[Verdict.FAIL] >= 54  # 9 in 10; observed: all 60


def test_a_10_percent_slowdown_always_fails() -> None:
    assert _tally(15, 0.10, seeds=30)[Verdict.FAIL] == 30


def test_pairing_cancels_round_to_round_drift() -> None:
    # 3 % drift per round, six times the per-sample noise: the paired rule must not care.
    identical = _tally(20, 0.0, seeds=40, drift=0.03)
    assert identical[Verdict.FAIL] == 0
    assert identical[Verdict.PASS] >= 36
    assert _tally(20, 0.03, seeds=40, drift=0.03)[Verdict.FAIL] >= 36


def test_a_change_below_the_threshold_rarely_fails() -> None:
    # A true 1.5 % against 2 %: the point estimate must pass 2 %, about 2.5 standard errors.
    assert _tally(20, 0.015, seeds=40)[Verdict.FAIL] <= 2  # observed: 0 of 40


def test_noisier_rounds_still_separate_identical_from_3_percent() -> None:
    assert _tally(20, 0.0, seeds=40, noise=0.01)[Verdict.FAIL] == 0
    assert _tally(20, 0.03, seeds=40, noise=0.01)[Verdict.FAIL] >= 36  # observed: 39 of 40


def test_throughput_drop_fails_and_rise_passes() -> None:
    base, head = _rounds(3, 20, 0.0)
    key: SampleKey = ("load_testing.steady_core", "throughput_eps")
    dropped = compare({key: base}, {key: head * 0.96}, PR)[0]
    risen = compare({key: base}, {key: head * 1.04}, PR)[0]
    assert dropped.verdict is Verdict.FAIL
    assert dropped.direction is Direction.HIGHER_IS_BETTER
    assert dropped.worse_pct > 2.0
    assert risen.verdict is Verdict.PASS


def test_the_test_looks_for_regressions_only() -> None:
    # One-sided towards the bad direction: an improvement has a p near 1, a regression of
    # the same size near 0, for a time (lower is better) and a throughput (higher is better).
    base, head = _rounds(5, 20, 0.0)
    time_key: SampleKey = ("s.case_core", "time")
    eps_key: SampleKey = ("s.case_core", "throughput_eps")
    slower = compare({time_key: base}, {time_key: head * 1.05}, PR)[0]
    faster = compare({time_key: base}, {time_key: head / 1.05}, PR)[0]
    assert slower.p_value < 0.001 < 0.999 < faster.p_value
    assert (slower.verdict, faster.verdict) == (Verdict.FAIL, Verdict.PASS)
    dropped = compare({eps_key: base}, {eps_key: head / 1.05}, PR)[0]
    risen = compare({eps_key: base}, {eps_key: head * 1.05}, PR)[0]
    assert dropped.p_value < 0.001 < 0.999 < risen.p_value
    # Baseline mode (Mann-Whitney) likewise.
    unpaired = compare({time_key: base[:12]}, {time_key: head * 1.05}, BASELINE)[0]
    assert unpaired.p_value < 0.001
    assert compare({time_key: base[:12]}, {time_key: head / 1.05}, BASELINE)[0].p_value > 0.999


def test_comparison_fields_are_consistent() -> None:
    base, head = _rounds(8, 20, 0.05)
    comparison = compare({KEY: base}, {KEY: head}, PR)[0]
    assert (comparison.benchmark, comparison.metric) == KEY
    assert comparison.ci_low <= comparison.ratio <= comparison.ci_high
    assert comparison.change_pct == pytest.approx((comparison.ratio - 1) * 100)
    assert comparison.p_adjusted == comparison.p_value  # one comparison: nothing to correct
    assert comparison.threshold_pct == 2.0
    assert comparison.min_detectable_pct >= comparison.noise_pct > 0.0
    assert (comparison.n_base, comparison.n_head) == (20, 20)
    assert comparison.verdict is Verdict.FAIL
    assert "beyond the 2% threshold" in comparison.reason


def test_constant_samples_pass_with_the_degenerate_test_noted() -> None:
    key: SampleKey = ("memory_profiling.kb1", "rss_bytes")
    comparison = compare({key: [5e7] * 12}, {key: [5e7] * 12}, PR)[0]
    assert comparison.verdict is Verdict.PASS
    assert comparison.p_value == 1.0
    assert "test not run" in comparison.reason


def test_too_few_rounds_are_inconclusive_and_ask_for_more() -> None:
    base, head = _rounds(1, 6, 0.0)
    comparisons = compare({KEY: base}, {KEY: head}, PR)
    assert comparisons[0].verdict is Verdict.INCONCLUSIVE
    assert needs_more_samples(comparisons) == [KEY]
    assert needs_more_samples(comparisons, replace(PR, min_rounds=6, max_rounds=6)) == []


def test_the_correction_is_applied_across_the_run() -> None:
    base_map: dict[SampleKey, np.ndarray] = {}
    head_map: dict[SampleKey, np.ndarray] = {}
    for index in range(8):
        base, head = _rounds(100 + index, 10, 0.004 * index)
        base_map[(f"b{index}", "time")], head_map[(f"b{index}", "time")] = base, head
    holm_run = compare(base_map, head_map, PR)
    bh_run = compare(base_map, head_map, replace(PR, correction=Correction.BH))
    for h, b in zip(holm_run, bh_run, strict=True):
        assert h.p_value == b.p_value
        assert h.p_adjusted >= b.p_adjusted >= h.p_value
    assert any(h.p_adjusted > h.p_value for h in holm_run)


def test_results_come_sorted() -> None:
    keys: list[SampleKey] = [("b", "time"), ("a", "rss"), ("a", "time")]
    base, head = _rounds(2, 12, 0.0)
    comparisons = compare(dict.fromkeys(keys, base), dict.fromkeys(keys, head), PR)
    assert [(c.benchmark, c.metric) for c in comparisons] == sorted(keys)


# --- baseline mode: unpaired, unequal sizes --------------------------------------------------


def _unpaired(seed: int, offset: float, n_base: int = 20, n_head: int = 13) -> Comparison:
    rng = np.random.default_rng(seed)
    base = 1.0 + rng.normal(0.0, 0.005, n_base)
    head = (1.0 + rng.normal(0.0, 0.005, n_head)) * (1.0 + offset)
    return compare({KEY: base}, {KEY: head}, BASELINE)[0]


def test_baseline_mode_is_unpaired_and_takes_unequal_sizes() -> None:
    comparison = _unpaired(0, 0.0)
    assert (comparison.n_base, comparison.n_head) == (20, 13)
    assert comparison.threshold_pct == 8.0
    assert comparison.verdict is Verdict.PASS


def test_baseline_mode_tolerates_the_measured_run_to_run_drift() -> None:
    # Identical code whose runs landed 5.5 % apart: within the measured 3-6 % spread.
    tally = Counter(_unpaired(seed, 0.055).verdict for seed in range(30))
    assert tally == {Verdict.PASS: 30}
    # With the 5 % a naive policy would use, the same identical code would fail every time.
    naive = replace(BASELINE, checks=load_policy('[tool.crucible-perf]\nchecks=["time:5%"]').checks)
    rng = np.random.default_rng(0)
    base, head = 1.0 + rng.normal(0, 0.005, 20), (1.0 + rng.normal(0, 0.005, 13)) * 1.055
    assert compare({KEY: base}, {KEY: head}, naive)[0].verdict is Verdict.FAIL


def test_baseline_mode_catches_a_large_regression() -> None:
    tally = Counter(_unpaired(seed, 0.15).verdict for seed in range(30))
    assert tally == {Verdict.FAIL: 30}


# --- results the gate cannot use ------------------------------------------------------------


def test_a_benchmark_on_one_side_only_is_a_result_error_naming_it() -> None:
    base, head = _rounds(0, 12, 0.0)
    other: SampleKey = ("scalability_testing.rate_core", "time")
    with pytest.raises(ResultError) as info:
        compare({KEY: base, other: base}, {KEY: head}, PR)
    assert "scalability_testing.rate_core" in str(info.value)
    assert "base side only" in str(info.value)
    with pytest.raises(ResultError, match="head side only"):
        compare({KEY: base}, {KEY: head, other: head}, PR)


@pytest.mark.parametrize(
    ("base", "head", "message"),
    [
        ([], [1.0, 1.0], "zero samples on the base side"),
        ([1.0, 1.0], [], "zero samples on the head side"),
        ([1.0], [1.0], "only 1 sample"),
        ([1.0, float("nan")], [1.0, 1.0], "crashed worker"),
        ([1.0, 0.0], [1.0, 1.0], "crashed worker"),
        ([1.0, 1.0, 1.0], [1.0, 1.0], "paired rounds differ"),
    ],
)
def test_unusable_samples_are_result_errors_naming_the_benchmark(
    base: list[float], head: list[float], message: str
) -> None:
    with pytest.raises(ResultError, match=message) as info:
        compare({KEY: base}, {KEY: head}, PR)
    assert info.value.subject == "daemon_performance.medium_core (time)"
    assert "nox -s" in info.value.fix


def test_an_empty_base_in_baseline_mode_points_at_the_baseline_refresh() -> None:
    with pytest.raises(ResultError) as info:
        compare({KEY: []}, {KEY: [1.0, 1.0]}, BASELINE)
    assert "perf_baseline" in info.value.fix


def test_no_results_at_all_is_an_error_not_a_pass() -> None:
    with pytest.raises(ResultError, match="no benchmark results"):
        compare({}, {}, PR)
    with pytest.raises(ResultError, match="no comparisons"):
        run_verdict([])


def test_a_metric_without_a_policy_is_a_config_error() -> None:
    key: SampleKey = ("b", "retried")
    with pytest.raises(ConfigError, match="retried"):
        compare({key: [1.0, 2.0]}, {key: [1.0, 2.0]}, PR)


# --- run verdict and exit status ------------------------------------------------------------


def _with(verdict: Verdict, n_head: int = 20) -> Comparison:
    return Comparison(
        benchmark=f"b_{verdict.value}",
        metric="time",
        ratio=1.0,
        ci_low=0.99,
        ci_high=1.01,
        p_value=0.5,
        p_adjusted=0.5,
        threshold_pct=2.0,
        noise_pct=0.5,
        min_detectable_pct=1.5,
        n_base=n_head,
        n_head=n_head,
        verdict=verdict,
    )


def test_run_verdict_aggregates() -> None:
    passed, failed, unsure = _with(Verdict.PASS), _with(Verdict.FAIL), _with(Verdict.INCONCLUSIVE)
    assert run_verdict([passed, passed]) is Verdict.PASS
    assert run_verdict([passed, unsure]) is Verdict.INCONCLUSIVE
    assert run_verdict([unsure, failed, passed]) is Verdict.FAIL


@pytest.mark.parametrize(
    ("verdict", "strict", "code"),
    [
        (Verdict.PASS, False, 0),
        (Verdict.PASS, True, 0),
        (Verdict.FAIL, False, 1),
        (Verdict.FAIL, True, 1),
        (Verdict.INCONCLUSIVE, False, 0),
        (Verdict.INCONCLUSIVE, True, 2),
    ],
)
def test_exit_status(verdict: Verdict, strict: bool, code: int) -> None:
    assert exit_status(verdict, strict) == code


def test_needs_more_samples_respects_the_budget() -> None:
    comparisons = [_with(Verdict.PASS), _with(Verdict.INCONCLUSIVE, n_head=12)]
    assert needs_more_samples(comparisons) == [("b_inconclusive", "time")]
    assert needs_more_samples(comparisons, replace(PR, max_rounds=12)) == []
    assert needs_more_samples(comparisons, replace(PR, max_rounds=13)) == [
        ("b_inconclusive", "time")
    ]


def test_verdict_values() -> None:
    assert [v.value for v in Verdict] == ["pass", "fail", "inconclusive"]


# --- errors and their exit codes ------------------------------------------------------------


@pytest.mark.parametrize(
    "error_type", [GateError, BaselineError, ResultError, ConfigError, RefError, OutputError]
)
def test_every_gate_error_means_undecided(error_type: type[GateError]) -> None:
    error = error_type("baseline not found", "baselines/perf_quick.json", "nox -s perf_baseline")
    assert isinstance(error, GateError)
    assert exit_code(error) is ExitCode.UNDECIDED
    assert int(exit_code(error)) == 2
    assert str(error) == (
        "baselines/perf_quick.json: baseline not found. To fix: nox -s perf_baseline"
    )
    copy = pickle.loads(pickle.dumps(error))
    assert (type(copy), copy.subject, copy.fix) == (error_type, error.subject, error.fix)


def test_a_message_alone_is_allowed_when_it_names_subject_and_fix() -> None:
    error = RefError("base ref 'nope' does not exist; pass --base REF")
    assert str(error) == "base ref 'nope' does not exist; pass --base REF"
    assert exit_code(error) is ExitCode.UNDECIDED


def test_an_unexpected_exception_is_undecided_too_never_a_regression() -> None:
    assert exit_code(ZeroDivisionError()) is ExitCode.UNDECIDED
    assert [int(code) for code in ExitCode] == [0, 1, 2]
