"""What the gate concludes from its rounds: rounds to start with, head against a stored
baseline (rescaled for another machine, held for this one's move), and the run's verdict."""

from __future__ import annotations

from pathlib import Path

import pytest

from perf.decide.baseline import load_baseline, write_baseline
from perf.decide.comparisons import KERNEL_NOTE, compare_with_baseline, conclude, initial_rounds
from perf.decide.policy import Mode, Policy
from perf.decide.verdict import Comparison, Verdict
from perf.measure.meta import MachineInfo
from perf.measure.rounds import RoundSamples
from perf.workload.calibration import CALIBRATION_VERSION
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


def _baseline_file(
    tmp_path: Path, kernel_s: list[float], machine: MachineInfo | None = None
) -> Path:
    """A baseline of ``s.a.core``, from ``machine`` (else another machine than MACHINE)."""
    times = [0.020, 0.021, 0.0205, 0.0198, 0.0202, 0.0207]
    path = tmp_path / "quick.json"
    document = baseline_document(
        calibration={"version": CALIBRATION_VERSION, "seconds": kernel_s},
        samples={"s.a.core": {"time": times, "rss_peak": [3e7] * 6}},
        **({"machine": machine.as_dict()} if machine else {}),
    )
    write_baseline(path, document)
    return path


def _head_rounds(level: float, kernel_s: float) -> RoundSamples:
    samples = RoundSamples()
    for i in range(6):
        time_s = 0.0203 * level * (1.0 + 0.01 * (i % 3 - 1))
        samples.add(
            "head",
            {
                "calibration": {"seconds": kernel_s},
                "samples": {"s.a.core": {"time": time_s, "rss_peak": 3e7}},
            },
        )
    return samples


@pytest.mark.parametrize(
    ("kernel_s", "held", "note"),
    [(0.034, True, "70.0% slower"), (0.0199, False, "0.5% faster")],
)
def test_baseline_mode_holds_time_for_a_machine_that_moved(
    tmp_path: Path, kernel_s: float, held: bool, note: str
) -> None:
    baseline = load_baseline(_baseline_file(tmp_path, [0.019, 0.020, 0.021], MACHINE))
    policy = Policy(mode=Mode.BASELINE, min_rounds=5)
    notes = ["an earlier note"]
    keys = gated_keys(PLAN)
    found = compare_with_baseline(
        _head_rounds(1.65, kernel_s), keys, policy, 0, baseline, MACHINE, notes
    )
    time_c = next(c for c in found if c.metric == "time")
    rss = next(c for c in found if c.metric == "rss_peak")
    assert time_c.machine_held is held
    assert time_c.verdict is (Verdict.INCONCLUSIVE if held else Verdict.FAIL)
    assert rss.verdict is Verdict.PASS and not rss.machine_held
    assert notes[0] == "an earlier note" and note in notes[-1] and len(notes) == 2
    # Asked again after more rounds: one kernel note, updated, not a second one.
    compare_with_baseline(_head_rounds(1.65, kernel_s), keys, policy, 0, baseline, MACHINE, notes)
    assert len(notes) == 2


def test_baseline_from_another_machine_is_rescaled_not_held(tmp_path: Path) -> None:
    baseline = load_baseline(_baseline_file(tmp_path, [0.019, 0.020, 0.021]))
    assert baseline.fingerprint != MACHINE.fingerprint
    notes: list[str] = []
    found = compare_with_baseline(
        _head_rounds(1.7, 0.034),
        gated_keys(PLAN),
        Policy(mode=Mode.BASELINE, min_rounds=5),
        0,
        baseline,
        MACHINE,
        notes,
    )
    assert not any(c.machine_held for c in found)
    assert len(notes) == 1 and "another machine" in notes[0]


def test_rounds_to_start_with_clear_holms_alpha_and_the_policys_minimum() -> None:
    # 27 comparisons at alpha 0.05: 1 / 2**n must clear 0.05 / 27 two-sided, plus one.
    assert initial_rounds(Policy(min_rounds=5), 27) == 12
    assert initial_rounds(Policy(min_rounds=20), 27) == 20
    assert initial_rounds(Policy(min_rounds=5), 0) == initial_rounds(Policy(min_rounds=5), 1)


def _comparison(verdict: Verdict, *, held: bool = False, n: int = 12) -> Comparison:
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
        machine_held=held,
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
    # Inconclusive: held for the machine (naming the kernel note), or out of rounds.
    kernel = f"{KERNEL_NOTE} 20.00 ms"
    undecided = conclude(
        [_comparison(Verdict.INCONCLUSIVE, held=True), _comparison(Verdict.INCONCLUSIVE, n=16)],
        policy,
        strict=True,
        notes=[kernel],
    )
    assert undecided.exit_status == 2
    assert kernel in undecided.warnings[0]
    assert "1 comparisons stayed inconclusive after 16 rounds (budget 16)" in undecided.warnings[1]
