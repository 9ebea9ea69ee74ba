"""One side of one gate round, in a fresh process: ``python -m perf.measure.sample``.

Each round the gate starts one of these per source tree (base and head). It puts the tree's
root first on ``sys.path`` before anything imports ``crucible``, so the library measured is
the tree's, while the harness (this package) is the head's: both sides are measured by the
same code. The process times the calibration kernel, warms each coordinator up and says
hello; then the gate asks both processes for case after case, alternating sides in random
order, so the two samples of a case are taken moments apart on the same machine state. Each
process sees the cases in the plan's order (the same for both sides, so process history
such as the allocator's state matches too).

It never decides anything; a case that crashes is replied with its error.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import statistics
import sys
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from perf.workload.cases import Case
    from perf.workload.library import RunResult, RunSpec

__all__ = ["SAMPLE_SCHEMA_VERSION", "main", "measure_case", "serve"]

SAMPLE_SCHEMA_VERSION = 1


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m perf.measure.sample", description=__doc__)
    parser.add_argument("--tree", type=Path, required=True, help="source tree to measure")
    parser.add_argument("--plan", type=Path, required=True, help="JSON plan from the gate")
    return parser.parse_args(argv)


async def _workloads(spec: RunSpec, loops: int) -> list[RunResult]:
    from perf.workload.library import measure

    return [await measure(spec) for _ in range(loops)]


def measure_case(
    case: Case, loops: int, warmup: bool, traced: bool = True
) -> dict[str, float | None]:
    """Figures of ``loops`` workloads of a workload-kind case (plus, with ``traced``,
    tracemalloc figures from one extra workload for traced cases); ``time`` is the median
    seconds per workload."""
    from perf.measure.memory import traced_workload
    from perf.workload.metrics import check_accounting, workload_sample

    spec = case.run_spec()
    if warmup:
        asyncio.run(_workloads(spec, 1))
    gc.collect()
    gc.freeze()  # earlier cases' objects out of the collector's way, as in the suites
    results = asyncio.run(_workloads(spec, loops))
    for result in results:
        check_accounting(result)
    values = workload_sample(results)
    # The median workload, not the mean: on a shared machine one workload stalled by another
    # process would otherwise move the whole sample.
    values["time"] = statistics.median(r.wall_s for r in results)
    if traced and case.definition.traced:
        values.update(traced_workload(spec))
    return {k: (v if v is not None and math.isfinite(v) else None) for k, v in values.items()}


def _setup(plan: dict[str, Any]) -> tuple[dict[str, Any], list[Case]]:
    """Everything before the first case: the calibration kernel (unless the plan says
    ``"calibrate": false``) and a warm-up workload of each coordinator (imports and
    first-use caches out of the first case's figures). A crashed warm-up returns an error
    hello naming the coordinator's benchmark label, and no cases."""
    import crucible
    from perf.workload.calibration import CALIBRATION_VERSION, calibrate
    from perf.workload.cases import Case, case_definitions, coordinator_label
    from perf.workload.library import RunSpec, get_scenario

    definitions = {
        (d.suite, d.name): d
        for suite in {c["suite"] for c in plan["cases"]}
        for d in case_definitions(suite, plan["set"])
    }
    cases = [
        Case(definitions[(item["suite"], item["case"])], item["coordinator"])
        for item in plan["cases"]
    ]
    calibration = (
        {"version": CALIBRATION_VERSION, "seconds": calibrate()}
        if plan.get("calibrate", True)
        else None
    )
    hello: dict[str, Any] = {
        "schema_version": SAMPLE_SCHEMA_VERSION,
        "crucible_file": str(Path(crucible.__file__).resolve()),
        "pid": os.getpid(),
        "calibration": calibration,
    }
    for coordinator in plan["coordinators"]:
        spec = RunSpec(coordinator=coordinator, scenario=get_scenario("light"))
        try:
            asyncio.run(_workloads(spec, 1))
        except Exception as exc:  # named in the hello line; the gate refuses the round
            error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            return {
                "error": f"warm-up workload crashed: {error}",
                "bench": coordinator_label(coordinator),
            }, []
    return hello, cases


def _case_result(case: Case, item: Mapping[str, Any], request: Mapping[str, Any]) -> dict[str, Any]:
    """Measure a case as the plan item says; the request may turn off the warm-up workload
    (a repeat in the same process is warm) and the traced workload (taken once a round)."""
    warmup = bool(item["warmup"]) and bool(request.get("warmup", True))
    traced = bool(request.get("traced", True))
    try:
        values = measure_case(case, int(item["loops"]), warmup, traced)
    except Exception as exc:  # reported; the gate refuses the whole round
        error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        return {"bench": case.name, "error": error}
    return {"bench": case.name, "values": values}


def serve(plan: dict[str, Any], requests: TextIO, replies: TextIO) -> int:
    """Answer the gate: a hello line once set up, then one reply line per request line
    (``{"case": i}`` measures case i of the plan, optionally with ``"warmup": false`` and
    ``"traced": false``; ``{"op": "exit"}`` ends). A coordinator whose warm-up workload
    crashes makes the hello line ``{"error": ..., "bench": label}`` and ends the worker."""
    hello, cases = _setup(plan)
    replies.write(json.dumps(hello, allow_nan=False) + "\n")
    replies.flush()
    if "error" in hello:
        return 1
    for line in requests:
        request = json.loads(line)
        if request.get("op") == "exit":
            return 0
        index = int(request["case"])
        reply = _case_result(cases[index], plan["cases"][index], request)
        replies.write(json.dumps(reply, allow_nan=False) + "\n")
        replies.flush()
    return 0


def _pin() -> None:
    """Pin this worker to the last allowed CPU, as the pyperf suites do: both sides then run
    on the same core, away from the first, where the kernel and other processes tend to run."""
    from perf.measure.meta import default_affinity

    cpu = default_affinity()
    if cpu is not None:
        import psutil

        psutil.Process().cpu_affinity([int(cpu)])


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    tree = args.tree.resolve()
    if not (tree / "crucible" / "__init__.py").is_file():
        print(f"perf.measure.sample: {tree} has no crucible package", file=sys.stderr)
        return 2
    # The tree's crucible, not the installed one: first on the path, before any import.
    sys.path.insert(0, str(tree))
    for name in [m for m in sys.modules if m == "crucible" or m.startswith("crucible.")]:
        del sys.modules[name]
    plan = json.loads(args.plan.read_text(encoding="utf-8"))
    _pin()
    # Replies go to the real stdout; anything else printing goes to stderr.
    replies = sys.stdout
    sys.stdout = sys.stderr
    return serve(plan, sys.stdin, replies)


if __name__ == "__main__":
    raise SystemExit(main())
