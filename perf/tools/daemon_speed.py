"""Speed of CrucibleCore through its daemon (``core-daemon``) beside in-process (``core``).

Measures, on the medium scenario as the suites run it (its services do their work):
- throughput of both, interleaved in rotating order within each round, and the daemon's
  throughput over the in-process core's in the same round (what the transport costs);
- p99 latency at a steady, open-loop 1,000 events/s.

Prints the medians over the rounds and the spread, and holds them against the daemon's
targets: at least ``THROUGHPUT_TARGET_EPS`` events/s through the daemon and a steady p99
under ``STEADY_P99_TARGET_S``. It reports; exit 0 whatever the figures (the gate decides
regressions, not this). Usage: ``python -m perf.tools.daemon_speed [--rounds N] [--events N]
[--json]``, or ``nox -s perf_daemon``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import statistics
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from perf.tools.library_speed import interleaved_rounds
from perf.workload.library import RunSpec, get_scenario

COORDINATORS: Final = ("core", "core-daemon")  # core first: ratios are to it
# The daemon's targets (medium scenario, this machine's class): faster than a pyzmq ipc
# relay, and a p99 under 2 ms at a steady 1,000 events/s.
THROUGHPUT_TARGET_EPS: Final = 40_000.0
STEADY_P99_TARGET_S: Final = 0.002


def _spec_factory(events: int | None) -> Callable[[str, str | None, int], RunSpec]:
    scenario = get_scenario("medium")
    if events is not None:
        scenario = dataclasses.replace(scenario, events=events)

    def spec(coordinator: str, pattern: str | None, seed: int) -> RunSpec:
        return RunSpec(coordinator=coordinator, scenario=scenario, pattern=pattern, seed=seed)

    return spec


def summarize(figures: Mapping[str, Mapping[str, Sequence[float]]]) -> dict[str, Any]:
    """Median, lowest and highest of each figure, per coordinator."""
    return {
        c: {
            k: {"median": statistics.median(v), "min": min(v), "max": max(v), "n": len(v)}
            for k, v in per.items()
        }
        for c, per in figures.items()
    }


def targets(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The daemon's figures against its targets: name, target, measured median, met."""
    daemon = summary["core-daemon"]
    eps = daemon["throughput_eps"]["median"]
    p99 = daemon["steady_p99_s"]["median"]
    return [
        {
            "target": f"throughput >= {THROUGHPUT_TARGET_EPS:,.0f} events/s",
            "measured": f"{eps:,.0f} events/s",
            "met": eps >= THROUGHPUT_TARGET_EPS,
        },
        {
            "target": f"steady 1,000 events/s p99 < {STEADY_P99_TARGET_S * 1e3:g} ms",
            "measured": f"{p99 * 1e3:.3f} ms",
            "met": p99 < STEADY_P99_TARGET_S,
        },
    ]


def render(summary: Mapping[str, Any], checks: Sequence[Mapping[str, Any]], rounds: int) -> str:
    lines = [f"medium scenario, median of {rounds} rounds (lowest - highest):"]
    for c in COORDINATORS:
        s = summary[c]
        eps, p99 = s["throughput_eps"], s["steady_p99_s"]
        line = (
            f"{c:>12}: {eps['median']:>9,.0f} events/s ({eps['min']:,.0f} - {eps['max']:,.0f})"
            f"  steady 1k/s p99 {p99['median'] * 1e3:.3f} ms"
        )
        if c != COORDINATORS[0]:
            line += f"  {s['ratio_to_first']['median']:.2f} x core"
        lines.append(line)
    for check in checks:
        verdict = "met" if check["met"] else "NOT met"
        lines.append(f"target {check['target']}: {verdict} (measured {check['measured']})")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds (default 5)")
    parser.add_argument(
        "--events", type=int, default=None, help="events per run (default: the scenario's)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.events is not None and args.events < 1:
        parser.error("--events must be at least 1")
    figures = asyncio.run(interleaved_rounds(COORDINATORS, _spec_factory(args.events), args.rounds))
    summary = summarize(figures)
    checks = targets(summary)
    if args.json:
        print(json.dumps({"rounds": args.rounds, "summary": summary, "targets": checks}, indent=2))
    else:
        print(render(summary, checks, args.rounds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
