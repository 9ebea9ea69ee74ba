"""What the gate concludes from its rounds: rounds to start with, head against a stored
baseline (its memory figures; never its wall clock), and the run's verdict."""

from __future__ import annotations

from pathlib import Path

import pytest

from perf.decide.baseline import load_baseline, write_baseline
from perf.decide.comparisons import (
    compare_with_baseline,
    conclude,
    initial_rounds,
    time_not_judged_note,
)
from perf.decide.policy import Mode, Policy
from perf.decide.verdict import Comparison, Verdict
from perf.errors import BaselineError
from perf.measure.meta import MachineInfo
from perf.measure.rounds import RoundSamples
from perf.workload.plan import gated_keys
from tests.baseline_fixtures import baseline_document

PLAN = [{"bench": "s.a.core", "paced": False, "traced": False}]
MACHINE = MachineInfo(
    cpu_model="Test CPU",
    cpu_count=2,
    memory_total_bytes=8 * 2**30,
    os="Linux",
    python_implementation="CPython",
    python_version="3.11.7",
)


def _baseline_file(tmp_path: Path, python: str = "3.11.7") -> Path:
    """A baseline of ``s.a.core`` taken on MACHINE, its time 40 % faster than the head's
    rounds below (as on this machine from one minute to the next), its memory the same."""
    path = tmp_path / "quick.json"
    document = baseline_document(
        samples={"s.a.core": {"time": [0.0145] * 6, "rss_peak": [3e7] * 6}},
        machine=MACHINE.as_dict(),
        python=python,
    )
    write_baseline(path, document)
    return path


def _head_rounds(rss: float) -> RoundSamples:
    samples = RoundSamples()
    for i in range(6):
        time_s = 0.0203 * (1.0 + 0.01 * (i % 3 - 1))
        samples.add(
            "head",
            {"calibration": None, "samples": {"s.a.core": {"time": time_s, "rss_peak": rss}}},
        )
    return samples


def test_a_stored_baseline_judges_memory_never_wall_clock(tmp_path: Path) -> None:
    baseline = load_baseline(_baseline_file(tmp_path))
    policy = Policy(mode=Mode.BASELINE, min_rounds=5)
    found = compare_with_baseline(_head_rounds(3e7), gated_keys(PLAN), policy, 0, baseline, MACHINE)
    # Time is 40 % slower than stored, yet not judged at all: another run's wall clock.
    assert [(c.metric, c.verdict) for c in found] == [("rss_peak", Verdict.PASS)]
    grown = compare_with_baseline(
        _head_rounds(3.6e7), gated_keys(PLAN), policy, 0, baseline, MACHINE
    )
    assert [(c.metric, c.verdict) for c in grown] == [("rss_peak", Verdict.FAIL)]


def test_a_stored_baseline_from_another_python_is_refused(tmp_path: Path) -> None:
    baseline = load_baseline(_baseline_file(tmp_path, python="3.12.1"))
    with pytest.raises(BaselineError, match=r"Python 3\.12\.1"):
        compare_with_baseline(
            _head_rounds(3e7),
            gated_keys(PLAN),
            Policy(mode=Mode.BASELINE, min_rounds=5),
            0,
            baseline,
            MACHINE,
        )


def test_the_note_of_a_run_that_did_not_judge_time_says_why() -> None:
    note = time_not_judged_note("the baseline's commit is not in this clone")
    assert note.startswith("time and latency not judged: the baseline's commit")
    assert "side by side" in note


def test_rounds_to_start_with_clear_holms_alpha_and_the_policys_minimum() -> None:
    # 27 comparisons at alpha 0.05: 1 / 2**n must clear 0.05 / 27 two-sided, plus one.
    assert initial_rounds(Policy(min_rounds=5), 27) == 12
    assert initial_rounds(Policy(min_rounds=20), 27) == 20
    assert initial_rounds(Policy(min_rounds=5), 0) == initial_rounds(Policy(min_rounds=5), 1)


def _comparison(verdict: Verdict, *, n: int = 12) -> Comparison:
    return Comparison(
        benchmark="s.a.core",
        metric="time",
        ratio=1.0,
        ci_low=0.99,
        ci_high=1.01,
        p_value=0.5,
        p_adjusted=0.5,
        threshold_pct=2.0,
        noise_pct=1.0,
        min_detectable_pct=2.0,
        n_base=n,
        n_head=n,
        verdict=verdict,
    )


def test_conclusion_of_a_run() -> None:
    policy = Policy(min_rounds=5, max_rounds=16)
    passed = conclude([_comparison(Verdict.PASS)], policy, strict=False, notes=["a"])
    assert (passed.verdict, passed.exit_status, passed.warnings) == (Verdict.PASS, 0, ())
    assert passed.notes == ("a",)
    # A memory gate failure fails the run, whatever the comparisons say.
    failed = conclude(
        [_comparison(Verdict.PASS)], policy, strict=False, notes=[], memory_failures=["leak"]
    )
    assert (failed.verdict, failed.exit_status, failed.warnings) == (Verdict.FAIL, 1, ("leak",))
    # A memory gate failure alone (nothing compared) fails too.
    assert conclude([], policy, strict=False, notes=[], memory_failures=["leak"]).exit_status == 1
    # Nothing compared (a baseline written): passes with exit 0.
    assert conclude([], policy, strict=True, notes=[]).exit_status == 0
    # Inconclusive after every round allowed: a warning, and exit 2 under --strict.
    undecided = conclude(
        [_comparison(Verdict.INCONCLUSIVE, n=16)], policy, strict=True, notes=["a"]
    )
    assert undecided.exit_status == 2
    assert undecided.warnings == ("1 comparisons stayed inconclusive after 16 rounds (budget 16)",)
