"""``python -m crucible``: run one scenario through one coordinator and print its figures."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from crucible._loader import BUILTIN_COORDINATORS, resolve_factory
from crucible._measure import RunResult, RunSpec, run
from crucible._protocol import CoordinatorError, SettleTimeout
from crucible._workload import PATTERNS, SCENARIOS, get_scenario

__all__ = ["main"]

PATTERN_CHOICES = PATTERNS


def _coordinator(value: str) -> str:
    try:
        resolve_factory(value)
    except CoordinatorError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


def _rate(value: str) -> float:
    try:
        rate = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not 0.0 <= rate <= 1.0:
        raise argparse.ArgumentTypeError(f"{value} is outside [0, 1]; give a share like 0.05")
    return rate


def _positive(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if number <= 0:
        raise argparse.ArgumentTypeError(f"{value} must be > 0")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m crucible", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run_p = commands.add_parser("run", help="run one scenario and print its measured figures")
    run_p.add_argument(
        "--coordinator",
        type=_coordinator,
        default="core",
        metavar="{" + ",".join(BUILTIN_COORDINATORS) + ",module:factory}",
        help="coordinator to measure (default: core)",
    )
    run_p.add_argument("--scenario", choices=sorted(SCENARIOS), default="medium")
    run_p.add_argument(
        "--pattern",
        choices=PATTERN_CHOICES,
        default=None,
        help="open-loop arrival pattern (default: publish as fast as accepted)",
    )
    run_p.add_argument(
        "--rate", type=_positive, default=1000.0, help="mean rate of a pattern, events/s"
    )
    run_p.add_argument(
        "--failure-rate", type=_rate, default=0.0, help="share of handler calls that raise"
    )
    run_p.add_argument("--seed", type=int, default=0)
    run_p.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def _human(result: RunResult) -> str:
    def ms(value: float | None) -> str:
        return "n/a" if value is None else f"{value * 1e3:.3f} ms"

    return "\n".join(
        [
            f"{result.coordinator} / {result.scenario}"
            + (f" / {result.pattern}" if result.pattern else ""),
            f"  published {result.published}  delivered {result.delivered}  failed "
            f"{result.failed}  dead-lettered {result.dead_lettered}  rejected "
            f"{result.rejected}  in flight {result.in_flight}  (retried {result.retried})",
            f"  invariant: {'holds' if result.invariant_holds else 'BROKEN'}",
            f"  throughput {result.throughput_eps:,.0f} events/s over {result.wall_s:.3f} s",
            f"  latency p50 {ms(result.latency_p50_s)}  p95 {ms(result.latency_p95_s)}  "
            f"p99 {ms(result.latency_p99_s)}",
            f"  peak RSS {result.peak_rss_bytes / 2**20:.1f} MiB  CPU {result.cpu_percent:.0f} %",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    spec = RunSpec(
        coordinator=args.coordinator,
        scenario=get_scenario(args.scenario),
        pattern=args.pattern,
        rate_eps=args.rate,
        failure_rate=args.failure_rate,
        seed=args.seed,
    )
    try:
        result = run(spec)
    except (CoordinatorError, SettleTimeout) as exc:
        print(f"crucible: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result.as_dict(), sort_keys=True))
    else:
        print(_human(result))
    return 0 if result.invariant_holds else 1
