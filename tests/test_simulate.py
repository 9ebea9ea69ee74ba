"""Simulated PR-mode runs (perf.decide.simulate): seeded, driven by the gate's own decision
code and loop, and right at the extremes (no noise, huge changes)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import perf.decide.comparisons as comparisons
import perf.decide.sequential as sequential
from perf.decide.policy import Policy, load_policy
from perf.decide.simtiming import Timing, load_timing
from perf.decide.simulate import (
    CHANGED,
    Noise,
    NoiseModel,
    Scenario,
    SimClock,
    SimulatedRounds,
    simulate_cell,
    simulate_run,
)
from perf.decide.verdict import Verdict, compare
from perf.measure.rounds import sample_map
from perf.workload.plan import gated_keys

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy(ROOT / "pyproject.toml", mode="pr")


@pytest.fixture(scope="module")
def timing() -> Timing:
    return load_timing()


def test_a_run_is_the_same_for_the_same_seed_and_not_for_another(
    policy: Policy, timing: Timing
) -> None:
    scenario = Scenario(Noise(NoiseModel.T3, 0.05), 1.0)
    one = simulate_run(scenario, policy, timing, seed=3, budget_s=60.0)
    assert one == simulate_run(scenario, policy, timing, seed=3, budget_s=60.0)
    other = simulate_run(scenario, policy, timing, seed=4, budget_s=60.0)
    assert one != other


@pytest.mark.parametrize("model", [NoiseModel.NORMAL, NoiseModel.T3, NoiseModel.SWITCHING])
def test_without_noise_worth_the_name_identical_code_never_fails(
    policy: Policy, timing: Timing, model: NoiseModel
) -> None:
    cell = simulate_cell(
        Scenario(Noise(model, 0.001), 0.0), policy, timing, runs=10, seed=0, budget_s=360.0
    )
    assert cell.runs_failed == 0


def test_a_huge_change_fails_every_run(policy: Policy, timing: Timing) -> None:
    cell = simulate_cell(
        Scenario(Noise(NoiseModel.NORMAL, 0.02), 25.0),
        policy,
        timing,
        runs=6,
        seed=0,
        budget_s=60.0,
    )
    assert cell.changed_failed == cell.runs == cell.runs_failed


def test_a_huge_change_of_every_time_figure_fails_every_one(policy: Policy, timing: Timing) -> None:
    keys = gated_keys(timing.plan)
    shift = {k: math.log(2.0) for k in keys if k[1] in ("time", "latency_p99")}
    clock = SimClock()
    runner = SimulatedRounds(
        timing=timing,
        noise=Noise(NoiseModel.SWITCHING, 0.02),
        shift=shift,
        rng=np.random.default_rng(0),
        clock=clock,
    )
    runner.run(12, 12)
    found = comparisons.compare_with_base(runner.samples, keys, policy, seed=0)
    assert {(c.benchmark, c.metric) for c in found if c.verdict is Verdict.FAIL} == set(shift)
    assert clock() == pytest.approx(12 * 11.75, rel=0.6)  # slow asks make rounds longer


def test_the_run_is_decided_by_the_gates_own_compare_and_loop(
    policy: Policy, timing: Timing, monkeypatch: pytest.MonkeyPatch
) -> None:
    decisions: list[int] = []
    loops: list[int] = []

    def counted_compare(*args: object, **kwargs: object) -> object:
        decisions.append(1)
        return compare(*args, **kwargs)  # type: ignore[arg-type]

    real_loop = sequential.rounds_until_decided

    def counted_loop(*args: object, **kwargs: object) -> object:
        loops.append(1)
        return real_loop(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(comparisons, "compare", counted_compare)
    monkeypatch.setattr("perf.decide.simulate.rounds_until_decided", counted_loop)
    scenario = Scenario(Noise(NoiseModel.NORMAL, 0.10), 0.0)
    result = simulate_run(scenario, policy, timing, seed=1, budget_s=200.0)
    assert loops == [1]
    # One decision on the initial rounds and one after each extra round.
    assert len(decisions) == 1 + result.rounds - 12
    assert result.seconds <= 200.0


def test_the_rounds_carry_the_changed_comparisons_true_change(
    policy: Policy, timing: Timing
) -> None:
    runner = SimulatedRounds(
        timing=timing,
        noise=Noise(NoiseModel.NORMAL, 0.001),
        shift={CHANGED: math.log(1.04)},
        rng=np.random.default_rng(0),
        clock=SimClock(),
    )
    runner.run(12, 12)
    base = sample_map(runner.samples, "base", [CHANGED])[CHANGED]
    head = sample_map(runner.samples, "head", [CHANGED])[CHANGED]
    ratios = np.asarray(head) / np.asarray(base)
    assert np.median(ratios) == pytest.approx(1.04, abs=0.002)
    (found,) = compare({CHANGED: base}, {CHANGED: head}, policy)
    assert found.verdict is Verdict.FAIL


@pytest.mark.parametrize(("model", "spread"), [(NoiseModel.NORMAL, 0.05), (NoiseModel.T3, 0.05)])
def test_the_spread_is_the_per_round_log_ratios(
    timing: Timing, model: NoiseModel, spread: float
) -> None:
    runner = SimulatedRounds(
        timing=timing,
        noise=Noise(model, spread),
        shift={},
        rng=np.random.default_rng(1),
        clock=SimClock(),
    )
    runner.run(400, 400)
    base = sample_map(runner.samples, "base", [CHANGED])[CHANGED]
    head = sample_map(runner.samples, "head", [CHANGED])[CHANGED]
    logs = np.log(np.asarray(head) / np.asarray(base))
    scaled_mad = 1.4826 * float(np.median(np.abs(logs - np.median(logs))))
    assert scaled_mad == pytest.approx(spread, rel=0.15)
