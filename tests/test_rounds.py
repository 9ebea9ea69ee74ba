"""The gate's rounds: a side's figures per round, the alternation of sides ask by ask,
the samples gathered, and the progress of rounds."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

import perf.measure.rounds as rounds
from perf.errors import ResultError
from perf.measure.rounds import RoundRunner, RoundSamples, merge_repeats, sample_map
from perf.workload.plan import gated_keys

PLAN = [
    {"bench": "s.a.core", "paced": False, "traced": False},
    {"bench": "s.b.core", "paced": True, "traced": True},
]


def _round(samples: dict[str, dict[str, float | None]]) -> dict[str, object]:
    return {"calibration": {"seconds": 0.01}, "samples": samples}


def test_benchmark_on_one_side_only_is_an_error() -> None:
    samples = RoundSamples()
    samples.add("base", _round({"s.a.core": {"time": 1.0, "rss_peak": 2.0}}))
    samples.add("head", _round({"s.x.core": {"time": 1.0, "rss_peak": 2.0}}))
    keys = gated_keys(PLAN[:1])
    sample_map(samples, "base", keys)
    with pytest.raises(ResultError, match="no time samples on the head side"):
        sample_map(samples, "head", keys)


def test_zero_or_missing_samples_are_errors() -> None:
    samples = RoundSamples()
    samples.add("head", _round({"s.a.core": {"time": 0.0, "rss_peak": 2.0}}))
    with pytest.raises(ResultError, match="non-positive"):
        sample_map(samples, "head", gated_keys(PLAN[:1]))
    samples = RoundSamples()
    samples.add("head", _round({"s.a.core": {"time": None, "rss_peak": 2.0}}))
    with pytest.raises(ResultError, match="missing"):
        sample_map(samples, "head", gated_keys(PLAN[:1]))
    with pytest.raises(ResultError):
        sample_map(RoundSamples(), "head", gated_keys(PLAN[:1]))


def test_repeats_merge_to_the_median_and_keep_missing_figures_missing() -> None:
    merged = merge_repeats(
        [
            {"time": 3.0, "rss_peak": 10.0, "allocated": 7.0},
            {"time": 1.0, "rss_peak": 30.0},
            {"time": 2.0, "rss_peak": 20.0},
        ]
    )
    # The traced figure comes from the first ask alone; the others are medians.
    assert merged == {"time": 2.0, "rss_peak": 20.0, "allocated": 7.0}
    assert merge_repeats([{"time": 1.0}, {"time": None}]) == {"time": None}
    with pytest.raises(ValueError):
        merge_repeats([])


def test_rounds_are_counted_with_or_without_a_calibration_figure() -> None:
    samples = RoundSamples()
    samples.add("head", {"calibration": None, "samples": {"s.a.core": {"time": 1.0}}})
    samples.add("head", {"calibration": None, "samples": {}})  # a round of other cases
    samples.add("base", _round({"s.a.core": {"time": 1.0}}))
    assert samples.rounds("head") == 2
    assert samples.rounds("base") == 1
    assert samples.calibration_s == {"base": [0.01]}
    assert samples.values["head"]["s.a.core"]["time"] == [1.0]


def test_a_round_alternates_sides_per_repeat_and_asks_head_only_cases_of_head(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    asked: list[tuple[str, dict[str, object]]] = []

    class FakeWorker:
        def __init__(self, side: str, tree: Path, plan_file: Path, label: str) -> None:
            self.side, self.tree, self.label = side, tree, label
            self.values = iter([3.0, 1.0, 2.0, 5.0, 4.0] * 4)

        def read(self) -> dict[str, object]:
            return {
                "crucible_file": str(self.tree / "crucible" / "__init__.py"),
                "calibration": {"seconds": 0.01},
            }

        def ask(self, request: dict[str, object]) -> dict[str, object]:
            asked.append((self.side, dict(request)))
            time.sleep(0.01)  # each ask takes at least this long, request to reply
            bench = "s.a.core" if request["case"] == 0 else "s.d.core-daemon"
            return {"bench": bench, "values": {"time": next(self.values)}}

        def close(self) -> None:
            pass

    monkeypatch.setattr(rounds, "SideProcess", FakeWorker)
    plan = [
        {"bench": "s.a.core", "warmup": True, "repeats": 3},
        {"bench": "s.d.core-daemon", "warmup": False, "repeats": 1, "sides": ["head"]},
    ]
    sides = {"base": tmp_path / "b", "head": tmp_path / "h"}
    docs = rounds.run_round(sides, plan, tmp_path / "plan.json", random.Random(1), 1, [0, 1])
    # Case 0: three repeats, each asking both sides (in some order) before the next.
    first = asked[:6]
    for repeat in range(3):
        pair = first[2 * repeat : 2 * repeat + 2]
        assert {side for side, _ in pair} == {"base", "head"}
        assert all(r["warmup"] is (repeat == 0) and r["traced"] is (repeat == 0) for _, r in pair)
    # Case 1 is asked of the head side only, once.
    assert [(side, r["case"]) for side, r in asked[6:]] == [("head", 1)]
    # Each side's figure of case 0 is the median of its three answers (3, 1, 2) -> 2.
    assert docs["base"]["samples"] == {"s.a.core": {"time": 2.0}}
    assert docs["head"]["samples"]["s.a.core"] == {"time": 2.0}
    assert docs["head"]["samples"]["s.d.core-daemon"] == {"time": 5.0}
    # The seconds each side spent on a case: every one of its asks, request to reply.
    assert docs["base"]["durations_s"]["s.a.core"] >= 3 * 0.01
    assert 0.01 <= docs["head"]["durations_s"]["s.d.core-daemon"] < 3 * 0.01 + 5
    assert "s.d.core-daemon" not in docs["base"]["durations_s"]


def test_progress_counts_rounds_then_the_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        rounds, "run_round", lambda *a: {"head": {"calibration": None, "samples": {}}}
    )
    lines: list[str] = []
    runner = RoundRunner(
        sides={"head": tmp_path},
        plan=[{}],
        plan_file=tmp_path / "plan.json",
        rng=random.Random(0),
        t0=time.monotonic(),
        say=lines.append,
    )
    runner.run(2, 12)
    runner.run(1, 3, [0], 360.0)
    assert lines[0].startswith("[gate] round 1/12 done") and "s left" in lines[0]
    assert lines[2].startswith("[gate] round 3 done") and "of the budget left" in lines[2]
    assert "at most 36" in lines[2] or "at most 35" in lines[2]
    assert runner.samples.rounds("head") == 3
