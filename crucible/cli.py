"""``python -m crucible``: run one scenario through one coordinator and print its figures."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from crucible._loader import BUILTIN_COORDINATORS, DAEMON_COORDINATORS, resolve_factory
from crucible._measure import RunResult, RunSpec, run
from crucible._protocol import CoordinatorError, SettleTimeout
from crucible._workload import PATTERNS, SCENARIOS, get_scenario

__all__ = ["daemon_main", "main"]

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
        metavar="{" + ",".join(BUILTIN_COORDINATORS + DAEMON_COORDINATORS) + ",module:factory}",
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
    daemon_p = commands.add_parser(
        "daemon",
        help="run CrucibleCore as a daemon on a Unix socket",
        description="Run CrucibleCore as a daemon on a Unix socket (mode 0600) until SIGTERM, "
        "SIGINT or an admin 'stop'; then drain, and print the final report (stats and dead "
        "letters) as JSON on stdout.",
    )
    from crucible._daemon.options import add_arguments

    add_arguments(daemon_p)
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


def _daemon(args: argparse.Namespace) -> int:
    """Run the daemon in the foreground; exit 0 when its final accounting balances."""
    import asyncio
    import logging

    from crucible._daemon.options import configs_from_args
    from crucible._daemon.protocol import DaemonError
    from crucible._daemon.server import DaemonServer, serve

    logging.basicConfig(level=args.log_level, format="crucible daemon: %(message)s")
    try:
        core, limits = configs_from_args(args)
    except ValueError as exc:
        print(f"crucible daemon: {exc}", file=sys.stderr)
        return 2
    loop_factory = None
    if args.loop != "asyncio":
        try:
            import uvloop
        except ImportError:
            if args.loop == "uvloop":
                print("crucible daemon: uvloop is not installed", file=sys.stderr)
                return 2
        else:
            loop_factory = uvloop.new_event_loop

    def ready(server: DaemonServer) -> None:
        print(f"crucible daemon: listening on {server.path}", file=sys.stderr, flush=True)

    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            report = runner.run(
                serve(
                    args.socket,
                    core=core,
                    limits=limits,
                    handle_signals=True,
                    ready=ready,
                    own_process=True,
                )
            )
    except DaemonError as exc:
        print(f"crucible daemon: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(report.as_dict(), sort_keys=True), flush=True)
    return 0 if report.stats.balanced else 1


def daemon_main() -> int:
    """The ``crucible-daemon`` console script: ``python -m crucible daemon ARGS``."""
    return main(["daemon", *sys.argv[1:]])


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "daemon":
        return _daemon(args)
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
