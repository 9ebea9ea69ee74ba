"""perf.measure.instructions and the perf.tools.instructions command (the worker and its
clock: tests/test_count_worker.py, tests/test_virtual_clock.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from perf.errors import ResultError
from perf.measure.instructions import (
    HEAP_TOOL,
    CaseCount,
    CaseRef,
    CountRun,
    CountSettings,
    count_case,
    count_cases,
    countable_cases,
    parse_valgrind_logs,
    per_workload,
    spread_pct,
)
from perf.paths import REPO_ROOT
from perf.tools.instructions import render, select_cases, summarize
from perf.workload.plan import plan_cases

# Logs valgrind 3.19 wrote for python -m perf.measure.count_worker --workloads 1 on the light
# scenario and the reference coordinator: the worker (12088), its case process (12089) and
# the case's two children (12090 ran the workload once, 12091 twice).
CALLGRIND_LOGS = [
    """==12089== Callgrind, a call-graph generating cache profiler
==12089== Copyright (C) 2002-2017, and GNU GPL'd, by Josef Weidendorfer et al.
==12089== Using Valgrind-3.19.0 and LibVEX; rerun with -h for copyright info
==12089== Command: /work/.nox/tests/bin/python -m perf.measure.count_worker --tree /work
==12089== Parent PID: 12088
==12089==
==12089==
==12089== Events    : Ir
==12089== Collected : 588971221
==12089==
==12089== I   refs:      588,971,221
""",
    """==12090== Callgrind, a call-graph generating cache profiler
==12090== Using Valgrind-3.19.0 and LibVEX; rerun with -h for copyright info
==12090== Parent PID: 12089
==12090== Events    : Ir
==12090== Collected : 588900406
==12090==
==12090== I   refs:      588,900,406
""",
    """==12091== Using Valgrind-3.19.0 and LibVEX; rerun with -h for copyright info
==12091== Parent PID: 12089
==12091== Events    : Ir
==12091== Collected : 593985710
==12091==
==12091== I   refs:      593,985,710
""",
]
CACHEGRIND_LOG = """==5773== Cachegrind, a cache and branch-prediction profiler
==5773== Copyright (C) 2002-2017, and GNU GPL'd, by Nicholas Nethercote et al.
==5773== Using Valgrind-3.19.0 and LibVEX; rerun with -h for copyright info
==5773== Command: /work/.nox/tests/bin/python -m perf.measure.count_worker --tree .
==5773== Parent PID: 5772
==5773==
==5773==
==5773== I   refs:      848,863,739
"""
MEMCHECK_LOG = """==12098== Memcheck, a memory error detector
==12098== Using Valgrind-3.19.0 and LibVEX; rerun with -h for copyright info
==12098== Parent PID: 12097
==12098==
==12098== HEAP SUMMARY:
==12098==     in use at exit: 13,501,947 bytes in 105,254 blocks
==12098==   total heap usage: 424,868 allocs, 319,614 frees, 64,423,301 bytes allocated
==12098==
==12098== ERROR SUMMARY: 0 errors from 0 contexts (suppressed: 0 from 0)
==12099== Parent PID: 12097
==12099==   total heap usage: 427,531 allocs, 322,753 frees, 64,726,270 bytes allocated
"""

LIGHT_REFERENCE = CaseRef(
    "daemon_performance", "light", "reference", "daemon_performance.light.reference"
)


# -- valgrind's output ----------------------------------------------------------------------


def test_instruction_totals_are_read_per_process_from_callgrinds_logs() -> None:
    logs = parse_valgrind_logs(CALLGRIND_LOGS)
    assert logs.instructions == {12089: 588_971_221, 12090: 588_900_406, 12091: 593_985_710}
    assert logs.version == "3.19.0"
    assert logs.heap == {}
    # one workload of light on reference: the child that ran it twice less the one that ran
    # it once
    assert per_workload(logs.instructions[12090], logs.instructions[12091], 1) == 5_085_304


def test_cachegrinds_total_is_read_too() -> None:
    logs = parse_valgrind_logs([CACHEGRIND_LOG])
    assert logs.instructions == {5773: 848_863_739}
    assert logs.version == "3.19.0"


def test_memchecks_heap_summary_gives_allocations_and_bytes() -> None:
    logs = parse_valgrind_logs([MEMCHECK_LOG])
    assert logs.heap == {12098: (424_868, 64_423_301), 12099: (427_531, 64_726_270)}
    assert logs.instructions == {}


def test_logs_without_totals_give_nothing() -> None:
    logs = parse_valgrind_logs(["valgrind: failed to start tool 'cachegrind'", ""])
    assert logs.instructions == {} and logs.heap == {} and logs.version is None


# -- arithmetic -----------------------------------------------------------------------------


def test_one_workload_is_the_difference_of_the_two_totals_over_k() -> None:
    assert per_workload(1_000_000, 1_060_000, 2) == 30_000
    assert per_workload(848_863_739, 858_953_578, 2) == 5_044_919.5
    assert per_workload(10, 11, 1) == 1


@pytest.mark.parametrize(
    ("total_k", "total_2k", "k", "message"),
    [
        (100, 100, 1, "no more than"),
        (200, 100, 1, "no more than"),
        (100, 200, 0, "at least 1"),
    ],
)
def test_totals_that_cannot_give_a_workload_are_refused(
    total_k: int, total_2k: int, k: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        per_workload(total_k, total_2k, k)


def test_spread_is_max_minus_min_over_the_median() -> None:
    assert spread_pct([5_044_920.0] * 5) == 0.0
    assert spread_pct([99.0, 100.0, 101.0]) == pytest.approx(2.0)
    assert spread_pct([100.0, 100.0, 100.0, 104.0]) == pytest.approx(4.0)
    with pytest.raises(ValueError, match="no values"):
        spread_pct([])
    with pytest.raises(ValueError, match="not positive"):
        spread_pct([0.0, 0.0])


# -- settings and cases ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"workloads": 0}, "at least 1"),
        ({"tool": "massif"}, "unknown valgrind tool"),
        ({"clock": "sundial"}, "unknown clock"),
        ({"timeout_s": 0.0}, "timeout_s"),
    ],
)
def test_bad_settings_are_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CountSettings(**changes)  # type: ignore[arg-type]


def test_the_counted_cases_are_the_plans_gated_ones() -> None:
    plan = plan_cases("quick", ("data", "core", "reference"))
    cases = countable_cases(plan)
    assert len(cases) == 15  # 5 cases x 3 coordinators; core-daemon's daemon is another process
    assert all(c.coordinator != "core-daemon" for c in cases)
    assert {c.case for c in cases} == {
        "light",
        "medium",
        "burst",
        "spike_faults",
        "payload16k_events1000",
    }
    assert [c.bench for c in cases] == [item["bench"] for item in plan if item.get("gated", True)]


def test_cases_can_be_chosen_by_name_and_an_unknown_name_is_refused() -> None:
    chosen = select_cases("quick", ["reference", "core"], ["light", "burst"])
    assert [c.bench for c in chosen] == [
        "daemon_performance.light.reference",
        "daemon_performance.light.core",
        "load_testing.burst.reference",
        "load_testing.burst.core",
    ]
    with pytest.raises(ValueError, match=r"unknown case\(s\) heavy .* accepted: burst"):
        select_cases("quick", ["core"], ["heavy"])


# -- refusals -------------------------------------------------------------------------------


def test_counting_without_valgrind_on_path_is_refused_with_the_fix(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ResultError) as exc:
        count_cases([LIGHT_REFERENCE])
    message = str(exc.value)
    assert message.startswith("valgrind: valgrind is not on PATH")
    assert "apt-get install valgrind" in message


def test_the_command_without_valgrind_exits_2_and_says_why(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(tmp_path), "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "perf.tools.instructions", "--cases", "light"],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "valgrind is not on PATH" in done.stderr
    assert "apt-get install valgrind" in done.stderr
    assert done.stdout == ""


def _fake_valgrind(folder: Path, body: str) -> None:
    """A ``valgrind`` on PATH that is none: it runs ``body`` (sh)."""
    script = folder / "valgrind"
    script.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
    script.chmod(0o755)


def test_a_failing_worker_is_an_error_naming_the_cases_and_its_output(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _fake_valgrind(tmp_path, "echo 'valgrind: the tool crashed' >&2; exit 1")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ResultError) as exc:
        count_cases([LIGHT_REFERENCE], CountSettings(allocations=False))
    assert exc.value.subject == LIGHT_REFERENCE.bench
    assert "worker failed (exit 1): valgrind: the tool crashed" in str(exc.value)


def test_a_case_the_worker_cannot_run_is_an_error_naming_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # valgrind's options dropped, the worker run as it is: it replies an error for the case
    _fake_valgrind(tmp_path, 'while [ "${1#--}" != "$1" ]; do shift; done; exec "$@"')
    monkeypatch.setenv("PATH", str(tmp_path))
    nope = CaseRef("daemon_performance", "nope", "reference", "daemon_performance.nope.reference")
    with pytest.raises(ResultError) as exc:
        count_cases([nope], CountSettings(allocations=False))
    assert exc.value.subject == "daemon_performance.nope.reference"
    assert "no case daemon_performance.nope for reference in the quick set" in str(exc.value)


def test_a_worker_whose_logs_lack_a_total_is_an_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _fake_valgrind(tmp_path, 'while [ "${1#--}" != "$1" ]; do shift; done; exec "$@"')
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ResultError, match="no total for process"):
        count_cases([LIGHT_REFERENCE], CountSettings(allocations=False, workloads=1))


# -- the workers' environment ---------------------------------------------------------------


def test_workers_run_in_a_fixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from perf.measure.instructions import _worker_env  # the one fact this test is about

    monkeypatch.setenv("PYTHONASYNCIODEBUG", "1")
    monkeypatch.setenv("PYTHONMALLOC", "debug")
    env = _worker_env("cachegrind")
    assert env["PYTHONHASHSEED"] == "0"
    assert "PYTHONASYNCIODEBUG" not in env and "PYTHONMALLOC" not in env
    assert "HOME" not in env
    assert _worker_env(HEAP_TOOL)["PYTHONMALLOC"] == "malloc"


# -- the command's table --------------------------------------------------------------------


def _count(bench: str, instructions: float, allocations: float | None) -> CaseCount:
    return CaseCount(
        bench=bench,
        instructions=instructions,
        total_k=1_000_000_000,
        total_2k=1_000_000_000 + int(2 * instructions),
        workloads=2,
        allocations=allocations,
        allocated_bytes=None if allocations is None else allocations * 100,
        tool="cachegrind",
        tool_version="3.19.0",
        clock="virtual",
        python_implementation="CPython",
        python_version="3.11.7",
        machine="x86_64",
        seconds=1.0,
    )


def test_the_summary_gives_each_cases_median_and_spread_over_the_runs() -> None:
    runs = [
        CountRun((_count("a", 100.0, 10.0), _count("b", 1000.0, None)), 50.0),
        CountRun((_count("a", 101.0, 10.0), _count("b", 1000.0, None)), 52.0),
        CountRun((_count("a", 102.0, 10.0), _count("b", 1000.0, None)), 51.0),
    ]
    a, b = summarize(runs)
    assert (a.bench, a.instructions, a.instructions_spread_pct) == ("a", 101.0, 2.0 / 101 * 100)
    assert (a.allocations, a.allocations_spread_pct) == (10.0, 0.0)
    assert (b.instructions_spread_pct, b.allocations, b.allocations_spread_pct) == (0.0, None, None)
    text = render(runs, [a, b], "quick")
    assert "cachegrind 3.19.0, virtual clock, CPython 3.11.7 on x86_64; 3 run(s)" in text
    assert "1.9802 %" in text
    assert "seconds a run: 50.0, 52.0, 51.0" in text
    one = summarize(runs[:1])
    assert one[0].instructions_spread_pct is None


# -- a real count ---------------------------------------------------------------------------


def test_two_fresh_counts_of_a_small_case_agree() -> None:
    if shutil.which("valgrind") is None:
        pytest.fail(
            "valgrind is not installed: this test counts under it (Debian or Ubuntu: "
            "apt-get install valgrind; .ci/run installs it when it runs as root)"
        )
    settings = CountSettings(workloads=1)
    first, second = (count_case(LIGHT_REFERENCE, settings) for _ in range(2))
    for count in (first, second):
        assert count.bench == LIGHT_REFERENCE.bench and count.workloads == 1
        assert count.total_2k - count.total_k == count.instructions
        # light on reference: 100 events through 3 services, each hashing its payload
        assert 1e6 < count.instructions < 1e8
        assert count.allocations is not None and 500 < count.allocations < 50_000
        assert count.allocated_bytes is not None and count.allocated_bytes > 0
        assert count.tool == "cachegrind" and count.clock == "virtual"
        assert count.tool_version[0].isdigit() and count.seconds > 0
    assert second.instructions == pytest.approx(first.instructions, rel=0.005)
    assert second.allocations == pytest.approx(first.allocations, rel=0.005)
    assert second.allocated_bytes == pytest.approx(first.allocated_bytes, rel=0.005)
