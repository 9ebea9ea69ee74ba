"""The gate's plan of cases: which figures it decides on, how often each case is asked per
side, and the daemon transport case measured beside core."""

from __future__ import annotations

import json
from pathlib import Path

from perf.workload.plan import (
    UNPACED_REPEATS,
    cases_to_rerun,
    gated_keys,
    plan_cases,
    write_plan,
)

PLAN = [
    {"bench": "s.a.core", "paced": False, "traced": False},
    {"bench": "s.b.core", "paced": True, "traced": True},
]


def test_gated_keys_follow_the_kind_of_case() -> None:
    assert gated_keys(PLAN) == [
        ("s.a.core", "time"),
        ("s.a.core", "rss_peak"),
        ("s.b.core", "latency_p99"),
        ("s.b.core", "allocated"),
    ]


def test_unpaced_cases_repeat_and_paced_cases_do_not() -> None:

    plan = [i for i in plan_cases("quick", ("core",)) if i.get("gated", True)]
    assert UNPACED_REPEATS > 1
    assert {item["repeats"] for item in plan if item["paced"]} == {1}
    assert {item["repeats"] for item in plan if not item["paced"]} == {UNPACED_REPEATS}


def test_transport_case_is_measured_on_the_head_side_and_not_gated() -> None:

    plan = plan_cases("quick", ("data", "core"))
    daemon = [i for i in plan if i["coordinator"] == "core-daemon"]
    assert [i["bench"] for i in daemon] == ["daemon_performance.medium.core-daemon"]
    assert daemon[0]["sides"] == ["head"] and daemon[0]["gated"] is False
    assert all(bench != daemon[0]["bench"] for bench, _ in gated_keys(plan))
    # Without core there is nothing to set the daemon beside.
    assert not [i for i in plan_cases("quick", ("data",)) if "daemon" in i["coordinator"]]


def test_extra_rounds_rerun_each_case_with_a_wanted_comparison_once() -> None:
    wanted = [("s.b.core", "latency_p99"), ("s.b.core", "allocated")]
    assert cases_to_rerun(PLAN, wanted) == [1]
    assert cases_to_rerun(PLAN, []) == []


def test_the_plan_file_holds_what_a_sample_process_reads(tmp_path: Path) -> None:
    plan = plan_cases("quick", ("core",))
    path = tmp_path / "plan.json"
    write_plan(path, set_name="quick", plan=plan, coordinators=("core",), calibrate=False)
    stored = json.loads(path.read_text())
    assert stored == {"set": "quick", "cases": plan, "coordinators": ["core"], "calibrate": False}
