"""Speed check of the library's coordinators against the reference dispatcher.

Measures, on the medium scenario with trivial handlers (no work per event):
- throughput of each coordinator, interleaved in rotating order within each round so all
  three see the same machine state, and each one's ratio to ``reference`` in that round;
- p99 latency at a steady, open-loop 1,000 events/s;
- peak RSS of a whole medium run, each in a fresh process (``python -m crucible run``).

Prints medians over the rounds and exits 0; it reports, it does not judge. Usage:
``python -m perf.tools.library_speed [--rounds N] [--json]``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import statistics
import subprocess
import sys
from collections.abc import Callable, Sequence

from perf.workload.library import RunSpec, WorkSpec, get_scenario, measure

COORDINATORS = ("reference", "data", "core")  # reference first: ratios are to it


def _spec(coordinator: str, pattern: str | None, seed: int) -> RunSpec:
    scenario = dataclasses.replace(get_scenario("medium"), work=WorkSpec(kind="none"))
    return RunSpec(coordinator=coordinator, scenario=scenario, pattern=pattern, seed=seed)


def _peak_rss(coordinator: str) -> int:
    out = subprocess.run(
        [sys.executable, "-m", "crucible", "run", "--coordinator", coordinator, "--json"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return int(json.loads(out)["peak_rss_bytes"])


async def interleaved_rounds(
    coordinators: Sequence[str], spec: Callable[[str, str | None, int], RunSpec], rounds: int
) -> dict[str, dict[str, list[float]]]:
    """Per coordinator, one figure a round: ``throughput_eps`` of an unpaced run,
    ``ratio_to_first`` (its throughput over the first coordinator's in the same round) and
    ``steady_p99_s`` (p99 latency at the steady pattern). The order rotates each round, so
    every coordinator runs first, middle and last equally often."""
    figures: dict[str, dict[str, list[float]]] = {
        c: {"throughput_eps": [], "ratio_to_first": [], "steady_p99_s": []} for c in coordinators
    }
    n = len(coordinators)
    for r in range(rounds):
        order = [*coordinators[r % n :], *coordinators[: r % n]]
        round_eps: dict[str, float] = {}
        for coordinator in order:
            result = await measure(spec(coordinator, None, r))
            round_eps[coordinator] = result.throughput_eps
        for coordinator in coordinators:
            figures[coordinator]["throughput_eps"].append(round_eps[coordinator])
            figures[coordinator]["ratio_to_first"].append(
                round_eps[coordinator] / round_eps[coordinators[0]]
            )
        for coordinator in order:
            steady = await measure(spec(coordinator, "steady", r))
            if steady.latency_p99_s is None:
                raise RuntimeError(f"{coordinator}: the steady run recorded no latency")
            figures[coordinator]["steady_p99_s"].append(steady.latency_p99_s)
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    figures = asyncio.run(interleaved_rounds(COORDINATORS, _spec, args.rounds))
    summary = {
        c: {
            "median_throughput_eps": statistics.median(figures[c]["throughput_eps"]),
            "median_ratio_to_reference": statistics.median(figures[c]["ratio_to_first"]),
            "median_steady_p99_s": statistics.median(figures[c]["steady_p99_s"]),
            "peak_rss_bytes": _peak_rss(c),
            "rounds": args.rounds,
        }
        for c in COORDINATORS
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    for c, s in summary.items():
        print(
            f"{c:>9}: {s['median_throughput_eps']:>9,.0f} events/s  "
            f"({s['median_ratio_to_reference']:.2f} x reference)  "
            f"steady 1k/s p99 {s['median_steady_p99_s'] * 1e3:.3f} ms  "
            f"peak RSS {s['peak_rss_bytes'] / 2**20:.1f} MiB"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
