"""``python -m crucible run`` as a user runs it, in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

KEYS = {
    "published",
    "delivered",
    "failed",
    "dead_lettered",
    "rejected",
    "in_flight",
    "throughput_eps",
    "latency_p50_s",
    "latency_p95_s",
    "latency_p99_s",
    "peak_rss_bytes",
    "cpu_percent",
}


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crucible", "run", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _json(*args: str) -> dict[str, Any]:
    proc = _run(*args, "--json")
    assert proc.returncode == 0, proc.stderr
    data: dict[str, Any] = json.loads(proc.stdout)
    assert data.keys() >= KEYS
    total = (
        data["delivered"]
        + data["failed"]
        + data["dead_lettered"]
        + data["rejected"]
        + data["in_flight"]
    )
    assert data["published"] == total
    assert data["in_flight"] == 0
    return data


def test_core_retries_and_dead_letters_failures() -> None:
    data = _json("--coordinator", "core", "--scenario", "medium", "--failure-rate", "0.3")
    assert data["published"] == 1000
    assert data["retried"] > 0
    assert data["dead_lettered"] > 0
    assert data["failed"] == 0
    assert data["throughput_eps"] > 0 and data["latency_p99_s"] >= data["latency_p50_s"] > 0
    assert data["peak_rss_bytes"] > 1_000_000


def test_data_counts_failures_as_failed() -> None:
    data = _json("--coordinator", "data", "--scenario", "light", "--failure-rate", "0.05")
    assert data["published"] == 100
    assert data["failed"] > 0
    assert data["dead_lettered"] == 0 and data["retried"] == 0


def test_pattern_run_reports_offered_rate() -> None:
    data = _json("--coordinator", "reference", "--scenario", "light", "--pattern", "burst")
    assert data["pattern"] == "burst"
    assert data["offered_rate_eps"] > 0
    assert data["delivered"] == 100


def test_external_coordinator_by_module_factory() -> None:
    data = _json("--coordinator", "crucible._reference:ReferenceCoordinator", "--scenario", "light")
    assert data["coordinator"] == "reference"
    assert data["delivered"] == 100


def test_human_output() -> None:
    proc = _run("--coordinator", "data", "--scenario", "light")
    assert proc.returncode == 0
    assert "invariant: holds" in proc.stdout
    assert "events/s" in proc.stdout


@pytest.mark.parametrize(
    ("args", "accepted"),
    [
        (["--coordinator", "nope"], "accepted: data, core, reference"),
        (["--coordinator", "no_such_module:thing"], "cannot import"),
        (["--scenario", "huge"], "choose from"),
        (["--pattern", "zigzag"], "choose from"),
        (["--failure-rate", "2"], "outside [0, 1]"),
        (["--seed", "x"], "invalid int"),
    ],
)
def test_bad_arguments_exit_2_saying_what_is_accepted(args: list[str], accepted: str) -> None:
    proc = _run(*args)
    assert proc.returncode == 2
    assert accepted in proc.stderr
