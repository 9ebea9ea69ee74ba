"""The suite scripts' command line: crucible's options on top of pyperf's, the runner built
with them, and the options a worker process is passed (explicitly, as pyperf re-invokes the
script for each worker)."""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence

import pyperf

from perf.measure.meta import default_affinity
from perf.workload.cases import DEFAULT_COORDINATORS, SETS, settings_for

__all__ = [
    "PROGRESS_PREFIX",
    "add_options",
    "build_runner",
    "coordinators",
    "forward_to_worker",
    "preparse",
    "split_values",
]

# A progress line on stdout (--progress): this prefix, then one JSON object.
PROGRESS_PREFIX = "@@crucible-progress "


def split_values(values: Iterable[str] | None) -> list[str] | None:
    """The values of a repeatable comma-separated option (``--case a,b --case c``), or
    None when there are none."""
    if not values:
        return None
    out = [v.strip() for value in values for v in value.split(",") if v.strip()]
    return out or None


def add_options(parser: argparse.ArgumentParser) -> None:
    """crucible's options, in their own group (``crucible_*`` destinations, apart from
    pyperf's)."""
    group = parser.add_argument_group("crucible")
    group.add_argument(
        "--set", dest="crucible_set", choices=SETS, default="quick", help="case set (quick)"
    )
    group.add_argument(
        "--case",
        dest="crucible_cases",
        action="append",
        metavar="NAME[,NAME]",
        help="run only these cases of the set (default: all of them)",
    )
    group.add_argument(
        "--coordinator",
        dest="crucible_coordinators",
        action="append",
        metavar="SPEC[,SPEC]",
        help=f"coordinators: builtin names or module:factory "
        f"(default: {','.join(DEFAULT_COORDINATORS)})",
    )
    group.add_argument(
        "--sidecar",
        dest="crucible_sidecar",
        metavar="DIR",
        help="directory for the workers' side file (default: a temporary one)",
    )
    group.add_argument(
        "--progress",
        dest="crucible_progress",
        action="store_true",
        help=f"print a '{PROGRESS_PREFIX.strip()} JSON' line when a benchmark starts/ends",
    )
    group.add_argument(
        "--list",
        dest="crucible_list",
        action="store_true",
        help="list the selected benchmarks and their metrics, then exit",
    )


def preparse(argv: Sequence[str]) -> argparse.Namespace:
    """crucible's options alone, read before pyperf's runner exists (its settings depend
    on ``--set``)."""
    parser = argparse.ArgumentParser(add_help=False)
    add_options(parser)
    known, _ = parser.parse_known_args(argv)
    return known


def forward_to_worker(cmd: list[str], args: argparse.Namespace) -> None:
    """Pass the case selection and the side-file directory to a worker explicitly."""
    cmd.extend(("--set", args.crucible_set))
    if args.crucible_cases:
        cmd.extend(("--case", ",".join(split_values(args.crucible_cases) or ())))
    cmd.extend(("--coordinator", ",".join(coordinators(args))))
    cmd.extend(("--sidecar", args.crucible_sidecar))


def coordinators(args: argparse.Namespace) -> list[str]:
    """The coordinators asked for, else the default ones."""
    return split_values(args.crucible_coordinators) or list(DEFAULT_COORDINATORS)


def build_runner(suite_name: str, argv: Sequence[str]) -> tuple[pyperf.Runner, argparse.Namespace]:
    """The pyperf runner at the case set's settings, and the parsed command line; the CPU
    affinity defaults to ``default_affinity()`` unless ``--affinity`` is given."""
    pre = preparse(argv)
    settings = settings_for(pre.crucible_set)
    runner = pyperf.Runner(
        processes=settings.processes,
        values=settings.values,
        warmups=settings.warmups,
        min_time=settings.min_time_s,
        add_cmdline_args=forward_to_worker,
    )
    add_options(runner.argparser)
    runner.argparser.description = f"Crucible {suite_name} benchmarks (pyperf)."
    if not any(a == "--affinity" or a.startswith("--affinity=") for a in argv):
        affinity = default_affinity()
        if affinity is not None:
            runner.argparser.set_defaults(affinity=affinity)
    return runner, runner.parse_args(argv)
