"""perf.measure.suite_options: the suite scripts' command line and what a worker is passed."""

from __future__ import annotations

import pyperf
import pytest

from perf.measure.suite_options import (
    build_runner,
    coordinators,
    forward_to_worker,
    preparse,
    split_values,
)
from perf.workload.cases import DEFAULT_COORDINATORS, settings_for


def test_repeated_comma_separated_values_are_one_list() -> None:
    assert split_values(["a,b", " c ", ","]) == ["a", "b", "c"]
    assert split_values([]) is None and split_values(None) is None and split_values([","]) is None


def test_a_worker_is_passed_the_selection_and_the_side_file_explicitly() -> None:
    args = preparse(["--set", "full", "--case", "light,medium", "--sidecar", "/tmp/x", "-p", "2"])
    cmd: list[str] = []
    forward_to_worker(cmd, args)
    assert cmd == [
        "--set",
        "full",
        "--case",
        "light,medium",
        "--coordinator",
        ",".join(DEFAULT_COORDINATORS),
        "--sidecar",
        "/tmp/x",
    ]
    assert coordinators(preparse(["--coordinator", "core", "--coordinator", "data"])) == [
        "core",
        "data",
    ]


def test_the_runner_takes_the_sets_settings_and_the_given_affinity(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import perf.measure.suite_options as suite_options

    monkeypatch.setattr(suite_options, "default_affinity", lambda: "0")
    # pyperf allows one Runner per process; each call here makes one.
    monkeypatch.setattr(pyperf.Runner, "_created", set())
    runner, args = build_runner("load_testing", ["--set", "quick", "--affinity", "1"])
    assert args.crucible_set == "quick" and args.affinity == "1"
    assert args.processes == settings_for("quick").processes
    assert runner.argparser.description == "Crucible load_testing benchmarks (pyperf)."
    monkeypatch.setattr(pyperf.Runner, "_created", set())
    _, args = build_runner("load_testing", [])
    assert args.affinity == "0"  # the default affinity when none is given
