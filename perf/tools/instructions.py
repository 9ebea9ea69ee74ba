"""Instructions, allocations and bytes per workload of the gate's cases, counted under
valgrind (``perf.measure.instructions``): figures that repeat exactly from run to run, where
times move with the machine.

Prints, per case of the set's plan: instructions per workload, allocations and bytes
allocated per workload and, with ``--repeat N`` (N runs, each in fresh processes), each
figure's spread over the runs, (max - min) / median in %. It reports; it does not judge.

Usage: ``python -m perf.tools.instructions [--set quick] [--coordinators LIST] [--cases
LIST] [--repeat N] [--json]`` (``--help`` for the rest). Needs valgrind on PATH. A run of
the quick set takes about two minutes on the CI machine, one without allocations.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from perf.errors import GateError, exit_code
from perf.measure.count_worker import CLOCKS
from perf.measure.instructions import (
    COUNT_SCHEMA_VERSION,
    DEFAULT_CLOCK,
    DEFAULT_TOOL,
    DEFAULT_WORKLOADS,
    TOOLS,
    CaseRef,
    CountRun,
    CountSettings,
    count_cases,
    countable_cases,
    spread_pct,
)
from perf.options import csv_list, positive_int
from perf.paths import REPO_ROOT
from perf.report.format import format_duration

__all__ = ["Row", "main", "render", "select_cases", "summarize"]

DEFAULT_COORDINATORS = "data,core,reference"


@dataclass(frozen=True, slots=True)
class Row:
    """One case over the runs: the median of each figure per workload and its spread
    over the runs in % (None for one run, or a figure not counted)."""

    bench: str
    instructions: float
    instructions_spread_pct: float | None
    allocations: float | None
    allocations_spread_pct: float | None
    allocated_bytes: float | None
    allocated_bytes_spread_pct: float | None


def select_cases(
    set_name: str, coordinators: Sequence[str], names: Sequence[str] | None
) -> list[CaseRef]:
    """The countable cases of the set's plan, restricted to the case names given (ValueError
    naming the accepted ones for an unknown name)."""
    from perf.workload.plan import plan_cases  # imports the library: only when asked

    cases = countable_cases(plan_cases(set_name, coordinators))
    if names is None:
        return cases
    known = sorted({c.case for c in cases})
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(
            f"unknown case(s) {', '.join(unknown)} in the {set_name} set; "
            f"accepted: {', '.join(known)}"
        )
    return [c for c in cases if c.case in names]


def _figure(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    present = [v for v in values if v is not None]
    if not present:
        return None, None
    spread = spread_pct(present) if len(present) > 1 else None
    return statistics.median(present), spread


def summarize(runs: Sequence[CountRun]) -> list[Row]:
    """One row per case, in the runs' order."""
    rows = []
    for i, first in enumerate(runs[0].counts):
        counts = [run.counts[i] for run in runs]
        instructions, instructions_spread = _figure([c.instructions for c in counts])
        allocations, allocations_spread = _figure([c.allocations for c in counts])
        allocated, allocated_spread = _figure([c.allocated_bytes for c in counts])
        assert instructions is not None
        rows.append(
            Row(
                first.bench,
                instructions,
                instructions_spread,
                allocations,
                allocations_spread,
                allocated,
                allocated_spread,
            )
        )
    return rows


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value:.4f} %"


def render(runs: Sequence[CountRun], rows: Sequence[Row], set_name: str) -> str:
    """The table the command prints."""
    c = runs[0].counts[0]
    lines = [
        f"{set_name} set, {len(rows)} cases, per workload (k = {c.workloads}); "
        f"{c.tool} {c.tool_version}, {c.clock} clock, {c.python_implementation} "
        f"{c.python_version} on {c.machine}; {len(runs)} run(s), spread = (max - min) / median",
        f"{'case':<48} {'instructions':>14} {'spread':>9} {'allocations':>12} {'spread':>9} "
        f"{'bytes':>12} {'spread':>9}",
    ]
    for r in rows:
        lines.append(
            f"{r.bench:<48} {_num(r.instructions):>14} {_pct(r.instructions_spread_pct):>9} "
            f"{_num(r.allocations):>12} {_pct(r.allocations_spread_pct):>9} "
            f"{_num(r.allocated_bytes):>12} {_pct(r.allocated_bytes_spread_pct):>9}"
        )
    seconds = [run.seconds for run in runs]
    lines.append(
        "seconds a run: "
        + ", ".join(f"{s:.1f}" for s in seconds)
        + f" (median {format_duration(statistics.median(seconds))})"
    )
    return "\n".join(lines)


def _as_json(runs: Sequence[CountRun], rows: Sequence[Row], set_name: str) -> dict[str, Any]:
    return {
        "schema_version": COUNT_SCHEMA_VERSION,
        "set": set_name,
        "runs": [
            {"seconds": run.seconds, "counts": [c.as_dict() for c in run.counts]} for run in runs
        ],
        "summary": [
            {
                "bench": r.bench,
                "instructions": r.instructions,
                "instructions_spread_pct": r.instructions_spread_pct,
                "allocations": r.allocations,
                "allocations_spread_pct": r.allocations_spread_pct,
                "allocated_bytes": r.allocated_bytes,
                "allocated_bytes_spread_pct": r.allocated_bytes_spread_pct,
            }
            for r in rows
        ],
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m perf.tools.instructions", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--set", dest="set_name", choices=("quick", "full"), default="quick")
    parser.add_argument(
        "--coordinators",
        type=csv_list,
        default=csv_list(DEFAULT_COORDINATORS),
        help=f"comma-separated coordinators (default {DEFAULT_COORDINATORS})",
    )
    parser.add_argument("--cases", type=csv_list, help="comma-separated case names (default all)")
    parser.add_argument("--repeat", type=positive_int, default=1, help="runs (default 1)")
    parser.add_argument(
        "--workloads",
        type=positive_int,
        default=DEFAULT_WORKLOADS,
        help="k: the counts are differences of processes that ran k and 2k workloads "
        f"(default {DEFAULT_WORKLOADS})",
    )
    parser.add_argument("--tool", choices=tuple(TOOLS), default=DEFAULT_TOOL)
    parser.add_argument("--clock", choices=CLOCKS, default=DEFAULT_CLOCK)
    parser.add_argument("--no-allocations", action="store_true", help="count instructions only")
    parser.add_argument("--tree", type=Path, default=REPO_ROOT, help="source tree to count")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        cases = select_cases(args.set_name, args.coordinators, args.cases)
        settings = CountSettings(
            tree=args.tree,
            set_name=args.set_name,
            workloads=args.workloads,
            tool=args.tool,
            clock=args.clock,
            allocations=not args.no_allocations,
        )
    except ValueError as exc:
        parser.error(str(exc))
    runs = []
    try:
        for i in range(args.repeat):
            print(f"counting {len(cases)} cases, run {i + 1} of {args.repeat} ...", file=sys.stderr)
            runs.append(count_cases(cases, settings))
    except GateError as exc:
        print(f"perf.tools.instructions: {exc}", file=sys.stderr)
        return int(exit_code(exc))
    rows = summarize(runs)
    if args.json:
        print(json.dumps(_as_json(runs, rows, args.set_name), indent=2))
    else:
        print(render(runs, rows, args.set_name))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
