"""Operating characteristics of the gate's PR-mode rule: how often it fails identical code and
how often it fails a real change, by noise model, from simulated runs through the gate's own
decision code (``perf.decide.simulate``). Prints a markdown table; docs/decisions.md keeps
one with the command that made it.

Usage: ``python -m perf.tools.oc [--runs N] [--seed N] [--models normal,t3,...]
[--spreads 2,5,10,15] [--budget-s S]``; ``--derive-timing RUN_FOLDER`` instead writes the
simulator's timing (perf/decide/quick_timing.json) from a PR-mode run folder.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from perf.decide.policy import Mode, load_policy
from perf.decide.simtiming import FULL_ROUND_S, TIMING_FILE, derive_timing, load_timing
from perf.decide.simulate import (
    CHANGED,
    MULTIPLES,
    SPREADS_PCT,
    Cell,
    Noise,
    NoiseModel,
    Scenario,
    simulate_cell,
)
from perf.files import write_json
from perf.paths import REPO_ROOT
from perf.report.format import format_pct

DEFAULT_RUNS = 200
DEFAULT_BUDGET_S = 360.0  # the gate's --budget-s default


def _rate(count: int, runs: int) -> str:
    return format_pct(100.0 * count / runs, 1)


def _row(cells: Sequence[Cell]) -> str:
    """One noise model's row: identical code (the first cell), then the changed multiples."""
    null, *changed = cells
    half = next((c for c in changed if c.scenario.multiple == 0.5), None)
    rounds = sorted(r for c in cells for r in c.rounds)
    seconds = sorted(s for c in cells for s in c.seconds)
    columns = [
        null.scenario.noise.label(),
        _rate(null.runs_failed, null.runs),
        _rate(half.runs_failed, half.runs) if half else "",
        *(_rate(c.changed_failed, c.runs) for c in changed),
        f"{rounds[len(rounds) // 2]} ({rounds[-1]})",
        f"{seconds[len(seconds) // 2]:.0f} ({seconds[-1]:.0f})",
    ]
    return "| " + " | ".join(columns) + " |"


def table(rows: Sequence[Sequence[Cell]], runs: int) -> str:
    """The markdown table: a row per noise model, its cells in the order of ``MULTIPLES``."""
    multiples = [c.scenario.multiple for c in rows[0][1:]]
    bench, metric = CHANGED
    head = [
        "noise (per-round log ratio)",
        "identical code: runs failing",
        "0.5x: runs failing",
        *(f"{m:g}x: {metric} of {bench.split('.', 1)[1]} failing" for m in multiples),
        "rounds, median (max)",
        "seconds, median (max)",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += [_row(cells) for cells in rows]

    def margin(rate: float) -> float:  # normal approximation of a binomial rate's 95 % margin
        return 100.0 * 1.96 * math.sqrt(rate * (1.0 - rate) / runs)

    lines.append("")
    lines.append(
        f"{runs} runs per cell; a rate's 95 % margin is +/-{margin(0.01):.1f} points at 1 %, "
        f"+/-{margin(0.05):.1f} at 5 %, +/-{margin(0.5):.1f} at 50 %."
    )
    return "\n".join(lines)


def _noises(models: Sequence[str], spreads: Sequence[float]) -> list[Noise]:
    noises = []
    for name in models:
        model = NoiseModel(name)
        if model is NoiseModel.MEASURED:
            noises.append(Noise(model, 0.0))
        else:
            noises += [Noise(model, s / 100.0) for s in spreads]
    return noises


def _derive(folder: Path, out: Path, note: str | None, full_round_s: float) -> int:
    samples = json.loads((folder / "samples.json").read_text(encoding="utf-8"))
    report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    source = (
        f"{note or folder.name}: a PR-mode gate run, head {str(report['head_commit'])[:10]}, "
        f"base {str(report['base_label'])[:10]}, {report['rounds']} rounds "
        f"({report['rounds_all_cases']} of every case), {float(report['duration_s']):.1f} s"
    )
    write_json(out, derive_timing(samples, report, source=source, full_round_s=full_round_s))
    print(f"wrote {out}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m perf.tools.oc", description=__doc__)
    parser.add_argument("--runs", type=int, default=DEFAULT_RUNS, help="runs per cell")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--models",
        default="normal,t3,switching",
        help=f"comma-separated, of {', '.join(m.value for m in NoiseModel)}",
    )
    parser.add_argument("--spreads", default=",".join(f"{s:g}" for s in SPREADS_PCT))
    parser.add_argument("--multiples", default=",".join(f"{m:g}" for m in MULTIPLES))
    parser.add_argument("--budget-s", type=float, default=DEFAULT_BUDGET_S)
    parser.add_argument("--derive-timing", type=Path, metavar="RUN_FOLDER")
    parser.add_argument("--timing", type=Path, default=TIMING_FILE)
    parser.add_argument("--source", help="with --derive-timing: how the run was made")
    parser.add_argument(
        "--full-round-s",
        type=float,
        default=FULL_ROUND_S,
        help="with --derive-timing, for a run without recorded durations: the seconds of "
        "one full round on its machine (default %(default)s)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.derive_timing is not None:
        return _derive(args.derive_timing, args.timing, args.source, args.full_round_s)
    policy = load_policy(REPO_ROOT / "pyproject.toml", mode=Mode.PR)
    timing = load_timing(args.timing)
    multiples = [float(m) for m in args.multiples.split(",")]
    if multiples[0] != 0.0:
        multiples.insert(0, 0.0)
    rows = []
    started = time.monotonic()
    for noise in _noises(args.models.split(","), [float(s) for s in args.spreads.split(",")]):
        rows.append(
            [
                simulate_cell(
                    Scenario(noise, m),
                    policy,
                    timing,
                    runs=args.runs,
                    seed=args.seed,
                    budget_s=args.budget_s,
                )
                for m in multiples
            ]
        )
        print(f"[oc] {noise.label()} done, {time.monotonic() - started:.0f} s", file=sys.stderr)
    print(table(rows, args.runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
