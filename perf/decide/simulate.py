"""Simulated PR-mode runs of the gate: synthetic rounds through the gate's own decision code.

A simulated run is a real run with the processes replaced: :class:`SimulatedRounds` stands
where ``perf.measure.rounds.RoundRunner`` stands, gathers the same ``RoundSamples``, and
advances a simulated clock by what each round would have taken; the comparisons come from
``perf.decide.comparisons.compare_with_base`` (the verdict code of the gate), the extra rounds
from ``perf.decide.sequential.rounds_until_decided`` (its loop), the policy from
pyproject.toml and the plan's shape and costs from a real run (:mod:`perf.decide.simtiming`).
What a table of such runs reports is therefore the rule as the gate applies it, with its
correction, its extra rounds and its time budget.

Each run is seeded (``numpy.random.default_rng([seed, run])``); a cell of the table is the
same run numbers under one scenario, so the columns of a row share their random draws.

Noise models, for the per-round log ratio ``log(head / base)`` of a time-like metric
(``time``, ``latency_*``):

- ``normal``: normal with standard deviation ``spread``.
- ``t3``: Student's t with 3 degrees of freedom, scaled so that its scaled median absolute
  deviation, ``1.4826 * median(|x|)``, is ``spread`` (for a normal law that is its standard
  deviation; t3's own standard deviation is then 1.53 times ``spread``).
- ``switching``: the machine runs in a fast state or a state where everything takes twice
  as long, and switches with probability ``SWITCH_P`` before each ask (a Markov chain over
  the asks of the whole run, across cases and rounds). Each case is asked as the gate asks
  it: ``repeats`` times per side (1 for paced cases), base and head in random order within
  each repeat; one ask's log time is its state's (0 or log 2) plus normal noise of standard
  deviation ``spread``; a side's figure is the median of its asks. A switch between the
  base and the head ask of a repeat is what the pairing cannot cancel.
- ``measured``: t3 as above, each comparison at the scaled MAD of its per-round log ratio in
  the real run the timing comes from (the fixture's ``spread``).

Memory metrics (``rss_peak``, ``allocated``) get normal noise at their measured standard
deviation (about 0.2 % and 0.01 %) in every model, and no change. The true change of a
scenario applies to one comparison (``CHANGED``, a time comparison), as ``multiple`` times
its threshold in its bad direction; every other comparison is identical code.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from perf.decide.comparisons import compare_with_base, initial_rounds
from perf.decide.policy import Direction, Policy
from perf.decide.sequential import rounds_until_decided
from perf.decide.simtiming import Timing
from perf.decide.verdict import Comparison, SampleKey, Verdict
from perf.measure.rounds import RoundSamples
from perf.workload.plan import gated_keys

__all__ = [
    "CHANGED",
    "MULTIPLES",
    "SPREADS_PCT",
    "SWITCH_P",
    "Cell",
    "Noise",
    "NoiseModel",
    "RunResult",
    "Scenario",
    "SimClock",
    "SimulatedRounds",
    "simulate_cell",
    "simulate_run",
]

# The comparison a scenario changes: the in-process core on the medium workload, the case
# real regressions of this project have shown up in first (docs/measurements.md).
CHANGED: SampleKey = ("daemon_performance.medium.core", "time")
MULTIPLES = (0.0, 0.5, 1.0, 1.5, 2.0)
SPREADS_PCT = (2.0, 5.0, 10.0, 15.0)
# Probability of a switch of the machine's state before an ask: a state lasts 50 asks on
# average, about a quarter of a full round (206 asks), so most rounds see a switch.
SWITCH_P = 0.02
# Scaled MAD of Student's t with 3 degrees of freedom: 1.4826 * its 75th percentile.
_T3_SCALED_MAD = 1.482602218505602 * 0.7648923284043444
# Rounds drift together on both sides (the pairing cancels it); only the sizes it gives
# the samples depend on it.
_ROUND_DRIFT = 0.2


class NoiseModel(StrEnum):
    """How a simulated round's time-like figures vary (see the module docstring)."""

    NORMAL = "normal"
    T3 = "t3"
    SWITCHING = "switching"
    MEASURED = "measured"


@dataclass(frozen=True, slots=True)
class Noise:
    """A noise model and its spread (a fraction: 0.05 is 5 %); ``measured`` ignores it."""

    model: NoiseModel
    spread: float

    def label(self) -> str:
        if self.model is NoiseModel.MEASURED:
            return "measured (t3 at each comparison's real spread)"
        return f"{self.model.value} {self.spread * 100:g} %"


@dataclass(frozen=True, slots=True)
class Scenario:
    """A noise model and the true change of ``changed``, ``multiple`` times its threshold."""

    noise: Noise
    multiple: float
    changed: SampleKey = CHANGED


class SimClock:
    """A clock the simulated rounds advance; the loop reads it as it reads time.monotonic."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _time_like(metric: str) -> bool:
    return metric.startswith(("time", "latency"))


@dataclass(slots=True, kw_only=True)
class SimulatedRounds:
    """Rounds of the timing's plan drawn from ``noise``, with the log changes ``shift`` (per
    comparison, head against base, positive: head measures more); each round moves ``clock``
    on by its seconds. Satisfies ``perf.decide.sequential.Rounds``."""

    timing: Timing
    noise: Noise
    shift: Mapping[SampleKey, float]
    rng: np.random.Generator
    clock: SimClock
    samples: RoundSamples = field(default_factory=RoundSamples)
    slow: bool = False  # the switching machine's state
    t0: float = 0.0

    def __post_init__(self) -> None:
        self.t0 = self.clock()

    @property
    def plan(self) -> Sequence[Mapping[str, Any]]:
        return self.timing.plan

    def run(
        self,
        count: int,
        total_hint: int,
        indices: Sequence[int] | None = None,
        budget_s: float | None = None,
    ) -> float:
        chosen = range(len(self.plan)) if indices is None else indices
        took = 0.0
        for _ in range(count):
            took = self._round(chosen)
            self.clock.now += took
        return took

    def _round(self, indices: Iterable[int]) -> float:
        documents: dict[str, dict[str, Any]] = {
            side: {"samples": {}, "durations_s": {}} for side in ("base", "head")
        }
        seconds = self.timing.round_s * (2.0 if self.slow else 1.0)
        for index in indices:
            case = self.timing.cases[index]
            figures, factor = self._case(case.bench, case.metrics, case.sides, case.repeats)
            seconds += case.seconds * factor
            for side in case.sides:
                documents[side]["samples"][case.bench] = figures[side]
                documents[side]["durations_s"][case.bench] = case.seconds * factor / 2
        for side, document in documents.items():
            self.samples.add(side, document)
        return seconds

    def _case(
        self, bench: str, metrics: Sequence[str], sides: Sequence[str], repeats: int
    ) -> tuple[dict[str, dict[str, float]], float]:
        """Each side's figures of one case in one round, and how much longer than usual the
        case took (the switching machine's slow asks)."""
        rng = self.rng
        drift = math.exp(rng.normal(0.0, _ROUND_DRIFT))
        figures: dict[str, dict[str, float]] = {side: {} for side in sides}
        factor = 1.0
        if self.noise.model is NoiseModel.SWITCHING and any(_time_like(m) for m in metrics):
            states = self._asks(len(sides) * repeats)
            factor = float(np.mean(np.where(states, 2.0, 1.0)))
        for metric in metrics:
            key = (bench, metric)
            shift = self.shift.get(key, 0.0)
            if "base" not in sides:  # measured on the head only, not compared
                figures["head"][metric] = drift
            elif not _time_like(metric):
                error = rng.normal(0.0, self.timing.memory_sd(key))
                figures["base"][metric] = drift
                figures["head"][metric] = drift * math.exp(shift + error)
            elif self.noise.model is NoiseModel.SWITCHING:
                base, head = self._switching(states, repeats, shift)
                figures["base"][metric] = drift * base
                figures["head"][metric] = drift * head
            else:
                figures["base"][metric] = drift
                figures["head"][metric] = drift * math.exp(shift + self._log_error(key))
        return figures, factor

    def _log_error(self, key: SampleKey) -> float:
        if self.noise.model is NoiseModel.NORMAL:
            return float(self.rng.normal(0.0, self.noise.spread))
        spread = self.noise.spread
        if self.noise.model is NoiseModel.MEASURED:
            spread = self.timing.spread(key)
        return float(self.rng.standard_t(3) * spread / _T3_SCALED_MAD)

    def _asks(self, count: int) -> npt.NDArray[np.bool_]:
        """The machine's state (True: slow) at each of the next ``count`` asks."""
        switches = self.rng.random(count) < SWITCH_P
        states = np.logical_xor(self.slow, np.logical_xor.accumulate(switches))
        self.slow = bool(states[-1])
        return states

    def _switching(
        self, states: npt.NDArray[np.bool_], repeats: int, shift: float
    ) -> tuple[float, float]:
        """Base and head figures from asks in the given machine states: per repeat the two
        sides in random order, each ask's time its state's times normal noise."""
        logs = np.where(states, math.log(2.0), 0.0)
        logs = logs + self.rng.normal(0.0, self.noise.spread, states.size)
        head_first = self.rng.random(repeats) < 0.5
        pairs = logs.reshape(repeats, 2)
        head = np.where(head_first, pairs[:, 0], pairs[:, 1]) + shift
        base = np.where(head_first, pairs[:, 1], pairs[:, 0])
        return math.exp(float(np.median(base))), math.exp(float(np.median(head)))


@dataclass(frozen=True, slots=True)
class RunResult:
    """One simulated run: its comparisons' verdicts, how many rounds its most measured
    comparison got, and the simulated seconds from its start to its last decision."""

    verdicts: Mapping[SampleKey, Verdict]
    rounds: int
    seconds: float

    @property
    def failed(self) -> bool:
        return Verdict.FAIL in self.verdicts.values()


def _shift(scenario: Scenario, policy: Policy) -> dict[SampleKey, float]:
    """The scenario's true change as a log ratio head / base, positive when head measures
    more: ``multiple`` thresholds in the changed metric's bad direction."""
    if scenario.multiple == 0.0:
        return {}
    bench, metric = scenario.changed
    change = scenario.multiple * policy.threshold_pct(bench, metric) / 100.0
    if policy.direction(metric) is Direction.LOWER_IS_BETTER:
        return {scenario.changed: math.log1p(change)}
    return {scenario.changed: math.log1p(-change)}


def simulate_run(
    scenario: Scenario, policy: Policy, timing: Timing, *, seed: int, budget_s: float
) -> RunResult:
    """One PR-mode run as the gate makes it: the initial rounds of every case
    (``initial_rounds``), then the gate's loop adding rounds of the inconclusive
    comparisons' cases until they are decided, ``max_rounds`` or the budget."""
    clock = SimClock()
    runner = SimulatedRounds(
        timing=timing,
        noise=scenario.noise,
        shift=_shift(scenario, policy),
        rng=np.random.default_rng(seed),
        clock=clock,
    )
    keys = gated_keys(runner.plan)
    first = initial_rounds(policy, len(keys))
    runner.run(first, first)

    def decide() -> list[Comparison]:
        return compare_with_base(runner.samples, keys, policy, seed=0)

    comparisons = rounds_until_decided(runner, policy, budget_s, decide, clock=clock)
    return RunResult(
        verdicts={(c.benchmark, c.metric): c.verdict for c in comparisons},
        rounds=max(c.n_head for c in comparisons),
        seconds=clock() - runner.t0,
    )


@dataclass(frozen=True, slots=True)
class Cell:
    """The runs of one scenario: how often a run failed (any comparison), how often the
    changed comparison failed, and the rounds and seconds the runs used."""

    scenario: Scenario
    runs: int
    runs_failed: int
    changed_failed: int
    others_failed: int  # runs with a failure of an unchanged comparison
    rounds: tuple[int, ...]
    seconds: tuple[float, ...]

    @property
    def run_fail_rate(self) -> float:
        return self.runs_failed / self.runs

    @property
    def changed_fail_rate(self) -> float:
        return self.changed_failed / self.runs

    def median_rounds(self) -> float:
        return float(statistics.median(self.rounds))

    def median_seconds(self) -> float:
        return float(statistics.median(self.seconds))


def simulate_cell(
    scenario: Scenario,
    policy: Policy,
    timing: Timing,
    *,
    runs: int,
    seed: int,
    budget_s: float,
) -> Cell:
    """``runs`` runs of one scenario, run ``i`` seeded with ``[seed, i]``."""
    results = [
        simulate_run(scenario, policy, timing, seed=_seed(seed, i), budget_s=budget_s)
        for i in range(runs)
    ]
    counts: Counter[str] = Counter()
    for result in results:
        counts["run"] += result.failed
        counts["changed"] += result.verdicts[scenario.changed] is Verdict.FAIL
        counts["others"] += any(
            v is Verdict.FAIL for k, v in result.verdicts.items() if k != scenario.changed
        )
    return Cell(
        scenario=scenario,
        runs=runs,
        runs_failed=counts["run"],
        changed_failed=counts["changed"],
        others_failed=counts["others"],
        rounds=tuple(r.rounds for r in results),
        seconds=tuple(r.seconds for r in results),
    )


def _seed(seed: int, run: int) -> int:
    """One integer per (seed, run), as numpy's SeedSequence mixes them."""
    return int(np.random.SeedSequence([seed, run]).generate_state(1)[0])
