"""The gate's rounds: base and head measured side by side, one fresh process per side.

Each round starts one ``perf.measure.sample`` process per source tree (``SideProcess``) and
asks both for case after case. Every case is asked ``repeats`` times per side, the sides
alternating in random order ask by ask, and the round's figure per side is the median of
its repeats (``merge_repeats``): both sides sample the same seconds of the machine, so a
machine that changes speed mid-round moves both. ``RoundRunner`` runs rounds of all cases
or of some, and gathers their figures in ``RoundSamples``.

Nothing here decides: which cases need more rounds is the command's question
(``perf.gate``), answered with ``perf.decide``.
"""

from __future__ import annotations

import json
import math
import os
import random
import select
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from perf.errors import ResultError
from perf.paths import REPO_ROOT

__all__ = [
    "SAMPLE_TIMEOUT_S",
    "RoundRunner",
    "RoundSamples",
    "SideProcess",
    "compile_tree",
    "merge_repeats",
    "run_round",
    "sample_map",
]

SAMPLE_TIMEOUT_S = 600.0
# What fixes a crashed benchmark, in every error about one.
_FIX = "fix the crash, then rerun nox -s perf_quick"


@dataclass(slots=True)
class RoundSamples:
    """Samples per side, benchmark and metric, in the order measured (a case left out of a
    round has no entry for it); and the calibration kernel's time per round, where a round
    timed it (only runs that compare with or write a baseline do)."""

    calibration_s: dict[str, list[float]] = field(default_factory=dict)
    values: dict[str, dict[str, dict[str, list[float | None]]]] = field(default_factory=dict)
    # Wall seconds each side spent measuring a case in a round (every ask of it, measured
    # by the gate), in the order of ``values``: pyperf's ``duration`` of that round's runs.
    durations_s: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    counted: dict[str, int] = field(default_factory=dict)

    def add(self, side: str, document: Mapping[str, Any]) -> None:
        self.counted[side] = self.counted.get(side, 0) + 1
        calibration = document.get("calibration")
        if calibration is not None:
            self.calibration_s.setdefault(side, []).append(float(calibration["seconds"]))
        per_side = self.values.setdefault(side, {})
        for bench, metrics in document["samples"].items():
            for metric, value in metrics.items():
                per_side.setdefault(bench, {}).setdefault(metric, []).append(value)
        durations = self.durations_s.setdefault(side, {})
        for bench, seconds in document.get("durations_s", {}).items():
            durations.setdefault(bench, []).append(float(seconds))

    def rounds(self, side: str) -> int:
        return self.counted.get(side, 0)


def _finite(values: Sequence[float | None], bench: str, metric: str, side: str) -> list[float]:
    out = []
    for v in values:
        if v is None or not math.isfinite(v) or v <= 0:
            raise ResultError(
                f"{metric} has a missing or non-positive sample on the {side} side",
                bench,
                "check the coordinator delivers events in this case; rerun nox -s perf_quick",
            )
        out.append(float(v))
    return out


def sample_map(
    samples: RoundSamples, side: str, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], list[float]]:
    """One side's samples of each ``(benchmark, metric)`` key; ResultError when a key has
    none, or a sample that is missing or not a positive number."""
    values = samples.values.get(side, {})
    out = {}
    for bench, metric in keys:
        if bench not in values or metric not in values[bench]:
            raise ResultError(
                f"no {metric} samples on the {side} side", bench, "rerun nox -s perf_quick"
            )
        out[(bench, metric)] = _finite(values[bench][metric], bench, metric, side)
    return out


class SideProcess:
    """One side's ``perf.measure.sample`` process for one round, driven line by line."""

    def __init__(self, side: str, tree: Path, plan_file: Path, label: str) -> None:
        self.side = side
        self.tree = tree
        self.label = label
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PYTHONHASHSEED": "0"}
        # Kept open for the worker's lifetime; its tail explains a crash. Closed by the GC.
        self._stderr = tempfile.TemporaryFile(mode="w+", encoding="utf-8")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "perf.measure.sample",
                "--tree",
                str(tree),
                "--plan",
                str(plan_file),
            ],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            bufsize=1,
        )

    def _crashed(self, what: str) -> ResultError:
        self.close()
        self._stderr.seek(0)
        tail = "\n".join(self._stderr.read().strip().splitlines()[-8:])
        return ResultError(
            f"benchmark worker on {self.tree} {what} (exit {self.proc.returncode}): {tail}",
            self.label,
            _FIX,
        )

    def read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], SAMPLE_TIMEOUT_S)
        if not ready:
            raise self._crashed(f"did not answer within {SAMPLE_TIMEOUT_S:.0f} s")
        line = self.proc.stdout.readline()
        if not line:
            raise self._crashed("crashed")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def ask(self, request: Mapping[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise self._crashed("crashed") from None
        return self.read()

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write(json.dumps({"op": "exit"}) + "\n")
                self.proc.stdin.close()
                self.proc.wait(timeout=30)
            except (BrokenPipeError, subprocess.TimeoutExpired, OSError):
                self.proc.kill()
                self.proc.wait()


def merge_repeats(asks: Sequence[Mapping[str, float | None]]) -> dict[str, float | None]:
    """One side's figures of a case for a round, from its repeated asks: per metric the
    median of the asks that reported it (traced figures come from the first ask only). A
    metric one ask could not measure (None) stays None, which refuses the comparison."""
    if not asks:
        raise ValueError("a round's figure needs at least one ask")
    merged: dict[str, float | None] = {}
    for metric in dict.fromkeys(k for ask in asks for k in ask):
        values = [ask[metric] for ask in asks if metric in ask]
        if any(v is None for v in values):
            merged[metric] = None
        else:
            merged[metric] = statistics.median(v for v in values if v is not None)
    return merged


def _hello(worker: SideProcess) -> dict[str, Any]:
    """A fresh side's hello, checked: it set up without a crash and measures the library of
    its own tree. Returns the side's round document, its samples still empty."""
    hello = worker.read()
    if "error" in hello:
        raise ResultError(
            f"benchmark crashed on {worker.tree}: {hello['error']}", hello["bench"], _FIX
        )
    measured = Path(hello["crucible_file"])
    if not measured.is_relative_to(worker.tree.resolve()):
        raise ResultError(
            f"the worker measured crucible from {measured}, not from {worker.tree}",
            worker.label,
            "make sure the tree's crucible package is importable (no conflicting install)",
        )
    return {"calibration": hello["calibration"], "samples": {}}


def _ask_case(
    workers: Mapping[str, SideProcess], index: int, item: Mapping[str, Any], rng: random.Random
) -> tuple[dict[str, list[dict[str, float | None]]], dict[str, float]]:
    """Every side's answers to one case, ``repeats`` asks each, the sides in random order
    ask by ask; only the first ask warms up (where the case does) and traces. Also the wall
    seconds each side's asks took, request to reply."""
    asks: dict[str, list[dict[str, float | None]]] = {}
    took: dict[str, float] = {}
    asked = [side for side in workers if side in item.get("sides", workers)]
    for repeat in range(int(item.get("repeats", 1))):
        rng.shuffle(asked)
        request = {"case": index, "warmup": bool(item["warmup"]) and not repeat}
        request["traced"] = not repeat
        for side in asked:
            start = time.perf_counter()
            reply = workers[side].ask(request)
            took[side] = took.get(side, 0.0) + time.perf_counter() - start
            if "error" in reply:
                raise ResultError(
                    f"benchmark crashed on {workers[side].tree}: {reply['error']}",
                    reply["bench"],
                    _FIX,
                )
            asks.setdefault(side, []).append(reply["values"])
    return asks, took


def run_round(
    sides: Mapping[str, Path],
    plan: Sequence[Mapping[str, Any]],
    plan_file: Path,
    rng: random.Random,
    n: int,
    indices: Sequence[int],
) -> dict[str, dict[str, Any]]:
    """One round of the cases at ``indices``: a fresh worker per side; each case asked
    ``repeats`` times per side, the sides alternating in random order ask by ask. Returns
    each side's document (calibration and per-case figures, see ``merge_repeats``)."""
    workers = {
        side: SideProcess(side, tree, plan_file, f"{side} round {n}")
        for side, tree in sides.items()
    }
    try:
        documents = {side: _hello(worker) for side, worker in workers.items()}
        for index in indices:
            item = plan[index]
            asks, took = _ask_case(workers, index, item, rng)
            for side, values in asks.items():
                documents[side]["samples"][item["bench"]] = merge_repeats(values)
                documents[side].setdefault("durations_s", {})[item["bench"]] = took[side]
        return documents
    finally:
        for worker in workers.values():
            worker.close()


def compile_tree(tree: Path) -> None:
    """Byte-compile a tree's library up front: a fresh checkout would otherwise compile in
    every worker, and the compiler's garbage shows in that side's memory figures."""
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(tree / "crucible")],
        capture_output=True,
        check=False,
    )


@dataclass(slots=True, kw_only=True)
class RoundRunner:
    """Rounds of one plan on the given sides (``{"base": tree, "head": tree}``, or the head
    alone), gathered into ``samples``. ``t0`` is when the gate started (its time budget
    counts from there); ``say`` takes a progress line per round."""

    sides: Mapping[str, Path]
    plan: Sequence[Mapping[str, Any]]
    plan_file: Path
    rng: random.Random
    t0: float
    say: Callable[[str], None]
    samples: RoundSamples = field(default_factory=RoundSamples)

    def run(
        self,
        count: int,
        total_hint: int,
        indices: Sequence[int] | None = None,
        budget_s: float | None = None,
    ) -> float:
        """Run ``count`` rounds (of the cases at ``indices``, all by default); returns the
        seconds the last one took. Progress counts down to ``total_hint`` rounds, or for
        extra rounds (``budget_s`` given: their number is not known ahead) to the budget."""
        first = next(iter(self.sides))
        chosen = list(range(len(self.plan))) if indices is None else list(indices)
        took = 0.0
        for _ in range(count):
            n = self.samples.rounds(first) + 1
            started = time.monotonic()
            documents = run_round(self.sides, self.plan, self.plan_file, self.rng, n, chosen)
            for side, document in documents.items():
                self.samples.add(side, document)
            took = time.monotonic() - started
            self._report(n, total_hint, len(chosen), took, budget_s)
        return took

    def _report(
        self, n: int, total_hint: int, cases: int, took: float, budget_s: float | None
    ) -> None:
        elapsed = time.monotonic() - self.t0
        if budget_s is None:
            of, left = f"{n}/{total_hint}", f"about {took * max(total_hint - n, 0):.0f} s left"
        else:
            of, left = f"{n}", f"at most {max(budget_s - elapsed, 0.0):.0f} s of the budget left"
        self.say(
            f"[gate] round {of} done ({cases} cases x {len(self.sides)} sides, "
            f"{took:.0f} s); elapsed {elapsed:.0f} s, {left}"
        )
