"""One gate round on one source tree, in a fresh process: ``python -m perf.sample``.

The gate alternates base and head trees round by round; each round of each side is one run
of this module in a new interpreter. It puts the tree's root first on ``sys.path`` before
anything imports ``crucible``, so the library measured is the tree's, while the harness
(this package) is the head's: both sides are measured by the same code. The process times
the calibration kernel, warms each coordinator up, then measures every case once with the
loop count the gate fixed, in the order given (the same for both sides, so process history
such as the allocator's state is the same too), and writes one JSON document.

It never decides anything; a case that crashes is recorded with its error and the process
exits 1 after writing what it measured.
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
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from crucible._measure import RunResult, RunSpec
    from perf.cases import Case

__all__ = ["SAMPLE_SCHEMA_VERSION", "main", "measure_case"]

SAMPLE_SCHEMA_VERSION = 1


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m perf.sample", description=__doc__)
    parser.add_argument("--tree", type=Path, required=True, help="source tree to measure")
    parser.add_argument("--plan", type=Path, required=True, help="JSON plan from the gate")
    parser.add_argument("--out", type=Path, required=True, help="where to write the result")
    return parser.parse_args(argv)


async def _workloads(spec: RunSpec, loops: int) -> list[RunResult]:
    from crucible._measure import measure

    return [await measure(spec) for _ in range(loops)]


def measure_case(case: Case, loops: int, warmup: bool) -> dict[str, float | None]:
    """Figures of ``loops`` workloads of a workload-kind case (plus tracemalloc figures from
    one extra workload for traced cases); ``time`` is the median seconds per workload."""
    from perf.memory import traced_workload
    from perf.metrics import check_accounting, workload_sample

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
    if case.definition.traced:
        values.update(traced_workload(spec))
    return {k: (v if v is not None and math.isfinite(v) else None) for k, v in values.items()}


def _run(plan: dict[str, Any]) -> dict[str, Any]:
    import crucible
    from perf.calibration import CALIBRATION_VERSION, calibrate
    from perf.cases import Case, case_definitions

    definitions = {
        (d.suite, d.name): d
        for suite in {c["suite"] for c in plan["cases"]}
        for d in case_definitions(suite, plan["set"])
    }
    out: dict[str, Any] = {
        "schema_version": SAMPLE_SCHEMA_VERSION,
        "crucible_file": str(Path(crucible.__file__).resolve()),
        "pid": os.getpid(),
        "calibration": {"version": CALIBRATION_VERSION, "seconds": calibrate()},
        "samples": {},
        "errors": {},
    }
    for coordinator in plan["coordinators"]:
        # Imports and first-use caches of this coordinator out of the first case's figures.
        from crucible._measure import RunSpec
        from crucible._workload import get_scenario

        asyncio.run(_workloads(RunSpec(coordinator=coordinator, scenario=get_scenario("light")), 1))
    for item in plan["cases"]:
        case = Case(definitions[(item["suite"], item["case"])], item["coordinator"])
        try:
            values = measure_case(case, int(item["loops"]), bool(item["warmup"]))
        except Exception as exc:  # recorded, then the whole round is refused by the gate
            out["errors"][case.name] = "".join(
                traceback.format_exception_only(type(exc), exc)
            ).strip()
            continue
        out["samples"][case.name] = values
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    tree = args.tree.resolve()
    if not (tree / "crucible" / "__init__.py").is_file():
        print(f"perf.sample: {tree} has no crucible package", file=sys.stderr)
        return 2
    # The tree's crucible, not the installed one: first on the path, before any import.
    sys.path.insert(0, str(tree))
    for name in [m for m in sys.modules if m == "crucible" or m.startswith("crucible.")]:
        del sys.modules[name]
    plan = json.loads(args.plan.read_text(encoding="utf-8"))
    result = _run(plan)
    result["tree"] = str(tree)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, allow_nan=False), encoding="utf-8")
    tmp.replace(args.out)
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
