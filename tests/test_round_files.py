"""The gate's rounds as run-folder files: each side's pyperf suite (benchmark-stored metrics
only, one run per round), samples.json, and the artifacts the report links."""

from __future__ import annotations

import json
from pathlib import Path

import pyperf

from perf.measure.round_files import write_round_files
from perf.measure.rounds import RoundSamples

PLAN = [{"bench": "s.a.core", "meta": {"crucible_scenario": "medium"}}]


def _samples() -> RoundSamples:
    samples = RoundSamples()
    for time_s in (0.02, 0.021, None):
        for side in ("base", "head"):
            samples.add(
                side,
                {
                    "calibration": None,
                    "samples": {"s.a.core": {"time": time_s, "rss_peak": 3e7}},
                },
            )
    return samples


def test_each_side_is_a_pyperf_suite_and_every_sample_is_kept(tmp_path: Path) -> None:
    artifacts = write_round_files(tmp_path, _samples(), PLAN)
    assert [a.path for a in artifacts] == ["base.json", "head.json", "samples.json"]
    suite = pyperf.BenchmarkSuite.load(str(tmp_path / "head.json"))
    bench = suite.get_benchmark("s.a.core.time")
    # One run per round with a figure; the round that could not measure it is left out.
    assert bench.get_nrun() == 2 and sorted(bench.get_values()) == [0.02, 0.021]
    assert bench.get_metadata()["crucible_scenario"] == "medium"
    stored = json.loads((tmp_path / "samples.json").read_text())
    assert stored["plan"] == PLAN
    assert stored["values"]["head"]["s.a.core"]["time"] == [0.02, 0.021, None]


def test_no_pyperf_file_for_a_side_without_benchmark_figures(tmp_path: Path) -> None:
    samples = RoundSamples()
    samples.add("head", {"calibration": None, "samples": {"s.a.core": {"time": None}}})
    write_round_files(tmp_path, samples, PLAN)
    assert not (tmp_path / "head.json").exists()
    assert (tmp_path / "samples.json").exists()


def test_each_run_records_the_seconds_its_round_spent_not_a_guess_from_bytes(
    tmp_path: Path,
) -> None:
    samples = RoundSamples()
    for took in (0.5, 0.7):
        samples.add(
            "head",
            {
                "calibration": None,
                "samples": {"s.a.core": {"time": 0.02, "rss_peak": 3e7}},
                "durations_s": {"s.a.core": took},
            },
        )
    write_round_files(tmp_path, samples, PLAN)
    suite = pyperf.BenchmarkSuite.load(str(tmp_path / "head.json"))
    rss = suite.get_benchmark("s.a.core.rss_peak")
    time_ = suite.get_benchmark("s.a.core.time")
    # Without "duration" pyperf takes a run's values as seconds: 3e7 bytes would read as
    # 347 days a run. With it, the suite's total is the time the rounds spent on the case,
    # carried by the case's first metric and counted once.
    assert [run.get_metadata()["duration"] for run in rss.get_runs()] == [0.5, 0.7]
    assert [run.get_metadata()["duration"] for run in time_.get_runs()] == [0.0, 0.0]
    assert suite.get_total_duration() == 0.5 + 0.7
    assert json.loads((tmp_path / "samples.json").read_text())["durations_s"] == {
        "head": {"s.a.core": [0.5, 0.7]}
    }
