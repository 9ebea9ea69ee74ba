from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from perf.decide.baseline import (
    BASELINE_SCHEMA_VERSION,
    check_python,
    check_sampling,
    load_baseline,
    write_baseline,
)
from perf.errors import BaselineError
from perf.workload.calibration import calibrate, kernel
from tests.baseline_fixtures import baseline_document


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "quick.json"
    write_baseline(path, baseline_document())
    baseline = load_baseline(path)
    assert baseline.schema_version == BASELINE_SCHEMA_VERSION
    assert baseline.samples["daemon_performance.medium.core"]["time"] == [0.02, 0.021]
    assert baseline.calibration_s == (0.010, 0.011, 0.012)  # the recording machine's speed
    assert not list(tmp_path.glob(".*.tmp"))


def test_missing_baseline_names_the_file_and_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "quick.json"
    with pytest.raises(BaselineError) as info:
        load_baseline(path)
    assert str(path) in str(info.value) and "nox -s perf_baseline" in str(info.value)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("{not json", "unreadable or truncated"),
        ('{"kind": "crucible-perf-baseline", "schema_version": 1, "calib', "truncated"),
        ('{"kind": "something-else"}', "not a Crucible baseline"),
        ("[1, 2]", "not a Crucible baseline"),
    ],
)
def test_corrupt_or_truncated_baseline_is_refused(
    tmp_path: Path, content: str, fragment: str
) -> None:
    path = tmp_path / "quick.json"
    path.write_text(content)
    with pytest.raises(BaselineError, match=fragment) as info:
        load_baseline(path)
    assert "nox -s perf_baseline" in str(info.value)
    assert path.read_text() == content  # nothing overwritten


def test_truncated_real_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "quick.json"
    write_baseline(path, baseline_document())
    text = path.read_text()
    path.write_text(text[: len(text) // 2])
    with pytest.raises(BaselineError, match="truncated"):
        load_baseline(path)


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "quick.json"
    write_baseline(path, baseline_document())
    data = json.loads(path.read_text())
    data["schema_version"] = BASELINE_SCHEMA_VERSION + 1
    path.write_text(json.dumps(data))
    with pytest.raises(BaselineError, match="newer than this gate reads"):
        load_baseline(path)


@pytest.mark.parametrize(
    "samples",
    [{}, {"b": {}}, {"b": {"time": []}}, {"b": {"time": [0.0]}}, {"b": {"time": ["x"]}}],
)
def test_samples_must_be_positive_numbers(tmp_path: Path, samples: Any) -> None:
    path = tmp_path / "quick.json"
    data = {
        "kind": "crucible-perf-baseline",
        "schema_version": 1,
        **baseline_document(samples=samples),
    }
    path.write_text(json.dumps(data))
    with pytest.raises(BaselineError):
        load_baseline(path)


def test_write_refuses_bad_samples_and_keeps_old_file(tmp_path: Path) -> None:
    path = tmp_path / "quick.json"
    write_baseline(path, baseline_document())
    before = path.read_text()
    with pytest.raises(BaselineError):
        write_baseline(path, baseline_document(samples={"b": {"time": [-1.0]}}))
    assert path.read_text() == before


def test_a_baseline_from_another_python_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "quick.json"
    write_baseline(path, baseline_document())
    baseline = load_baseline(path)
    check_python(baseline, "3.11.7")  # its own Python: accepted
    with pytest.raises(BaselineError, match=r"Python 3\.11\.7, this run uses 3\.12\.1") as caught:
        check_python(baseline, "3.12.1")
    assert "nox -s perf_baseline" in str(caught.value)


def test_calibration_kernel_is_deterministic_and_timed() -> None:
    assert kernel() == kernel()
    assert calibrate(repeats=2) > 0


def test_baseline_sampled_another_way_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "quick.json"
    write_baseline(path, baseline_document())
    baseline = load_baseline(path)
    assert baseline.unpaced_repeats == 5
    check_sampling(baseline, 5)
    with pytest.raises(BaselineError, match=r"medians of 5 .* this gate takes medians of 3"):
        check_sampling(baseline, 3)


def test_version_1_baseline_counts_as_one_measurement_per_sample(tmp_path: Path) -> None:
    path = tmp_path / "quick.json"
    doc = baseline_document()
    del doc["sampling"]
    path.write_text(json.dumps({"kind": "crucible-perf-baseline", "schema_version": 1, **doc}))
    baseline = load_baseline(path)
    assert baseline.unpaced_repeats == 1
    with pytest.raises(BaselineError, match="perf_baseline") as info:
        check_sampling(baseline, 5)
    assert info.value.subject == str(path)


@pytest.mark.parametrize("sampling", [None, {}, {"unpaced_repeats": 0}, {"unpaced_repeats": True}])
def test_version_2_baseline_needs_its_sampling(tmp_path: Path, sampling: Any) -> None:
    path = tmp_path / "quick.json"
    doc = baseline_document()
    if sampling is None:
        del doc["sampling"]
    else:
        doc["sampling"] = sampling
    path.write_text(json.dumps({"kind": "crucible-perf-baseline", "schema_version": 2, **doc}))
    with pytest.raises(BaselineError, match="sampling"):
        load_baseline(path)


def test_committed_baselines_load_and_match_the_gate_sampling() -> None:
    from perf.workload.plan import UNPACED_REPEATS

    folder = Path(__file__).resolve().parent.parent / "baselines"
    files = sorted(folder.glob("*.json"))
    assert files, "baselines/ holds no baseline"
    for path in files:
        check_sampling(load_baseline(path), UNPACED_REPEATS)


def test_the_document_of_the_heads_rounds_round_trips(tmp_path: Path) -> None:
    from perf.decide.baseline import baseline_document as document_of_rounds
    from perf.measure.meta import GitState, MachineInfo
    from perf.workload.plan import UNPACED_REPEATS

    machine = MachineInfo(
        cpu_model="Test CPU",
        cpu_count=2,
        memory_total_bytes=2**33,
        os="Linux",
        python_implementation="CPython",
        python_version="3.11.7",
    )
    document = document_of_rounds(
        head=GitState(commit="c" * 40, dirty=True),
        machine=machine,
        set_name="quick",
        samples={("s.a.core", "time"): [0.02, 0.021], ("s.a.core", "rss_peak"): [3e7, 3e7]},
        calibration_s=[0.01, 0.011],
    )
    path = tmp_path / "quick.json"
    write_baseline(path, document)
    baseline = load_baseline(path)
    assert baseline.samples == {"s.a.core": {"time": [0.02, 0.021], "rss_peak": [3e7, 3e7]}}
    assert baseline.fingerprint == machine.fingerprint and baseline.dirty
    assert baseline.calibration_s == (0.01, 0.011)
    check_sampling(baseline, UNPACED_REPEATS)
