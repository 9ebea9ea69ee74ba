"""perf.decide.leakgate: memory and leak decisions on known series, and on real captures of a
deliberately leaking coordinator (tests.profile_fixtures.LeakyCore)."""

from __future__ import annotations

import sys
from pathlib import Path
from types import MappingProxyType

import pytest

from perf.decide.leakgate import (
    DEFAULT_LEAK_ALLOWANCE_BYTES_PER_EVENT,
    MemoryFigures,
    growth_slope,
    leak_check,
    memory_checks,
    memory_figures,
    memory_gate,
)
from perf.decide.verdict import Verdict
from perf.profiling.capture import CaptureOptions, capture_profiles
from perf.profiling.profiles import Frame, MemoryStats, SettleSeries, StackGrowth, load_settle
from tests.profile_fixtures import LEAK_BYTES_PER_EVENT

LEAK_SITE = Frame("LeakyCore.publish", "tests/profile_fixtures.py", 21)
CACHE_SITE = Frame("Deduplicator.admit", "crucible/_core/dedup.py", 40)


def series(
    per_event: float,
    *,
    held: int = 500,
    noise: tuple[int, ...] = (0, 40, -30, 10, -20, 30, -10, 0),
    growth: tuple[StackGrowth, ...] = (),
    held_stacks: tuple[StackGrowth, ...] = (),
) -> SettleSeries:
    events = tuple(500 * (i + 1) for i in range(len(noise)))
    return SettleSeries(
        source="test",
        coordinator="core",
        scenario="medium",
        batch_events=500,
        warmup_batches=2,
        events=events,
        retained_bytes=tuple(
            int(20_000 + per_event * e) + n for e, n in zip(events, noise, strict=True)
        ),
        held_after_stop_bytes=held,
        attributed_to=("crucible/",),
        top_growth=growth,
        top_held_after_stop=held_stacks,
    )


def grows(site: Frame, size: int) -> StackGrowth:
    return StackGrowth(site=site, size_diff_bytes=size, count_diff=size // 141, stack=(site,))


def stats(allocations: int, allocated: int, sites: dict[str, int] | None = None) -> MemoryStats:
    sites = sites or {}
    return MemoryStats(
        source="test",
        allocations=allocations,
        allocated_bytes=allocated,
        peak_bytes=allocated,
        site_bytes=MappingProxyType(sites),
        site_allocations=MappingProxyType({}),
        site_frames=MappingProxyType({}),
        function_bytes=MappingProxyType({}),
        module_bytes=MappingProxyType({}),
        module_allocations=MappingProxyType({}),
        sites_listed=len(sites),
        python_allocator="pymalloc",
        trace_python_allocators=False,
        native_traces=False,
    )


# ----------------------------------------------------------------------------- leak check


def test_growth_slope_leaves_out_warmup() -> None:
    s = series(100.0, noise=(50_000, 40_000, 0, 0, 0, 0, 0, 0))
    assert growth_slope(s).slope == pytest.approx(100.0, abs=0.01)


def test_identical_series_pass() -> None:
    check = leak_check("core/medium", series(104.0), series(104.0))
    assert check.verdict is Verdict.PASS
    assert check.growth_judged
    assert check.excess_growth == pytest.approx(0.0, abs=1e-9)
    assert check.excess_ci_low < 0 < check.excess_ci_high
    assert check.stacks == ()


def test_leak_over_a_cache_fails_and_names_the_stack() -> None:
    base = series(104.0, growth=(grows(CACHE_SITE, 300_000),))
    head = series(
        245.0,
        held=560_000,
        growth=(grows(LEAK_SITE, 420_000), grows(CACHE_SITE, 300_000)),
        held_stacks=(grows(LEAK_SITE, 560_000), grows(CACHE_SITE, 200)),
    )
    check = leak_check("core/medium", head, base)
    assert check.verdict is Verdict.FAIL
    assert check.excess_growth == pytest.approx(141.0, abs=2.0)
    assert check.excess_ci_low > DEFAULT_LEAK_ALLOWANCE_BYTES_PER_EVENT
    assert check.stacks[0].site == LEAK_SITE  # the 200-byte one-off is left out
    assert len(check.stacks) == 1
    assert "LeakyCore.publish (tests/profile_fixtures.py:21)" in check.reason


def test_growth_alone_fails_against_the_base() -> None:
    """An instance-level leak (freed with the coordinator) shows only as growth."""
    head = series(145.0, growth=(grows(LEAK_SITE, 120_000),))
    check = leak_check("core/medium", head, series(104.0))
    assert check.verdict is Verdict.FAIL
    assert check.stacks[0].site == LEAK_SITE
    assert "growth above" in check.reason


def test_small_growth_within_allowance_passes() -> None:
    check = leak_check("core/medium", series(110.0), series(104.0))
    assert check.verdict is Verdict.PASS


def test_without_reference_growth_is_not_judged() -> None:
    check = leak_check("core/medium", series(104.0))
    assert check.verdict is Verdict.PASS
    assert not check.growth_judged
    assert "not judged" in check.reason
    held = series(104.0, held=400_000, held_stacks=(grows(LEAK_SITE, 400_000),))
    assert leak_check("core/medium", held).verdict is Verdict.FAIL


def test_stored_figure_reference() -> None:
    stored = MemoryFigures(growth_bytes_per_event=104.0, held_after_stop_bytes_per_event=0.1)
    assert leak_check("c", series(104.0), stored).verdict is Verdict.PASS
    assert leak_check("c", series(250.0), stored).verdict is Verdict.FAIL


def test_too_few_readings_raise() -> None:
    short = series(1.0, noise=(0, 0, 0, 0))
    with pytest.raises(ValueError, match="3 points"):
        leak_check("c", short)


# ----------------------------------------------------------------------------- memory checks


@pytest.mark.parametrize(("head", "verdict"), [(109_900, Verdict.PASS), (110_100, Verdict.FAIL)])
def test_memory_threshold_is_ten_percent(head: int, verdict: Verdict) -> None:
    base = stats(1000, 100_000, {"a (x.py:1)": 50_000})
    new = stats(1000, head, {"a (x.py:1)": 50_000, "b (y.py:2)": head - 50_000})
    checks = {c.metric: c for c in memory_checks("s", (base, None), (new, None))}
    assert set(checks) == {"allocations", "allocated_bytes"}
    assert checks["allocations"].verdict is Verdict.PASS
    check = checks["allocated_bytes"]
    assert check.verdict is verdict
    if verdict is Verdict.FAIL:
        assert check.sites[0].site == "b (y.py:2)"
        assert check.sites[0].change_bytes == head - 50_000
    else:
        assert check.sites == ()


def test_retained_bytes_sites_subtract_the_base() -> None:
    base = series(104.0, growth=(grows(CACHE_SITE, 300_000),))
    head = series(245.0, growth=(grows(LEAK_SITE, 420_000), grows(CACHE_SITE, 300_000)))
    (check,) = memory_checks("s", (None, base), (None, head))
    assert check.metric == "retained_bytes"
    assert check.verdict is Verdict.FAIL
    assert [s.site for s in check.sites] == [LEAK_SITE.label]


def test_memory_gate_verdicts() -> None:
    ok = (stats(10, 100), series(104.0))
    gate = memory_gate({"core/medium": (ok, ok)})
    assert gate.verdict is Verdict.PASS
    assert len(gate.checks) == 3 and len(gate.leaks) == 1
    figures = memory_figures(*ok)
    gate = memory_gate({"core/medium": (figures, (stats(20, 100), series(104.0)))})
    assert gate.verdict is Verdict.FAIL
    assert [c.metric for c in gate.failures if hasattr(c, "metric")] == ["allocations"]
    assert MemoryFigures.from_dict(figures.as_dict()) == figures
    assert memory_gate({}).verdict is Verdict.INCONCLUSIVE


def test_zero_base() -> None:
    (check,) = memory_checks("s", MemoryFigures(allocations=0), (stats(5, 10), None))
    assert check.verdict is Verdict.FAIL


# ----------------------------------------------------------------------------- real capture


def test_real_leaking_coordinator_fails_and_identical_code_passes(tmp_path: Path) -> None:
    """Settle cycles of CrucibleCore twice and of LeakyCore (100 bytes kept per event)."""
    options = CaptureOptions(
        memray=False, pyspy=False, settle_batches=5, settle_batch_events=120, settle_warmup=2
    )
    coordinators = ["core", "tests.profile_fixtures:LeakyCore"]
    first = capture_profiles(tmp_path, coordinators, ["light"], options=options, stream=sys.stderr)
    again = capture_profiles(
        tmp_path, ["core"], ["light"], options=options, side="again", stream=sys.stderr
    )
    assert first.notes == () and again.notes == ()
    core, leaky = (load_settle(tmp_path / str(c.settle)) for c in first.captures)
    core_again = load_settle(tmp_path / str(again.captures[0].settle))

    identical = leak_check("core/light", core_again, core)
    assert identical.verdict is Verdict.PASS, identical.reason

    leak = leak_check("core/light", leaky, core)
    assert leak.verdict is Verdict.FAIL, leak.reason
    # 100 bytes of payload per event, plus the bytes object's header and a list slot
    assert LEAK_BYTES_PER_EVENT < leak.held_after_stop_bytes_per_event < 2 * LEAK_BYTES_PER_EVENT
    site = leak.stacks[0].site
    assert (site.function, site.file) == ("LeakyCore.publish", "tests/profile_fixtures.py")
    assert site.line is not None and site.line > 0
    assert "LeakyCore.publish (tests/profile_fixtures.py:" in leak.reason

    # Without a reference the leak still fails (held after stop); CrucibleCore passes.
    assert leak_check("leaky", leaky).verdict is Verdict.FAIL
    assert leak_check("core", core).verdict is Verdict.PASS
