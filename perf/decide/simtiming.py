"""The quick set as the simulator needs it: which cases a round measures and on which sides,
the comparisons they give, what a round of each costs in seconds, and how much each
comparison's per-round ratio varies; derived from one real PR-mode run
(:func:`derive_timing`) and stored beside this module in ``quick_timing.json``, which this
module alone reads (:func:`load_timing`).

The cost model: a round takes ``round_s`` (two worker processes started and greeted) plus,
for each case it measures, ``ask_s`` per ask plus the workloads' own seconds (the median
``time`` figure times the workloads a side runs, warm-up included, times the sides). A run
folder of the gate from before its samples recorded each case's seconds gives only its
total, so ``round_s`` and ``ask_s`` are fitted to two figures: that total over the run's
rounds (the full ones and the extra ones of some cases), and the seconds of one full round
(``FULL_ROUND_S``). The fit charges the run's set-up (the base worktree, byte-compiling) to
its rounds, so simulated rounds are, if anything, slower than real ones and the time budget
binds a little early. Where the samples carry ``durations_s``, each case's seconds are the
median over its rounds of the two sides' and ``round_s`` is what the total leaves over.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from perf.workload.plan import gated_keys

__all__ = [
    "FULL_ROUND_S",
    "TIMING_FILE",
    "CaseCost",
    "Timing",
    "derive_timing",
    "load_timing",
]

TIMING_FILE = Path(__file__).with_name("quick_timing.json")
_KIND = "crucible-perf-sim-timing"
_SCHEMA = 1
# A full round of the quick set on the CI machine (docs/measurements.md, "10 measurements
# of 25 ms per side instead of 5 of 50 ms", 2026-11-27: 11.75 s with the design of the time).
FULL_ROUND_S = 11.75
# 1 / Phi^-1(3/4): the scaled MAD of a normal sample estimates its standard deviation.
_MAD_SCALE = 1.482602218505602


def _key(bench: str, metric: str) -> str:
    return f"{bench} {metric}"


@dataclass(frozen=True, slots=True)
class CaseCost:
    """One case of the plan: how it is measured and what a round of it costs (both sides)."""

    bench: str
    paced: bool
    traced: bool
    gated: bool
    sides: tuple[str, ...]
    repeats: int
    seconds: float

    @property
    def item(self) -> dict[str, Any]:
        """The case as a plan item (what ``perf.workload.plan`` functions read)."""
        return {
            "bench": self.bench,
            "paced": self.paced,
            "traced": self.traced,
            "gated": self.gated,
            "sides": list(self.sides),
            "repeats": self.repeats,
        }

    @property
    def metrics(self) -> tuple[str, ...]:
        """The figures a round of the case gives: its gated metrics, or its time alone."""
        if not self.gated:
            return ("time",)
        return tuple(metric for _, metric in gated_keys([self.item]))


@dataclass(frozen=True, slots=True)
class Timing:
    """The plan's cases with their costs, the fixed cost of a round, and per comparison
    (``"bench metric"``) the per-round log ratio's standard deviation and scaled MAD in
    the run it was derived from (``source``, of ``date``)."""

    round_s: float
    cases: tuple[CaseCost, ...]
    sd: Mapping[str, float]
    spread_of: Mapping[str, float]
    source: str
    date: str

    @property
    def plan(self) -> list[dict[str, Any]]:
        return [case.item for case in self.cases]

    def memory_sd(self, key: tuple[str, str]) -> float:
        return self.sd[_key(*key)]

    def spread(self, key: tuple[str, str]) -> float:
        return self.spread_of[_key(*key)]


def load_timing(path: Path = TIMING_FILE) -> Timing:
    """The stored timing (``quick_timing.json`` by default). Raises ``ValueError`` for a
    file of another kind or a newer schema."""
    document = json.loads(path.read_text(encoding="utf-8"))
    if document.get("kind") != _KIND or document.get("schema_version", 0) > _SCHEMA:
        raise ValueError(f"{path}: not a simulator timing of schema {_SCHEMA} or older")
    cases = tuple(
        CaseCost(
            bench=c["bench"],
            paced=c["paced"],
            traced=c["traced"],
            gated=c["gated"],
            sides=tuple(c["sides"]),
            repeats=c["repeats"],
            seconds=c["seconds"],
        )
        for c in document["cases"]
    )
    return Timing(
        round_s=document["round_s"],
        cases=cases,
        sd=document["sd"],
        spread_of=document["spread"],
        source=document["source"],
        date=document["date"],
    )


def _spreads(values: Mapping[str, Any], plan: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per gated comparison, the standard deviation and scaled MAD of ``log(head / base)``."""
    sd: dict[str, float] = {}
    spread: dict[str, float] = {}
    for bench, metric in gated_keys(plan):
        base = np.asarray(values["base"][bench][metric], dtype=float)
        head = np.asarray(values["head"][bench][metric], dtype=float)
        logs = np.log(head / base)
        sd[_key(bench, metric)] = float(np.std(logs, ddof=1))
        spread[_key(bench, metric)] = float(_MAD_SCALE * np.median(np.abs(logs - np.median(logs))))
    return {"sd": sd, "spread": spread}


def _fitted_costs(
    samples: Mapping[str, Any], report: Mapping[str, Any], full_round_s: float
) -> tuple[float, list[float], str]:
    """``round_s`` and each case's seconds from the run's total and one full round's."""
    plan, values = samples["plan"], samples["values"]
    work: list[float] = []
    asks: list[float] = []
    counts: list[int] = []
    for item in plan:
        sides = item.get("sides", ["base", "head"])
        repeats = int(item["repeats"])
        per_workload = statistics.median(values["head"][item["bench"]]["time"])
        work.append(len(sides) * (repeats + bool(item["warmup"])) * per_workload)
        asks.append(len(sides) * repeats)
        counts.append(len(values["head"][item["bench"]]["time"]))
    rounds, total_s = int(report["rounds"]), float(report["duration_s"])
    # round_s + sum(work) + ask_s * sum(asks) = full_round_s
    # rounds * round_s + sum(n * work) + ask_s * sum(n * asks) = total_s
    matrix = np.array([[1.0, sum(asks)], [float(rounds), float(np.dot(counts, asks))]], dtype=float)
    target = np.array([full_round_s - sum(work), total_s - float(np.dot(counts, work))])
    if abs(float(np.linalg.det(matrix))) < 1e-9:
        raise ValueError(
            "every case of the run has as many rounds as the run: its total cannot tell the "
            "cost of a round from the cost of an ask; use a run with extra rounds of some cases"
        )
    round_s, ask_s = (float(x) for x in np.linalg.solve(matrix, target))
    if round_s <= 0.0 or ask_s <= 0.0:
        raise ValueError(f"the fit gives round_s {round_s:.3f}, ask_s {ask_s:.4f}: not a cost")
    model = (
        f"fitted: round_s {round_s:.3f} s and ask_s {ask_s:.4f} s an ask, so that a full "
        f"round takes {full_round_s:g} s and the run's {rounds} rounds its {total_s:.1f} s"
    )
    return round_s, [w + ask_s * a for w, a in zip(work, asks, strict=True)], model


def _recorded_costs(
    samples: Mapping[str, Any], report: Mapping[str, Any]
) -> tuple[float, list[float], str]:
    """``round_s`` and each case's seconds from the durations the samples recorded."""
    durations = samples["durations_s"]
    seconds = []
    for item in samples["plan"]:
        per_side = [durations[s][item["bench"]] for s in durations if item["bench"] in durations[s]]
        seconds.append(sum(statistics.median(d) for d in per_side))
    measured = sum(sum(d) for side in durations.values() for d in side.values())
    rounds = int(report["rounds"])
    round_s = (float(report["duration_s"]) - measured) / rounds
    return round_s, seconds, "recorded durations; round_s is the rest of the run's total"


def derive_timing(
    samples: Mapping[str, Any],
    report: Mapping[str, Any],
    *,
    source: str,
    full_round_s: float = FULL_ROUND_S,
) -> dict[str, Any]:
    """The timing document of a PR-mode run folder: from its ``samples.json`` (the plan, the
    values and, where recorded, ``durations_s``) and its ``report.json`` (``rounds``,
    ``duration_s``, ``started_utc``). ``source`` says where the folder came from."""
    if samples.get("durations_s"):
        round_s, seconds, model = _recorded_costs(samples, report)
    else:
        round_s, seconds, model = _fitted_costs(samples, report, full_round_s)
    plan = samples["plan"]
    cases = [
        {
            "bench": item["bench"],
            "paced": bool(item["paced"]),
            "traced": bool(item["traced"]),
            "gated": bool(item.get("gated", True)),
            "sides": list(item.get("sides", ["base", "head"])),
            "repeats": int(item["repeats"]),
            "seconds": round(cost, 4),
        }
        for item, cost in zip(plan, seconds, strict=True)
    ]
    spreads = _spreads(samples["values"], plan)
    return {
        "kind": _KIND,
        "schema_version": _SCHEMA,
        "source": source,
        "date": str(report["started_utc"])[:10],
        "model": model,
        "round_s": round(round_s, 4),
        "cases": cases,
        "sd": {k: _rounded(v) for k, v in spreads["sd"].items()},
        "spread": {k: _rounded(v) for k, v in spreads["spread"].items()},
    }


def _rounded(value: float) -> float:
    return float(f"{value:.3g}") if math.isfinite(value) else 0.0
