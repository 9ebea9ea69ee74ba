"""The extra rounds the gate adds while comparisons are inconclusive
(perf.decide.sequential): only the inconclusive comparisons' cases, within max_rounds and
the time budget."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from perf.decide.policy import Policy
from perf.decide.sequential import rounds_until_decided
from perf.decide.verdict import Comparison, Verdict, compare
from perf.measure.rounds import RoundRunner, sample_map
from perf.workload.plan import gated_keys


class _SyntheticRounds(RoundRunner):
    """A stand-in for the rounds of perf.measure.rounds: each round adds base and head
    samples of the chosen cases; head is base times its case's ratio, with noise that makes
    'flat' inconclusive forever and 'slow' a clear regression. ``calls`` records the cases
    of each round."""

    def __init__(
        self, plan: list[dict[str, object]], head_ratio: dict[str, float], t0: float
    ) -> None:
        super().__init__(
            sides={},
            plan=plan,
            plan_file=Path("plan.json"),
            rng=random.Random(0),
            t0=t0,
            say=lambda text: None,
        )
        self.head_ratio = head_ratio
        self.noise = random.Random(3)
        self.calls: list[list[int]] = []

    def run(
        self,
        count: int,
        total_hint: int,
        indices: Sequence[int] | None = None,
        budget_s: float | None = None,
    ) -> float:
        rng = self.noise
        chosen = list(range(len(self.plan))) if indices is None else list(indices)
        for _ in range(count):
            self.calls.append(chosen)
            docs: dict[str, dict[str, dict[str, float | None]]] = {"base": {}, "head": {}}
            for i in chosen:
                bench = str(self.plan[i]["bench"])
                base = 1.0 + rng.uniform(-0.3, 0.3)
                spread = 0.15 if bench == "s.flat.core" else 0.02
                noise = rng.uniform(1 - spread, 1 + spread)
                rss = 100.0 + rng.uniform(-1.0, 1.0)
                docs["base"][bench] = {"time": base, "rss_peak": rss}
                docs["head"][bench] = {
                    "time": base * self.head_ratio[bench] * noise,
                    "rss_peak": rss + rng.uniform(-0.1, 0.1),
                }
            for side, per_bench in docs.items():
                self.samples.add(side, {"calibration": {"seconds": 0.01}, "samples": per_bench})
        return 0.01


def _paired(runner: RoundRunner, policy: Policy) -> Callable[[], list[Comparison]]:
    keys = gated_keys(runner.plan)

    def decide() -> list[Comparison]:
        return compare(
            sample_map(runner.samples, "base", keys),
            sample_map(runner.samples, "head", keys),
            policy,
            paired=True,
        )

    return decide


def test_extra_rounds_rerun_only_the_inconclusive_cases() -> None:
    plan: list[dict[str, object]] = [
        {"bench": "s.slow.core", "paced": False, "traced": False},
        {"bench": "s.flat.core", "paced": False, "traced": False},
    ]
    runner = _SyntheticRounds(plan, {"s.slow.core": 1.2, "s.flat.core": 1.0}, time.monotonic())
    policy = Policy(min_rounds=10, max_rounds=16)
    runner.run(12, 12)
    final = rounds_until_decided(runner, policy, 1e9, _paired(runner, policy))
    verdicts = {(c.benchmark, c.metric): c.verdict for c in final}
    assert verdicts[("s.slow.core", "time")] is Verdict.FAIL
    assert verdicts[("s.flat.core", "time")] is Verdict.INCONCLUSIVE
    # The 12 full rounds, then the flat case alone until it reached max_rounds.
    assert runner.calls[:12] == [[0, 1]] * 12
    assert runner.calls[12:] == [[1]] * 4
    assert {c.n_head for c in final if c.benchmark == "s.flat.core"} == {16}
    assert {c.n_head for c in final if c.benchmark == "s.slow.core"} == {12}


def test_extra_rounds_stop_at_the_time_budget() -> None:
    plan: list[dict[str, object]] = [{"bench": "s.flat.core", "paced": False, "traced": False}]
    # Started 99.9 s ago: 12 rounds of 8.3 s each, so the next one would end past 100 s.
    runner = _SyntheticRounds(plan, {"s.flat.core": 1.0}, time.monotonic() - 99.9)
    policy = Policy(min_rounds=10, max_rounds=30)
    runner.run(12, 12)
    final = rounds_until_decided(runner, policy, 100.0, _paired(runner, policy))
    assert len(runner.calls) == 12
    assert {c.n_head for c in final} == {12}
