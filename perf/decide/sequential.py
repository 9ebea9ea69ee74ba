"""The gate's extra rounds: while comparisons are inconclusive, measure more rounds of their
cases and decide again, within the policy's ``max_rounds`` and the run's time budget.

The loop is written against :class:`Rounds`, not against the processes that measure: the
gate drives it with ``perf.measure.rounds.RoundRunner``, and ``perf.decide.simulate`` with
synthetic rounds and a simulated clock, so what the simulator reports is what this loop does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from perf.decide.policy import Policy
from perf.decide.verdict import Comparison, needs_more_samples
from perf.measure.rounds import RoundSamples
from perf.workload.plan import cases_to_rerun

__all__ = ["Rounds", "rounds_until_decided"]


class Rounds(Protocol):
    """What the loop needs of whatever measures rounds: the plan, the samples gathered so
    far, when the run started (``t0``, on the loop's clock) and a way to run more rounds."""

    @property
    def plan(self) -> Sequence[Mapping[str, Any]]: ...

    @property
    def samples(self) -> RoundSamples: ...

    @property
    def t0(self) -> float: ...

    def run(
        self,
        count: int,
        total_hint: int,
        indices: Sequence[int] | None = None,
        budget_s: float | None = None,
    ) -> float:
        """Run ``count`` rounds of the cases at ``indices`` (all by default); return the
        seconds the last one took."""
        ...


def _quiet(text: str) -> None:
    return None


def rounds_until_decided(
    runner: Rounds,
    policy: Policy,
    budget_s: float,
    decide: Callable[[], list[Comparison]],
    *,
    clock: Callable[[], float] = time.monotonic,
    say: Callable[[str], None] = _quiet,
) -> list[Comparison]:
    """Decide on the rounds so far; while comparisons are inconclusive and below the
    policy's ``max_rounds``, run more rounds of just their cases, as long as the next one
    is expected to end within the time budget (``budget_s``, counted from ``runner.t0`` on
    ``clock``). ``say`` takes a progress line per decision to add a round or stop."""
    plan, samples = runner.plan, runner.samples
    per_case: float | None = None
    while True:
        comparisons = decide()
        wanted = needs_more_samples(comparisons, policy)
        if not wanted:
            return comparisons
        indices = cases_to_rerun(plan, wanted)
        elapsed = clock() - runner.t0
        if per_case is None:
            per_case = elapsed / max(samples.rounds("head"), 1) / len(plan)
        # One round at a time: every wanted comparison is below max_rounds, so none
        # passes it, and the next decision sees the new round at once.
        expected = per_case * len(indices)
        if elapsed + expected > budget_s:
            say(
                f"[gate] {len(wanted)} comparisons inconclusive; time budget "
                f"({budget_s:.0f} s) spent"
            )
            return comparisons
        done = samples.rounds("head")
        say(
            f"[gate] {len(wanted)} comparisons inconclusive: one more round of their "
            f"{len(indices)} cases"
        )
        took = runner.run(1, done + 1, indices, budget_s)
        per_case = took / len(indices)
