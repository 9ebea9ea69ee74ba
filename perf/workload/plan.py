"""The gate's plan: which cases its rounds measure, how often each is asked per side, and
which of their figures the gate decides on.

The plan is a list of plain items (one per case) because it travels: the gate writes it to
``plan.json`` (``write_plan``) and every ``perf.measure.sample`` process reads it back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from perf.files import write_json

__all__ = [
    "GATED_METRICS",
    "TRANSPORT_CASE",
    "UNPACED_REPEATS",
    "PlanItem",
    "cases_to_rerun",
    "gated_keys",
    "plan_cases",
    "write_plan",
]

# One case of the plan: suite, case, coordinator, bench (its benchmark name), paced,
# traced, loops, warmup, repeats, meta (the case's pyperf metadata); and for a case measured
# on some sides only, "sides" and "gated": False.
PlanItem = dict[str, Any]

# Unpaced cases are measured this many times per side per round, alternating sides ask by
# ask; the round's figure is the median. On the 2-core CI machine, 12 A/A rounds of the
# six daemon_performance cases gave an interquartile range of the per-round log ratio of
# 5-16 % (median 7.5 %) with 5 alternating repeats against 8-27 % (median 10.8 %) with one
# ask per side, measured while another gate run shared the machine.
UNPACED_REPEATS = 5
# The daemon_performance case measured through core-daemon beside core (head side, ungated).
TRANSPORT_CASE = "medium"
# Each ask of an unpaced case runs one workload (the case definition may fix more). A loop
# count calibrated towards 50 ms an ask used to be computed here, but it timed the gate's
# own call of the workload, collection of the gate's large heap included, and so chose one
# loop for every case on the CI machine: every gate trial in docs/measurements.md#the-gate
# ran one workload an ask. Asking for more on purpose was tried in 30 A/A rounds (10
# workloads an ask on light, 3 on medium): interquartile range of the per-round log ratio
# 3.2 % against 5.7 % on light, 7.0 % against 3.8 % on medium, for rounds 1.9x as long; no
# gain worth the time.
LOOPS_AN_ASK = 1

# What the gate decides on, per kind of case. Unpaced workloads: time per workload and
# peak RSS. Open-loop (paced) workloads: the latency tail (their time is the schedule's).
# Traced workloads add the tracemalloc high-water mark. Everything else measured is kept
# in the result files and reports but does not block a build.
GATED_METRICS: Mapping[str, tuple[str, ...]] = {
    "unpaced": ("time", "rss_peak"),
    "paced": ("latency_p99",),
    "traced": ("allocated",),
}


def gated_keys(plan: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """``(benchmark, metric)`` pairs the gate decides on, from the plan's cases."""
    keys: list[tuple[str, str]] = []
    for item in plan:
        if not item.get("gated", True):
            continue
        kinds = ["paced" if item["paced"] else "unpaced"]
        if item["traced"]:
            kinds.append("traced")
        for kind in kinds:
            keys += [(item["bench"], m) for m in GATED_METRICS[kind]]
    return keys


def plan_cases(set_name: str, coordinators: Sequence[str]) -> list[PlanItem]:
    """The gated cases of a set (workload cases only: leak runs and sweeps are reported by
    the suites, not decided on here), with each case's loop count (its definition's, else
    one workload an ask); and, when ``core`` is measured, the medium workload through the
    CrucibleCore daemon (``core-daemon``) on the head side only, ungated: every report then
    shows what the socket transport costs beside in-process ``core``, for one daemon start
    per round."""
    from perf.workload.cases import DAEMON_COORDINATOR, SUITES, Kind, select_cases

    plan: list[PlanItem] = []
    for suite in SUITES:
        for case in select_cases(suite, set_name, coordinators):
            d = case.definition
            if d.kind is not Kind.WORKLOAD:
                continue
            paced = d.pattern is not None
            plan.append(
                {
                    "suite": d.suite,
                    "case": d.name,
                    "coordinator": case.coordinator,
                    "bench": case.name,
                    "paced": paced,
                    "traced": d.traced,
                    "loops": d.fixed_loops or LOOPS_AN_ASK,
                    "warmup": not paced,
                    "repeats": 1 if paced else UNPACED_REPEATS,
                    "meta": case.metadata(),
                }
            )
    if "core" in coordinators:
        for case in select_cases(
            "daemon_performance", set_name, (DAEMON_COORDINATOR,), names=[TRANSPORT_CASE]
        ):
            plan.append(
                {
                    "suite": case.definition.suite,
                    "case": case.definition.name,
                    "coordinator": case.coordinator,
                    "bench": case.name,
                    "paced": False,
                    "traced": False,
                    "loops": 1,
                    "warmup": False,
                    "repeats": 1,
                    "gated": False,
                    "sides": ["head"],
                    "meta": case.metadata(),
                }
            )
    return plan


def cases_to_rerun(
    plan: Sequence[Mapping[str, Any]], wanted: Sequence[tuple[str, str]]
) -> list[int]:
    """Indices of the plan's cases with at least one of the ``wanted`` comparisons."""
    benches = {bench for bench, _ in wanted}
    return [i for i, item in enumerate(plan) if item["bench"] in benches]


def write_plan(
    path: Path,
    *,
    set_name: str,
    plan: Sequence[Mapping[str, Any]],
    coordinators: Sequence[str],
    calibrate: bool,
) -> None:
    """The plan file every ``perf.measure.sample`` process of a run reads: the set, the
    cases, the coordinators, and whether each worker times the calibration kernel."""
    write_json(
        path,
        {
            "set": set_name,
            "cases": plan,
            "coordinators": list(coordinators),
            "calibrate": calibrate,
        },
    )
